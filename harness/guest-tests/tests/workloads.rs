//! The workloads people run (pipe ping-pong, tmpfs read, loopback TCP, fork, open/close)
//! in real guests: every mechanism fires exactly the counted traced calls per operation,
//! costs something, and its slowdown and per-traced-call figures follow from the
//! per-operation ones.

mod common;

use serde_json::Value;

/// (workload, operations per loop, traced calls per operation by design, mechanisms).
/// Small loops keep each guest to seconds; fork uses the mechanisms that count only the
/// agent's forks' entries exactly even when the kernel forks a worker thread of its own.
const WORKLOADS: [(&str, u64, u64, &str); 5] = [
    (
        "pipe",
        200,
        2,
        "baseline,kprobe,fprobe,function-graph,bpf-kprobe,bpf-fentry",
    ),
    (
        "file-read",
        500,
        1,
        "baseline,kprobe,function,bpf-kprobe-multi,bpf-fentry",
    ),
    ("tcp", 100, 2, "baseline,kprobe,bpf-kprobe,bpf-fentry"),
    ("fork", 30, 1, "baseline,kprobe,bpf-fentry"),
    (
        "open-close",
        500,
        1,
        "baseline,kprobe,fprobe,bpf-kprobe,bpf-fentry",
    ),
];

/// `lacks_fprobe`: arm64 6.12 cloud kernels have no CONFIG_FPROBE, so fprobe cells must be
/// unsupported and say so.
fn check_workloads(target: &str, lacks_fprobe: bool) {
    for (workload, calls, per_op, mechanisms) in WORKLOADS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, cells) = common::small_study(target, workload, mechanisms, calls, &[], dir.path());
        for c in &cells {
            check(c, workload, calls, per_op, lacks_fprobe);
        }
    }
}

fn check(c: &Value, workload: &str, calls: u64, per_op: u64, lacks_fprobe: bool) {
    let mechanism = c["mechanism"].as_str().unwrap_or_default();
    if lacks_fprobe && (mechanism == "fprobe" || mechanism == "bpf-kprobe-multi") {
        assert_eq!(c["status"], "unsupported", "{c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("CONFIG_FPROBE"), "{reason}");
        return;
    }
    assert_eq!(c["status"], "ok", "{workload}: {c}");
    assert_eq!(c["unit"], "insn", "{c}");
    if mechanism == "baseline" {
        return;
    }
    assert_eq!(c["traced_per_op"].as_u64(), Some(per_op), "{workload}: {c}");
    let epc = if mechanism == "function-graph" { 2 } else { 1 };
    let calls = common::cell_calls(c, calls);
    assert_eq!(
        c["fired"].as_u64(),
        Some(2 * calls * per_op * epc),
        "{workload}: {c}"
    );
    assert_eq!(c["fired"], c["expected_fired"], "{c}");
    let overhead = c["overhead"].as_f64().expect("overhead");
    let per_call = c["per_call"].as_f64().expect("per_call");
    let per_traced = c["overhead_per_traced_call"].as_f64().expect("per traced");
    assert!((per_traced * per_op as f64 - overhead).abs() < 1e-6, "{c}");
    let slowdown = c["slowdown_pct"].as_f64().expect("slowdown");
    assert!((slowdown - 100.0 * overhead / per_call).abs() < 1e-6, "{c}");
    if workload == "fork" {
        // A fork costs about 0.4 M insn and the scheduler's and RCU's share of it moves
        // by up to a few thousand between pairs: a mechanism's few hundred insn are below
        // that spread, and a small loop's median may even come out negative. What holds
        // is that the mechanism costs well under 1% of a fork.
        assert!(slowdown.abs() < 1.0, "{workload} {mechanism}: {c}");
        return;
    }
    assert!(
        overhead > 50.0,
        "{workload} {mechanism}: overhead {overhead}"
    );
    assert!(slowdown > 0.0 && slowdown < 100.0, "{c}");
}

#[test]
fn x86_64_6_12_workloads() {
    check_workloads("vm:x86_64/6.12", false);
}

#[test]
fn arm64_7_3_workloads() {
    check_workloads("vm:arm64/7.3", false);
}

#[test]
fn x86_64_7_3_workloads() {
    check_workloads("vm:x86_64/7.3", false);
}

#[test]
fn arm64_6_12_workloads() {
    check_workloads("vm:arm64/6.12", true);
}

/// `--vcpus 2`: the pipe's peer on a CPU of its own. Every mechanism still fires exactly
/// the traced calls of both sides, the header says what the figures count, and
/// `meta.json` records the CPUs. (`exactness.rs` shows two such boots agree on x86_64.)
fn check_two_vcpus(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stdout, cells) = common::small_study(
        target,
        "pipe",
        "baseline,kprobe,bpf-fentry",
        200,
        &["--vcpus", "2"],
        dir.path(),
    );
    assert!(stdout.contains("2 vCPUs: the agent on CPU 0"), "{stdout}");
    for c in &cells {
        check(c, "pipe", 200, 2, false);
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).expect("meta.json"))
            .expect("meta is JSON");
    assert_eq!(meta["extra"]["vcpus"], 2, "{meta}");
    assert!(
        meta["extra"]["qemu_args"]
            .as_str()
            .is_some_and(|a| a.contains("-smp 2")),
        "{meta}"
    );
}

#[test]
fn arm64_7_3_pipe_on_two_vcpus() {
    check_two_vcpus("vm:arm64/7.3");
}
