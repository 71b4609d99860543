//! One flat row per cell: the columns of `summary.parquet`, the CSV and the JSON export.
//! Defined once so the three cannot drift apart.

use serde::Serialize;
use std::collections::BTreeMap;
use tracelab_model::cell::Cell;
use tracelab_model::schema::{CellContext, Measured, Phase, Status, Unit, SCHEMA_VERSION};
use tracelab_model::summary::{AttachSummary, Summary};

impl SummaryRow {
    /// Why an `ok` icount cell is flagged `unstable`: its pairs spread beyond
    /// max(1 insn, 0.1 % of the overhead), so its median is one of several modes.
    pub fn unstable(&self) -> Option<String> {
        let (lo, hi, o) = (self.overhead_min?, self.overhead_max?, self.overhead?);
        if self.status != Status::Ok || !tracelab_model::summary::is_unstable(self.unit, lo, hi, o)
        {
            return None;
        }
        Some(format!(
            "pairs span {}..{} {} per call, beyond max(1, 0.1 %) = {}: the median is one of its modes",
            crate::render::fixed(lo, 2),
            crate::render::fixed(hi, 2),
            self.unit,
            crate::render::fixed(tracelab_model::summary::unstable_bound(o), 2)
        ))
    }
}

/// A cell flattened for export. `None` means "not measured" and is written as null,
/// never as 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Position of the cell in the run (the `NNN` of `cells/NNN-*.json`).
    pub cell: u32,
    pub target: String,
    pub arch: String,
    pub kernel: String,
    pub kernel_release: Option<String>,
    pub mechanism: String,
    /// What the BPF program does (`empty`, `count`, `record`); None for other mechanisms.
    pub payload: Option<String>,
    /// Programs attached to the function at once.
    pub stack: u32,
    pub workload: String,
    pub function: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub unit: Unit,
    /// Calls per timed loop.
    pub calls: Option<u64>,
    /// Paired repeats behind the summary, or mechanism loops run when there is none.
    pub repeats: Option<u32>,
    pub per_call: Option<f64>,
    pub baseline_per_call: Option<f64>,
    pub overhead: Option<f64>,
    pub overhead_min: Option<f64>,
    pub overhead_max: Option<f64>,
    /// Bootstrap 95% confidence interval of the median overhead.
    pub overhead_ci_low: Option<f64>,
    pub overhead_ci_high: Option<f64>,
    /// Paired overheads outside Tukey's fences (flagged, not dropped).
    pub outliers: Option<u32>,
    pub fired: Option<u64>,
    pub expected_fired: Option<u64>,
    pub attach: Option<String>,
    /// The kernel's BPF statistics per program run (`run_time_ns / run_cnt` with
    /// `BPF_ENABLE_STATS`, in the cell's unit: guest sched_clock ns, instructions under
    /// icount): the program and the two clock reads and the bookkeeping the statistics
    /// add around each run (47–106 insn per run for an empty program), measured in loops
    /// of their own. Not the program alone (`--attribution`'s `BPF program` family is),
    /// and without most of the dispatch the overhead includes.
    pub kernel_run_time: Option<f64>,
    /// Calls of the traced function per operation of the workload, as counted.
    pub traced_per_op: Option<u64>,
    /// The overhead per operation divided by the traced calls per operation.
    pub overhead_per_traced_call: Option<f64>,
    /// Operations per second lost to the mechanism, in percent: 1 − armed rate /
    /// baseline rate = overhead / armed cost per operation.
    pub slowdown_pct: Option<f64>,
    /// Functions traced at once (`--functions`; 1 in summaries written before).
    pub functions: tracelab_model::cell_id::Functions,
    /// Other tracers beside the cell (`--other-tracers`; 0 in summaries written before).
    pub other_tracers: u32,
    /// Median time from nothing to armed and from armed to nothing, in the cell's unit
    /// (elapsed: under icount guest virtual time, waits included).
    pub attach_time: Option<f64>,
    pub detach_time: Option<f64>,
    /// The same, as the attaching thread's own CPU time.
    pub attach_thread_time: Option<f64>,
    pub detach_thread_time: Option<f64>,
    /// Mean frames per stack trace (the stack-trace payloads).
    pub stack_depth: Option<f64>,
}

/// Column names in export order; tests check that they match the struct's fields.
pub const COLUMNS: &[&str] = &[
    "cell",
    "target",
    "arch",
    "kernel",
    "kernel_release",
    "mechanism",
    "payload",
    "stack",
    "workload",
    "function",
    "status",
    "reason",
    "unit",
    "calls",
    "repeats",
    "per_call",
    "baseline_per_call",
    "overhead",
    "overhead_min",
    "overhead_max",
    "overhead_ci_low",
    "overhead_ci_high",
    "outliers",
    "fired",
    "expected_fired",
    "attach",
    "kernel_run_time",
    "traced_per_op",
    "overhead_per_traced_call",
    "slowdown_pct",
    "functions",
    "other_tracers",
    "attach_time",
    "detach_time",
    "attach_thread_time",
    "detach_thread_time",
    "stack_depth",
];

impl SummaryRow {
    pub fn from_cell(index: usize, cell: &Cell) -> Self {
        let m = &cell.measured;
        let ctx = &cell.context;
        let s = cell.summary.as_ref();
        let mech_loops: Vec<u64> = m
            .samples
            .iter()
            .filter(|x| x.phase == Phase::Mechanism)
            .map(|x| x.calls)
            .collect();
        let attach = s.and_then(|s| s.attach);
        let repeats = s
            .map(|s| s.repeats)
            .or_else(|| u32::try_from(mech_loops.len()).ok().filter(|&n| n > 0));
        SummaryRow {
            cell: u32::try_from(index).unwrap_or(u32::MAX),
            target: ctx.target.clone(),
            arch: ctx.arch.clone(),
            kernel: ctx.kernel.clone(),
            kernel_release: ctx.kernel_release.clone(),
            mechanism: m.mechanism.clone(),
            payload: m.payload.clone(),
            stack: m.stack,
            workload: m.workload.clone(),
            function: m.function.clone(),
            status: m.status,
            reason: m.reason.clone(),
            unit: m.unit,
            // A cell that never ran a loop records calls = 0; that is "not measured".
            calls: Some(m.calls).filter(|&c| c > 0),
            repeats,
            per_call: s.and_then(|s| finite(s.per_call)),
            baseline_per_call: s.and_then(|s| finite(s.baseline_per_call)),
            overhead: s.and_then(|s| finite(s.overhead)),
            overhead_min: s.and_then(|s| finite(s.overhead_min)),
            overhead_max: s.and_then(|s| finite(s.overhead_max)),
            overhead_ci_low: s.and_then(|s| s.overhead_ci_low).and_then(finite),
            overhead_ci_high: s.and_then(|s| s.overhead_ci_high).and_then(finite),
            outliers: s.and_then(|s| s.outliers),
            fired: m.fired,
            expected_fired: expected_fired(
                m.events_per_call.map(|e| e * m.traced_per_op.unwrap_or(1)),
                &mech_loops,
            ),
            attach: m.attach.clone(),
            kernel_run_time: kernel_run_time(&m.kernel_stats),
            traced_per_op: m.traced_per_op,
            overhead_per_traced_call: s
                .zip(m.traced_per_op.filter(|&n| n > 0))
                .and_then(|(s, n)| finite(s.overhead / n as f64)),
            slowdown_pct: s
                .filter(|s| s.per_call > 0.0)
                .and_then(|s| finite(100.0 * s.overhead / s.per_call)),
            functions: m.functions,
            other_tracers: m.other_tracers,
            attach_time: attach.map(|a| a.attach),
            detach_time: attach.map(|a| a.detach),
            attach_thread_time: attach.map(|a| a.attach_thread),
            detach_thread_time: attach.map(|a| a.detach_thread),
            stack_depth: s.and_then(|s| s.stack_depth),
        }
    }
}

impl SummaryRow {
    /// The cell this row summarizes, without its samples: what `report` and `compare`
    /// read. `counters` are its counter summaries (per call armed, overhead).
    pub fn into_summary_cell(
        self,
        counters: (BTreeMap<String, f64>, BTreeMap<String, f64>),
    ) -> Cell {
        let summary = match (self.per_call, self.baseline_per_call, self.overhead) {
            (Some(per_call), Some(baseline_per_call), Some(overhead)) => Some(Summary {
                per_call,
                baseline_per_call,
                overhead,
                overhead_min: self.overhead_min.unwrap_or(overhead),
                overhead_max: self.overhead_max.unwrap_or(overhead),
                overhead_ci_low: self.overhead_ci_low,
                overhead_ci_high: self.overhead_ci_high,
                range_coverage: self.repeats.and_then(|n| {
                    tracelab_model::stats::range_coverage(usize::try_from(n).unwrap_or(0))
                }),
                outliers: self.outliers,
                repeats: self.repeats.unwrap_or_default(),
                counter_per_call: counters.0,
                // As `Cell::new` keeps it: under icount only.
                cycles_minus_clock: counters
                    .1
                    .get("cycles")
                    .filter(|_| self.unit == Unit::Insn)
                    .map(|c| c - overhead),
                counter_overhead: counters.1,
                attach: match (
                    self.attach_time,
                    self.detach_time,
                    self.attach_thread_time,
                    self.detach_thread_time,
                ) {
                    (Some(attach), Some(detach), Some(attach_thread), Some(detach_thread)) => {
                        Some(AttachSummary {
                            attach,
                            detach,
                            attach_thread,
                            detach_thread,
                        })
                    }
                    _ => None,
                },
                stack_depth: self.stack_depth,
            }),
            _ => None,
        };
        Cell {
            schema_version: SCHEMA_VERSION,
            context: CellContext {
                target: self.target,
                arch: self.arch,
                kernel: self.kernel,
                kernel_release: self.kernel_release,
            },
            measured: Measured {
                mechanism: self.mechanism,
                payload: self.payload,
                stack: self.stack,
                functions: self.functions,
                traced: None,
                other_tracers: self.other_tracers,
                beside: None,
                attach_times: Vec::new(),
                stack_traces: None,
                runtime_symbols: Vec::new(),
                workload: self.workload,
                function: self.function,
                attach: self.attach,
                status: self.status,
                reason: self.reason,
                unit: self.unit,
                calls: self.calls.unwrap_or_default(),
                events_per_call: None,
                traced_per_op: self.traced_per_op,
                fired: self.fired,
                samples: Vec::new(),
                kernel_stats: Vec::new(),
                cleanliness: None,
                precision: None,
            },
            summary,
            console_tail: None,
            attribution: None,
        }
    }
}

/// Kernel-measured time per program run over all statistics loops; None without any.
fn kernel_run_time(loops: &[tracelab_model::schema::KernelStatsLoop]) -> Option<f64> {
    let runs: u64 = loops.iter().map(|l| l.run_cnt).sum();
    let time: u64 = loops.iter().map(|l| l.run_time_ns).sum();
    (runs > 0).then(|| time as f64 / runs as f64)
}

/// Events the mechanism must have produced: calls × events_per_call summed over the
/// mechanism loops (= calls × events_per_call × repeats when every loop has `calls`
/// calls, which is what `fired` counts). None when unknown or on overflow.
fn expected_fired(events_per_call: Option<u64>, mech_loop_calls: &[u64]) -> Option<u64> {
    let per = events_per_call?;
    if mech_loop_calls.is_empty() {
        return None;
    }
    mech_loop_calls
        .iter()
        .try_fold(0u64, |acc, &c| acc.checked_add(c.checked_mul(per)?))
}

/// NaN and infinities are not measurements; they export as null.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

pub use crate::render::one_line;

pub fn rows(cells: &[Cell]) -> Vec<SummaryRow> {
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| SummaryRow::from_cell(i, c))
        .collect()
}
