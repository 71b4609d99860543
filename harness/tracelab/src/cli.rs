//! Command-line parsing: clap turns every flag into a typed value, and the raw flags of
//! `run` and `matrix` become a validated [`Study`] or [`Matrix`]. Nothing here measures,
//! stores or prints; the library does the work and `main` prints.

use crate::guest::qemu::Mode;
use crate::matrix::{Guest, Matrix};
use crate::render::Format;
use crate::study::{Study, TargetSpec};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::payload::Payload;
use tracelab_model::plan::{
    Adaptive, AgentPlan, Fault, DEFAULT_BUDGET_SECS, DEFAULT_MAX_REPEATS, DEFAULT_REPEATS,
    DEFAULT_REPEATS_REAL_TIME,
};
use tracelab_model::schema::Unit;
use tracelab_model::workload::Workload;

/// How `tracelab` ends; `main` maps every outcome to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// `compare` found a regression.
    Regression = 1,
    /// Bad input, or an error that stopped the command.
    Error = 2,
    /// Some cells or guests failed (their reasons are stored).
    Failed = 3,
    /// SIGINT or SIGTERM stopped the run (finished cells are kept).
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(e as u8)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "tracelab",
    version,
    about = "Measures what Linux tracing mechanisms cost per traced call",
    after_help = "Exit status: 0 ok, 1 regression (compare), 2 usage or error, 3 failed cells or guests, 130 interrupted."
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
        target: TargetSpec,
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Print the summary of a results directory.
    Show {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compare two results or dataset directories cell by cell (exit 1 on a regression).
    Compare(CompareArgs),
    /// Run one study per (arch, kernel) guest in parallel into one Hive-style dataset.
    Matrix(MatrixArgs),
    /// Write one self-contained HTML report and a Markdown summary of results or datasets.
    Report(ReportArgs),
    /// Change points of every series across the nights of a store (exit 1 on a regression
    /// in the newest night).
    History(HistoryArgs),
    /// Write a static site of a store's history: series with sparklines, trend pages with
    /// change points, regressions and improvements, nights, an Atom feed.
    Publish {
        /// The store (`run|matrix --store <dir>`).
        store: PathBuf,
        /// The site's directory (created; its pages are replaced).
        #[arg(long)]
        out: PathBuf,
        /// One series across kernel lines (as `history --across-kernels`).
        #[arg(long)]
        across_kernels: bool,
    },
    /// Find the first commit of a kernel tree where one cell's overhead steps (one
    /// measurement per step under icount); the tree is left as it was found.
    Bisect(BisectArgs),
    /// Append a results directory or dataset (e.g. merged shards) to a store as one night.
    AddNight {
        /// The store.
        store: PathBuf,
        /// The results directory or dataset to add.
        results: PathBuf,
        /// The night's label: YYYY-MM-DD-<id> (default: now, UTC).
        #[arg(long, value_parser = parse_night)]
        night: Option<String>,
    },
    /// Join the shards of one matrix (`matrix --shard i/N`) into one dataset.
    Merge {
        /// The shards' dataset directories (all N of them).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The merged dataset (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Kill runs at seeded random points and check that nothing is left or lost (exit 3
    /// unless leftovers, lost cells and corrupt results are all 0).
    Chaos(ChaosArgs),
    /// The bare-metal path, rehearsed: this tracelab in a guest with a Debian userland runs
    /// `doctor` and the nightly steps twice with `--target local`; every native figure is
    /// put beside the agent guest's (exit 1 if one differs by more than 0.5%).
    Rehearse(RehearseArgs),
    /// bpftrace beside the lab in one guest with a Debian userland: the selftests' trig-*
    /// attach points, the lab's cell and bpftrace's figure side by side (insn per call).
    Peers(PeersArgs),
}

/// `tracelab bisect` flags: the tree, the range, the build, and one cell (the `run` flags
/// `--mechanisms`, `--payloads`, `--stack`, `--workload`, `--calls`, `--repeats`, ...).
#[derive(clap::Args, Debug)]
#[command(
    mut_arg("target", |a| a.hide(true)),
    mut_arg("kernel", |a| a.hide(true)),
    mut_arg("config", |a| a.hide(true)),
    mut_arg("store", |a| a.hide(true)),
    mut_arg("night", |a| a.hide(true))
)]
pub struct BisectArgs {
    /// The kernel git tree (with --good, --bad, --build).
    #[arg(long, required_unless_present = "releases", conflicts_with = "releases", requires_all = ["good", "bad", "build"])]
    pub repo: Option<PathBuf>,
    /// A revision where the cell is as it should be.
    #[arg(long)]
    pub good: Option<String>,
    /// A later revision (a descendant of --good) where it is not.
    #[arg(long)]
    pub bad: Option<String>,
    /// Run in the tree at each revision (`sh -c`, $TRACELAB_REVISION set), leaving the
    /// kernel at --image and its config at --kernel-config, e.g. 'make olddefconfig && make -j8 bzImage'.
    #[arg(long)]
    pub build: Option<String>,
    /// The built image, relative to the tree (default arch/x86/boot/bzImage on x86_64,
    /// arch/arm64/boot/Image on arm64).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The built kernel's config, relative to the tree.
    #[arg(long, default_value = ".config")]
    pub kernel_config: PathBuf,
    /// Instead of a tree: Debian releases of one line, oldest (good) first, newest (bad)
    /// last, e.g. 6.12.95,6.12.107,6.12.111,6.12.113,6.12.115,6.12.117 (`kernels list`).
    #[arg(long, value_delimiter = ',')]
    pub releases: Vec<String>,
    /// The guest architecture (x86_64, arm64).
    #[arg(long, default_value = "x86_64")]
    pub arch: Arch,
    /// Where each step's results and the step log (bisect.jsonl) go; a rerun with the same
    /// directory resumes.
    #[arg(long, default_value = "bisect")]
    pub out: PathBuf,
    /// Smallest relative step that counts.
    #[arg(long, default_value = "1%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute step, per call in the cell's unit.
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

impl BisectArgs {
    pub fn into_bisect(self, command_line: Vec<String>) -> Result<crate::bisect::Bisect> {
        if self.run.out.is_some() {
            bail!("bisect writes each step under --out <dir> (its own flag), not a run's --out");
        }
        let mut study = self.run.into_study(command_line)?;
        let cells = study.plan.cells();
        let measured: Vec<_> = cells
            .iter()
            .filter(|c| c.mechanism != MechanismKind::Baseline)
            .collect();
        if measured.len() != 1 {
            bail!(
                "bisect follows one cell: give one mechanism (and one payload and stack), e.g. --mechanisms fprobe-exit; this selects {}",
                measured.len()
            );
        }
        study.target = TargetSpec::Vm {
            arch: self.arch,
            kernel: None,
            release: None,
        };
        let source = match self.repo {
            Some(repo) => crate::bisect::Source::Git {
                repo,
                good: self.good.unwrap_or_default(),
                bad: self.bad.unwrap_or_default(),
                build: self.build.unwrap_or_default(),
                image: self.image.unwrap_or_else(|| match self.arch {
                    Arch::X86_64 => PathBuf::from("arch/x86/boot/bzImage"),
                    Arch::Arm64 => PathBuf::from("arch/arm64/boot/Image"),
                }),
                config: self.kernel_config,
            },
            None => {
                let mut line = None;
                for r in &self.releases {
                    let spec: TargetSpec = format!("vm:{}/{r}", self.arch).parse()?;
                    let TargetSpec::Vm {
                        kernel: Some(k),
                        release: Some(_),
                        ..
                    } = spec
                    else {
                        bail!("--releases: `{r}` is a kernel line, not one of its releases (see `tracelab kernels list`)");
                    };
                    if line.is_some_and(|l| l != k) {
                        bail!("--releases must all be of one kernel line (`{r}` is of {k})");
                    }
                    line = Some(k);
                }
                crate::bisect::Source::Releases {
                    arch: self.arch,
                    line: line.context("--releases is empty")?,
                    releases: self.releases,
                }
            }
        };
        Ok(crate::bisect::Bisect {
            source,
            study,
            out: self.out,
            relative: self.threshold,
            floor: self.floor,
        })
    }
}

/// `tracelab history` flags.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The store (`run|matrix --store <dir>`).
    pub store: PathBuf,
    /// Smallest relative change reported (e.g. 1% or 0.01).
    #[arg(long, default_value = "1%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute change reported, per call in each series' unit.
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    /// One series across kernel lines (a job that follows the distribution's newest
    /// kernel): a new kernel line is then a fact that changed, not a new series.
    #[arg(long)]
    pub across_kernels: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `tracelab rehearse` flags; the `run` flags for both sides follow `--`.
#[derive(clap::Args, Debug)]
pub struct RehearseArgs {
    /// The guest: vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3).
    #[arg(long, default_value = "vm:x86_64/7.3")]
    pub target: TargetSpec,
    /// Where the agent's results (agent/), the native ones (native/: both nights, the
    /// store, report, site and each step's output) and rehearsal.md go.
    #[arg(long, default_value = "rehearsal")]
    pub out: PathBuf,
    /// The tracelab to run in the guest (default: this one; it must suit the guest's arch).
    #[arg(long)]
    pub tracelab: Option<PathBuf>,
    /// `run` flags for both sides, after `--`: e.g. -- --mechanisms kprobe,bpf-fentry --calls 1000.
    #[arg(last = true)]
    pub run: Vec<String>,
}

/// `tracelab peers` flags.
#[derive(clap::Args, Debug)]
pub struct PeersArgs {
    /// The guest: vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3).
    #[arg(long, default_value = "vm:x86_64/7.3")]
    pub target: TargetSpec,
    /// Where peers.md, peers.json and the guest's results (guest/) go.
    #[arg(long, default_value = "peers")]
    pub out: PathBuf,
    /// The tracelab to run in the guest (default: this one; it must suit the guest's arch).
    #[arg(long)]
    pub tracelab: Option<PathBuf>,
    /// In-kernel calls per loop.
    #[arg(long, default_value = "20000")]
    pub calls: u64,
    /// Debian mirror for the kernel and the userland.
    #[arg(long)]
    pub mirror: Option<String>,
}

/// `tracelab chaos` flags.
#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// How many kills (every 9 cover each kind once: agent SIGINT/SIGTERM/SIGKILL, QEMU
    /// SIGKILL, run SIGINT/SIGKILL, matrix SIGINT/SIGKILL, guest panic).
    #[arg(long, default_value_t = 9)]
    pub kills: u32,
    /// The seed that picks each kill's kind, mechanisms and point.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The guest: vm:<arch>/<version>.
    #[arg(long, default_value = "vm:x86_64/6.12")]
    pub target: TargetSpec,
    /// Keep the killed runs' results in this directory (default: a temporary one).
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

impl ChaosArgs {
    /// Validates the flags; `work` is where the killed runs write.
    pub fn into_chaos(self, work: PathBuf) -> Result<crate::chaos::Chaos> {
        let TargetSpec::Vm {
            arch,
            kernel: Some(kernel),
            release: None,
        } = self.target
        else {
            bail!("chaos runs in a Debian guest: --target vm:<arch>/<version> (arch x86_64|arm64; version 6.1|6.12|7.2|7.3)");
        };
        if self.kills == 0 {
            bail!("--kills must be at least 1");
        }
        Ok(crate::chaos::Chaos {
            kills: self.kills,
            seed: self.seed,
            arch,
            kernel,
            work,
            tracelab: std::env::current_exe().context("finding the tracelab binary")?,
        })
    }
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
        /// 6.1, 6.12, 7.2 or 7.3 (the newest release), or one release (6.12.111; see `list`).
        version: String,
        /// x86_64 or arm64.
        #[arg(long, default_value = "x86_64")]
        arch: Arch,
        /// Re-download the package index first.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        mirror: Option<String>,
    },
}

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
pub struct FunctionCounts(pub Vec<u32>);

impl FromStr for FunctionCounts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let max = tracelab_model::plan::MAX_FUNCTIONS;
        let bad = |n: &str| {
            format!("--functions: `{n}` is not a number of functions (valid: 1 to {max}, or all, e.g. --functions 1,10,100,all)")
        };
        s.split(',')
            .map(|n| match n.trim() {
                "all" => Ok(tracelab_model::cell_id::ALL_FUNCTIONS),
                n => counts(n, 1..=max, bad).map(|v| v[0]),
            })
            .collect::<Result<Vec<u32>, String>>()
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
    /// open-close 5000, tcp 1000, fork 200].
    #[arg(long)]
    pub calls: Option<u64>,
    /// Interleaved baseline/mechanism pairs per cell (default: 3 under icount, where every
    /// pair agrees; in real time the least, 15 by default, after which pairs are added
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
    #[arg(long, requires = "store", value_parser = parse_night)]
    pub night: Option<String>,
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
        })
    }
}

/// Validated guest kernel arguments (`--kernel-args`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelArgs(pub Vec<String>);

fn parse_kernel_args(s: &str) -> Result<KernelArgs, String> {
    crate::guest::qemu::check_kernel_args(s).map(KernelArgs)
}

fn parse_night(s: &str) -> Result<String, String> {
    crate::history::store::check_night(s)
        .map(|()| s.to_string())
        .map_err(|e| format!("{e:#}"))
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

/// `tracelab matrix` flags: which guests, how many at once, and every `run` flag (but
/// `--target`, `--kernel`, `--config`: the matrix picks the guests).
#[derive(Args, Debug)]
#[command(
    mut_arg("target", |a| a.hide(true)),
    mut_arg("kernel", |a| a.hide(true)),
    mut_arg("config", |a| a.hide(true))
)]
pub struct MatrixArgs {
    /// Comma-separated architectures (x86_64, arm64), or `all`.
    #[arg(long, default_value = "x86_64,arm64")]
    pub arch: String,
    /// Comma-separated Debian kernel versions (6.1, 6.12, 7.2, 7.3), or `all`.
    #[arg(long, default_value = "6.1,6.12,7.2,7.3")]
    pub kernels: String,
    /// Guests run at once (default: the cores available).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard i of N (`--shard 2/4`): every N-th guest of the matrix from the i-th,
    /// so N CI jobs share it out; `tracelab merge` joins the shards.
    #[arg(long)]
    pub shard: Option<crate::matrix::Shard>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Parses a comma-separated list of names (or `all`) with `parse`; errors come from it
/// and so name the valid choices.
fn list<T: Copy + PartialEq>(
    s: &str,
    all: &[T],
    parse: impl Fn(&str) -> Result<T>,
) -> Result<Vec<T>> {
    if s.trim() == "all" {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let v = parse(name)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        bail!("empty list `{s}`");
    }
    Ok(out)
}

impl MatrixArgs {
    pub fn into_matrix(self, command_line: Vec<String>) -> Result<Matrix> {
        let arches = list(&self.arch, &Arch::ALL, |n| Ok(n.parse::<Arch>()?)).context("--arch")?;
        let kernels = list(&self.kernels, &KernelVersion::ALL, |n| {
            Ok(n.parse::<KernelVersion>()?)
        })
        .context("--kernels")?;
        if self.run.target != TargetSpec::default_vm() {
            bail!("matrix picks its guests with --arch and --kernels, not --target");
        }
        if self.run.kernel.is_some() {
            bail!("matrix runs Debian kernels only; use `tracelab run --target vm:<arch>/custom --kernel ...` for a kernel you built");
        }
        let study = self.run.into_study(command_line)?;
        let all_guests: Vec<Guest> = arches
            .iter()
            .flat_map(|&arch| kernels.iter().map(move |&kernel| Guest { arch, kernel }))
            .collect();
        let guests = match self.shard {
            Some(s) => s.pick(&all_guests),
            None => all_guests.clone(),
        };
        if guests.is_empty() {
            bail!(
                "--shard {}: the matrix has only {} guests; use at most {} shards",
                self.shard.map(|s| s.to_string()).unwrap_or_default(),
                all_guests.len(),
                all_guests.len()
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = match self.jobs {
            Some(0) => bail!("--jobs must be at least 1"),
            Some(j) => j,
            None => cores,
        }
        .min(guests.len());
        let out = study
            .out
            .clone()
            .unwrap_or_else(|| Study::default_out(&crate::results::new_run_id("matrix")));
        Ok(Matrix {
            guests,
            all_guests,
            shard: self.shard,
            study,
            out,
            jobs,
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The reference: a results directory or a dataset directory.
    pub baseline: PathBuf,
    /// What is judged against it: a results directory or a dataset directory.
    pub candidate: PathBuf,
    /// Smallest relative change of the overhead that counts (e.g. 5% or 0.05).
    #[arg(long, default_value = "5%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute change that counts, per call in each cell's unit (insn or ns).
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Results directories and/or dataset directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where report.html, report.md and figures/ are written (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Title of the report.
    #[arg(long, default_value = "tracelab report")]
    pub title: String,
    /// Also write figures/*.png (needs rsvg-convert from librsvg2-bin).
    #[arg(long)]
    pub png: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = study(&["--mechanisms", "bpf", "--payloads", "all", "--stack", "1,8"])
            .expect("bpf study");
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
        let Ok(Command::Show { format, .. }) = parse(&["show", "d", "--format", "md"]) else {
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
}
