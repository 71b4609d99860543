//! One stored cell: where it ran, what the agent measured, and the summary derived from
//! the samples (never stored without them).

use crate::schema::{CellContext, Measured, Status, SCHEMA_VERSION};
use crate::summary::Summary;
use serde::{Deserialize, Serialize};

/// One stored cell: context, raw measurement, derived summary, and for failures the
/// console tail that explains them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub schema_version: u32,
    #[serde(flatten)]
    pub context: CellContext,
    #[serde(flatten)]
    pub measured: Measured,
    pub summary: Option<Summary>,
    pub console_tail: Option<String>,
    /// Where the overhead goes by kernel symbol (`--attribution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::attribution::Breakdown>,
}

impl Cell {
    pub fn new(context: CellContext, measured: Measured, console_tail: Option<String>) -> Self {
        let mut summary = if measured.status == Status::Ok {
            crate::summary::summarize(&measured.samples)
        } else {
            None
        };
        // Cycles minus the clock is a check only where the clock counts instructions
        // and a cycle is one (icount); in real time it would subtract ns from cycles.
        if measured.unit != crate::schema::Unit::Insn {
            if let Some(s) = summary.as_mut() {
                s.cycles_minus_clock = None;
            }
        }
        if let Some(s) = summary.as_mut() {
            s.attach = crate::summary::attach_summary(&measured.attach_times);
            s.stack_depth = measured.stack_traces.and_then(|t| t.depth());
        }
        Cell {
            schema_version: SCHEMA_VERSION,
            context,
            measured,
            summary,
            console_tail,
            attribution: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Phase, Sample, Unit};

    fn cell(unit: Unit) -> Cell {
        let mut m = Measured::without_samples("kprobe", "getppid", unit, Status::Ok, String::new());
        m.reason = None;
        for (r, (base, armed)) in [(1000u64, 2000u64), (1000, 2000), (1000, 2000)]
            .into_iter()
            .enumerate()
        {
            let mut b = Sample::timed(r as u32, Phase::Baseline, 10, base, None);
            let mut a = Sample::timed(r as u32, Phase::Mechanism, 10, armed, Some(10));
            b.counters.insert("cycles".into(), base);
            a.counters.insert("cycles".into(), armed + 30);
            m.samples.extend([b, a]);
        }
        let context = CellContext {
            target: "vm:arm64/6.12".into(),
            arch: "arm64".into(),
            kernel: "6.12".into(),
            kernel_release: None,
        };
        Cell::new(context, m, None)
    }

    #[test]
    fn cycles_minus_clock_only_where_the_clock_counts_instructions() {
        let insn = cell(Unit::Insn).summary.expect("summary");
        assert_eq!(insn.cycles_minus_clock, Some(3.0));
        let ns = cell(Unit::Ns).summary.expect("summary");
        assert_eq!(ns.cycles_minus_clock, None);
    }
}
