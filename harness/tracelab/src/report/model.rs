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
    pub workload: String,
    pub unit: Unit,
    pub status: Status,
    pub reason: Option<String>,
    pub overhead: Option<f64>,
    pub interval: Option<Interval>,
    pub per_call: Option<f64>,
    pub baseline_per_call: Option<f64>,
    /// Per perf counter: median (armed − baseline) count per call.
    pub counters: BTreeMap<String, f64>,
}

impl Point {
    /// The series a cell belongs to: its mechanism, with payload and stack when given
    /// (`fentry/count ×4`).
    pub fn series(&self) -> String {
        tracelab_model::cell_id::CellId {
            mechanism: self.mechanism.clone(),
            payload: self.payload.clone(),
            stack: self.stack,
        }
        .series()
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
                counters: s
                    .map(|s| {
                        s.counter_overhead
                            .iter()
                            .filter(|(_, v)| v.is_finite())
                            .map(|(k, v)| (k.clone(), *v))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    out
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
