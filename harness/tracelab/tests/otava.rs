//! `history`'s change points beside Apache Otava's (PyPI `apache-otava`, the change-point
//! tool born at MongoDB as Hunter: E-divisive means with a t-test), on the same series:
//! synthetic ones with known steps, and a store of three nights through the whole
//! `history` path. Where the two agree the test says so; where they differ it asserts the
//! difference and the reason, printed as a table (`cargo test --test otava -- --nocapture`).
//!
//! Otava runs in the venv `./lab test` makes (`TRACELAB_PYTHON`), with its defaults
//! (window 50, p ≤ 0.001, no minimum magnitude); `history` with its defaults (1% and 1 insn).

use serde_json::json;
use std::collections::BTreeMap;
use tracelab::history::{self, changepoint};
use tracelab::synthetic::{self, CellSpec};
use tracelab_model::schema::Unit;

/// Otava's change points (indices of the first value of each new level) of each series.
fn otava(cases: &BTreeMap<&str, Vec<f64>>) -> BTreeMap<String, Vec<usize>> {
    let python = std::env::var_os("TRACELAB_PYTHON").expect(
        "TRACELAB_PYTHON is not set: run the tests with `./lab test` (it makes the venv with apache-otava)",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("cases.json");
    std::fs::write(&input, json!(cases).to_string()).expect("write");
    let script = r#"
import json, sys
from otava.series import AnalysisOptions, Metric, Series
out = {}
for name, values in json.load(open(sys.argv[1])).items():
    s = Series(name, None, list(range(len(values))), {"v": Metric(1, 1.0, "insn")},
               {"v": [float(v) for v in values]}, {})
    out[name] = [int(c.index) for c in s.analyze(AnalysisOptions()).change_points.get("v", [])]
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&input)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "otava: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("otava's answer")
}

/// `history`'s change points of one series of exact nights (no spread of their own).
fn ours(values: &[f64], relative: f64) -> Vec<usize> {
    let sigma = changepoint::noise_scale(values, &vec![0.0; values.len()]);
    changepoint::detect(
        values,
        changepoint::Settings {
            sigma,
            relative,
            floor: 1.0,
        },
    )
    .iter()
    .map(|c| c.at)
    .collect()
}

/// A deterministic noise of ±`amplitude` (relative) around `level`.
fn noisy(level: f64, amplitude: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| level * (1.0 + amplitude * (2.0 * rng.f64() - 1.0)))
        .collect()
}

fn repeat(v: f64, n: usize) -> Vec<f64> {
    vec![v; n]
}

#[test]
fn history_and_otava_on_the_same_series() {
    let mut cases: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    cases.insert(
        "exact, two steps",
        [repeat(818.86, 12), repeat(830.0, 10), repeat(845.0, 8)].concat(),
    );
    cases.insert(
        "±0.5% noise, a 3% step",
        [noisy(100.0, 0.005, 20, 1), noisy(103.0, 0.005, 20, 2)].concat(),
    );
    cases.insert(
        "exact, a 0.5% step",
        [repeat(818.86, 15), repeat(822.95, 15)].concat(),
    );
    cases.insert(
        "exact, one night off",
        [repeat(818.86, 10), vec![830.0], repeat(818.86, 10)].concat(),
    );
    let theirs = otava(&cases);
    let mut table = vec![format!(
        "{:<24} {:>10} {:>10}",
        "series", "history", "otava"
    )];
    for (name, values) in &cases {
        table.push(format!(
            "{name:<24} {:>10} {:>10}",
            format!("{:?}", ours(values, 0.01)),
            format!("{:?}", theirs[*name])
        ));
    }
    eprintln!("{}", table.join("\n"));
    // Both find the steps, at the same nights.
    assert_eq!(ours(&cases["exact, two steps"], 0.01), [12, 22]);
    assert_eq!(theirs["exact, two steps"], [12, 22]);
    assert_eq!(ours(&cases["±0.5% noise, a 3% step"], 0.01), [20]);
    assert_eq!(theirs["±0.5% noise, a 3% step"], [20]);
    // Otava has no threshold: it reports a 0.5% step that `history` leaves below its
    // default 1%; asked for 0.1%, `history` finds it at the same night. Exact icount data
    // makes a lower threshold safe: a step of 4 insn is real there.
    assert_eq!(theirs["exact, a 0.5% step"], [15]);
    assert!(ours(&cases["exact, a 0.5% step"], 0.01).is_empty());
    assert_eq!(ours(&cases["exact, a 0.5% step"], 0.001), [15]);
    // One night off and back: neither calls it a change of level.
    assert!(theirs["exact, one night off"].is_empty());
    assert!(ours(&cases["exact, one night off"], 0.01).is_empty());
}

/// A store of three exact nights whose newest is 1.4% higher: `history` (the whole path:
/// store, series, analysis) reports it as a regression in the newest night; Otava, given
/// the same three values, finds the same night.
#[test]
fn a_store_of_three_nights() {
    let store = tempfile::tempdir().expect("tempdir");
    for (night, value) in [
        ("2026-12-04-1", 818.86),
        ("2026-12-05-1", 818.86),
        ("2026-12-06-1", 830.0),
    ] {
        let run = synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[CellSpec::ok("kprobe", value)],
            3,
        );
        synthetic::write_dataset(&store.path().join(format!("night={night}")), &[run])
            .expect("night");
    }
    let (nights, series) = history::load(store.path(), history::Grouping::default()).expect("load");
    let h = history::analyse(nights, &series, 0.01, 1.0);
    let kprobe: Vec<&history::Found> = h
        .changes
        .iter()
        .filter(|c| c.key.mechanism == "kprobe")
        .collect();
    assert_eq!(kprobe.len(), 1, "{:?}", h.changes);
    assert_eq!(kprobe[0].night, "2026-12-06-1");
    assert!(kprobe[0].regression && kprobe[0].newest);
    let values: Vec<f64> = series
        .iter()
        .find(|s| s.key.mechanism == "kprobe")
        .expect("the kprobe series")
        .points
        .iter()
        .map(|p| p.value)
        .collect();
    let theirs = otava(&BTreeMap::from([("three nights", values)]));
    assert_eq!(theirs["three nights"], [2]);
}
