//! The `local` target: the agent in-process on this host's own kernel.
//!
//! A preflight runs first; on a machine that forbids tracing it stops with one message
//! naming everything that is missing, before anything is written to tracefs.

use crate::kconfig;
use crate::results::{self, ResultsDir, RunMeta};
use crate::schema::{Cell, CellContext, Unit, SCHEMA_VERSION};
use crate::study::{Finished, Progress, Study};
use crate::tracefs::{uname, Tracefs};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Read;

/// What stops the local target on this host; empty when it can run.
pub fn preflight() -> Vec<String> {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        problems.push("not running as root (tracefs and probes need root)".to_string());
    }
    match Tracefs::open() {
        Err(e) => problems.push(format!(
            "{e:#}; mount it with `mount -t tracefs nodev /sys/kernel/tracing`"
        )),
        Ok(t) => {
            if let Err(e) = t.read("available_filter_functions") {
                problems.push(format!(
                    "the kernel forbids function tracing: {}",
                    root_cause(&e)
                ));
            }
            if let Err(e) = t.read("current_tracer") {
                problems.push(format!("cannot read current_tracer: {}", root_cause(&e)));
            } else if let Ok(cur) = t.read("current_tracer") {
                if cur.trim() != "nop" {
                    problems.push(format!(
                        "another tracer is active (current_tracer is {})",
                        cur.trim()
                    ));
                }
            }
        }
    }
    problems
}

/// Mechanisms this kernel's config leaves out: not a reason to refuse (they become
/// `unsupported` cells), but worth saying when refusing anyway.
pub fn missing_options() -> Vec<String> {
    let config = host_config();
    [
        ("CONFIG_KPROBES", "kprobe, kprobe-offset, kretprobe"),
        ("CONFIG_FPROBE", "fprobe, fprobe-exit"),
        ("CONFIG_FUNCTION_GRAPH_TRACER", "function-graph"),
    ]
    .iter()
    .filter(|(opt, _)| kconfig::enabled(&config, opt) == Some(false))
    .map(|(opt, what)| format!("{opt} is not set (no {what})"))
    .collect()
}

fn root_cause(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// This kernel's config: /proc/config.gz, else /boot/config-<release>; empty if neither.
pub fn host_config() -> BTreeMap<String, String> {
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .is_err()
        {
            text.clear();
        }
    }
    if text.is_empty() {
        text = std::fs::read_to_string(format!("/boot/config-{}", uname().0)).unwrap_or_default();
    }
    kconfig::parse(&text)
}

pub fn run(study: &Study, progress: &dyn Progress) -> Result<Finished> {
    progress.stage("checking this host can trace");
    let problems = preflight();
    if !problems.is_empty() {
        bail!(
            "the local target cannot trace on this host:\n  - {}",
            problems.join("\n  - ")
        );
    }
    let environment = crate::environment::capture();
    for w in &environment.warnings {
        progress.stage(&format!("warning: {w}; real-time figures will be noisy"));
    }
    let (release, machine) = uname();
    let config = kconfig::relevant(&host_config());
    let mut plan = study.plan.clone();
    plan.unit = Unit::Ns;
    plan.kernel_config = config.clone();
    let run_id = results::new_run_id(&format!("local-{release}"));
    let meta = RunMeta {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.clone(),
        started_at: results::rfc3339_utc(std::time::SystemTime::now()),
        tracelab_version: crate::VERSION.to_string(),
        git_revision: crate::study::git_revision(),
        command_line: study.command_line.clone(),
        target: "local".into(),
        arch: machine.clone(),
        kernel: "local".into(),
        kernel_release: Some(release.clone()),
        kernel_package: None,
        kernel_config: config,
        cpu: cpu_model(),
        qemu_version: None,
        mode: "native".into(),
        accel: None,
        clock: "CLOCK_MONOTONIC (real time)".into(),
        unit: Unit::Ns,
        workload: plan.workload.clone(),
        calls: plan.calls,
        repeats: plan.repeats,
        mechanisms: plan
            .mechanisms
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        extra: BTreeMap::from([("environment".to_string(), serde_json::json!(environment))]),
    };
    let dir = study
        .out
        .clone()
        .unwrap_or_else(|| Study::default_out(&run_id));
    let mut store = ResultsDir::create(&dir, &meta)?;
    let context = CellContext {
        target: "local".into(),
        arch: machine,
        kernel: "local".into(),
        kernel_release: Some(release),
    };
    let total = plan.cells().len();
    let mut stored: Result<()> = Ok(());
    let completion = crate::agent::run(&plan, &mut |record| {
        if let crate::protocol::Record::Cell(m) = record {
            if stored.is_ok() {
                stored = store.add_cell(Cell::new(context.clone(), (**m).clone(), None));
                if let Some(c) = store.cells().last() {
                    progress.cell(c, store.cells().len(), total);
                }
            }
        }
    })
    .context("running the agent on this host")?;
    stored?;
    if completion == crate::agent::Completion::Interrupted {
        bail!(
            "interrupted; every probe and tracer was removed, and the {} finished cells are in {}",
            store.cells().len(),
            dir.display()
        );
    }
    let cells = store.cells().to_vec();
    Ok(Finished { dir, meta, cells })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("CPU part"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
