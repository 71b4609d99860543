//! The native figures beside the agent's: per cell, the overhead and the baseline call
//! from the agent guest (insn) and from both native nights (ns of a clock that counts
//! instructions), and how far apart they are.

use crate::render::number::fixed;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tracelab_model::cell::Cell;
use tracelab_model::schema::Status;

/// How far a native figure may be from the agent's and still agree: 0.5%, or 1 insn for
/// figures so small that 0.5% of them is less than one instruction.
pub const TOLERANCE: f64 = 0.005;
const FLOOR: f64 = 1.0;

/// One cell on both sides.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub cell: String,
    /// Overhead per call: agent guest (insn), native night 1 and night 2 (ns = insn).
    pub agent: Option<f64>,
    pub native: Option<f64>,
    pub native_2: Option<f64>,
    /// The baseline loop's cost of one call, agent and native night 1.
    pub agent_baseline: Option<f64>,
    pub native_baseline: Option<f64>,
    /// Status of a side that did not measure (`unsupported: …`, `failed: …`).
    pub note: Option<String>,
}

impl Row {
    /// Native night 1 against the agent, relative.
    pub fn diff(&self) -> Option<f64> {
        relative(self.native?, self.agent?)
    }

    /// Night 2 against night 1, relative.
    pub fn nights_diff(&self) -> Option<f64> {
        relative(self.native_2?, self.native?)
    }

    /// Both sides measured and agree within [`TOLERANCE`] (or [`FLOOR`] insn); a cell
    /// both sides report unsupported for the same reason agrees too.
    pub fn agrees(&self) -> bool {
        match (self.agent, self.native) {
            (Some(a), Some(n)) => (n - a).abs() <= (TOLERANCE * a.abs()).max(FLOOR),
            (None, None) => self.note.as_deref().is_some_and(|n| n.starts_with("both ")),
            _ => false,
        }
    }
}

fn relative(x: f64, base: f64) -> Option<f64> {
    (base.abs() > f64::EPSILON).then(|| (x - base) / base.abs())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Table {
    pub rows: Vec<Row>,
}

fn by_label(cells: &[Cell]) -> BTreeMap<String, &Cell> {
    cells.iter().map(|c| (c.measured.id().label(), c)).collect()
}

fn figures(c: Option<&&Cell>) -> (Option<f64>, Option<f64>) {
    c.and_then(|c| c.summary.as_ref())
        .map_or((None, None), |s| {
            (Some(s.overhead), Some(s.baseline_per_call))
        })
}

fn status(c: Option<&&Cell>) -> String {
    match c {
        None => "missing".into(),
        Some(c) => format!(
            "{}: {}",
            c.measured.status.name(),
            c.measured.reason.as_deref().unwrap_or("")
        ),
    }
}

/// Joins the agent's cells with the native nights under `native` (`night-1`, `night-2`).
pub(super) fn build(agent: &[Cell], native: &Path) -> Result<Table> {
    let load = |night: &str| {
        let dir = native.join(night);
        crate::results::load(&dir)
            .map(|(_, cells)| cells)
            .with_context(|| format!("the native results of {night}"))
    };
    let (one, two) = (load("night-1")?, load("night-2")?);
    let (agent, one, two) = (by_label(agent), by_label(&one), by_label(&two));
    let mut rows = Vec::new();
    for (label, a) in &agent {
        let n = one.get(label);
        let (agent_overhead, agent_baseline) = figures(Some(a));
        let (native, native_baseline) = figures(n);
        let (native_2, _) = figures(two.get(label));
        let ok = |c: Option<&&Cell>| c.is_some_and(|c| c.measured.status == Status::Ok);
        let note = match (ok(Some(a)), ok(n)) {
            (true, true) => None,
            (false, false) if n.is_some_and(|n| n.measured.status == a.measured.status) => {
                Some(format!("both {}", status(Some(a))))
            }
            (false, _) => Some(format!("agent {}", status(Some(a)))),
            (true, false) => Some(format!("native {}", status(n))),
        };
        rows.push(Row {
            cell: label.clone(),
            agent: agent_overhead,
            native,
            native_2,
            agent_baseline,
            native_baseline,
            note,
        });
    }
    Ok(Table { rows })
}

impl Table {
    pub fn agreeing(&self) -> usize {
        self.rows.iter().filter(|r| r.agrees()).count()
    }

    pub fn markdown(&self) -> String {
        let pct = |d: Option<f64>| d.map_or("–".to_string(), |d| format!("{:+.2}%", d * 100.0));
        let num = |x: Option<f64>| x.map_or("–".to_string(), |x| fixed(x, 2));
        let mut s = String::from(
            "Overhead and baseline per call. Agent: the static agent in the lab's busybox guest (insn, QEMU icount). \
             Native: `tracelab run --target local` in the Debian userland guest of the same kernel; its clock is real \
             time (ns) in a guest where 1 ns is 1 instruction, so its figures are instructions too.\n\n\
             | cell | agent overhead (insn) | native overhead (ns = insn) | native − agent | night 2 − night 1 | agent baseline (insn) | native baseline (ns = insn) | agrees (0.5%) |\n\
             |---|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let verdict = if r.agrees() { "yes" } else { "no" };
            let note = r
                .note
                .as_deref()
                .map(|n| format!(" ({})", n.trim_end_matches([':', ' '])))
                .unwrap_or_default();
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {verdict}{note} |\n",
                r.cell,
                num(r.agent),
                num(r.native),
                pct(r.diff()),
                pct(r.nights_diff()),
                num(r.agent_baseline),
                num(r.native_baseline),
            ));
        }
        s.push_str(&format!(
            "\n{} of {} cells agree within 0.5% (or 1 insn).\n",
            self.agreeing(),
            self.rows.len()
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(agent: Option<f64>, native: Option<f64>, note: Option<&str>) -> Row {
        Row {
            cell: "kprobe".into(),
            agent,
            native,
            native_2: native,
            agent_baseline: Some(300.0),
            native_baseline: Some(300.0),
            note: note.map(String::from),
        }
    }

    #[test]
    fn agreement_is_half_a_percent_or_one_instruction() {
        assert!(row(Some(1000.0), Some(1004.9), None).agrees());
        assert!(!row(Some(1000.0), Some(1005.1), None).agrees());
        assert!(row(Some(100.0), Some(100.9), None).agrees());
        assert!(!row(Some(100.0), Some(101.2), None).agrees());
        assert!(row(
            None,
            None,
            Some("both unsupported: CONFIG_FPROBE is not set")
        )
        .agrees());
        assert!(!row(None, None, Some("agent failed: x")).agrees());
        assert!(!row(Some(1.0), None, Some("native failed: x")).agrees());
        let r = row(Some(1000.0), Some(1010.0), None);
        assert!((r.diff().expect("diff") - 0.01).abs() < 1e-12);
        assert_eq!(r.nights_diff(), Some(0.0));
        let t = Table { rows: vec![r] };
        let md = t.markdown();
        assert!(
            md.contains("| kprobe | 1000.00 | 1010.00 | +1.00% | +0.00% |"),
            "{md}"
        );
        assert!(md.contains("0 of 1 cells agree"), "{md}");
    }
}
