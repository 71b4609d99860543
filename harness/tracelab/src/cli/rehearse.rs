//! `tracelab rehearse`: the bare-metal path rehearsed in a guest with a Debian userland,
//! every native figure beside the agent guest's.

use super::progress::CliObserver;
use super::stdout::{out, outln};
use super::Exit;
use crate::study::TargetSpec;
use anyhow::{Context, Result};
use std::path::PathBuf;

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

pub(super) fn run(args: RehearseArgs) -> Result<Exit> {
    let r = crate::self_study::rehearsal::Rehearsal::new(
        &args.target,
        args.run,
        args.out,
        args.tracelab,
        &super::run::parse_study,
    )?;
    crate::interrupt::catch().context("installing the Ctrl-C handler")?;
    let observer = CliObserver::new(r.agent.plan.cells().len(), "cells");
    let done = crate::self_study::rehearsal::run(&r, &observer);
    observer.finish();
    let done = done?;
    let path = r.out.join("rehearsal.md");
    out!("{}", std::fs::read_to_string(&path)?);
    outln!("rehearsal: {} (and rehearsal.json)", path.display());
    Ok(if done.passed() {
        Exit::Ok
    } else {
        Exit::Regression
    })
}
