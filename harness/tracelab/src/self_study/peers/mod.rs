//! `tracelab peers`: the tools kernel developers quote, in the same guest on the same
//! kernel as the lab. One guest with a Debian userland runs the lab natively on the
//! in-kernel workloads of the selftests' trig-* benches (`bpf-numa-batch`,
//! `bpf-kfunc-batch`); then the selftests' own `bench`, built from the kernel's Debian
//! source, runs each trig-* bench and its `trig-kernel-count` baseline; then bpftrace's
//! equivalent of each bench is attached while the lab's baseline loop makes the calls
//! (bpftrace's cost per call is that loop's cost with the probe minus without). Under
//! `-icount shift=0` every figure is in instructions.

mod bpftrace;
mod selftests;

pub use bpftrace::{Probe, PROBES};

use crate::guest::userland::{self, Guest, StepOutput};
use crate::progress::{Event, Observer};
use crate::render::number::fixed;
use crate::results::store::PEERS_FILE as FILE;
use crate::study::TargetSpec;
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
        let (arch, kernel) = target.debian_guest("peers")?;
        if !(1_000..=1_000_000).contains(&calls) {
            bail!("--calls {calls}: use 1000 to 1000000 in-kernel calls per loop");
        }
        Ok(Peers {
            arch,
            kernel,
            out,
            tracelab: userland::tracelab_for(arch, tracelab)?,
            calls,
            mirror,
        })
    }
}

/// One attach type: the lab's cell and the peers' figures beside it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The selftests bench's name (`trig-<bench>`).
    pub bench: String,
    pub workload: String,
    pub lab_cell: String,
    /// Overhead per call, insn (native ns under icount), with the `count` payload (what
    /// bpftrace's programs do)...
    pub lab: Option<f64>,
    /// ...and with the `empty` payload (what the selftests bench's figure holds: its
    /// baseline runs its programs' counter too).
    pub lab_empty: Option<f64>,
    /// The selftests bench: insn per call of `trig-<bench>` minus `trig-kernel-count`.
    pub selftests: Option<f64>,
    /// The rate the bench printed, M calls/s (± its spread), before conversion.
    pub selftests_mps: Option<[f64; 2]>,
    pub bpftrace: Option<f64>,
    /// bpftrace's own count of hits, and the fewest the loops it ran beside make.
    pub bpftrace_hits: Option<u64>,
    pub expected_hits: u64,
    /// Why a side has no figure, or what likely makes them differ.
    pub note: Option<String>,
}

impl Row {
    /// bpftrace's figure relative to the lab's `count` cell.
    pub fn bpftrace_diff(&self) -> Option<f64> {
        relative(self.bpftrace, self.lab)
    }

    /// The selftests bench's figure relative to the lab's `empty` cell.
    pub fn selftests_diff(&self) -> Option<f64> {
        relative(self.selftests, self.lab_empty)
    }
}

fn relative(peer: Option<f64>, lab: Option<f64>) -> Option<f64> {
    let (peer, lab) = (peer?, lab?);
    (lab.abs() > f64::EPSILON).then(|| (peer - lab) / lab.abs())
}

fn beyond_tolerance(diff: Option<f64>) -> bool {
    diff.is_some_and(|d| d.abs() > TOLERANCE)
}

/// The selftests bench of a peers run: as built, or why it was not.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bench {
    Built(selftests::Built),
    NotBuilt(String),
}

/// What a peers run found (`peers.json`; `peers.md` and the report render it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    pub target: String,
    /// In-kernel calls per loop of the lab's runs.
    pub calls: u64,
    pub memory_mib: u32,
    pub tolerance: f64,
    /// `bpftrace --version`.
    pub bpftrace: String,
    pub selftests: Bench,
    pub rows: Vec<Row>,
    /// Each guest step and its exit status.
    pub steps: Vec<(String, Option<i32>)>,
    /// Host seconds the guest ran.
    pub secs: f64,
    pub userland: tracelab_kernels::UserlandRecord,
}

pub fn run(p: &Peers, observer: &dyn Observer) -> Result<Stored> {
    let stage = |s: &str| observer.event(None, Event::Stage(s));
    let catalog = Catalog::new(p.mirror.clone())?;
    let kernel = catalog.fetch_kernel(p.kernel, p.arch, false)?;
    stage("the Debian userland with bpftrace: resolving and unpacking its packages");
    let land = catalog.fetch_userland(p.arch, tracelab_kernels::userland::PEERS, &|_, _, _| {})?;
    stage("the selftests bench: building it from the kernel's Debian source");
    let bench = match selftests::unbuildable(p.kernel) {
        Some(why) => Err(why),
        None => selftests::build(&catalog, &kernel).map_err(|e| format!("{e:#}")),
    };
    stage(
        "the peers guest: the lab's cells, the selftests bench, then bpftrace on each attach point",
    );
    let mut steps = bpftrace::steps(p.calls);
    let mut files = Vec::new();
    if let Ok(built) = &bench {
        let names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        // After the lab's cells (the first three steps), before bpftrace.
        steps.splice(3..3, selftests::steps(&names));
        files = selftests::guest_files(built);
    }
    let guest = Guest {
        arch: p.arch,
        kernel: &kernel,
        userland: &land,
        tracelab: &p.tracelab,
        memory_mib: MEMORY_MIB,
        files,
    };
    let dir = p.out.join("guest");
    let booted = userland::boot(
        &guest,
        &steps,
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
    let baseline = bench
        .as_ref()
        .ok()
        .and_then(|_| bench_rate(&outputs, selftests::BASELINE));
    for probe in PROBES {
        let mut r = row(probe, &lab[probe.workload], &dir, &outputs, p.calls);
        match &bench {
            Err(why) => prepend_notes(&mut r, vec![format!("bench: not built ({why})")]),
            Ok(built) => selftests_figure(&mut r, probe, built, baseline, &outputs),
        }
        rows.push(r);
    }
    let version = outputs
        .get("bpftrace-version")
        .map(|s| s.output.trim().to_string())
        .unwrap_or_default();
    let done = Stored {
        target: format!("vm:{}/{}", p.arch, p.kernel),
        calls: p.calls,
        memory_mib: MEMORY_MIB,
        tolerance: TOLERANCE,
        bpftrace: version,
        selftests: match bench {
            Ok(b) => Bench::Built(b),
            Err(why) => Bench::NotBuilt(why),
        },
        rows,
        steps: booted
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.rc))
            .collect(),
        secs: booted.secs,
        userland: land.record,
    };
    crate::results::atomic::write(&p.out.join("peers.md"), render(&done).as_bytes())?;
    crate::results::atomic::write(
        &p.out.join(FILE),
        serde_json::to_string_pretty(&done)?.as_bytes(),
    )?;
    Ok(done)
}

/// The peers runs at or under `path` (a peers output directory, or a dataset holding
/// some), each with the directory it is in.
pub fn find(path: &Path) -> Result<Vec<(PathBuf, Stored)>> {
    let mut found = Vec::new();
    find_in(path, 0, &mut found)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn find_in(dir: &Path, depth: usize, found: &mut Vec<(PathBuf, Stored)>) -> Result<()> {
    let file = dir.join(FILE);
    if file.is_file() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let stored = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a peers record", file.display()))?;
        found.push((dir.to_path_buf(), stored));
        return Ok(());
    }
    if depth >= 6 || !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            find_in(&path, depth + 1, found)?;
        }
    }
    Ok(())
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
    let cell = |payload: &str| {
        lab.iter().find(|c| {
            c.measured.mechanism == probe.twin && c.measured.payload.as_deref() == Some(payload)
        })
    };
    let mut notes = Vec::new();
    let lab_overhead = match cell("count") {
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
    let lab_empty = cell("empty")
        .filter(|c| c.measured.status == Status::Ok)
        .and_then(|c| c.summary.as_ref())
        .map(|s| s.overhead);
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
        lab_empty,
        selftests: None,
        selftests_mps: None,
        bpftrace: peer,
        bpftrace_hits: hits,
        expected_hits,
        note: None,
    };
    if beyond_tolerance(r.bpftrace_diff()) {
        notes.push(format!(
            "bpftrace differs beyond 3%, likely {}",
            probe.likely
        ));
    }
    r.note = (!notes.is_empty()).then(|| notes.join("; "));
    r
}

/// Puts `notes` before what the row's note already says.
fn prepend_notes(r: &mut Row, mut notes: Vec<String>) {
    notes.extend(r.note.take());
    r.note = (!notes.is_empty()).then(|| notes.join("; "));
}

/// A bench's rate, M calls/s with its spread, from its step's output.
fn bench_rate(outputs: &BTreeMap<&str, &StepOutput>, name: &str) -> Option<[f64; 2]> {
    let step = outputs.get(format!("bench-{name}").as_str())?;
    (step.rc == Some(0))
        .then(|| selftests::rate(&step.output))
        .flatten()
        .map(|(v, spread)| [v, spread])
}

/// The selftests bench's figure for a row: `trig-<bench>` minus `trig-kernel-count`, in
/// insn per call, and what makes it differ from the lab's when it does.
fn selftests_figure(
    r: &mut Row,
    probe: &Probe,
    built: &selftests::Built,
    baseline: Option<[f64; 2]>,
    outputs: &BTreeMap<&str, &StepOutput>,
) {
    let rate = bench_rate(outputs, probe.name);
    r.selftests_mps = rate;
    let mut notes = Vec::new();
    match (rate, baseline) {
        (Some([x, _]), Some([base, _])) => {
            r.selftests = selftests::per_call(x)
                .zip(selftests::per_call(base))
                .map(|(x, base)| x - base);
        }
        (None, _) => {
            let tail = outputs
                .get(format!("bench-{}", probe.name).as_str())
                .map(|s| userland::tail(&s.output, 2).replace('\n', " / "))
                .unwrap_or_else(|| "no output".into());
            notes.push(format!("bench: trig-{} gave no rate ({tail})", probe.name));
        }
        (_, None) => notes.push(format!(
            "bench: trig-{} gave no rate, so no baseline",
            selftests::BASELINE
        )),
    }
    if beyond_tolerance(r.selftests_diff()) {
        notes.push(format!(
            "bench differs beyond 3%, likely {}",
            selftests::likely(probe.workload == bpftrace::KFUNC, built)
        ));
    }
    prepend_notes(r, notes);
}

/// The columns of [`table`] that hold figures.
pub const NUMERIC: std::ops::RangeInclusive<usize> = 3..=10;

/// The table of a peers run: headers, then one row per trig-* bench.
pub fn table(done: &Stored) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let num = |x: Option<f64>| x.map_or("–".to_string(), |x| fixed(x, 2));
    let pct = |d: Option<f64>| d.map_or("–".into(), |d| format!("{:+.1}%", d * 100.0));
    let headers = vec![
        "bench",
        "workload",
        "lab cell",
        "lab empty (insn)",
        "bench M/s",
        "bench (insn)",
        "bench − lab",
        "lab count (insn)",
        "bpftrace (insn)",
        "bpftrace − lab",
        "bpftrace hits",
        "note",
    ];
    let rows = done
        .rows
        .iter()
        .map(|r| {
            vec![
                format!("trig-{}", r.bench),
                r.workload.clone(),
                r.lab_cell.clone(),
                num(r.lab_empty),
                r.selftests_mps.map_or("–".into(), |[v, e]| {
                    format!("{} ± {}", fixed(v, 3), fixed(e, 3))
                }),
                num(r.selftests),
                pct(r.selftests_diff()),
                num(r.lab),
                num(r.bpftrace),
                pct(r.bpftrace_diff()),
                r.bpftrace_hits.map_or("–".into(), |h| h.to_string()),
                r.note.clone().unwrap_or_else(|| "agrees within 3%".into()),
            ]
        })
        .collect();
    (headers, rows)
}

/// How the figures of a peers run were made, in prose.
pub fn method(done: &Stored) -> String {
    let mut s = format!(
        "{} in the same guest (Debian {} userland, {} packages, {:.0} MiB of files; {} MiB of guest memory), {} host seconds. \
         Overhead per traced call in insn (QEMU icount; the native runs' ns count instructions). \
         bpftrace's figure: the lab's baseline loop with the probe attached minus without, {} calls per loop, 3 pairs; it is compared with the lab's cell with the `count` payload. ",
        done.bpftrace,
        done.userland.suite,
        done.userland.packages.len(),
        done.userland.file_bytes as f64 / (1024.0 * 1024.0),
        done.memory_mib,
        fixed(done.secs, 0),
        done.calls
    );
    match &done.selftests {
        Bench::Built(b) => s.push_str(&format!(
            "The selftests bench: built from {} {} ({}; {} host seconds to build, 0 when cached), run as `bench {}`. \
             Its figure: 1000/(M calls/s) insn per call of `trig-<bench>` minus that of `trig-{}`, whose loop {}; \
             it is compared with the lab's cell with the `empty` payload, as the bench's baseline runs its programs' counter too.",
            b.source.name,
            b.source.version,
            b.clang,
            fixed(b.build_secs, 0),
            selftests::ARGS,
            selftests::BASELINE,
            if b.baseline_calls_helper {
                "calls the same helper as the probed benches' driver"
            } else {
                "calls no helper in this kernel"
            }
        )),
        Bench::NotBuilt(why) => s.push_str(&format!("The selftests bench: not built ({why}).")),
    }
    s
}

fn render(done: &Stored) -> String {
    format!(
        "# Peers beside the lab: {}\n\n{}\n\n{}",
        done.target,
        method(done),
        markdown_table(done)
    )
}

/// [`table`] as Markdown, the figures right-aligned.
pub fn markdown_table(done: &Stored) -> String {
    let (headers, rows) = table(done);
    let mut s = format!("| {} |\n|", headers.join(" | "));
    for i in 0..headers.len() {
        // The figures, right-aligned; the names and the note, left.
        s.push_str(if NUMERIC.contains(&i) {
            "---:|"
        } else {
            "---|"
        });
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}
