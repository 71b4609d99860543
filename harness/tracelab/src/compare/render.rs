//! Text views of a comparison: Markdown (a CI job summary), JSON (machines), and an
//! aligned table (terminals). Figures keep each cell's unit; the unit is a column, since
//! one comparison may span `insn` and `ns` cells.

use super::{CompareReport, Comparison, Interval, IntervalKind, Verdict};
use crate::render::{escape_markdown, fixed, signed as signed_fixed, Format, Table};
use anyhow::{Context, Result};

pub fn render(report: &CompareReport, format: Format) -> Result<String> {
    match format {
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(report).context("serializing the comparison")?;
            s.push('\n');
            Ok(s)
        }
        Format::Markdown => Ok(markdown(report)),
        Format::Table => Ok(table(report)),
        Format::Csv => {
            let (headers, rows) = columns(report);
            let mut t = Table::new(headers.iter().map(|h| h.to_string()).collect(), vec![]);
            for r in rows {
                t.push(r);
            }
            Ok(t.csv())
        }
    }
}

/// `12 regressed, 3 improved, …` in the fixed verdict order (over every cell, those a
/// view leaves out too).
pub fn counts_line(report: &CompareReport) -> String {
    Verdict::ALL
        .iter()
        .map(|v| {
            let n = report
                .counts
                .get(&v.name().replace(' ', "_"))
                .copied()
                .unwrap_or_else(|| report.cells.iter().filter(|c| c.verdict == *v).count());
            format!("{n} {v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line that says which one-sided cells a view left out.
fn one_sided_line(report: &CompareReport) -> Option<String> {
    let (b, c) = report.one_sided?;
    (b + c > 0).then(|| {
        format!("{b} cells only in the baseline and {c} only in the candidate are not listed (--all lists them)")
    })
}

fn threshold_line(report: &CompareReport) -> String {
    let t = &report.threshold;
    let mut line = format!(
        "threshold: {}% of the baseline overhead, at least {} per call in the cell's unit; \
         a change counts only when the baseline and candidate intervals do not overlap \
         (interval: 95% CI where stored, else min..max over repeats)",
        trim(t.relative * 100.0),
        trim(t.floor)
    );
    if report.cells.iter().any(|c| c.test.is_some()) {
        line.push_str(
            "; real-time cells: Mann–Whitney U test of the paired overheads (two-sided p), \
             shift = Hodges–Lehmann estimate with its 95% interval",
        );
    }
    line
}

fn test_text(c: &Comparison) -> String {
    match &c.test {
        None => "-".into(),
        Some(t) => format!(
            "p {} ({}), shift {} [{}, {}]",
            if t.p < 1e-4 {
                format!("{:.1e}", t.p)
            } else {
                format!("{:.4}", t.p)
            },
            if t.exact { "exact" } else { "normal approx." },
            signed_fixed(t.shift, 2),
            signed_fixed(t.shift_low, 2),
            signed_fixed(t.shift_high, 2)
        ),
    }
}

/// A number without trailing zeros: `5`, `2.5`.
fn trim(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| signed_fixed(x, 2))
}

fn figure(overhead: Option<f64>, interval: Option<Interval>) -> String {
    match (overhead, interval) {
        (None, _) => "-".into(),
        (Some(o), None) => fixed(o, 2),
        (Some(o), Some(i)) if i.low == i.high => fixed(o, 2),
        (Some(o), Some(i)) => {
            let tag = match i.kind {
                IntervalKind::Ci95 => "",
                IntervalKind::MinMax => " min..max",
            };
            format!(
                "{} [{}, {}{tag}]",
                fixed(o, 2),
                fixed(i.low, 2),
                fixed(i.high, 2)
            )
        }
    }
}

fn relative(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| {
        format!(" ({}%)", signed_fixed(x * 100.0, 1))
    })
}

/// The columns shared by the Markdown and table views.
fn columns(report: &CompareReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let with_payload = report.cells.iter().any(|c| c.key.payload.is_some());
    let with_stack = report.cells.iter().any(|c| c.key.stack != 1);
    let with_test = report.cells.iter().any(|c| c.test.is_some());
    let mut headers = vec!["verdict", "arch", "kernel", "mechanism"];
    if with_payload {
        headers.push("payload");
    }
    if with_stack {
        headers.push("stack");
    }
    headers.extend([
        "workload",
        "unit",
        "baseline",
        "candidate",
        "change",
        "change interval",
    ]);
    if with_test {
        headers.push("rank test");
    }
    headers.push("note");
    let rows = report
        .cells
        .iter()
        .map(|c| row(c, with_payload, with_stack, with_test))
        .collect();
    (headers, rows)
}

fn row(c: &Comparison, with_payload: bool, with_stack: bool, with_test: bool) -> Vec<String> {
    let k = &c.key;
    let mut r = vec![
        c.verdict.to_string(),
        k.arch.clone(),
        k.kernel.clone(),
        k.mechanism.clone(),
    ];
    if with_payload {
        r.push(k.payload.clone().unwrap_or_else(|| "-".into()));
    }
    if with_stack {
        r.push(k.stack.to_string());
    }
    let unit = match (c.unit, &c.baseline, &c.candidate) {
        (Some(u), _, _) => u.to_string(),
        (None, Some(b), Some(k)) => format!("{} → {}", b.unit, k.unit),
        _ => "-".into(),
    };
    let side = |s: &Option<super::Side>| match s {
        Some(s) => figure(s.overhead, s.interval),
        None => "-".into(),
    };
    let interval = match (c.change_low, c.change_high) {
        (Some(lo), Some(hi)) => format!("[{}, {}]", signed_fixed(lo, 2), signed_fixed(hi, 2)),
        _ => "-".into(),
    };
    r.extend([
        k.workload.clone(),
        unit,
        side(&c.baseline),
        side(&c.candidate),
        format!("{}{}", signed(c.change), relative(c.relative_change)),
        interval,
    ]);
    if with_test {
        r.push(test_text(c));
    }
    let mut note = c
        .reason
        .as_deref()
        .map(crate::results::row::one_line)
        .unwrap_or_default();
    for (name, side) in [("baseline", &c.baseline), ("candidate", &c.candidate)] {
        if let Some(why) = side.as_ref().and_then(unstable) {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!("{name} unstable ({why})"));
        }
    }
    if !c.movers.is_empty() {
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&movers_line(c));
    }
    r.push(note);
    r
}

/// Why a side is `unstable`: its pairs (min..max, under icount) spread beyond
/// max(1 insn, 0.1 %), so its median is one of several modes.
fn unstable(s: &super::Side) -> Option<String> {
    let i = s.interval?;
    let o = s.overhead?;
    (i.kind == super::IntervalKind::MinMax
        && tracelab_model::summary::is_unstable(s.unit, i.low, i.high, o))
    .then(|| {
        format!(
            "pairs span {}..{}",
            crate::render::fixed(i.low, 2),
            crate::render::fixed(i.high, 2)
        )
    })
}

/// `by symbol (insn/call): +181.00 in rb_reserve, -3.00 in …`.
fn movers_line(c: &Comparison) -> String {
    format!("by symbol (insn/call): {}", movers_text(&c.movers))
}

/// `+181.00 in rb_reserve, -3.00 in …` (insn per call), or `-` for none.
pub fn movers_text(movers: &[super::Mover]) -> String {
    if movers.is_empty() {
        return "-".into();
    }
    movers
        .iter()
        .map(|m| format!("{} in {}", signed_fixed(m.change_insn, 2), m.symbol))
        .collect::<Vec<_>>()
        .join(", ")
}

fn markdown(report: &CompareReport) -> String {
    let esc = escape_markdown;
    let mut out = format!("## tracelab compare: {}\n\n", counts_line(report));
    out.push_str(&format!(
        "baseline `{}` · candidate `{}`\n\n{}.\n\n",
        esc(&report.baseline),
        esc(&report.candidate),
        threshold_line(report)
    ));
    if !report.environment.is_empty() {
        out.push_str("Environment differences (not verdicts):\n\n");
        for e in &report.environment {
            out.push_str(&format!("- {}\n", esc(e)));
        }
        out.push('\n');
    }
    let (headers, rows) = columns(report);
    let right = headers
        .iter()
        .map(|h| {
            matches!(
                *h,
                "stack" | "baseline" | "candidate" | "change" | "change interval"
            )
        })
        .collect();
    let mut t = Table::new(headers.iter().map(|h| h.to_string()).collect(), right);
    for mut r in rows {
        if let Some(v) = r.first_mut() {
            if v == "regressed" || v == "improved" {
                *v = format!("**{v}**");
            }
        }
        t.push(r);
    }
    out.push_str(&t.markdown());
    if t.is_empty() {
        out.push_str("\n(no cells on both sides)\n");
    }
    if let Some(line) = one_sided_line(report) {
        out.push_str(&format!("\n{line}.\n"));
    }
    out.push_str(&changes_section(report));
    out
}

/// Every regression and improvement in the 0-day spirit: what changed, by how much, on
/// which machine, kernel and config, and the command that measures it again.
fn changes_section(report: &CompareReport) -> String {
    let esc = escape_markdown;
    let moved: Vec<&Comparison> = report
        .cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Regressed | Verdict::Improved))
        .collect();
    if moved.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n### What changed\n\n");
    for c in moved {
        let (Some(b), Some(k)) = (&c.baseline, &c.candidate) else {
            continue;
        };
        let unit = c.unit.map(|u| u.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "- **{}** {}: {} → {} {unit}/call, {}{}, kernel {}, function {}, runs `{}` → `{}`{}\n",
            c.verdict,
            esc(&c.key.to_string()),
            figure(b.overhead, None),
            figure(k.overhead, None),
            signed(c.change),
            relative(c.relative_change),
            esc(k.kernel_release.as_deref().unwrap_or("unknown")),
            esc(k.function.as_deref().unwrap_or("-")),
            esc(&b.run_id),
            esc(&k.run_id),
            if c.test.is_some() {
                format!("; {}", test_text(c))
            } else {
                String::new()
            }
        ));
        if !c.movers.is_empty() {
            out.push_str(&format!("  {}\n", esc(&movers_line(c))));
        }
        if let Some(cmd) = &c.reproduce {
            out.push_str(&format!("  reproduce: `{cmd}`\n"));
        }
    }
    out
}

fn table(report: &CompareReport) -> String {
    let (headers, rows) = columns(report);
    let mut t = Table::new(headers.iter().map(|h| h.to_string()).collect(), vec![]);
    for r in rows {
        t.push(r);
    }
    let mut out = format!(
        "{}\nbaseline {} · candidate {}\n{}\n\n",
        counts_line(report),
        report.baseline,
        report.candidate,
        threshold_line(report)
    );
    for e in &report.environment {
        out.push_str(&format!("environment: {e}\n"));
    }
    if !report.environment.is_empty() {
        out.push('\n');
    }
    out.push_str(&t.text(false));
    if let Some(line) = one_sided_line(report) {
        out.push_str(&format!("{line}\n"));
    }
    out
}
