//! User-space probes in real guests: tracefs uprobes and uretprobes, BPF uprobes,
//! uretprobes, uprobe_multi links and USDT on the agent's own functions (nop, push and
//! ret first instructions, x86's 5-byte nop, and the USDT site). Every probe fires
//! exactly once per call and costs something; what cannot run is `unsupported` with why.

mod common;

use serde_json::Value;

const CALLS: u64 = 300;

/// Runs `--mechanisms user` on `workload` and checks every cell.
fn check_user(target: &str, workload: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, cells) = common::small_study(target, workload, "user", CALLS, &[], dir.path());
    let names: Vec<&str> = cells
        .iter()
        .filter_map(|c| c["mechanism"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "uprobe",
            "uretprobe",
            "bpf-uprobe",
            "bpf-uretprobe",
            "bpf-uprobe-multi",
            "bpf-uretprobe-multi",
            "bpf-usdt"
        ],
        "{target} {workload}"
    );
    for c in &cells {
        check(c, target, workload);
    }
}

fn check(c: &Value, target: &str, workload: &str) {
    let mechanism = c["mechanism"].as_str().unwrap_or_default();
    let reason = c["reason"].as_str().unwrap_or_default();
    if workload == "user-nop5" && target.contains("arm64") {
        assert_eq!(c["status"], "unsupported", "{c}");
        assert!(reason.contains("x86_64 only"), "{reason}");
        return;
    }
    if mechanism == "bpf-usdt" && workload != "usdt" {
        assert_eq!(c["status"], "unsupported", "{c}");
        assert!(reason.contains("workload usdt"), "{reason}");
        return;
    }
    assert_eq!(c["status"], "ok", "{target} {workload}: {c}");
    assert_eq!(c["unit"], "insn", "{c}");
    if mechanism == "baseline" {
        // A call of a two-instruction function, in a loop.
        let per_call = c["per_call"].as_f64().expect("per_call");
        assert!(per_call > 0.0 && per_call < 20.0, "{c}");
        return;
    }
    let calls = common::cell_calls(c, CALLS);
    assert_eq!(c["fired"].as_u64(), Some(2 * calls), "{workload}: {c}");
    assert_eq!(c["fired"], c["expected_fired"], "{c}");
    // A uprobe traps into the kernel (or, optimised, calls into it) on every hit: far
    // more than the call itself.
    let overhead = c["overhead"].as_f64().expect("overhead");
    assert!(
        overhead > 200.0,
        "{target} {workload} {mechanism}: overhead {overhead}"
    );
}

#[test]
fn x86_64_6_12_user_probes() {
    for w in ["user-nop", "user-push", "user-ret", "user-nop5", "usdt"] {
        check_user("vm:x86_64/6.12", w);
    }
}

#[test]
fn x86_64_7_3_user_probes() {
    for w in ["user-nop5", "usdt"] {
        check_user("vm:x86_64/7.3", w);
    }
}

#[test]
fn arm64_6_12_user_probes() {
    for w in ["user-nop", "user-push", "user-nop5", "usdt"] {
        check_user("vm:arm64/6.12", w);
    }
}

#[test]
fn arm64_7_3_user_probes() {
    for w in ["user-ret", "usdt"] {
        check_user("vm:arm64/7.3", w);
    }
}
