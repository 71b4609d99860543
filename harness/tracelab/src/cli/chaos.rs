//! `tracelab chaos`: runs killed at seeded random points, checked for leftovers, lost
//! cells and corrupt results.

use super::stdout::outln;
use super::Exit;
use crate::study::TargetSpec;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

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
    pub fn into_chaos(self, work: PathBuf) -> Result<crate::self_study::chaos::Chaos> {
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
        Ok(crate::self_study::chaos::Chaos {
            kills: self.kills,
            seed: self.seed,
            arch,
            kernel,
            work,
            tracelab: std::env::current_exe().context("finding the tracelab binary")?,
        })
    }
}

pub(super) fn run(args: ChaosArgs) -> Result<Exit> {
    let temp = tempfile::Builder::new()
        .prefix("tracelab-chaos-")
        .tempdir()
        .context("creating a work directory")?;
    let work = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let chaos = args.into_chaos(work)?;
    let started = Instant::now();
    eprintln!(
        "tracelab: chaos: {} kills, seed {}, guest {} {}",
        chaos.kills,
        chaos.seed,
        chaos.arch,
        chaos.kernel.name()
    );
    let outcomes = crate::self_study::chaos::run(&chaos, &mut |o| {
        let what = o.kill.as_ref().map(|k| k.describe()).unwrap_or_default();
        let mut findings: Vec<String> = o
            .leftovers
            .iter()
            .map(|l| format!("leftover: {l}"))
            .collect();
        if o.lost > 0 {
            findings.push(format!("{} lost cells", o.lost));
        }
        findings.extend(o.corrupt.iter().map(|c| format!("corrupt: {c}")));
        let verdict = if findings.is_empty() {
            "clean".to_string()
        } else {
            findings.join("; ")
        };
        eprintln!("tracelab: {what}: {verdict} [{}]", o.note);
    })?;
    let summary = crate::self_study::chaos::Summary::of(&outcomes);
    outln!("{summary}");
    outln!("wall time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(if summary.clean() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
