//! What a report shows, flattened from stored runs: one [`Point`] per cell, and the
//! orders (kernels by version, mechanisms as first run) every view shares.

use crate::compare::{interval, Interval};
use crate::dataset::Run;
use crate::results::row::finite;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use tracelab_model::schema::{Status, Unit};

/// One cell, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index of the run in the report's inputs.
    pub run: usize,
    pub arch: String,
    pub kernel: String,
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    /// Functions traced at once (`--functions`).
    pub functions: tracelab_model::cell_id::Functions,
    /// Other tracers beside the cell (`--other-tracers`).
    pub other_tracers: u32,
    /// Median attach and detach times, where the cell installed and removed.
    pub attach: Option<tracelab_model::summary::AttachSummary>,
    pub workload: String,
    pub unit: Unit,
    pub status: Status,
    pub reason: Option<String>,
    pub overhead: Option<f64>,
    pub interval: Option<Interval>,
    pub per_call: Option<f64>,
    pub baseline_per_call: Option<f64>,
    /// Calls of the traced function per operation (macro workloads count several).
    pub traced_per_op: Option<u64>,
    /// The guest's CPUs (`--vcpus`): a peer on its own CPU changes what an operation
    /// costs, so such cells get panels of their own.
    pub vcpus: u32,
    /// Per perf counter: median (armed − baseline) count per call.
    pub counters: BTreeMap<String, f64>,
    /// Where the overhead goes (`--attribution`).
    pub attribution: Option<tracelab_model::attribution::Breakdown>,
}

impl Point {
    /// Why an icount cell is `unstable`: its pairs (min..max) spread beyond
    /// max(1 insn, 0.1 %), so its median is one of several modes.
    pub fn unstable(&self) -> Option<String> {
        let i = self.interval?;
        let o = self.overhead?;
        (self.status == Status::Ok
            && i.kind == crate::compare::IntervalKind::MinMax
            && tracelab_model::summary::is_unstable(self.unit, i.low, i.high, o))
        .then(|| {
            format!(
                "pairs span {}..{} {}",
                crate::render::fixed(i.low, 2),
                crate::render::fixed(i.high, 2),
                self.unit
            )
        })
    }

    /// The series a cell belongs to: its mechanism, with payload and stack when given
    /// (`fentry/count ×4`).
    pub fn series(&self) -> String {
        self.id().series()
    }

    /// The cell's identity.
    pub fn id(&self) -> tracelab_model::cell_id::CellId {
        tracelab_model::cell_id::CellId {
            mechanism: self.mechanism.clone(),
            payload: self.payload.clone(),
            stack: self.stack,
            functions: self.functions,
            other_tracers: self.other_tracers,
        }
    }

    /// The overhead per call of the traced function: per operation ÷ traced calls per
    /// operation (the same as `overhead` where an operation is one traced call).
    pub fn overhead_per_traced_call(&self) -> Option<f64> {
        // As counted; else the workload's design (a cell with --function and no count
        // has neither, and no figure per traced call).
        let n = self.traced_per_op.or_else(|| {
            self.workload
                .parse::<tracelab_model::workload::Workload>()
                .ok()
                .map(|w| w.traced_per_op())
        })?;
        self.overhead.filter(|_| n > 0).map(|o| o / n as f64)
    }

    /// The workload, with the vCPU count when it is not 1: what a panel or a column
    /// across workloads is named by.
    pub fn workload_label(&self) -> String {
        match self.vcpus {
            1 => self.workload.clone(),
            n => format!("{}, {n} vCPUs", self.workload),
        }
    }

    /// The share of operations per second the mechanism costs, in percent: overhead ÷
    /// armed cost per operation.
    pub fn slowdown_pct(&self) -> Option<f64> {
        match (self.overhead, self.per_call) {
            (Some(o), Some(p)) if p > 0.0 => Some(100.0 * o / p),
            _ => None,
        }
    }
}

/// Every cell of every run, in run order then cell order.
pub fn points(runs: &[Run]) -> Vec<Point> {
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        for cell in &run.cells {
            let m = &cell.measured;
            let s = cell.summary.as_ref();
            out.push(Point {
                run: i,
                arch: cell.context.arch.clone(),
                kernel: cell.context.kernel.clone(),
                mechanism: m.mechanism.clone(),
                payload: m.payload.clone(),
                stack: m.stack,
                functions: m.functions,
                other_tracers: m.other_tracers,
                attach: s.and_then(|s| s.attach),
                workload: m.workload.clone(),
                unit: m.unit,
                status: m.status,
                reason: m.reason.clone(),
                overhead: s.and_then(|s| finite(s.overhead)),
                interval: s.and_then(|s| {
                    interval(
                        s.overhead_ci_low,
                        s.overhead_ci_high,
                        s.overhead_min,
                        s.overhead_max,
                    )
                }),
                per_call: s.and_then(|s| finite(s.per_call)),
                baseline_per_call: s.and_then(|s| finite(s.baseline_per_call)),
                traced_per_op: m.traced_per_op,
                vcpus: run.meta.vcpus(),
                counters: s
                    .map(|s| {
                        s.counter_overhead
                            .iter()
                            .filter(|(_, v)| v.is_finite())
                            .map(|(k, v)| (k.clone(), *v))
                            .collect()
                    })
                    .unwrap_or_default(),
                attribution: cell.attribution.clone(),
            });
        }
    }
    out
}

/// The report's panels: one per (arch, workload), arches in the lab's order and workloads
/// as first run, each with its label (the arch alone when the points hold one workload,
/// else `arch workload`). No figure or table mixes workloads: a pipe operation and a
/// getppid call are not one axis.
pub fn panels(points: &[Point]) -> Vec<(String, Vec<&Point>)> {
    let workloads = distinct(points.iter().map(Point::workload_label));
    let mut out = Vec::new();
    for arch in arches(points) {
        for workload in &workloads {
            let here: Vec<&Point> = points
                .iter()
                .filter(|p| p.arch == arch && &p.workload_label() == workload)
                .collect();
            if here.is_empty() {
                continue;
            }
            let label = match workloads.len() {
                1 if here[0].vcpus == 1 => arch.clone(),
                _ => format!("{arch} {workload}"),
            };
            out.push((label, here));
        }
    }
    out
}

/// What one figure of a workload is per: an operation for the workloads people run
/// (several kernel functions each), else a call.
pub fn per_what(workload: &str) -> &'static str {
    match workload.parse::<tracelab_model::workload::Workload>() {
        Ok(w) if w.is_macro() => "operation",
        _ => "call",
    }
}

/// A cell's name in the lists of cells not measured: its series, after its workload when
/// the report holds several.
pub fn listed_name(p: &Point, points: &[Point]) -> String {
    if points
        .iter()
        .any(|q| q.workload_label() != p.workload_label())
    {
        format!("{} {}", p.workload_label(), p.series())
    } else {
        p.series()
    }
}

/// One row of a workloads table: the series and, per column, its point and text.
pub type WorkloadRow<'a> = (String, Vec<(Option<&'a Point>, String)>);

/// Per (arch, unit, kernel), one table across workloads: a row per mechanism series, a
/// column per workload measured, each cell `overhead per traced call (slowdown %)`.
/// Returns (title, headers, rows).
pub fn workload_tables(points: &[Point]) -> Vec<(String, Vec<String>, Vec<WorkloadRow<'_>>)> {
    let mut out = Vec::new();
    for arch in arches(points) {
        let here: Vec<&Point> = points.iter().filter(|p| p.arch == arch).collect();
        for (unit, kernel) in units(here.iter().copied()).into_iter().flat_map(|u| {
            kernels(here.iter().copied())
                .into_iter()
                .map(move |k| (u, k))
        }) {
            let cells: Vec<&Point> = here
                .iter()
                .copied()
                .filter(|p| {
                    p.unit == unit
                        && p.kernel == kernel
                        && p.stack == 1
                        && p.mechanism != "baseline"
                })
                .collect();
            if cells.is_empty() {
                continue;
            }
            let cols = distinct(cells.iter().map(|p| p.workload_label()));
            let mut headers = vec!["mechanism".to_string()];
            headers.extend(cols.iter().cloned());
            let rows = series(cells.iter().copied())
                .into_iter()
                .map(|s| {
                    let row = cols
                        .iter()
                        .map(|w| {
                            let p = find_in(&cells, &s, w);
                            (p, workload_text(p))
                        })
                        .collect();
                    (s, row)
                })
                .collect();
            out.push((
                format!(
                    "{arch}, kernel {kernel}: overhead per traced call ({unit}) and slowdown (% of operations per second), by workload"
                ),
                headers,
                rows,
            ));
        }
    }
    out
}

/// The cell of `series` and workload label `workload` among one kernel's `cells`.
pub fn find_in<'a>(cells: &[&'a Point], series: &str, workload: &str) -> Option<&'a Point> {
    cells
        .iter()
        .copied()
        .find(|p| p.series() == series && p.workload_label() == workload)
}

/// `overhead per traced call (slowdown %)`, or the status.
fn workload_text(p: Option<&Point>) -> String {
    let Some(p) = p else { return "-".into() };
    match (p.status, p.overhead_per_traced_call(), p.slowdown_pct()) {
        (Status::Ok, Some(o), Some(s)) => format!(
            "{} ({}%)",
            crate::render::fixed(o, 2),
            crate::render::fixed(s, 1)
        ),
        (Status::Ok, Some(o), None) => crate::render::fixed(o, 2),
        (Status::Ok, None, _) => "ok, no summary".into(),
        (st, _, _) => st.name().into(),
    }
}

/// Orders kernel labels by version (`6.1` < `6.12` < `7.2`); labels that are not
/// versions (`local`, `custom`) sort after, by name.
pub fn kernel_order(a: &str, b: &str) -> Ordering {
    let parse = |s: &str| -> Option<Vec<u64>> { s.split('.').map(|p| p.parse().ok()).collect() };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Distinct values in first-seen order.
pub fn distinct<'a, T: PartialEq + Clone + 'a>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Architectures: the lab's own in its order (x86_64, arm64), then any other by name.
pub fn arches(points: &[Point]) -> Vec<String> {
    let mut a = distinct(points.iter().map(|p| p.arch.clone()));
    let rank = |s: &str| {
        tracelab_model::arch::Arch::ALL
            .iter()
            .position(|x| x.name() == s)
            .unwrap_or(usize::MAX)
    };
    a.sort_by(|x, y| rank(x).cmp(&rank(y)).then_with(|| x.cmp(y)));
    a
}

/// Kernel labels of `points`, by version.
pub fn kernels<'a>(points: impl IntoIterator<Item = &'a Point>) -> Vec<String> {
    let mut k = distinct(points.into_iter().map(|p| p.kernel.clone()));
    k.sort_by(|a, b| kernel_order(a, b));
    k
}

/// Series labels of `points`, in first-seen order.
pub fn series<'a>(points: impl IntoIterator<Item = &'a Point>) -> Vec<String> {
    distinct(points.into_iter().map(Point::series))
}

/// Units of `points`, insn first.
pub fn units<'a>(points: impl IntoIterator<Item = &'a Point>) -> Vec<Unit> {
    let mut u = distinct(points.into_iter().map(|p| p.unit));
    u.sort_by_key(|u| u.name() != "insn");
    u
}
