//! github-action-benchmark's custom JSON (`tool: customSmallerIsBetter`): a list of
//! `{name, unit, value, range, extra}`, one per measured cell, `range` the farther of the
//! pairs' min and max from the median (`± x`), `extra` the release and calls per loop.

use super::{Export, Exported};
use anyhow::Result;
use serde_json::{json, Value};

pub(super) fn render(cells: &[Exported]) -> Result<Export> {
    let mut list = Vec::new();
    let (measured, left_out) = super::measured(cells);
    for (c, value) in measured {
        let r = &c.row;
        let reach = [r.overhead_min, r.overhead_max]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .map(|v| (v - value).abs())
            .fold(0.0, f64::max);
        list.push(json!({
            "name": c.name,
            "unit": format!("{} per call", r.unit),
            "value": value,
            "range": format!("± {reach}"),
            "extra": format!(
                "{}; {} calls per loop × {} repeats",
                c.kernel_release.as_deref().unwrap_or(&c.kernel),
                r.calls.map_or("?".to_string(), |n| n.to_string()),
                r.repeats.map_or("?".to_string(), |n| n.to_string()),
            ),
        }));
    }
    Ok(Export {
        text: serde_json::to_string_pretty(&Value::Array(list))? + "\n",
        left_out,
    })
}
