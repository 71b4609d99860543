//! Bencher Metric Format: `{benchmark: {measure: {value, lower_value, upper_value}}}`, one
//! benchmark per cell (`x86_64/6.12/getppid/kprobe`), its measure named with its unit
//! (`overhead-insn-per-call`, `overhead-ns-per-call`: Bencher keeps a measure's unit by
//! name), bounded by the pairs' min and max. A cell without a figure cannot be written.

use super::{Export, Exported};
use anyhow::Result;
use serde_json::{json, Map, Value};

pub(super) fn render(cells: &[Exported]) -> Result<Export> {
    let mut benchmarks = Map::new();
    let (measured, left_out) = super::measured(cells);
    for (c, value) in measured {
        let r = &c.row;
        let mut metric = Map::new();
        metric.insert("value".into(), json!(value));
        if let Some(lo) = r.overhead_min.filter(|v| v.is_finite()) {
            metric.insert("lower_value".into(), json!(lo));
        }
        if let Some(hi) = r.overhead_max.filter(|v| v.is_finite()) {
            metric.insert("upper_value".into(), json!(hi));
        }
        let measure = format!("overhead-{}-per-call", r.unit);
        benchmarks.insert(c.name.clone(), json!({ measure: Value::Object(metric) }));
    }
    Ok(Export {
        text: serde_json::to_string_pretty(&Value::Object(benchmarks))? + "\n",
        left_out,
    })
}
