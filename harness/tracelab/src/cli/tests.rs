//! The command line's flags and their conversion into studies and matrices.

use super::*;
use crate::guest::qemu::Mode;
use crate::matrix::{Guest, Matrix};
use crate::render::Format;
use crate::study::{Study, TargetSpec};
use anyhow::bail;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::payload::Payload;
use tracelab_model::schema::Unit;

fn parse(args: &[&str]) -> Result<Command> {
    let mut argv = vec!["tracelab"];
    argv.extend_from_slice(args);
    Ok(Cli::try_parse_from(argv)?.command)
}

fn study(args: &[&str]) -> Result<Study> {
    let mut argv = vec!["run"];
    argv.extend_from_slice(args);
    match parse(&argv)? {
        Command::Run(r) => r.into_study(vec![]),
        _ => bail!("not run"),
    }
}

fn matrix(args: &[&str]) -> Result<Matrix> {
    let mut argv = vec!["matrix"];
    argv.extend_from_slice(args);
    match parse(&argv)? {
        Command::Matrix(m) => m.into_matrix(vec![]),
        _ => bail!("not matrix"),
    }
}

#[test]
fn default_study_is_every_mechanism_on_x86_64_6_12_icount() {
    let s = study(&[]).expect("default study");
    assert_eq!(s.target, TargetSpec::default_vm());
    assert_eq!(s.plan.mechanisms, MechanismKind::DEFAULT.to_vec());
    assert_eq!(s.plan.payloads, vec![Payload::Count]);
    assert_eq!(s.plan.stacks, vec![1]);
    let s =
        study(&["--mechanisms", "bpf", "--payloads", "all", "--stack", "1,8"]).expect("bpf study");
    assert_eq!(s.plan.cells().len(), 11 * 5 * 2);
    assert_eq!((s.mode, s.plan.unit), (Mode::Icount, Unit::Insn));
}

#[test]
fn bad_input_names_valid_choices() {
    for (args, needle) in [
        (vec!["--mechanisms", "kprobe,uprobes"], "function-graph"),
        (vec!["--target", "vm:arm64/5.4"], "6.12"),
        (vec!["--target", "vm:ppc64/6.12"], "x86_64, arm64"),
        (vec!["--mode", "fast"], "icount, wall"),
        (vec!["--workload", "forks"], "getppid"),
        (vec!["--function", "a b"], "letters, digits"),
        (vec!["--calls", "0"], "calls"),
        (vec!["--payloads", "log"], "empty, count, record"),
        (vec!["--stack", "two"], "--stack"),
        (vec!["--stack", "0"], "1 to 64"),
        (vec!["--target", "vm:x86_64/custom"], "--kernel"),
        (vec!["--target", "local", "--mode", "wall"], "guests only"),
    ] {
        let err = format!("{:#}", study(&args).unwrap_err());
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn show_and_compare_take_one_format_enum() {
    let Ok(Command::Show(show::ShowArgs { format, .. })) = parse(&["show", "d", "--format", "md"])
    else {
        panic!("show parses");
    };
    assert_eq!(format, Format::Markdown);
    let err = parse(&["compare", "a", "b", "--format", "xml"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("table") && err.contains("markdown"), "{err}");
}

#[test]
fn default_matrix_is_both_arches_times_four_kernels() {
    let m = matrix(&["--jobs", "3"]).expect("matrix");
    assert_eq!(m.guests.len(), 8);
    assert_eq!(m.jobs, 3);
    assert_eq!(
        m.guests[1],
        Guest {
            arch: Arch::X86_64,
            kernel: KernelVersion::V6_12
        }
    );
    let one = matrix(&["--arch", "arm64", "--kernels", "7.3,7.3"]).expect("matrix");
    assert_eq!(one.guests.len(), 1);
    assert_eq!(one.jobs, 1, "never more jobs than guests");
}

#[test]
fn bad_matrix_lists_name_the_valid_choices() {
    for (args, needle) in [
        (vec!["--arch", "sparc"], "x86_64, arm64"),
        (vec!["--kernels", "6.1,5.10"], "6.12"),
        (vec!["--kernels", ","], "empty list"),
        (vec!["--jobs", "0"], "at least 1"),
        (vec!["--target", "local"], "--arch and --kernels"),
        (vec!["--mechanisms", "nope"], "kprobe"),
    ] {
        let err = format!("{:#}", matrix(&args).unwrap_err());
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
