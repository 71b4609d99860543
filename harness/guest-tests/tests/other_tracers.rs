//! The other-tracers axis in real guests (`--other-tracers`): M trace instances, each
//! with the function tracer on one function of its own, beside the measured mechanism.
//! On arm64 6.1 (no per-callsite ftrace ops) every ftrace callsite walks the list of all
//! ops, so the function tracer's cost on getppid grows with M; a kprobe there is a
//! breakpoint and does not move. On 6.12 (per-callsite ops) neither moves.

mod common;

use serde_json::Value;

/// Runs function and kprobe beside 0 and 10 other tracers on `target`; returns the
/// overheads of (function, kprobe) at M = 0 and M = 10.
fn overheads(target: &str) -> [(f64, f64); 2] {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::study(
        &[
            "--target",
            target,
            "--mechanisms",
            "baseline,function,kprobe",
            "--other-tracers",
            "0,10",
            "--calls",
            "200",
            "--repeats",
            "1",
        ],
        dir.path(),
    );
    let cells: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r["mechanism"], r["other_tracers"]))
        .collect();
    assert_eq!(cells.len(), 1 + 2 * 2, "{cells:?}");
    let find = |m: &str, others: u64| -> f64 {
        let r: &Value = rows
            .iter()
            .find(|r| r["mechanism"] == m && r["other_tracers"] == others)
            .unwrap_or_else(|| panic!("{m} beside {others}: {cells:?}"));
        assert_eq!(r["status"], "ok", "{target}: {r}");
        assert_eq!(r["fired"], r["expected_fired"], "{target}: {r}");
        r["overhead"].as_f64().expect("overhead")
    };
    // The cells beside other tracers name their functions: 10, none the workload's.
    let stored = std::fs::read_dir(dir.path().join("cells")).expect("cells");
    let mut named = 0;
    for f in stored {
        let c: Value =
            serde_json::from_slice(&std::fs::read(f.expect("entry").path()).expect("read"))
                .expect("json");
        if c["other_tracers"] == 10 {
            let fns = c["beside"]["others"].as_array().expect("beside");
            assert_eq!(fns.len(), 10, "{c}");
            assert!(!fns
                .iter()
                .any(|f| f.as_str().unwrap_or_default().contains("getppid")));
            named += 1;
        }
    }
    assert_eq!(named, 2);
    [
        (find("function", 0), find("kprobe", 0)),
        (find("function", 10), find("kprobe", 10)),
    ]
}

#[test]
fn arm64_6_1_the_function_tracer_pays_for_every_other_tracer() {
    let [none, ten] = overheads("vm:arm64/6.1");
    // Instruction counts, exact under icount: the list walk costs tens per other ops.
    assert!(ten.0 > none.0 + 100.0, "function: {none:?} → {ten:?}");
    // A breakpoint, not an ftrace site: a few insn of jitter at most.
    assert!((ten.1 - none.1).abs() < 20.0, "kprobe: {none:?} → {ten:?}");
}

#[test]
fn arm64_6_12_per_callsite_ops_do_not() {
    let [none, ten] = overheads("vm:arm64/6.12");
    assert!(
        (ten.0 - none.0).abs() < 20.0,
        "function: {none:?} → {ten:?}"
    );
    assert!((ten.1 - none.1).abs() < 20.0, "kprobe: {none:?} → {ten:?}");
}

/// x86_64 6.1 predates eventfs: each trace instance keeps every event's files (about
/// 9 MiB), and 100 of them do not fit a 1 GiB guest. The agent makes those that fit and
/// says so; the cells beside fewer are measured.
#[test]
fn x86_64_6_1_makes_the_instances_that_fit_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::small_study(
        "vm:x86_64/6.1",
        "getppid",
        "function",
        200,
        &["--other-tracers", "10,100"],
        dir.path(),
    );
    let find = |others: u64| -> &Value {
        rows.iter()
            .find(|r| r["other_tracers"] == others)
            .unwrap_or_else(|| panic!("beside {others}: {rows:?}"))
    };
    assert_eq!(find(10)["status"], "ok", "{}", find(10));
    let hundred = find(100);
    assert_eq!(hundred["status"], "unsupported", "{hundred}");
    let reason = hundred["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("only ") && reason.contains("of 100 trace instances fit"),
        "{reason}"
    );
}
