//! `tracelab rehearse`: the bare-metal path run as a user runs it, on a kernel that lets
//! it trace. The host's own `tracelab` boots in a guest with a Debian userland and runs
//! `doctor`, then the nightly steps twice (`run --target local` into a store, `history`,
//! `compare`, `show`, `report`, `publish`). The same cells also run in the usual agent guest
//! of that kernel, and every native figure is put beside its agent twin.
//!
//! Under `-icount shift=0` the native run's real-time clock advances 1 ns per guest
//! instruction, so its `ns` are instructions and the two sides are comparable number
//! for number.

mod counters;
mod script;
mod table;

pub use script::NIGHTS;
pub use table::{Row, Table, TOLERANCE};

use crate::guest::userland::Guest;
use crate::guest::{self, userland::StepOutput};
use crate::progress::{Event, Observer};
use crate::study::{Study, TargetSpec};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracelab_kernels::userland;
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;

/// `run` flags that are the rehearsal's own: where and how each side runs.
const OWN_FLAGS: &[&str] = &[
    "--target",
    "--out",
    "--store",
    "--night",
    "--mode",
    "--vcpus",
    "--kernel-args",
    "--kernel",
    "--config",
    "--force",
];

pub struct Rehearsal {
    pub arch: Arch,
    pub kernel: KernelVersion,
    /// The `run` flags both sides get (`--mechanisms`, `--workload`, `--calls`, ...).
    pub run_flags: Vec<String>,
    /// The same cells in the agent guest of this kernel, into `<out>/agent`.
    pub agent: Study,
    pub out: PathBuf,
    /// The `tracelab` copied into the guest: the running one unless `--tracelab` names
    /// another (an arm64 build, for an arm64 rehearsal).
    pub tracelab: PathBuf,
}

impl Rehearsal {
    /// Checks the flags by parsing them as both a local and a guest `run` with
    /// `parse_study` (the command line's own parser, given by the caller so this module
    /// does not import the CLI), and builds the agent side's study.
    pub fn new(
        target: &TargetSpec,
        run_flags: Vec<String>,
        out: PathBuf,
        tracelab: Option<PathBuf>,
        parse_study: &dyn Fn(&[String]) -> Result<Study>,
    ) -> Result<Rehearsal> {
        let (arch, kernel) = target.debian_guest("rehearse")?;
        for flag in &run_flags {
            let name = flag.split('=').next().unwrap_or(flag);
            if OWN_FLAGS.contains(&name) {
                bail!(
                    "`{name}` is the rehearsal's own (it runs {} locally in the guest and in the agent guest); leave it out",
                    OWN_FLAGS.join(", ")
                );
            }
        }
        let parse = |target: &str, extra: &[&str]| -> Result<Study> {
            let mut argv: Vec<String> = ["tracelab", "run", "--target", target]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect();
            argv.extend(run_flags.iter().cloned());
            parse_study(&argv)
        };
        parse("local", &[]).context("the flags for the native run")?;
        let agent_out = out.join("agent");
        let agent = parse(
            &target.to_string(),
            &["--out", &agent_out.to_string_lossy()],
        )
        .context("the flags for the agent guest")?;
        let tracelab = guest::userland::tracelab_for(arch, tracelab)?;
        Ok(Rehearsal {
            arch,
            kernel,
            run_flags,
            agent,
            out,
            tracelab,
        })
    }
}

/// What a rehearsal did and found.
pub struct Rehearsed {
    pub steps: Vec<StepOutput>,
    pub table: Table,
    pub counters: counters::Counters,
    /// Guest seconds of host time: the agent guest, and the userland guest.
    pub agent_secs: f64,
    pub native_secs: f64,
    pub userland: tracelab_kernels::UserlandRecord,
}

pub fn run(r: &Rehearsal, observer: &dyn Observer) -> Result<Rehearsed> {
    std::fs::create_dir_all(&r.out).with_context(|| format!("creating {}", r.out.display()))?;
    let stage = |s: &str| observer.event(None, Event::Stage(s));
    stage("the agent guest: the cells as every other guest run measures them");
    let started = Instant::now();
    let agent = crate::target::run(&r.agent, observer)?;
    let agent_secs = started.elapsed().as_secs_f64();

    let catalog = Catalog::new(r.agent.mirror.clone())?;
    let kernel = catalog.fetch_kernel(r.kernel, r.arch, false)?;
    stage("the Debian userland: resolving and unpacking its packages");
    let land = catalog.fetch_userland(r.arch, userland::BASE, &|_, _, _| {})?;
    stage("the userland guest: doctor and two nightly passes of the local target");
    let native = r.out.join("native");
    // Boot, both passes with each cell's own allowance, and the steps after.
    let cells = r.agent.plan.cells().len() as u32;
    let bound = Duration::from_secs(600) + r.agent.timeouts.record * (2 * cells + 4);
    let guest = Guest {
        arch: r.arch,
        kernel: &kernel,
        userland: &land,
        tracelab: &r.tracelab,
        memory_mib: 1024,
        files: Vec::new(),
    };
    let booted = guest::userland::boot(
        &guest,
        &script::steps(&r.run_flags),
        &native,
        bound,
        observer,
    )?;
    let table = table::build(&agent.cells, &native)?;
    let doctor = booted
        .steps
        .iter()
        .find(|s| s.name == "doctor")
        .map(|s| s.output.as_str())
        .unwrap_or("");
    let counters = counters::check(doctor, &native.join("night-1"))?;
    let done = Rehearsed {
        steps: booted.steps,
        table,
        counters,
        agent_secs,
        native_secs: booted.secs,
        userland: land.record,
    };
    crate::results::atomic::write(&r.out.join("rehearsal.md"), render(r, &done).as_bytes())?;
    let json = serde_json::json!({
        "target": r.agent.target.to_string(),
        "run_flags": r.run_flags,
        "steps": done.steps.iter().map(|s| serde_json::json!({"name": s.name, "rc": s.rc})).collect::<Vec<_>>(),
        "rows": done.table.rows,
        "agreeing": done.table.agreeing(),
        "counters": done.counters,
        "tolerance": TOLERANCE,
        "agent_secs": done.agent_secs,
        "native_secs": done.native_secs,
        "userland": done.userland,
    });
    crate::results::atomic::write(
        &r.out.join("rehearsal.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(done)
}

impl Rehearsed {
    /// Every step ended with status 0, every cell agrees, and every counter `doctor`
    /// found counting was measured.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.rc == Some(0))
            && self.table.agreeing() == self.table.rows.len()
            && self.counters.missing.is_empty()
    }
}

/// The rehearsal's Markdown summary: the steps and how each ended, then the table.
fn render(r: &Rehearsal, done: &Rehearsed) -> String {
    let mut s = format!(
        "# Rehearsal of the bare-metal path: {} {}\n\n",
        r.arch, r.kernel
    );
    s.push_str(&format!(
        "Userland: Debian {} `{}` profile, {} packages, {:.1} MiB of files. Agent guest {:.0} s, userland guest {:.0} s (host time).\n\n",
        done.userland.suite,
        done.userland.profile,
        done.userland.packages.len(),
        done.userland.file_bytes as f64 / (1024.0 * 1024.0),
        done.agent_secs,
        done.native_secs
    ));
    s.push_str("| step | exit status |\n|---|---|\n");
    for step in &done.steps {
        s.push_str(&format!(
            "| `{}` | {} |\n",
            step.name,
            step.rc.map_or("did not end".to_string(), |c| c.to_string())
        ));
    }
    s.push('\n');
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    s.push_str(&format!(
        "Perf counters `doctor` found counting: {}. Recorded by the native run: {}. Counting but not recorded: {}.\n\n",
        list(&done.counters.counting),
        list(&done.counters.measured),
        list(&done.counters.missing)
    ));
    s.push_str(&done.table.markdown());
    s
}
