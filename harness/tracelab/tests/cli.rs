//! The command line: bad input gets one clear error naming the valid choices, and the
//! native target refuses on a host that cannot trace.

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn tracelab() -> Command {
    Command::cargo_bin("tracelab").expect("tracelab binary")
}

#[test]
fn unknown_names_list_the_valid_choices() {
    for (args, needle) in [
        (
            vec!["run", "--mechanisms", "uprobes"],
            "valid: baseline, kprobe, kprobe-offset",
        ),
        (
            vec!["run", "--target", "vm:x86_64/5.10"],
            "valid: 6.1, 6.12, 7.2, 7.3",
        ),
        (
            vec!["run", "--target", "vm:mips/6.12"],
            "valid: x86_64, arm64",
        ),
        (
            vec!["run", "--target", "qemu"],
            "valid: local, vm:<arch>/<version>",
        ),
        (
            vec!["run", "--function", "getppid\np:x/y do_exit"],
            "function name",
        ),
        (
            vec!["kernels", "fetch", "4.19"],
            "valid: 6.1, 6.12, 7.2, 7.3",
        ),
        (vec!["show", "/nonexistent", "--format", "xml"], "valid"),
    ] {
        tracelab()
            .args(&args)
            .assert()
            .code(2)
            .stderr(contains(needle));
    }
}

#[test]
fn show_rejects_a_directory_that_holds_no_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    tracelab()
        .arg("show")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("meta.json"));
}

/// On a host whose kernel forbids tracing (like the build machines) the native target
/// stops before touching anything and says what is missing.
#[test]
fn local_target_refuses_where_tracing_is_forbidden() {
    let forbidden =
        std::fs::read_to_string("/sys/kernel/tracing/available_filter_functions").is_err();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tracelab()
        .args([
            "run",
            "--target",
            "local",
            "--calls",
            "100",
            "--repeats",
            "1",
            "--out",
        ])
        .arg(dir.path().join("r"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if forbidden {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("the local target cannot trace on this host"),
            "{stderr}"
        );
    } else {
        // A host that can trace runs the study (exit 0) or reports failed cells (3).
        assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    }
}

#[test]
fn add_night_appends_a_dataset_once_and_history_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("night");
    let runs = tracelab::synthetic::matrix(&["x86_64"], &["6.12", "7.3"], 3, 0.0);
    tracelab::synthetic::write_dataset(&ds, &runs).expect("dataset");
    let store = dir.path().join("store");
    let add = |night: &str| {
        tracelab()
            .arg("add-night")
            .arg(&store)
            .arg(&ds)
            .args(["--night", night])
            .assert()
    };
    add("2026-12-01-a")
        .success()
        .stdout(contains("night=2026-12-01-a"));
    add("2026-12-01-a")
        .code(2)
        .stderr(contains("already in").and(contains("--night")));
    add("2026-12-02-a").success();
    tracelab()
        .arg("history")
        .arg(&store)
        .assert()
        .success()
        .stdout(contains("2 nights, 14 series, 28 points: 0 changes"));
    tracelab()
        .arg("add-night")
        .arg(&store)
        .arg(dir.path().join("nothing"))
        .assert()
        .code(2)
        .stderr(contains("is not a directory"));
}
