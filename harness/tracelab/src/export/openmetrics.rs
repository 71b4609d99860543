//! OpenMetrics text: one gauge family per unit (`tracelab_overhead_instructions`,
//! `tracelab_overhead_seconds`, each sample's `stat` the median or the pairs' min or
//! max), and an info family with every cell's status and reason, measured or not.

use super::{base_unit, Exported};
use std::fmt::Write;
use tracelab_model::schema::{Status, Unit};

pub(super) fn render(cells: &[Exported]) -> String {
    let mut out = String::new();
    for unit in [Unit::Insn, Unit::Ns] {
        let of_unit: Vec<&Exported> = cells
            .iter()
            .filter(|c| c.row.unit == unit && c.row.status == Status::Ok)
            .collect();
        if of_unit.is_empty() {
            continue;
        }
        let (_, name) = base_unit(0.0, unit);
        let family = format!("tracelab_overhead_{name}");
        let clock = match unit {
            Unit::Insn => "guest instructions under QEMU -icount",
            Unit::Ns => "real time",
        };
        let _ = writeln!(out, "# TYPE {family} gauge");
        let _ = writeln!(out, "# UNIT {family} {name}");
        let _ = writeln!(
            out,
            "# HELP {family} What a tracing mechanism adds per traced call ({clock}; stat: the median of the paired overheads, or their min or max)."
        );
        for c in of_unit {
            let r = &c.row;
            for (stat, v) in [
                ("median", r.overhead),
                ("min", r.overhead_min),
                ("max", r.overhead_max),
            ] {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    let (v, _) = base_unit(v, unit);
                    let _ = writeln!(out, "{family}{{{},stat=\"{stat}\"}} {v}", labels(c));
                }
            }
        }
    }
    if !cells.is_empty() {
        let _ = writeln!(out, "# TYPE tracelab_cell info");
        let _ = writeln!(
            out,
            "# HELP tracelab_cell Every cell and its status: ok (measured), unsupported (the kernel lacks it) or failed, with the reason."
        );
        for c in cells {
            let _ = writeln!(
                out,
                "tracelab_cell_info{{{},status=\"{}\",reason=\"{}\"}} 1",
                labels(c),
                c.row.status,
                escape(c.row.reason.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The cell's axes as label pairs.
fn labels(c: &Exported) -> String {
    let r = &c.row;
    let mut pairs = vec![
        // Unique per cell, also across datasets side by side.
        ("name", c.name.clone()),
        ("arch", c.arch.clone()),
        ("kernel", c.kernel.clone()),
        (
            "kernel_release",
            c.kernel_release.clone().unwrap_or_default(),
        ),
        ("workload", c.workload.clone()),
        ("cell", c.label.clone()),
        ("mechanism", r.mechanism.clone()),
        ("payload", r.payload.clone().unwrap_or_default()),
        ("stack", r.stack.to_string()),
        ("functions", r.functions.to_string()),
        ("other_tracers", r.other_tracers.to_string()),
    ];
    pairs.retain(|(_, v)| !v.is_empty());
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label value as OpenMetrics writes it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
