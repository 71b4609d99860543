//! `samples.parquet` and `summary.parquet`: the stored cells as tables for notebooks.
//! Both are rebuilt from all cells, never appended to.

use super::atomic;
use super::row::SummaryRow;
use anyhow::{Context, Result};
use polars::prelude::{
    Column, DataFrame, Float64Type, NamedFrom, ParquetCompression, ParquetReader, ParquetWriter,
    PolarsNumericType, SerReader, Series, UInt32Type, UInt64Type,
};
use std::collections::BTreeMap;
use std::path::Path;
use tracelab_model::cell::Cell;
use tracelab_model::schema::{Phase, Status, Unit};

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
        col(rows, "traced_per_op", |r| r.traced_per_op),
        col(rows, "overhead_per_traced_call", |r| {
            r.overhead_per_traced_call
        }),
        col(rows, "slowdown_pct", |r| r.slowdown_pct),
        col(rows, "functions", |r| r.functions.column()),
        col(rows, "other_tracers", |r| r.other_tracers),
        col(rows, "attach_time", |r| r.attach_time),
        col(rows, "detach_time", |r| r.detach_time),
        col(rows, "attach_thread_time", |r| r.attach_thread_time),
        col(rows, "detach_thread_time", |r| r.detach_thread_time),
        col(rows, "stack_depth", |r| r.stack_depth),
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

/// One row per (cell, symbol) of each cell's breakdown (`--attribution`): the cell's
/// axes, the symbol and its family, and its instructions per call in the armed and the
/// baseline loops and their difference; with what [`read_attribution`] needs to rebuild
/// each breakdown (calls, pairs, how blocks were named, traps). None when no cell has a
/// breakdown.
pub fn attribution_frame(cells: &[Cell]) -> Result<Option<DataFrame>> {
    if cells.iter().all(|c| c.attribution.is_none()) {
        return Ok(None);
    }
    let (mut cell, mut arch, mut kernel, mut kernel_release) = (vec![], vec![], vec![], vec![]);
    let (mut mechanism, mut payload, mut stack, mut functions, mut other_tracers, mut workload) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut symbol, mut family, mut armed, mut baseline, mut overhead) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut traps, mut calls, mut pairs, mut named_by) = (vec![], vec![], vec![], vec![]);
    for (i, c) in cells.iter().enumerate() {
        let Some(b) = &c.attribution else { continue };
        let m = &c.measured;
        for r in &b.rows {
            cell.push(u32::try_from(i).unwrap_or(u32::MAX));
            arch.push(c.context.arch.clone());
            kernel.push(c.context.kernel.clone());
            kernel_release.push(c.context.kernel_release.clone());
            mechanism.push(m.mechanism.clone());
            payload.push(m.payload.clone());
            stack.push(m.stack);
            functions.push(m.functions.column());
            other_tracers.push(m.other_tracers);
            workload.push(m.workload.clone());
            symbol.push(r.symbol.clone());
            let f: &str = r.family.into();
            family.push(f.to_string());
            armed.push(r.armed_insn);
            baseline.push(r.baseline_insn);
            overhead.push(r.overhead_insn);
            traps.push(b.traps_per_call);
            calls.push(b.calls);
            pairs.push(u32::try_from(b.pairs).unwrap_or(u32::MAX));
            named_by.push(b.symbols.clone());
        }
    }
    let height = cell.len();
    let columns = vec![
        Column::new("cell".into(), cell),
        Column::new("arch".into(), arch),
        Column::new("kernel".into(), kernel),
        Column::new("kernel_release".into(), kernel_release),
        Column::new("mechanism".into(), mechanism),
        Column::new("payload".into(), payload),
        Column::new("stack".into(), stack),
        Column::new("functions".into(), functions),
        Column::new("other_tracers".into(), other_tracers),
        Column::new("workload".into(), workload),
        Column::new("symbol".into(), symbol),
        Column::new("family".into(), family),
        Column::new("armed_per_call".into(), armed),
        Column::new("baseline_per_call".into(), baseline),
        Column::new("overhead_per_call".into(), overhead),
        Column::new("cell_traps_per_call".into(), traps),
        Column::new("cell_calls".into(), calls),
        Column::new("cell_pairs".into(), pairs),
        Column::new("cell_named_by".into(), named_by),
    ];
    DataFrame::new(height, columns)
        .map(Some)
        .context("building the attribution table")
}

/// Reads `attribution.parquet` back into each cell's breakdown (the inverse of
/// [`attribution_frame`]; the families are the rows summed by family, which the rows
/// allow exactly).
pub fn read_attribution(
    path: &Path,
) -> Result<BTreeMap<u32, tracelab_model::attribution::Breakdown>> {
    use tracelab_model::attribution::{Breakdown, SymbolCost};
    use tracelab_model::family::Family;
    let df = read_frame(path)?;
    let cell = numbers::<UInt32Type>(&df, "cell")?;
    let symbol = required(strings(&df, "symbol")?, "symbol")?;
    let family = required(strings(&df, "family")?, "family")?;
    let armed = numbers::<Float64Type>(&df, "armed_per_call")?;
    let baseline = numbers::<Float64Type>(&df, "baseline_per_call")?;
    let overhead = numbers::<Float64Type>(&df, "overhead_per_call")?;
    let traps = numbers::<Float64Type>(&df, "cell_traps_per_call")?;
    let calls = numbers::<UInt64Type>(&df, "cell_calls")?;
    let pairs = numbers::<UInt32Type>(&df, "cell_pairs")?;
    let named_by = required(strings(&df, "cell_named_by")?, "cell_named_by")?;
    let mut out: BTreeMap<u32, Breakdown> = BTreeMap::new();
    for i in 0..df.height() {
        let b = out
            .entry(cell[i].unwrap_or_default())
            .or_insert_with(|| Breakdown {
                symbols: named_by[i].clone(),
                calls: calls[i].unwrap_or_default(),
                pairs: pairs[i].unwrap_or_default() as usize,
                rows: Vec::new(),
                families: Vec::new(),
                traps_per_call: traps[i],
            });
        let family: Family = family[i]
            .parse()
            .with_context(|| format!("unknown family `{}` in {}", family[i], path.display()))?;
        b.rows.push(SymbolCost {
            symbol: symbol[i].clone(),
            family,
            baseline_insn: baseline[i].unwrap_or_default(),
            armed_insn: armed[i].unwrap_or_default(),
            overhead_insn: overhead[i].unwrap_or_default(),
        });
    }
    for b in out.values_mut() {
        b.families = tracelab_model::attribution::families(&b.rows);
    }
    Ok(out)
}

/// One row per (cell, perf counter) of each cell's summary: median count per call armed,
/// and median paired overhead per call. What `report` reads instead of the cells' JSON.
pub fn counter_summary_frame(cells: &[Cell]) -> Result<DataFrame> {
    let (mut cell, mut counter, mut per_call, mut overhead) = (vec![], vec![], vec![], vec![]);
    for (i, c) in cells.iter().enumerate() {
        let Some(s) = &c.summary else { continue };
        for (name, armed) in &s.counter_per_call {
            cell.push(u32::try_from(i).unwrap_or(u32::MAX));
            counter.push(name.clone());
            per_call.push(*armed);
            overhead.push(s.counter_overhead.get(name).copied());
        }
    }
    let height = cell.len();
    let columns = vec![
        Column::new("cell".into(), cell),
        Column::new("counter".into(), counter),
        Column::new("per_call".into(), per_call),
        Column::new("overhead".into(), overhead),
    ];
    DataFrame::new(height, columns).context("building the counter summary table")
}

fn read_frame(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("reading {}", path.display()))
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let col = df.column(name).with_context(|| format!("column {name}"))?;
    col.str()
        .with_context(|| format!("column {name} is not text"))
        .map(|c| (0..c.len()).map(|i| c.get(i).map(str::to_string)).collect())
}

fn required(v: Vec<Option<String>>, name: &str) -> Result<Vec<String>> {
    v.into_iter()
        .map(|x| x.with_context(|| format!("column {name} has a null")))
        .collect()
}

/// A numeric column, nulls as None.
fn numbers<T: PolarsNumericType>(df: &DataFrame, name: &str) -> Result<Vec<Option<T::Native>>> {
    let col = df.column(name).with_context(|| format!("column {name}"))?;
    let values = col
        .as_materialized_series()
        .unpack::<T>()
        .with_context(|| format!("column {name} has another type"))?;
    Ok((0..values.len()).map(|i| values.get(i)).collect())
}

/// [`numbers`] of a column that older summaries lack: absent, it reads as all missing;
/// present with another type, it is an error like any other column.
fn optional_numbers<T: PolarsNumericType>(
    df: &DataFrame,
    name: &str,
) -> Result<Vec<Option<T::Native>>> {
    match df.get_column_index(name) {
        None => Ok(vec![None; df.height()]),
        Some(_) => numbers::<T>(df, name),
    }
}

/// Reads `summary.parquet` back into rows (the inverse of [`summary_frame`]).
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>> {
    let df = read_frame(path)?;
    let status: Vec<Status> = required(strings(&df, "status")?, "status")?
        .iter()
        .map(|s| match s.as_str() {
            "ok" => Ok(Status::Ok),
            "unsupported" => Ok(Status::Unsupported),
            "failed" => Ok(Status::Failed),
            other => anyhow::bail!("unknown status `{other}` in {}", path.display()),
        })
        .collect::<Result<_>>()?;
    let unit: Vec<Unit> = required(strings(&df, "unit")?, "unit")?
        .iter()
        .map(|s| match s.as_str() {
            "insn" => Ok(Unit::Insn),
            "ns" => Ok(Unit::Ns),
            other => anyhow::bail!("unknown unit `{other}` in {}", path.display()),
        })
        .collect::<Result<_>>()?;
    let cell = numbers::<UInt32Type>(&df, "cell")?;
    let target = required(strings(&df, "target")?, "target")?;
    let arch = required(strings(&df, "arch")?, "arch")?;
    let kernel = required(strings(&df, "kernel")?, "kernel")?;
    let kernel_release = strings(&df, "kernel_release")?;
    let mechanism = required(strings(&df, "mechanism")?, "mechanism")?;
    let payload = strings(&df, "payload")?;
    let stack = numbers::<UInt32Type>(&df, "stack")?;
    let workload = required(strings(&df, "workload")?, "workload")?;
    let function = strings(&df, "function")?;
    let reason = strings(&df, "reason")?;
    let calls = numbers::<UInt64Type>(&df, "calls")?;
    let repeats = numbers::<UInt32Type>(&df, "repeats")?;
    let per_call = numbers::<Float64Type>(&df, "per_call")?;
    let baseline_per_call = numbers::<Float64Type>(&df, "baseline_per_call")?;
    let overhead = numbers::<Float64Type>(&df, "overhead")?;
    let overhead_min = numbers::<Float64Type>(&df, "overhead_min")?;
    let overhead_max = numbers::<Float64Type>(&df, "overhead_max")?;
    let overhead_ci_low = numbers::<Float64Type>(&df, "overhead_ci_low")?;
    let overhead_ci_high = numbers::<Float64Type>(&df, "overhead_ci_high")?;
    let outliers = numbers::<UInt32Type>(&df, "outliers")?;
    let fired = numbers::<UInt64Type>(&df, "fired")?;
    let expected_fired = numbers::<UInt64Type>(&df, "expected_fired")?;
    let attach = strings(&df, "attach")?;
    let kernel_run_time = numbers::<Float64Type>(&df, "kernel_run_time")?;
    // Absent from summaries written before the macro workloads: not measured.
    let traced_per_op = optional_numbers::<UInt64Type>(&df, "traced_per_op")?;
    let overhead_per_traced_call =
        optional_numbers::<Float64Type>(&df, "overhead_per_traced_call")?;
    let slowdown_pct = optional_numbers::<Float64Type>(&df, "slowdown_pct")?;
    // Absent from summaries written before the functions axis: one function, no times.
    let functions = optional_numbers::<UInt32Type>(&df, "functions")?;
    // Absent from summaries written before the other-tracers axis: none.
    let other_tracers = optional_numbers::<UInt32Type>(&df, "other_tracers")?;
    let attach_time = optional_numbers::<Float64Type>(&df, "attach_time")?;
    let detach_time = optional_numbers::<Float64Type>(&df, "detach_time")?;
    let attach_thread_time = optional_numbers::<Float64Type>(&df, "attach_thread_time")?;
    let detach_thread_time = optional_numbers::<Float64Type>(&df, "detach_thread_time")?;
    // Absent from summaries written before the stack-trace payloads.
    let stack_depth = optional_numbers::<Float64Type>(&df, "stack_depth")?;
    let rows = (0..df.height())
        .map(|i| SummaryRow {
            cell: cell[i].unwrap_or_default(),
            target: target[i].clone(),
            arch: arch[i].clone(),
            kernel: kernel[i].clone(),
            kernel_release: kernel_release[i].clone(),
            mechanism: mechanism[i].clone(),
            payload: payload[i].clone(),
            stack: stack[i].unwrap_or(1),
            workload: workload[i].clone(),
            function: function[i].clone(),
            status: status[i],
            reason: reason[i].clone(),
            unit: unit[i],
            calls: calls[i],
            repeats: repeats[i],
            per_call: per_call[i],
            baseline_per_call: baseline_per_call[i],
            overhead: overhead[i],
            overhead_min: overhead_min[i],
            overhead_max: overhead_max[i],
            overhead_ci_low: overhead_ci_low[i],
            overhead_ci_high: overhead_ci_high[i],
            outliers: outliers[i],
            fired: fired[i],
            expected_fired: expected_fired[i],
            attach: attach[i].clone(),
            kernel_run_time: kernel_run_time[i],
            traced_per_op: traced_per_op[i],
            overhead_per_traced_call: overhead_per_traced_call[i],
            slowdown_pct: slowdown_pct[i],
            functions: functions[i].map_or(
                tracelab_model::cell_id::Functions::ONE,
                tracelab_model::cell_id::Functions::from_column,
            ),
            other_tracers: other_tracers[i].unwrap_or(0),
            attach_time: attach_time[i],
            detach_time: detach_time[i],
            attach_thread_time: attach_thread_time[i],
            detach_thread_time: detach_thread_time[i],
            stack_depth: stack_depth[i],
        })
        .collect();
    Ok(rows)
}

/// Per-cell counter summaries: cell → (per call armed, overhead), by counter.
pub type CounterSummaries = BTreeMap<u32, (BTreeMap<String, f64>, BTreeMap<String, f64>)>;

/// Reads `counter_summary.parquet` (the inverse of [`counter_summary_frame`]).
pub fn read_counter_summary(path: &Path) -> Result<CounterSummaries> {
    let df = read_frame(path)?;
    let cell = numbers::<UInt32Type>(&df, "cell")?;
    let counter = required(strings(&df, "counter")?, "counter")?;
    let per_call = numbers::<Float64Type>(&df, "per_call")?;
    let overhead = numbers::<Float64Type>(&df, "overhead")?;
    let mut out = CounterSummaries::new();
    for i in 0..df.height() {
        let entry = out.entry(cell[i].unwrap_or_default()).or_default();
        if let Some(v) = per_call[i] {
            entry.0.insert(counter[i].clone(), v);
        }
        if let Some(v) = overhead[i] {
            entry.1.insert(counter[i].clone(), v);
        }
    }
    Ok(out)
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
