//! Fabricated runs for unit tests, snapshot tests and benchmarks of the host-side
//! analysis (compare, report). Nothing the lab measures goes through here; the runs are
//! marked as synthetic in `meta.extra` so one can never pass for a measurement.

use crate::dataset::Run;
use crate::results::RunMeta;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tracelab_model::cell::Cell;
use tracelab_model::schema::{CellContext, Measured, Phase, Sample, Status, Unit};
use tracelab_model::summary::Summary;

/// One cell to fabricate.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    pub status: Status,
    /// Median overhead per call; the samples spread `±spread` around it.
    pub overhead: f64,
    pub spread: f64,
}

impl CellSpec {
    pub fn ok(mechanism: &str, overhead: f64) -> CellSpec {
        CellSpec {
            mechanism: mechanism.to_string(),
            payload: None,
            stack: 1,
            status: Status::Ok,
            overhead,
            spread: 0.0,
        }
    }

    pub fn unsupported(mechanism: &str) -> CellSpec {
        CellSpec {
            status: Status::Unsupported,
            ..CellSpec::ok(mechanism, 0.0)
        }
    }
}

/// The metadata of a fabricated guest run.
pub fn meta(arch: &str, kernel: &str, unit: Unit) -> RunMeta {
    let mut kernel_config = BTreeMap::new();
    kernel_config.insert("CONFIG_KPROBES".to_string(), "y".to_string());
    kernel_config.insert("CONFIG_FPROBE".to_string(), "y".to_string());
    let mut extra = BTreeMap::new();
    extra.insert("synthetic".to_string(), serde_json::Value::Bool(true));
    RunMeta {
        schema_version: tracelab_model::schema::SCHEMA_VERSION,
        run_id: format!("20261121T000000Z-{arch}-{kernel}"),
        started_at: "2026-11-21T00:00:00Z".into(),
        tracelab_version: tracelab_model::VERSION.into(),
        git_revision: None,
        command_line: vec!["synthetic".into()],
        target: format!("vm:{arch}/{kernel}"),
        arch: arch.into(),
        kernel: kernel.into(),
        kernel_release: Some(release(arch, kernel)),
        kernel_package: None,
        kernel_config,
        cpu: "max".into(),
        qemu_version: Some("10.0.0".into()),
        mode: if unit == Unit::Insn { "icount" } else { "wall" }.into(),
        accel: Some("tcg".into()),
        clock: "synthetic".into(),
        unit,
        workload: "getppid".into(),
        calls: 1000,
        repeats: 3,
        mechanisms: Vec::new(),
        extra,
    }
}

/// A plausible `uname -r` for a label.
pub fn release(arch: &str, kernel: &str) -> String {
    let debian = if arch == "arm64" { "arm64" } else { "amd64" };
    format!("{kernel}.0-1-cloud-{debian}")
}

/// A cell with `repeats` interleaved pairs of samples whose paired overheads are
/// `overhead` ± `spread` (deterministic), and a summary computed from them without the
/// bootstrap (cheap enough for millions of samples): its CI is the middle half.
pub fn cell(meta: &RunMeta, spec: &CellSpec, repeats: u32, calls: u64) -> Cell {
    let context = CellContext {
        target: meta.target.clone(),
        arch: meta.arch.clone(),
        kernel: meta.kernel.clone(),
        kernel_release: meta.kernel_release.clone(),
    };
    let ok = spec.status == Status::Ok;
    let mut samples = Vec::new();
    let base_per_call = 300.0;
    let mut paired = Vec::new();
    if ok {
        samples.reserve(2 * repeats as usize);
        for r in 0..repeats {
            // A fixed zig-zag in [-1, 1]: deterministic and symmetric around the median.
            let wobble = if repeats > 1 {
                (f64::from(r % 5) - 2.0) / 2.0
            } else {
                0.0
            };
            let o = spec.overhead + spec.spread * wobble;
            paired.push(o);
            let b = (base_per_call * calls as f64) as u64;
            let m = ((base_per_call + o) * calls as f64).max(0.0) as u64;
            samples.push(Sample::timed(r, Phase::Baseline, calls, b, None));
            samples.push(Sample::timed(r, Phase::Mechanism, calls, m, Some(calls)));
        }
    }
    let summary = (ok && repeats > 0).then(|| {
        let mut sorted = paired.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f).round() as usize];
        Summary {
            per_call: base_per_call + q(0.5),
            baseline_per_call: base_per_call,
            overhead: q(0.5),
            overhead_min: q(0.0),
            overhead_max: q(1.0),
            overhead_ci_low: Some(q(0.25)),
            overhead_ci_high: Some(q(0.75)),
            range_coverage: tracelab_model::stats::range_coverage(repeats as usize),
            outliers: Some(0),
            repeats,
            counter_per_call: BTreeMap::new(),
            counter_overhead: BTreeMap::new(),
            cycles_minus_clock: None,
            attach: None,
            stack_depth: None,
        }
    });
    Cell {
        schema_version: tracelab_model::schema::SCHEMA_VERSION,
        context,
        measured: Measured {
            payload: spec.payload.clone(),
            stack: spec.stack,
            function: Some("__do_sys_getppid".into()),
            status: spec.status,
            reason: (!ok).then(|| "CONFIG_FPROBE_EVENTS is not set".to_string()),
            calls: if ok { calls } else { 0 },
            events_per_call: ok.then_some(1),
            traced_per_op: None,
            fired: ok.then(|| calls * u64::from(repeats)),
            samples,
            // Fields added to the schema later keep their defaults.
            ..Measured::without_samples(
                &spec.mechanism,
                &meta.workload,
                meta.unit,
                spec.status,
                String::new(),
            )
        },
        summary,
        console_tail: None,
        attribution: None,
    }
}

/// A run of the given cells.
pub fn run(arch: &str, kernel: &str, unit: Unit, cells: &[CellSpec], repeats: u32) -> Run {
    let mut meta = meta(arch, kernel, unit);
    meta.repeats = repeats;
    meta.mechanisms = cells.iter().map(|c| c.mechanism.clone()).collect();
    let cells = cells
        .iter()
        .map(|s| cell(&meta, s, repeats, meta.calls))
        .collect();
    Run {
        dir: PathBuf::from(format!("arch={arch}/kernel={kernel}")),
        meta,
        cells,
    }
}

/// The usual mechanisms with plausible overheads (insn per call) that grow with the
/// kernel label's position, for a matrix of runs.
pub fn matrix(arches: &[&str], kernels: &[&str], repeats: u32, spread: f64) -> Vec<Run> {
    let mechanisms = [
        ("baseline", 0.0),
        ("kprobe", 180.0),
        ("kprobe-offset", 900.0),
        ("kretprobe", 420.0),
        ("fprobe", 150.0),
        ("fprobe-exit", 260.0),
        ("function", 120.0),
        ("function-graph", 310.0),
    ];
    let mut runs = Vec::new();
    for (ai, arch) in arches.iter().enumerate() {
        for (ki, kernel) in kernels.iter().enumerate() {
            let cells: Vec<CellSpec> = mechanisms
                .iter()
                .map(|(m, o)| {
                    if *arch == "arm64" && kernel.starts_with("6.") && m.starts_with("fprobe") {
                        CellSpec::unsupported(m)
                    } else {
                        CellSpec {
                            spread,
                            ..CellSpec::ok(m, o * (1.0 + 0.1 * ki as f64 + 0.2 * ai as f64))
                        }
                    }
                })
                .collect();
            runs.push(run(arch, kernel, Unit::Insn, &cells, repeats));
        }
    }
    runs
}

/// Stores runs as results directories under `dir`, each at its `run.dir` (relative):
/// a dataset on disk for tests of the commands that read one.
pub fn write_dataset(dir: &std::path::Path, runs: &[Run]) -> anyhow::Result<()> {
    for run in runs {
        let mut store = crate::results::ResultsDir::create(&dir.join(&run.dir), &run.meta)?;
        for cell in &run.cells {
            store.add_cell(cell.clone())?;
        }
    }
    Ok(())
}
