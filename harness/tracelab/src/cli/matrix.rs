//! `tracelab matrix`: which guests (arches × kernels, a shard of them), how many at once,
//! and every `run` flag; the guests' figures go into one dataset.

use super::progress::CliObserver;
use super::run::RunArgs;
use super::stdout::{out, outln};
use super::Exit;
use crate::matrix::{Guest, Matrix};
use crate::study::{Study, TargetSpec};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::time::Instant;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;

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

pub(super) fn run(args: MatrixArgs, command_line: Vec<String>) -> Result<Exit> {
    let store = args.run.store_target()?;
    let matrix = args.into_matrix(command_line.clone())?;
    crate::interrupt::catch().context("installing the Ctrl-C handler")?;
    let observer = CliObserver::new(matrix.guests.len(), "guests");
    observer.line(&format!(
        "{} guests, {} at a time, into {}",
        matrix.guests.len(),
        matrix.jobs,
        matrix.out.display()
    ));
    let started = Instant::now();
    let outcomes = crate::matrix::run(&matrix, &observer);
    observer.finish();
    let outcomes = outcomes?;
    out!("{}", crate::matrix::summary(&matrix.out, &outcomes));
    // What the guests' time went to, summed over the guests that ran (in parallel, so
    // the sum exceeds the wall time).
    let timings: Vec<crate::timing::Timing> = outcomes
        .iter()
        .filter_map(|o| crate::results::read_meta(&matrix.out.join(&o.entry.dir)).ok())
        .filter_map(|meta| crate::timing::Timing::of(&meta))
        .collect();
    if let Some(total) = crate::timing::Timing::sum(&timings) {
        outln!("{} (summed over {} guests)", total.line(), timings.len());
    }
    outln!("wall time: {:.0} s", started.elapsed().as_secs_f64());
    if crate::interrupt::requested() {
        eprintln!(
            "tracelab: interrupted; every finished cell is kept in {}",
            matrix.out.display()
        );
        return Ok(Exit::Interrupted);
    }
    if let Some(s) = store {
        let night = crate::history::store::append(&s.store, &s.night, &matrix.out, &command_line)?;
        outln!("stored: {}", night.display());
    }
    Ok(if crate::matrix::all_ok(&outcomes) {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
