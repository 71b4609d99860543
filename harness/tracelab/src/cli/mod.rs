//! The command line: one module per subcommand, each holding its flags, their conversion
//! into the library's validated types, and its `run` (call the library, print, choose the
//! exit status). `main` only parses and dispatches here; the library does the work.

mod add_night;
mod bisect;
mod chaos;
mod compare;
mod doctor;
mod export;
mod history;
mod kernels;
mod matrix;
mod merge;
mod peers;
mod progress;
mod publish;
mod rehearse;
mod report;
pub mod run;
mod show;
mod stdout;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use run::RunArgs;

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
    /// Run a study (default: the tracefs mechanisms plus bpf-kprobe, bpf-kprobe-multi and
    /// bpf-fentry, getppid, x86_64 Debian 6.12 guest, icount).
    Run(RunArgs),
    /// Debian kernels for guests.
    Kernels {
        #[command(subcommand)]
        command: kernels::KernelsCommand,
    },
    /// What this host (or a guest kernel, with --target vm:<arch>/<version>) can measure
    /// (exit 3 if it cannot run a study).
    Doctor(doctor::DoctorArgs),
    /// Print the summary of a results directory.
    Show(show::ShowArgs),
    /// Write a results directory's or a dataset's cells for another system (OpenMetrics,
    /// Bencher, LAVA, github-action-benchmark, KCIDB).
    Export(export::ExportArgs),
    /// Compare two results or dataset directories cell by cell (exit 1 on a regression).
    Compare(compare::CompareArgs),
    /// Run one study per (arch, kernel) guest in parallel into one Hive-style dataset.
    Matrix(matrix::MatrixArgs),
    /// Write one self-contained HTML report and a Markdown summary of results or datasets.
    Report(report::ReportArgs),
    /// Change points of every series across the nights of a store (exit 1 on a regression
    /// in the newest night).
    History(history::HistoryArgs),
    /// Write a static site of a store's history: series with sparklines, trend pages with
    /// change points, regressions and improvements, nights, an Atom feed.
    Publish(publish::PublishArgs),
    /// Find the first commit of a kernel tree where one cell's overhead steps (one
    /// measurement per step under icount); the tree is left as it was found.
    Bisect(bisect::BisectArgs),
    /// Append a results directory or dataset (e.g. merged shards) to a store as one night.
    AddNight(add_night::AddNightArgs),
    /// Join the shards of one matrix (`matrix --shard i/N`) into one dataset.
    Merge(merge::MergeArgs),
    /// Kill runs at seeded random points and check that nothing is left or lost (exit 3
    /// unless leftovers, lost cells and corrupt results are all 0).
    Chaos(chaos::ChaosArgs),
    /// The bare-metal path, rehearsed: this tracelab in a guest with a Debian userland runs
    /// `doctor` and the nightly steps twice with `--target local`; every native figure is
    /// put beside the agent guest's (exit 1 if one differs by more than 0.5%).
    Rehearse(rehearse::RehearseArgs),
    /// bpftrace beside the lab in one guest with a Debian userland: the selftests' trig-*
    /// attach points, the lab's cell and bpftrace's figure side by side (insn per call).
    Peers(peers::PeersArgs),
}

/// Runs the parsed command; `command_line` is what was typed (recorded with results).
pub fn dispatch(cli: Cli, command_line: Vec<String>) -> Result<Exit> {
    match cli.command {
        Command::Run(args) => run::run(args, command_line),
        Command::Kernels { command } => kernels::run(command),
        Command::Doctor(args) => doctor::run(args),
        Command::Show(args) => show::run(args),
        Command::Export(args) => export::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Matrix(args) => matrix::run(args, command_line),
        Command::Report(args) => report::run(args),
        Command::History(args) => history::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Bisect(args) => bisect::run(args, command_line),
        Command::AddNight(args) => add_night::run(args, command_line),
        Command::Merge(args) => merge::run(args),
        Command::Chaos(args) => chaos::run(args),
        Command::Rehearse(args) => rehearse::run(args),
        Command::Peers(args) => peers::run(args),
    }
}

/// `--night`: a store's night label, checked before anything runs.
fn parse_night(s: &str) -> Result<String, String> {
    crate::history::store::check_night(s)
        .map(|()| s.to_string())
        .map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests;
