//! The `local` target: the agent in-process on this host's own kernel.
//!
//! A preflight runs first; on a machine that forbids tracing it stops with one message
//! naming everything that is missing, before anything is written to tracefs.

use crate::progress::{Event, Observer};
use crate::results::{self, ResultsDir, RunMeta};
use crate::study::{Finished, Study};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Read;
use tracelab_agent::tracefs::{uname, Tracefs};
use tracelab_model::cell::Cell;
use tracelab_model::kconfig;
use tracelab_model::schema::{CellContext, Unit};

/// Capability bits (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capabilities from `/proc/self/status` (`CapEff:` hex mask).
fn effective_caps(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Whether the capability mask allows tracing: root's CAP_SYS_ADMIN, or CAP_BPF together
/// with CAP_PERFMON (enough for BPF tracing and perf; tracefs also needs file access).
fn can_trace(caps: u64) -> bool {
    let has = |c: u32| caps & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// What stops the local target on this host; empty when it can run. `force` accepts a
/// tracer that is already active (it is then left alone only if no cell needs ftrace).
pub fn preflight(force: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !can_trace(effective_caps(&status)) {
        problems.push("neither root (CAP_SYS_ADMIN) nor CAP_BPF + CAP_PERFMON".to_string());
    }
    if let Ok(lockdown) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        if lockdown.contains("[confidentiality]") {
            problems.push("kernel lockdown is `confidentiality`: tracefs probes and BPF tracing are forbidden".into());
        }
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
            match t.read("current_tracer") {
                Err(e) => problems.push(format!("cannot read current_tracer: {}", root_cause(&e))),
                Ok(cur) if cur.trim() != "nop" && !force => problems.push(format!(
                    "another tracer is active (current_tracer is {}); stop it or pass --force",
                    cur.trim()
                )),
                Ok(_) => {}
            }
        }
    }
    problems
}

/// Facts that do not stop a run but limit it.
pub fn notes() -> Vec<String> {
    let mut notes = Vec::new();
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        notes.push("no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF): BPF trampolines and tp_btf cannot attach".into());
    }
    if let Ok(lockdown) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        if lockdown.contains("[integrity]") {
            notes.push("kernel lockdown is `integrity`".into());
        }
    }
    notes
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

pub fn run(study: &Study, observer: &dyn Observer) -> Result<Finished> {
    observer.event(None, Event::Stage("checking this host can trace"));
    let problems = preflight(study.force);
    if !problems.is_empty() {
        // What the config leaves out does not stop a run (those cells are `unsupported`),
        // but it is worth saying when refusing anyway.
        let missing = tracelab_agent::mechanism::missing_options(&host_config());
        bail!(
            "the local target cannot trace on this host:\n  - {}",
            problems
                .iter()
                .chain(&missing)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  - ")
        );
    }
    let environment = tracelab_agent::environment::capture();
    for w in &environment.warnings {
        observer.event(
            None,
            Event::Stage(&format!("warning: {w}; real-time figures will be noisy")),
        );
    }
    let (release, machine) = uname();
    let config = kconfig::relevant(
        &host_config(),
        &tracelab_agent::mechanism::relevant_options(),
    );
    let mut plan = study.plan.clone();
    plan.unit = Unit::Ns;
    plan.kernel_config = config.clone();
    let run_id = results::new_run_id(&format!("local-{release}"));
    let meta = RunMeta {
        kernel_release: Some(release.clone()),
        kernel_config: config,
        cpu: cpu_model(),
        mode: "native".into(),
        clock: "CLOCK_MONOTONIC (real time)".into(),
        ..super::base_meta(
            study,
            &plan,
            &run_id,
            (&machine, "local"),
            BTreeMap::from([("environment".to_string(), serde_json::json!(environment))]),
        )
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
    let completion = tracelab_agent::run(&plan, &mut |record| {
        if let tracelab_model::protocol::Record::Cell(m) = record {
            if stored.is_ok() {
                stored = store.add_cell(Cell::new(context.clone(), (**m).clone(), None));
                if let Some(c) = store.cells().last() {
                    observer.event(
                        None,
                        Event::Cell {
                            cell: c,
                            done: store.cells().len(),
                            total,
                        },
                    );
                }
            }
        }
    })
    .context("running the agent on this host")?;
    stored?;
    if completion == tracelab_agent::Completion::Interrupted {
        // The agent's guards removed every probe and tracer before it returned.
        return Err(crate::interrupt::Interrupted {
            finished: store.cells().len(),
            dir,
        }
        .into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_decide_who_may_trace() {
        let status = |mask: u64| format!("Name:\ttracelab\nCapEff:\t{mask:016x}\n");
        assert!(can_trace(effective_caps(&status(1 << CAP_SYS_ADMIN))));
        assert!(can_trace(effective_caps(&status(
            (1 << CAP_BPF) | (1 << CAP_PERFMON)
        ))));
        assert!(!can_trace(effective_caps(&status(1 << CAP_BPF))));
        assert!(!can_trace(effective_caps("Name: x\n")));
    }
}
