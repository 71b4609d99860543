//! `tracelab peers`: bpftrace and the kernel's selftests bench beside the lab's cells.

use super::progress::CliObserver;
use super::stdout::{out, outln};
use super::Exit;
use crate::study::TargetSpec;
use anyhow::{Context, Result};
use std::path::PathBuf;

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

pub(super) fn run(args: PeersArgs) -> Result<Exit> {
    let p = crate::self_study::peers::Peers::new(
        &args.target,
        args.out,
        args.tracelab,
        args.calls,
        args.mirror,
    )?;
    crate::interrupt::catch().context("installing the Ctrl-C handler")?;
    let observer = CliObserver::new(crate::self_study::peers::PROBES.len(), "peers");
    let done = crate::self_study::peers::run(&p, &observer);
    observer.finish();
    done?;
    let path = p.out.join("peers.md");
    out!("{}", std::fs::read_to_string(&path)?);
    outln!("peers: {} (and peers.json)", path.display());
    Ok(Exit::Ok)
}
