//! `samples.parquet` and `summary.parquet`: the stored cells as tables for notebooks.
//! Both are rebuilt from all cells, never appended to.

use super::atomic;
use super::row::SummaryRow;
use anyhow::{Context, Result};
use polars::prelude::{Column, DataFrame, NamedFrom, ParquetCompression, ParquetWriter, Series};
use std::path::Path;
use tracelab_model::cell::Cell;
use tracelab_model::schema::Phase;

/// One row per raw sample, with its cell's context repeated so the file stands alone.
pub fn samples_frame(cells: &[Cell]) -> Result<DataFrame> {
    let mut c = SampleCols::default();
    for (i, cell) in cells.iter().enumerate() {
        let ctx = &cell.context;
        let m = &cell.measured;
        for s in &m.samples {
            c.cell.push(u32::try_from(i).unwrap_or(u32::MAX));
            c.target.push(ctx.target.clone());
            c.arch.push(ctx.arch.clone());
            c.kernel.push(ctx.kernel.clone());
            c.kernel_release.push(ctx.kernel_release.clone());
            c.mechanism.push(m.mechanism.clone());
            c.payload.push(m.payload.clone());
            c.stack.push(m.stack);
            c.workload.push(m.workload.clone());
            c.function.push(m.function.clone());
            c.unit.push(m.unit.name().to_string());
            c.repeat.push(s.repeat);
            c.phase.push(phase_name(s.phase).to_string());
            c.calls.push(s.calls);
            c.elapsed.push(s.elapsed);
            c.fired.push(s.fired);
        }
    }
    let height = c.cell.len();
    let columns = vec![
        Column::new("cell".into(), c.cell),
        Column::new("target".into(), c.target),
        Column::new("arch".into(), c.arch),
        Column::new("kernel".into(), c.kernel),
        Column::new("kernel_release".into(), c.kernel_release),
        Column::new("mechanism".into(), c.mechanism),
        Column::new("payload".into(), c.payload),
        Column::new("stack".into(), c.stack),
        Column::new("workload".into(), c.workload),
        Column::new("function".into(), c.function),
        Column::new("unit".into(), c.unit),
        Column::new("repeat".into(), c.repeat),
        Column::new("phase".into(), c.phase),
        Column::new("calls".into(), c.calls),
        Column::new("elapsed".into(), c.elapsed),
        Column::new("fired".into(), c.fired),
    ];
    DataFrame::new(height, columns).context("building the samples table")
}

#[derive(Default)]
struct SampleCols {
    cell: Vec<u32>,
    target: Vec<String>,
    arch: Vec<String>,
    kernel: Vec<String>,
    kernel_release: Vec<Option<String>>,
    mechanism: Vec<String>,
    payload: Vec<Option<String>>,
    stack: Vec<u32>,
    workload: Vec<String>,
    function: Vec<Option<String>>,
    unit: Vec<String>,
    repeat: Vec<u32>,
    phase: Vec<String>,
    calls: Vec<u64>,
    elapsed: Vec<u64>,
    fired: Vec<Option<u64>>,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Baseline => "baseline",
        Phase::Mechanism => "mechanism",
    }
}

/// One row per cell; columns as in [`super::row::COLUMNS`].
pub fn summary_frame(rows: &[SummaryRow]) -> Result<DataFrame> {
    fn col<T, F>(rows: &[SummaryRow], name: &str, f: F) -> Column
    where
        F: Fn(&SummaryRow) -> T,
        Series: NamedFrom<Vec<T>, [T]>,
    {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<T>>())
    }
    let columns = vec![
        col(rows, "cell", |r| r.cell),
        col(rows, "target", |r| r.target.clone()),
        col(rows, "arch", |r| r.arch.clone()),
        col(rows, "kernel", |r| r.kernel.clone()),
        col(rows, "kernel_release", |r| r.kernel_release.clone()),
        col(rows, "mechanism", |r| r.mechanism.clone()),
        col(rows, "payload", |r| r.payload.clone()),
        col(rows, "stack", |r| r.stack),
        col(rows, "workload", |r| r.workload.clone()),
        col(rows, "function", |r| r.function.clone()),
        col(rows, "status", |r| r.status.name().to_string()),
        col(rows, "reason", |r| r.reason.clone()),
        col(rows, "unit", |r| r.unit.name().to_string()),
        col(rows, "calls", |r| r.calls),
        col(rows, "repeats", |r| r.repeats),
        col(rows, "per_call", |r| r.per_call),
        col(rows, "baseline_per_call", |r| r.baseline_per_call),
        col(rows, "overhead", |r| r.overhead),
        col(rows, "overhead_min", |r| r.overhead_min),
        col(rows, "overhead_max", |r| r.overhead_max),
        col(rows, "overhead_ci_low", |r| r.overhead_ci_low),
        col(rows, "overhead_ci_high", |r| r.overhead_ci_high),
        col(rows, "outliers", |r| r.outliers),
        col(rows, "fired", |r| r.fired),
        col(rows, "expected_fired", |r| r.expected_fired),
        col(rows, "attach", |r| r.attach.clone()),
        col(rows, "kernel_run_time", |r| r.kernel_run_time),
    ];
    DataFrame::new(rows.len(), columns).context("building the summary table")
}

/// One row per (sample, perf counter): the raw counts behind the summaries' per-call
/// counter figures. Counters a PMU lacks have no rows (never zeros).
pub fn counters_frame(cells: &[Cell]) -> Result<DataFrame> {
    let (mut cell, mut mechanism, mut payload, mut stack) = (vec![], vec![], vec![], vec![]);
    let (mut repeat, mut phase, mut calls, mut counter, mut count) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (i, c) in cells.iter().enumerate() {
        let m = &c.measured;
        for s in &m.samples {
            for (name, value) in &s.counters {
                cell.push(u32::try_from(i).unwrap_or(u32::MAX));
                mechanism.push(m.mechanism.clone());
                payload.push(m.payload.clone());
                stack.push(m.stack);
                repeat.push(s.repeat);
                phase.push(phase_name(s.phase).to_string());
                calls.push(s.calls);
                counter.push(name.clone());
                count.push(*value);
            }
        }
    }
    let height = cell.len();
    let columns = vec![
        Column::new("cell".into(), cell),
        Column::new("mechanism".into(), mechanism),
        Column::new("payload".into(), payload),
        Column::new("stack".into(), stack),
        Column::new("repeat".into(), repeat),
        Column::new("phase".into(), phase),
        Column::new("calls".into(), calls),
        Column::new("counter".into(), counter),
        Column::new("count".into(), count),
    ];
    DataFrame::new(height, columns).context("building the counters table")
}

/// Writes `df` to `path` atomically, zstd-compressed.
pub fn write(path: &Path, df: &mut DataFrame) -> Result<()> {
    atomic::write_with(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)?;
        Ok(())
    })
}
