//! `tracelab peers`: the tools kernel developers quote, in the same guest on the same
//! kernel as the lab. One guest with a Debian userland runs the lab natively on the
//! in-kernel workloads of the selftests' trig-* benches (`bpf-numa-batch`,
//! `bpf-kfunc-batch`), then bpftrace's equivalent of each bench attached while the lab's
//! baseline loop makes the calls; the peer's cost per call is that loop's cost with the
//! probe minus without. Under `-icount shift=0` every figure is in instructions.

mod bpftrace;

pub use bpftrace::{Probe, PROBES};

use crate::guest::userland::{self, Guest, StepOutput};
use crate::render::number::fixed;
use crate::study::{Event, Observer, TargetSpec};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;
use tracelab_model::cell::Cell;
use tracelab_model::schema::Status;

/// A peer and the lab agree when they are this close (relative to the lab's figure).
pub const TOLERANCE: f64 = 0.03;

/// bpftrace's LLVM and the userland's 300 MiB of files do not fit beside a 1 GiB guest's
/// kernel; the lab's own cells here run in the same larger guest, so the comparison is
/// within one machine.
const MEMORY_MIB: u32 = 2048;

pub struct Peers {
    pub arch: Arch,
    pub kernel: KernelVersion,
    pub out: PathBuf,
    pub tracelab: PathBuf,
    /// In-kernel calls per loop.
    pub calls: u64,
    pub mirror: Option<String>,
}

impl Peers {
    pub fn new(
        target: &TargetSpec,
        out: PathBuf,
        tracelab: Option<PathBuf>,
        calls: u64,
        mirror: Option<String>,
    ) -> Result<Peers> {
        let TargetSpec::Vm {
            arch,
            kernel: Some(kernel),
            release: None,
        } = target
        else {
            bail!("peers needs a Debian guest, vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3), not {target}");
        };
        if !(1_000..=1_000_000).contains(&calls) {
            bail!("--calls {calls}: use 1000 to 1000000 in-kernel calls per loop");
        }
        Ok(Peers {
            arch: *arch,
            kernel: *kernel,
            out,
            tracelab: userland::tracelab_for(*arch, tracelab)?,
            calls,
            mirror,
        })
    }
}

/// One attach type: the lab's cell and bpftrace's figure beside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// The selftests bench's name (`trig-<bench>`).
    pub bench: String,
    pub workload: String,
    pub lab_cell: String,
    /// Overhead per call, insn (native ns under icount).
    pub lab: Option<f64>,
    pub bpftrace: Option<f64>,
    /// bpftrace's own count of hits, and the fewest the loops it ran beside make.
    pub bpftrace_hits: Option<u64>,
    pub expected_hits: u64,
    /// Why a side has no figure, or what likely makes them differ.
    pub note: Option<String>,
}

impl Row {
    pub fn diff(&self) -> Option<f64> {
        let (lab, peer) = (self.lab?, self.bpftrace?);
        (lab.abs() > f64::EPSILON).then(|| (peer - lab) / lab.abs())
    }

    pub fn agrees(&self) -> bool {
        self.diff().is_some_and(|d| d.abs() <= TOLERANCE)
    }
}

pub struct Compared {
    pub rows: Vec<Row>,
    pub steps: Vec<StepOutput>,
    pub bpftrace_version: String,
    pub secs: f64,
    pub userland: tracelab_kernels::UserlandRecord,
}

pub fn run(p: &Peers, observer: &dyn Observer) -> Result<Compared> {
    let stage = |s: &str| observer.event(None, Event::Stage(s));
    let catalog = Catalog::new(p.mirror.clone())?;
    let kernel = catalog.fetch_kernel(p.kernel, p.arch, false)?;
    stage("the Debian userland with bpftrace: resolving and unpacking its packages");
    let land = catalog.fetch_userland(p.arch, tracelab_kernels::userland::PEERS, &|_, _, _| {})?;
    stage("the peers guest: the lab's cells, then bpftrace on each attach point");
    let guest = Guest {
        arch: p.arch,
        kernel: &kernel,
        userland: &land,
        tracelab: &p.tracelab,
        memory_mib: MEMORY_MIB,
    };
    let dir = p.out.join("guest");
    let booted = userland::boot(
        &guest,
        &bpftrace::steps(p.calls),
        &dir,
        Duration::from_secs(3 * 3600),
        observer,
    )?;
    let outputs: BTreeMap<&str, &StepOutput> =
        booted.steps.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut rows = Vec::new();
    let mut lab: BTreeMap<&str, Vec<Cell>> = BTreeMap::new();
    for workload in [bpftrace::NUMA, bpftrace::KFUNC] {
        lab.insert(workload, load(&dir, &bpftrace::lab_dir(workload))?);
    }
    for probe in PROBES {
        rows.push(row(probe, &lab[probe.workload], &dir, &outputs, p.calls));
    }
    let version = outputs
        .get("bpftrace-version")
        .map(|s| s.output.trim().to_string())
        .unwrap_or_default();
    let done = Compared {
        rows,
        steps: booted.steps.clone(),
        bpftrace_version: version,
        secs: booted.secs,
        userland: land.record,
    };
    crate::results::atomic::write(&p.out.join("peers.md"), render(p, &done).as_bytes())?;
    let json = serde_json::json!({
        "target": format!("vm:{}/{}", p.arch, p.kernel),
        "calls": p.calls,
        "memory_mib": MEMORY_MIB,
        "tolerance": TOLERANCE,
        "bpftrace": done.bpftrace_version,
        "rows": done.rows,
        "steps": done.steps.iter().map(|s| serde_json::json!({"name": s.name, "rc": s.rc})).collect::<Vec<_>>(),
        "secs": done.secs,
        "userland": done.userland,
    });
    crate::results::atomic::write(
        &p.out.join("peers.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(done)
}

/// The cells of a native run the guest sent back (`/results/<name>` there).
fn load(dir: &Path, guest_path: &str) -> Result<Vec<Cell>> {
    let local = dir.join(
        guest_path
            .trim_start_matches(userland::RESULTS)
            .trim_start_matches('/'),
    );
    crate::results::load(&local)
        .map(|(_, cells)| cells)
        .with_context(|| format!("the guest's results {guest_path}"))
}

/// The cost of one call of a baseline cell's loop (nothing of the lab's attached).
fn baseline_call(cells: &[Cell]) -> Option<f64> {
    cells
        .iter()
        .find(|c| c.measured.mechanism == "baseline" && c.measured.status == Status::Ok)
        .and_then(|c| c.summary.as_ref())
        .map(|s| s.per_call)
}

fn row(
    probe: &Probe,
    lab: &[Cell],
    dir: &Path,
    outputs: &BTreeMap<&str, &StepOutput>,
    calls: u64,
) -> Row {
    let twin = lab.iter().find(|c| c.measured.mechanism == probe.twin);
    let mut notes = Vec::new();
    let lab_overhead = match twin {
        Some(c) if c.measured.status == Status::Ok => c.summary.as_ref().map(|s| s.overhead),
        Some(c) => {
            notes.push(format!(
                "the lab: {} {}",
                c.measured.status.name(),
                c.measured.reason.as_deref().unwrap_or("")
            ));
            None
        }
        None => {
            notes.push("the lab's cell is missing".into());
            None
        }
    };
    // Three pairs of two loops, each of `calls` calls, all with the probe attached.
    let expected_hits = calls * 2 * 3;
    let mut hits = None;
    let peer = match probe.program {
        None => {
            notes.push(format!("bpftrace: not run ({})", probe.missing));
            None
        }
        Some(_) => {
            let step = outputs.get(format!("bpftrace-{}", probe.name).as_str());
            hits = step.and_then(|s| bpftrace::count(&s.output));
            let with = load(dir, &bpftrace::probe_dir(probe))
                .ok()
                .and_then(|c| baseline_call(&c));
            match (step, with, hits) {
                (Some(s), _, _) if s.rc != Some(0) => {
                    notes.push(format!(
                        "bpftrace: failed ({})",
                        userland::tail(&s.output, 3).replace('\n', " / ")
                    ));
                    None
                }
                (_, Some(with), Some(h)) if h >= expected_hits => {
                    baseline_call(lab).map(|without| with - without)
                }
                (_, _, h) => {
                    notes.push(format!(
                        "bpftrace: fired {} times, fewer than the {expected_hits} calls it sat beside",
                        h.map_or("no".to_string(), |h| h.to_string())
                    ));
                    None
                }
            }
        }
    };
    let mut r = Row {
        bench: probe.name.to_string(),
        workload: probe.workload.to_string(),
        lab_cell: probe.twin.to_string(),
        lab: lab_overhead,
        bpftrace: peer,
        bpftrace_hits: hits,
        expected_hits,
        note: None,
    };
    if r.diff().is_some() && !r.agrees() {
        notes.push(format!("differs beyond 3%, likely {}", probe.likely));
    }
    r.note = (!notes.is_empty()).then(|| notes.join("; "));
    r
}

fn render(p: &Peers, done: &Compared) -> String {
    let num = |x: Option<f64>| x.map_or("–".to_string(), |x| fixed(x, 2));
    let mut s = format!(
        "# Peers beside the lab: {} {}\n\n{} in the same guest (Debian {} userland, {} packages, {:.0} MiB of files; {} MiB of guest memory), {} host seconds. \
         Overhead per traced call in insn (QEMU icount; the native runs' ns count instructions). \
         bpftrace's figure: the lab's baseline loop with the probe attached minus without, {} calls per loop, 3 pairs.\n\n",
        p.arch,
        p.kernel,
        done.bpftrace_version,
        done.userland.suite,
        done.userland.packages.len(),
        done.userland.file_bytes as f64 / (1024.0 * 1024.0),
        MEMORY_MIB,
        fixed(done.secs, 0),
        p.calls
    );
    s.push_str("| bench | workload | lab cell | lab (insn) | bpftrace (insn) | bpftrace − lab | bpftrace hits | note |\n|---|---|---|---:|---:|---:|---:|---|\n");
    for r in &done.rows {
        s.push_str(&format!(
            "| trig-{} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.bench,
            r.workload,
            r.lab_cell,
            num(r.lab),
            num(r.bpftrace),
            r.diff()
                .map_or("–".into(), |d| format!("{:+.1}%", d * 100.0)),
            r.bpftrace_hits.map_or("–".into(), |h| h.to_string()),
            r.note.as_deref().unwrap_or("agrees within 3%")
        ));
    }
    s
}
