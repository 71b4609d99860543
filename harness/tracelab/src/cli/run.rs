//! `tracelab run`: the study's flags, validated into a [`Study`] (every error names the
//! valid choices), run on its target with a progress observer, printed as a table.

use super::progress::CliObserver;
use super::stdout::{out, outln};
use super::Exit;
use crate::guest::qemu::Mode;
use crate::render::Format;
use crate::study::{Snapshots, Study, TargetSpec};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tracelab_model::cell_id::Functions;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::payload::Payload;
use tracelab_model::plan::{
    Adaptive, AgentPlan, Fault, DEFAULT_BUDGET_SECS, DEFAULT_MAX_REPEATS, DEFAULT_REPEATS,
    DEFAULT_REPEATS_REAL_TIME,
};
use tracelab_model::schema::{Status, Unit};
use tracelab_model::workload::Workload;

/// A comma-separated list of mechanisms, or a set (`default`, `bpf`, `all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanisms(pub Vec<MechanismKind>);

impl FromStr for Mechanisms {
    type Err = tracelab_model::names::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MechanismKind::parse_list(s).map(Mechanisms)
    }
}

/// A comma-separated list of payloads, or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payloads(pub Vec<Payload>);

impl FromStr for Payloads {
    type Err = tracelab_model::names::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Payload::parse_list(s).map(Payloads)
    }
}

/// `--stack 1,2,4,8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacks(pub Vec<u32>);

impl FromStr for Stacks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(|k| {
                k.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "--stack: `{}` is not a number of programs (e.g. --stack 1,2,4,8)",
                        k.trim()
                    )
                })
            })
            .collect::<Result<Vec<u32>, String>>()
            .map(Stacks)
    }
}

/// `--functions 1,10,100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCounts(pub Vec<Functions>);

impl FromStr for FunctionCounts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let max = tracelab_model::plan::MAX_FUNCTIONS;
        let bad = |n: &str| {
            format!("--functions: `{n}` is not a number of functions (valid: 1 to {max}, or all, e.g. --functions 1,10,100,all)")
        };
        s.split(',')
            .map(|n| match n.trim() {
                "all" => Ok(Functions::All),
                n => counts(n, 1..=max, bad).map(|v| Functions::Count(v[0])),
            })
            .collect::<Result<Vec<Functions>, String>>()
            .map(FunctionCounts)
    }
}

/// `--other-tracers 0,1,10,100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherTracerCounts(pub Vec<u32>);

impl FromStr for OtherTracerCounts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let max = tracelab_model::plan::MAX_OTHER_TRACERS;
        counts(s, 0..=max, |n| {
            format!("--other-tracers: `{n}` is not a number of other tracers (valid: 0 to {max}, e.g. --other-tracers 0,1,10,100)")
        })
        .map(OtherTracerCounts)
    }
}

/// Comma-separated numbers within `valid`; `bad` words the error for one that is not.
fn counts(
    s: &str,
    valid: std::ops::RangeInclusive<u32>,
    bad: impl Fn(&str) -> String,
) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|n| {
            n.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| valid.contains(n))
                .ok_or_else(|| bad(n.trim()))
        })
        .collect()
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// local, or vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3|custom).
    #[arg(long, default_value = "vm:x86_64/6.12")]
    pub target: TargetSpec,
    /// Comma-separated mechanisms, or a set: `default` (tracefs mechanisms and bpf-kprobe,
    /// bpf-kprobe-multi, bpf-fentry), `bpf` (every BPF mechanism on kernel functions),
    /// `kernel` (every mechanism on kernel functions), `user` (the user-space probes),
    /// `all`.
    #[arg(long, default_value = "default")]
    pub mechanisms: Mechanisms,
    /// What BPF programs do, comma separated: empty, count, record, stacktrace, stackid,
    /// or `all`. One cell per payload for each BPF mechanism; the tracefs mechanisms take
    /// `stacktrace` (ftrace's stack trace option) and otherwise run without payload.
    #[arg(long, default_value = "count")]
    pub payloads: Payloads,
    /// BPF programs stacked on the function, comma separated (e.g. 1,2,4,8). One cell per
    /// value for each BPF mechanism and payload.
    #[arg(long, default_value = "1")]
    pub stack: Stacks,
    /// Functions each mechanism traces at once, comma separated (e.g. 1,10,100): the
    /// workload's own and N − 1 others the agent chooses (the same ones on every run of a
    /// kernel; none of them called by the workload). One cell per value for each
    /// mechanism; each records the time to attach and to detach.
    #[arg(long, default_value = "1")]
    pub functions: FunctionCounts,
    /// Other ftrace users on the kernel while each cell runs, comma separated (e.g.
    /// 0,1,10,100): M trace instances, each with the function tracer on one function of
    /// its own that the workload never calls. One cell per value for each mechanism.
    #[arg(long, default_value = "0")]
    pub other_tracers: OtherTracerCounts,
    /// getppid; bpf-numa-batch or bpf-kfunc-batch (in-kernel calls, no syscall each);
    /// pipe, file-read, tcp, fork or open-close (operations people run).
    #[arg(long, default_value = "getppid")]
    pub workload: Workload,
    /// Kernel function to trace (default: the workload's entry point). Checked with the
    /// plan, not by clap: clap would echo a 10 000-character or multi-line value whole.
    #[arg(long)]
    pub function: Option<String>,
    /// Calls (operations) per timed loop [default: 20000; pipe 2000, file-read and
    /// open-close 5000, tcp 1000, fork 200]. In a guest, the most: a cell makes as many
    /// as its armed loop fits into half a timer tick's period (on a 1-2-5 step), so no
    /// loop holds a tick (pipe and fork, which sleep by design, and the functions axis
    /// make all of them).
    #[arg(long)]
    pub calls: Option<u64>,
    /// Interleaved baseline/mechanism pairs per cell (default: 3 under icount, where pairs
    /// agree to the instruction unless the cell is flagged unstable; in real time the least, 15 by default, after which pairs are added
    /// until the overhead's 95% CI half-width is at most max(0.5 ns, 1% of it)).
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Real time: the most pairs per cell [default: 200].
    #[arg(long)]
    pub max_repeats: Option<u32>,
    /// Real time: seconds of measuring per cell after which no further pair starts
    /// [default: 30].
    #[arg(long)]
    pub budget: Option<u64>,
    /// icount (deterministic, unit insn) or wall (real time, unit ns). Guests only.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
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
    /// Seconds to wait for each cell; a cell that takes longer (an attach that never
    /// returns) fails, and a fresh guest runs the cells after it.
    #[arg(long)]
    pub cell_timeout: Option<u64>,
    /// Local target: run even though another tracer is active.
    #[arg(long)]
    pub force: bool,
    /// Guest kernel arguments after the lab's own, e.g. "mitigations=off" (recorded in
    /// meta.json; part of a series' identity in `history`).
    #[arg(long, value_parser = parse_kernel_args)]
    pub kernel_args: Option<KernelArgs>,
    /// Guest CPUs: 1, or 2 to run the workload's peer process (pipe) on a CPU of its own
    /// while the agent measures on the first. Under icount the figure is still the
    /// instructions of both sides (cross-CPU wake-ups instead of context switches), not
    /// parallel time or cache contention.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=2))]
    pub vcpus: u32,
    /// Append the finished run to this history store as one night (see `history`).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The night's label in the store: YYYY-MM-DD-<id> (default: now, UTC).
    #[arg(long, requires = "store", value_parser = super::parse_night)]
    pub night: Option<String>,
    /// Count every timed loop's instructions with the lab's QEMU TCG plugin too: kernel
    /// and user instructions as emulated counters (`tcg-plugin:…`) in each sample, each
    /// loop checked against the icount clock, and the blocks it ran kept per boot in
    /// `plugin/`. Guests under icount only.
    #[arg(long)]
    pub attribution: bool,
    /// Boot the guest instead of restoring the one kept at the agent's start for this
    /// kernel, agent and QEMU command line (and keep none). Figures are the same either
    /// way; a restore takes about 0.2 s, a boot about 10 s under TCG.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Fault injection for `tracelab chaos` (`panic-after-ms=N`: the guest kernel panics N
    /// ms after the agent starts). Not for measurements.
    #[arg(long, hide = true)]
    pub fault: Option<Fault>,
}

impl RunArgs {
    /// Validates the flags into a study; every error names the valid choices.
    pub fn into_study(self, command_line: Vec<String>) -> Result<Study> {
        let mut target = self.target;
        let custom_kernel = match (self.kernel, self.config) {
            (Some(k), Some(c)) => Some((k, c)),
            _ => None,
        };
        match (&mut target, &custom_kernel) {
            (
                TargetSpec::Vm {
                    kernel, release, ..
                },
                Some(_),
            ) => {
                *kernel = None;
                *release = None;
            }
            (TargetSpec::Vm { kernel: None, .. }, None) => {
                bail!("target {target} needs --kernel and --config")
            }
            (TargetSpec::Local, Some(_)) => {
                bail!("--kernel/--config need a vm target (vm:<arch>/custom)")
            }
            _ => {}
        }
        if target == TargetSpec::Local && self.mode.is_some() {
            bail!("--mode applies to guests only");
        }
        if target == TargetSpec::Local && self.vcpus != 1 {
            bail!("--vcpus applies to guests only (a host has the CPUs it has)");
        }
        if self.attribution && target == TargetSpec::Local {
            bail!("--attribution counts with a QEMU TCG plugin: it needs a guest (--target vm:<arch>/<version>), not --target local");
        }
        if self.attribution && self.mode == Some(Mode::Wall) {
            bail!("--attribution needs --mode icount (the plugin's counts are checked against the icount clock; under --mode wall a guest may run on KVM, which loads no TCG plugin)");
        }
        if target == TargetSpec::Local && self.no_snapshot {
            bail!("--no-snapshot applies to guests only (a host is not restored)");
        }
        if target == TargetSpec::Local && self.kernel_args.is_some() {
            bail!("--kernel-args applies to guests only (a host boots with its own)");
        }
        let mode = self.mode.unwrap_or(Mode::Icount);
        let unit = if target == TargetSpec::Local {
            Unit::Ns
        } else {
            mode.unit()
        };
        let repeats = self.repeats.unwrap_or(if unit == Unit::Insn {
            DEFAULT_REPEATS
        } else {
            DEFAULT_REPEATS_REAL_TIME
        });
        // Under icount every pair agrees: adaptive only when asked (and then refused).
        let adaptive = (unit == Unit::Ns || self.max_repeats.is_some() || self.budget.is_some())
            .then(|| Adaptive {
                max_repeats: self
                    .max_repeats
                    .unwrap_or_else(|| DEFAULT_MAX_REPEATS.max(repeats)),
                budget_secs: self.budget.unwrap_or(DEFAULT_BUDGET_SECS),
            });
        let plan = AgentPlan {
            mechanisms: self.mechanisms.0,
            workload: self.workload.name().to_string(),
            function: self.function,
            calls: self.calls.unwrap_or_else(|| self.workload.default_calls()),
            repeats,
            unit,
            kernel_config: BTreeMap::new(),
            payloads: self.payloads.0,
            stacks: self.stack.0,
            functions: self.functions.0,
            other_tracers: self.other_tracers.0,
            alone: matches!(target, TargetSpec::Vm { .. }),
            fault: self.fault,
            adaptive,
            // The agent runs on CPU 0 and the workload's peer on the second CPU.
            peer_cpu: (self.vcpus == 2).then_some(1),
            skip: Vec::new(),
            attribution: self.attribution,
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
            agent_dir: None,
            kernel_args: self.kernel_args.map(|k| k.0).unwrap_or_default(),
            snapshots: if self.no_snapshot {
                Snapshots::Off
            } else {
                Snapshots::Use
            },
        })
    }
}

/// Validated guest kernel arguments (`--kernel-args`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelArgs(pub Vec<String>);

fn parse_kernel_args(s: &str) -> Result<KernelArgs, String> {
    crate::guest::qemu::check_kernel_args(s).map(KernelArgs)
}

/// Where a run or matrix appends its night, checked before anything runs.
#[derive(Debug, Clone)]
pub struct StoreTarget {
    pub store: PathBuf,
    pub night: String,
}

impl RunArgs {
    /// The `--store`/`--night` pair, validated: the store must be one (or not exist yet)
    /// and the night new in it.
    pub fn store_target(&self) -> Result<Option<StoreTarget>> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let night = self
            .night
            .clone()
            .unwrap_or_else(|| crate::history::store::default_night(std::time::SystemTime::now()));
        if store.exists()
            && std::fs::read_dir(store)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            let nights = crate::history::store::nights(store)?;
            if nights.iter().any(|n| n.0 == night) {
                bail!(
                    "night {night} is already in {}: name another with --night",
                    store.display()
                );
            }
        }
        Ok(Some(StoreTarget {
            store: store.clone(),
            night,
        }))
    }
}

/// Parses `tracelab run …` flags (`argv[0]` is the program name) into a study, as the
/// command line would: for the studies that run other studies (`rehearse`).
pub fn parse_study(argv: &[String]) -> Result<Study> {
    use clap::Parser;
    let cli = super::Cli::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
    let super::Command::Run(run) = cli.command else {
        bail!("not a `run` command line");
    };
    run.into_study(argv.to_vec())
}

pub(super) fn run(args: RunArgs, command_line: Vec<String>) -> Result<Exit> {
    let store = args.store_target()?;
    let study = args.into_study(command_line.clone())?;
    crate::interrupt::catch().context("installing the Ctrl-C handler")?;
    let observer = CliObserver::new(study.plan.cells().len(), "cells");
    let finished = crate::target::run(&study, &observer);
    observer.finish();
    let finished = finished?;
    out!(
        "{}",
        crate::results::render(&finished.meta, &finished.cells, Format::Table)?
    );
    if let Some(t) = crate::timing::Timing::of(&finished.meta) {
        outln!("{}", t.line());
    }
    outln!("results: {}", finished.dir.display());
    if let Some(s) = store {
        let night =
            crate::history::store::append(&s.store, &s.night, &finished.dir, &command_line)?;
        outln!("stored: {}", night.display());
    }
    let failed = finished
        .cells
        .iter()
        .filter(|c| c.measured.status == Status::Failed)
        .count();
    if failed > 0 {
        eprintln!(
            "tracelab: {failed} cell(s) failed; see their reasons above and in {}",
            finished.dir.display()
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}
