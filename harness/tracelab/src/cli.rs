//! Command-line parsing: raw flags become a validated [`Study`] or a command. Nothing here
//! measures or stores; the library does.

use crate::guest::qemu::Mode;
use crate::results::Format;
use crate::study::Study;
use crate::target::TargetSpec;
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::plan::{AgentPlan, DEFAULT_CALLS, DEFAULT_REPEATS, DEFAULT_REPEATS_REAL_TIME};
use tracelab_model::schema::Unit;

#[derive(Parser, Debug)]
#[command(
    name = "tracelab",
    version,
    about = "Measures what Linux tracing mechanisms cost per traced call"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a study (default: every mechanism, getppid, x86_64 Debian 6.12 guest, icount).
    Run(RunArgs),
    /// Debian kernels for guests.
    Kernels {
        #[command(subcommand)]
        command: KernelsCommand,
    },
    /// What this host (or a guest kernel, with --target vm:<arch>/<version>) can measure.
    Doctor {
        /// local (default) or vm:<arch>/<version>.
        #[arg(long, default_value = "local")]
        target: String,
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Print the summary of a results directory.
    Show {
        dir: PathBuf,
        /// table, csv, json or markdown.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Compare two results or dataset directories cell by cell (exit 1 on a regression).
    Compare(crate::compare::CompareArgs),
    /// Run one study per (arch, kernel) guest in parallel into one Hive-style dataset.
    Matrix(crate::matrix::MatrixArgs),
    /// Write one self-contained HTML report and a Markdown summary of results or datasets.
    Report(crate::report::ReportArgs),
}

#[derive(Subcommand, Debug)]
pub enum KernelsCommand {
    /// The kernels the lab knows, and which are cached.
    List {
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Download a kernel (checksummed against the Debian index) into the cache.
    Fetch {
        /// 6.1, 6.12, 7.2 or 7.3.
        version: String,
        /// x86_64 or arm64.
        #[arg(long, default_value = "x86_64")]
        arch: String,
        /// Re-download the package index first.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        mirror: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// local, or vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3|custom).
    #[arg(long, default_value = "vm:x86_64/6.12")]
    pub target: String,
    /// Comma-separated mechanisms, or a set: `default` (tracefs mechanisms and bpf-kprobe,
    /// bpf-kprobe-multi, bpf-fentry), `bpf` (every BPF mechanism), `all`.
    #[arg(long, default_value = "default")]
    pub mechanisms: String,
    /// What BPF programs do, comma separated: empty, count, record, or `all`. One cell per
    /// payload for each BPF mechanism.
    #[arg(long, default_value = "count")]
    pub payloads: String,
    /// BPF programs stacked on the function, comma separated (e.g. 1,2,4,8). One cell per
    /// value for each BPF mechanism and payload.
    #[arg(long, default_value = "1")]
    pub stack: String,
    #[arg(long, default_value = "getppid")]
    pub workload: String,
    /// Kernel function to trace (default: the workload's entry point).
    #[arg(long)]
    pub function: Option<String>,
    /// Calls per timed loop.
    #[arg(long, default_value_t = DEFAULT_CALLS)]
    pub calls: u64,
    /// Interleaved baseline/mechanism pairs per cell (default: 3 under icount, where every
    /// pair agrees, and 15 in real time, where the confidence interval needs them).
    #[arg(long)]
    pub repeats: Option<u32>,
    /// icount (deterministic, unit insn) or wall (real time, unit ns). Guests only.
    #[arg(long, default_value = "icount")]
    pub mode: String,
    /// A kernel image you built (with --config and --target vm:<arch>/custom).
    #[arg(long, requires = "config")]
    pub kernel: Option<PathBuf>,
    /// The .config of --kernel.
    #[arg(long, requires = "kernel")]
    pub config: Option<PathBuf>,
    /// Results directory (default: results/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Debian mirror (default: $TRACELAB_MIRROR, the apt sources, or deb.debian.org).
    #[arg(long)]
    pub mirror: Option<String>,
    /// Seconds to wait for the guest's agent to start.
    #[arg(long)]
    pub boot_timeout: Option<u64>,
    /// Seconds to wait for each cell.
    #[arg(long)]
    pub cell_timeout: Option<u64>,
    /// Local target: run even though another tracer is active.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    /// Validates the flags into a study; every error names the valid choices.
    pub fn into_study(self, command_line: Vec<String>) -> Result<Study> {
        let mut target: TargetSpec = self.target.parse()?;
        let custom_kernel = match (self.kernel, self.config) {
            (Some(k), Some(c)) => Some((k, c)),
            _ => None,
        };
        match (&mut target, &custom_kernel) {
            (TargetSpec::Vm { kernel, .. }, Some(_)) => *kernel = None,
            (TargetSpec::Vm { kernel: None, .. }, None) => {
                bail!("target {} needs --kernel and --config", self.target)
            }
            (TargetSpec::Local, Some(_)) => {
                bail!("--kernel/--config need a vm target (vm:<arch>/custom)")
            }
            _ => {}
        }
        let mode = Mode::parse(&self.mode)?;
        if target == TargetSpec::Local && mode == Mode::Icount && self.mode != "icount" {
            bail!("--mode applies to guests only");
        }
        let unit = if target == TargetSpec::Local {
            Unit::Ns
        } else {
            mode.unit()
        };
        let plan = AgentPlan {
            mechanisms: MechanismKind::parse_list(&self.mechanisms)?,
            workload: self.workload,
            function: self.function,
            calls: self.calls,
            repeats: self.repeats.unwrap_or(if unit == Unit::Insn {
                DEFAULT_REPEATS
            } else {
                DEFAULT_REPEATS_REAL_TIME
            }),
            unit,
            kernel_config: BTreeMap::new(),
            payloads: tracelab_model::payload::Payload::parse_list(&self.payloads)?,
            stacks: parse_stacks(&self.stack)?,
        };
        plan.validate()?;
        let mut timeouts = Study::default_timeouts(&plan);
        if let Some(s) = self.boot_timeout {
            timeouts.boot = Duration::from_secs(s);
        }
        if let Some(s) = self.cell_timeout {
            timeouts.record = Duration::from_secs(s);
        }
        Ok(Study {
            target,
            plan,
            mode,
            out: self.out,
            custom_kernel,
            mirror: self.mirror,
            timeouts,
            command_line,
            force: self.force,
        })
    }
}

/// Parses `--stack 1,2,4,8`.
fn parse_stacks(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(|k| {
            k.trim().parse::<u32>().map_err(|_| {
                anyhow::anyhow!(
                    "--stack: `{}` is not a number of programs (e.g. --stack 1,2,4,8)",
                    k.trim()
                )
            })
        })
        .collect()
}

/// Parses `kernels fetch` arguments.
pub fn kernel_choice(version: &str, arch: &str) -> Result<(KernelVersion, Arch)> {
    Ok((version.parse()?, arch.parse()?))
}

pub fn format(name: &str) -> Result<Format> {
    Ok(name.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(args: &[&str]) -> Result<Study> {
        let mut argv = vec!["tracelab", "run"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Run(r) => r.into_study(vec![]),
            _ => bail!("not run"),
        }
    }

    #[test]
    fn default_study_is_every_mechanism_on_x86_64_6_12_icount() {
        let s = study(&[]).expect("default study");
        assert_eq!(s.target, TargetSpec::default_vm());
        assert_eq!(s.plan.mechanisms, MechanismKind::DEFAULT.to_vec());
        assert_eq!(
            s.plan.payloads,
            vec![tracelab_model::payload::Payload::Count]
        );
        assert_eq!(s.plan.stacks, vec![1]);
        let s = study(&["--mechanisms", "bpf", "--payloads", "all", "--stack", "1,8"])
            .expect("bpf study");
        assert_eq!(s.plan.cells().len(), 10 * 3 * 2);
        assert_eq!((s.mode, s.plan.unit), (Mode::Icount, Unit::Insn));
    }

    #[test]
    fn bad_input_names_valid_choices() {
        for (args, needle) in [
            (vec!["--mechanisms", "kprobe,uprobe"], "function-graph"),
            (vec!["--target", "vm:arm64/5.4"], "6.12"),
            (vec!["--target", "vm:ppc64/6.12"], "x86_64, arm64"),
            (vec!["--mode", "fast"], "icount, wall"),
            (vec!["--workload", "fork"], "getppid"),
            (vec!["--function", "a b"], "letters, digits"),
            (vec!["--calls", "0"], "calls"),
            (vec!["--payloads", "log"], "empty, count, record"),
            (vec!["--stack", "two"], "--stack"),
            (vec!["--stack", "0"], "1 to 64"),
            (vec!["--target", "vm:x86_64/custom"], "--kernel"),
        ] {
            let err = format!("{:#}", study(&args).unwrap_err());
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
