//! A KCIDB submission (I/O schema v5.3). The kernel under test is a checkout (its Debian
//! release), each arch's Debian build of it a build, and every cell a test:
//! - `path` `tracelab.<workload>.<cell label, dots for slashes>`;
//! - `status` DONE when measured (a figure, not a verdict), SKIP when the kernel lacks
//!   the mechanism, ERROR when the lab could not measure it (the reason in `misc`);
//! - `number` the overhead per call: `insn` as it is, real time in seconds with the
//!   `metric` prefix (so dashboards print ns);
//! - `misc` the unit, the clock, the pairs' min and max, the calls per loop and the axes.
//!
//! Ids are stable for a run: `<origin>:debian-<source version>` (the release where the
//! package is unknown), `<origin>:<arch>/<release>`, `<origin>:<run id>/<cell name>`.

use super::{base_unit, Exported};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tracelab_model::schema::{Status, Unit};

pub(super) fn render(cells: &[Exported], origin: &str) -> Result<String> {
    let mut checkouts = BTreeMap::new();
    let mut builds = BTreeMap::new();
    let mut tests = Vec::new();
    for c in cells {
        let release = c.kernel_release.clone().unwrap_or_else(|| c.kernel.clone());
        // One source tree for every arch's build of it: Debian's source version where the
        // run knew its package (`linux-image-… 6.12.118-1~deb12u1`), else the release.
        let source = c
            .kernel_package
            .as_deref()
            .and_then(|p| p.split_whitespace().nth(1))
            .map_or_else(|| release.clone(), |v| format!("debian-{v}"));
        let checkout_id = format!("{origin}:{source}");
        checkouts.entry(checkout_id.clone()).or_insert_with(|| {
            json!({
                "id": checkout_id,
                "origin": origin,
                "tree_name": "debian",
                "misc": {"kernel_line": c.kernel, "source": source},
            })
        });
        let build_id = format!("{origin}:{}/{release}", c.arch);
        builds.entry(build_id.clone()).or_insert_with(|| {
            let mut misc = Map::new();
            if let Some(p) = &c.kernel_package {
                misc.insert("kernel_package".into(), json!(p));
            }
            json!({
                "id": build_id,
                "origin": origin,
                "checkout_id": checkout_id,
                "architecture": kcidb_arch(&c.arch),
                "config_name": "debian",
                "status": "PASS",
                "misc": misc,
            })
        });
        let r = &c.row;
        let status = match r.status {
            Status::Ok => "DONE",
            Status::Unsupported => "SKIP",
            Status::Failed => "ERROR",
        };
        let mut misc = Map::new();
        misc.insert("unit".into(), json!(r.unit.to_string()));
        misc.insert("clock".into(), json!(c.clock));
        misc.insert("cell".into(), json!(c.label));
        misc.insert("workload".into(), json!(c.workload));
        misc.insert("mechanism".into(), json!(r.mechanism));
        if let Some(p) = &r.payload {
            misc.insert("payload".into(), json!(p));
        }
        misc.insert("stack".into(), json!(r.stack));
        misc.insert("functions".into(), json!(r.functions.to_string()));
        misc.insert("other_tracers".into(), json!(r.other_tracers));
        for (k, v) in [
            ("calls_per_loop", r.calls.map(|n| json!(n))),
            ("repeats", r.repeats.map(|n| json!(n))),
            ("overhead_min", finite(r.overhead_min)),
            ("overhead_max", finite(r.overhead_max)),
            ("reason", r.reason.as_ref().map(|s| json!(s))),
        ] {
            if let Some(v) = v {
                misc.insert(k.into(), v);
            }
        }
        let mut test = json!({
            "id": format!("{origin}:{}/{}", c.run_id, c.name),
            "origin": origin,
            "build_id": build_id,
            "path": test_path(&c.workload, &c.label),
            "status": status,
            "misc": misc,
        });
        if let (Status::Ok, Some(v)) = (r.status, finite(r.overhead)) {
            let v = v.as_f64().unwrap_or_default();
            test["number"] = match r.unit {
                Unit::Insn => json!({"value": v, "unit": "insn"}),
                Unit::Ns => {
                    let (s, _) = base_unit(v, r.unit);
                    json!({"value": s, "unit": "s", "prefix": "metric"})
                }
            };
        }
        tests.push(test);
    }
    let doc = json!({
        "version": {"major": 5, "minor": 3},
        "checkouts": checkouts.into_values().collect::<Vec<Value>>(),
        "builds": builds.into_values().collect::<Vec<Value>>(),
        "tests": tests,
    });
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

fn finite(v: Option<f64>) -> Option<Value> {
    v.filter(|v| v.is_finite()).map(|v| json!(v))
}

/// KCIDB's architecture names the kernel's (`x86_64`, `arm64`): already the lab's.
fn kcidb_arch(arch: &str) -> String {
    arch.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `tracelab.getppid.bpf-fentry.count.k1`: KCIDB's dot-separated path, each part of
/// letters, digits, `_` and `-`.
pub(super) fn test_path(workload: &str, label: &str) -> String {
    std::iter::once("tracelab")
        .chain(std::iter::once(workload))
        .chain(label.split('/'))
        .map(|part| {
            part.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(".")
}
