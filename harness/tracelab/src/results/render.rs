//! Text views of a run (`tracelab show --format ...`; `table` ends `tracelab run`).
//! Figures keep the cell's unit; CSV and JSON keep full precision, the table and
//! Markdown round to two decimals for reading.

use super::meta::RunMeta;
use super::row::{one_line, rows, SummaryRow, COLUMNS};
use crate::render::table::csv_text;
use crate::render::{escape_markdown, fixed, Format, Table};
use anyhow::{Context, Result};
use tracelab_model::cell::Cell;
use tracelab_model::schema::Unit;
use tracelab_model::workload::Workload;

/// Renders a run's cells (as `tracelab run` ends).
pub fn render(meta: &RunMeta, cells: &[Cell], format: Format) -> Result<String> {
    render_rows(meta, &rows(cells), format)
}

/// Renders a run's summary rows (`tracelab show`, which reads them from Parquet).
pub fn render_rows(meta: &RunMeta, rows: &[SummaryRow], format: Format) -> Result<String> {
    match format {
        Format::Table => Ok(table(meta, rows)),
        Format::Markdown => Ok(markdown(meta, rows)),
        Format::Csv => Ok(csv(rows)),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&rows).context("serializing cells")?;
            s.push('\n');
            Ok(s)
        }
    }
}

/// The unit shared by every row, or None when rows mix units (then each row shows its
/// own). A run without rows falls back to the unit it was started with.
fn common_unit(meta: &RunMeta, rows: &[SummaryRow]) -> Option<Unit> {
    match rows.first() {
        None => Some(meta.unit),
        Some(first) => rows
            .iter()
            .all(|r| r.unit == first.unit)
            .then_some(first.unit),
    }
}

fn header_line(meta: &RunMeta, rows: &[SummaryRow], unit: Option<Unit>) -> String {
    let release = meta
        .kernel_release
        .clone()
        .or_else(|| rows.iter().find_map(|r| r.kernel_release.clone()));
    let kernel = match release {
        Some(r) if r != meta.kernel => format!("{r} ({})", meta.kernel),
        Some(r) => r,
        None => format!("{} (release unknown)", meta.kernel),
    };
    let unit = match unit {
        Some(u) => u.to_string(),
        None => "mixed (see unit column)".to_string(),
    };
    // A macro workload's loop counts operations, and its figures are per operation.
    let calls = match meta.workload.parse::<Workload>() {
        Ok(w) if w.is_macro() => "operations (figures per operation)",
        _ => "calls",
    };
    // In a guest each cell makes the calls that fit between two ticks, at most the plan's.
    let (fewest_calls, most_calls) = rows
        .iter()
        .filter_map(|r| r.calls)
        .fold((u64::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c)));
    let per_loop = if most_calls == 0 || (fewest_calls, most_calls) == (meta.calls, meta.calls) {
        format!("{} {calls}", meta.calls)
    } else {
        let range = if fewest_calls == most_calls {
            fewest_calls.to_string()
        } else {
            format!("{fewest_calls}–{most_calls}")
        };
        format!(
            "{range} {calls} per loop (each cell: the most of {} that fit between two timer ticks)",
            meta.calls
        )
    };
    let mut line = format!(
        "arch {}, kernel {}, workload {}, {per_loop} × {} repeats, unit {}, clock {}",
        meta.arch, kernel, meta.workload, meta.repeats, unit, meta.clock
    );
    if meta.vcpus() != 1 {
        line.push_str(&format!(
            "; {} vCPUs: the agent on CPU 0, the workload's peer on CPU 1 (under icount a figure counts the instructions both CPUs ran during the loop, cross-CPU wake-ups included; not parallel time, not cache contention)",
            meta.vcpus()
        ));
    }
    // What the two interval columns are, for the figures shown (no interval is called a
    // 95% CI below the pairs a bootstrap needs).
    let fewest = rows
        .iter()
        .filter_map(|r| r.repeats)
        .filter(|&n| n > 0)
        .min();
    if let Some(a) = meta
        .extra
        .get("adaptive")
        .and_then(|v| serde_json::from_value::<tracelab_model::plan::Adaptive>(v.clone()).ok())
    {
        line.push_str(&format!(
            "; repeats adapt: after {} pairs, more until the 95% CI half-width is at most max(0.5 ns, 1% of the overhead), at most {} pairs or {} s per cell (a cell that stopped short says so in `reason`)",
            meta.repeats, a.max_repeats, a.budget_secs
        ));
    }
    if let Some(n) = fewest {
        let n = usize::try_from(n).unwrap_or(0);
        if n < tracelab_model::stats::MIN_CI_PAIRS {
            let cover = tracelab_model::stats::range_coverage(n).unwrap_or(0.0) * 100.0;
            line.push_str(&format!(
                "; min..max is the range of {n} paired overheads (it covers the median with probability {cover:.0}%); no 95% CI below {} pairs",
                tracelab_model::stats::MIN_CI_PAIRS
            ));
        }
    }
    line
}

/// The summary table shared by the text and Markdown views.
fn grid(rows: &[SummaryRow], unit: Option<Unit>) -> Table {
    let u = |name: &str| match unit {
        Some(unit) => format!("{name} ({unit})"),
        None => name.to_string(),
    };
    // Payload, stack and the kernel's own figure only when some row has them (BPF).
    let bpf = rows.iter().any(|r| r.payload.is_some() || r.stack != 1);
    let kernel = rows.iter().any(|r| r.kernel_run_time.is_some());
    // The macro workloads' operation spans several kernel functions: per traced call and
    // the slowdown say what the per-operation figure hides.
    let ops = rows
        .iter()
        .any(|r| r.workload.parse::<Workload>().is_ok_and(Workload::is_macro));
    // The functions axis: how many, and what attaching and detaching them took.
    let many = rows.iter().any(|r| !r.functions.is_one());
    // The other-tracers axis: how many were beside the cell.
    let beside = rows.iter().any(|r| r.other_tracers != 0);
    // The stack-trace payloads: how deep the stacks they took were.
    let stacks = rows.iter().any(|r| r.stack_depth.is_some());
    let mut headers = vec!["mechanism".to_string()];
    let mut numeric = vec![false];
    if bpf {
        headers.extend(["payload".to_string(), "stack".to_string()]);
        numeric.extend([false, true]);
    }
    if stacks {
        headers.push("frames/stack".to_string());
        numeric.push(true);
    }
    if many {
        headers.extend(["functions".to_string(), u("attach"), u("detach")]);
        numeric.extend([true, true, true]);
    }
    if beside {
        headers.push("other tracers".to_string());
        numeric.push(true);
    }
    headers.extend([
        "status".to_string(),
        u("per call"),
        u("baseline"),
        u("overhead"),
        u("95% CI"),
        u("min..max"),
        "fired/expected".to_string(),
    ]);
    numeric.extend([false, true, true, true, true, true, true]);
    if ops {
        headers.extend([
            "traced/op".to_string(),
            u("per traced call"),
            "slowdown %".to_string(),
        ]);
        numeric.extend([true, true, true]);
    }
    if kernel {
        headers.push(u("bpf stats/run"));
        numeric.push(true);
    }
    if unit.is_none() {
        headers.push("unit".to_string());
        numeric.push(false);
    }
    headers.push("reason".to_string());
    numeric.push(false);

    let mut table = Table::new(headers, numeric);
    for line in rows.iter().map(|r| {
        let mut line = vec![r.mechanism.clone()];
        if bpf {
            line.push(r.payload.clone().unwrap_or_else(|| "-".to_string()));
            line.push(r.stack.to_string());
        }
        if stacks {
            line.push(num(r.stack_depth));
        }
        if many {
            line.extend([
                r.functions.to_string(),
                millions(r.attach_time),
                millions(r.detach_time),
            ]);
        }
        if beside {
            line.push(r.other_tracers.to_string());
        }
        line.extend([
            r.status.to_string(),
            num(r.per_call),
            num(r.baseline_per_call),
            num(r.overhead),
            match (r.overhead_ci_low, r.overhead_ci_high) {
                (None, None) => "-".to_string(),
                (lo, hi) => format!("{}..{}", num(lo), num(hi)),
            },
            match (r.overhead_min, r.overhead_max) {
                (None, None) => "-".to_string(),
                (lo, hi) => format!("{}..{}", num(lo), num(hi)),
            },
            match (r.fired, r.expected_fired) {
                (None, None) => "-".to_string(),
                (f, e) => format!("{}/{}", int(f), int(e)),
            },
        ]);
        if ops {
            line.extend([
                int(r.traced_per_op),
                num(r.overhead_per_traced_call),
                num(r.slowdown_pct),
            ]);
        }
        if kernel {
            line.push(num(r.kernel_run_time));
        }
        if unit.is_none() {
            line.push(r.unit.to_string());
        }
        line.push(r.reason.as_deref().map(one_line).unwrap_or_default());
        line
    }) {
        table.push(line);
    }
    table
}

/// A time that runs to billions of instructions, in millions (`1234.5M`).
fn millions(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{}M", fixed(x / 1e6, 1)))
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| fixed(x, 2))
}

fn int(x: Option<u64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn table(meta: &RunMeta, rows: &[SummaryRow]) -> String {
    let unit = common_unit(meta, rows);
    let t = grid(rows, unit);
    let mut out = header_line(meta, rows, unit);
    out.push_str("\n\n");
    out.push_str(&t.text(true));
    if t.is_empty() {
        out.push_str("(no cells)\n");
    }
    out.push_str(&unstable_lines(rows));
    out
}

fn markdown(meta: &RunMeta, rows: &[SummaryRow]) -> String {
    let unit = common_unit(meta, rows);
    let mut out = escape_markdown(&header_line(meta, rows, unit));
    out.push_str("\n\n");
    out.push_str(&grid(rows, unit).markdown());
    let unstable = unstable_lines(rows);
    if !unstable.is_empty() {
        out.push('\n');
        out.push_str(&escape_markdown(&unstable));
    }
    out
}

/// One line per `unstable` cell, under the table: never silently a median.
fn unstable_lines(rows: &[SummaryRow]) -> String {
    rows.iter()
        .filter_map(|r| {
            let why = r.unstable()?;
            let mut label = r.mechanism.clone();
            if let Some(p) = &r.payload {
                label = format!("{label}/{p}");
            }
            if r.stack != 1 {
                label = format!("{label} ×{}", r.stack);
            }
            Some(format!("unstable: {label}: {why}\n"))
        })
        .collect()
}

/// RFC 4180 CSV with the columns of `summary.parquet`; missing values are empty fields.
fn csv(rows: &[SummaryRow]) -> String {
    let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let f = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    let u = |x: Option<u64>| x.map(|x| x.to_string()).unwrap_or_default();
    let mut records = vec![header];
    for r in rows {
        let fields = [
            r.cell.to_string(),
            r.target.clone(),
            r.arch.clone(),
            r.kernel.clone(),
            opt(&r.kernel_release),
            r.mechanism.clone(),
            opt(&r.payload),
            r.stack.to_string(),
            r.workload.clone(),
            opt(&r.function),
            r.status.to_string(),
            opt(&r.reason),
            r.unit.to_string(),
            u(r.calls),
            r.repeats.map(|x| x.to_string()).unwrap_or_default(),
            f(r.per_call),
            f(r.baseline_per_call),
            f(r.overhead),
            f(r.overhead_min),
            f(r.overhead_max),
            f(r.overhead_ci_low),
            f(r.overhead_ci_high),
            r.outliers.map(|x| x.to_string()).unwrap_or_default(),
            u(r.fired),
            u(r.expected_fired),
            opt(&r.attach),
            f(r.kernel_run_time),
            u(r.traced_per_op),
            f(r.overhead_per_traced_call),
            f(r.slowdown_pct),
            r.functions.to_string(),
            r.other_tracers.to_string(),
            f(r.attach_time),
            f(r.detach_time),
            f(r.attach_thread_time),
            f(r.detach_thread_time),
            f(r.stack_depth),
        ];
        records.push(fields.to_vec());
    }
    csv_text(&records)
}
