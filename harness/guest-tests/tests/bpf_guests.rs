//! BPF mechanisms in real guests: every BPF mechanism with the empty, count and record
//! payloads either fires exactly once per call (per stacked program) or is `unsupported`
//! with a reason, and no program is left loaded (the agent fails a cell that leaves one).
//! Small loops keep this quick: each guest runs its 33 cells in seconds. (The stack-trace
//! payloads have their own test, `stacks.rs`.)

mod common;

use serde_json::Value;
use std::path::Path;

const CALLS: u64 = 500;

const BPF_MECHANISMS: [&str; 11] = [
    "bpf-kprobe",
    "bpf-kretprobe",
    "bpf-kprobe-multi",
    "bpf-kretprobe-multi",
    "bpf-fentry",
    "bpf-fentry-multi",
    "bpf-fexit",
    "bpf-fmod-ret",
    "bpf-tp",
    "bpf-raw-tp",
    "bpf-tp-btf",
];
const PAYLOADS: [&str; 3] = ["empty", "count", "record"];

/// Runs `tracelab run` with `args` and returns `tracelab show --format json` of it.
fn study(target: &str, args: &[&str], out: &Path) -> Vec<Value> {
    let calls = CALLS.to_string();
    let mut all = vec!["--target", target, "--calls", &calls, "--repeats", "1"];
    all.extend_from_slice(args);
    common::study(&all, out).1
}

fn row<'a>(cells: &'a [Value], mechanism: &str, payload: &str, stack: u64) -> &'a Value {
    cells
        .iter()
        .find(|c| c["mechanism"] == mechanism && c["payload"] == payload && c["stack"] == stack)
        .unwrap_or_else(|| panic!("no row for {mechanism}/{payload}/k{stack}: {cells:?}"))
}

/// `unsupported`: the reason must contain the given text. Otherwise the cell is ok, fired
/// once per call per program, costs something, and carries the kernel's own figure.
fn check(c: &Value, unsupported_because: Option<&str>) {
    let stack = c["stack"].as_u64().expect("stack");
    if let Some(why) = unsupported_because {
        assert_eq!(c["status"], "unsupported", "{c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(why),
            "reason {reason:?} does not name {why}"
        );
        return;
    }
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["unit"], "insn", "{c}");
    let calls = common::cell_calls(c, CALLS);
    assert_eq!(c["fired"].as_u64(), Some(calls * stack), "{c}");
    assert_eq!(c["expected_fired"].as_u64(), Some(calls * stack), "{c}");
    let overhead = c["overhead"].as_f64().expect("overhead");
    assert!(
        overhead > 20.0 * stack as f64,
        "overhead {overhead} insn is implausibly small: {c}"
    );
    let kernel = c["kernel_run_time"].as_f64().expect("kernel_run_time");
    assert!(kernel > 0.0 && kernel < overhead, "{c}");
}

fn check_all(cells: &[Value], unsupported: &dyn Fn(&str) -> Option<&'static str>) {
    assert_eq!(
        cells.len(),
        BPF_MECHANISMS.len() * PAYLOADS.len(),
        "{cells:?}"
    );
    for m in BPF_MECHANISMS {
        for p in PAYLOADS {
            check(row(cells, m, p, 1), unsupported(m));
        }
    }
}

/// Debian's kernels lack CONFIG_FUNCTION_ERROR_INJECTION, so fmod_ret cannot attach to a
/// syscall there.
fn debian_unsupported(m: &str) -> Option<&'static str> {
    (m == "bpf-fmod-ret").then_some("CONFIG_FUNCTION_ERROR_INJECTION")
}

/// Before 7.x there are no multi-function fentry links either.
fn debian_6_unsupported(m: &str) -> Option<&'static str> {
    match m {
        "bpf-fentry-multi" => Some("bpf_tracing_multi_attach"),
        _ => debian_unsupported(m),
    }
}

#[test]
fn x86_64_6_12_every_bpf_mechanism_and_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:x86_64/6.12",
        &["--mechanisms", "bpf", "--payloads", "empty,count,record"],
        dir.path(),
    );
    check_all(&cells, &debian_6_unsupported);
    let fentry = row(&cells, "bpf-fentry", "count", 1);
    assert!(
        fentry["attach"]
            .as_str()
            .unwrap_or_default()
            .contains("__do_sys_getppid"),
        "{fentry}"
    );
}

#[test]
fn x86_64_7_3_every_bpf_mechanism_and_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:x86_64/7.3",
        &["--mechanisms", "bpf", "--payloads", "empty,count,record"],
        dir.path(),
    );
    check_all(&cells, &debian_unsupported);
}

#[test]
fn arm64_6_12_has_no_kprobe_multi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:arm64/6.12",
        &["--mechanisms", "bpf", "--payloads", "empty,count,record"],
        dir.path(),
    );
    check_all(&cells, &|m| {
        if m.starts_with("bpf-kprobe-multi") || m.starts_with("bpf-kretprobe-multi") {
            Some("CONFIG_FPROBE")
        } else {
            debian_6_unsupported(m)
        }
    });
}

#[test]
fn arm64_7_3_runs_kprobe_multi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:arm64/7.3",
        &["--mechanisms", "bpf", "--payloads", "empty,count,record"],
        dir.path(),
    );
    // Linux selects the shared direct ops tracing_multi links need on x86_64 alone.
    check_all(&cells, &|m| match m {
        "bpf-fentry-multi" => Some("CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS"),
        _ => debian_unsupported(m),
    });
}

/// K programs on one function: each fires once per call, and K programs cost more than one.
#[test]
fn x86_64_6_12_stacked_programs_all_fire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:x86_64/6.12",
        &[
            "--mechanisms",
            "bpf-fentry,bpf-kprobe-multi,bpf-raw-tp",
            "--payloads",
            "empty,record",
            "--stack",
            "1,3",
        ],
        dir.path(),
    );
    assert_eq!(cells.len(), 3 * 2 * 2);
    for m in ["bpf-fentry", "bpf-kprobe-multi", "bpf-raw-tp"] {
        for p in ["empty", "record"] {
            let one = row(&cells, m, p, 1);
            let three = row(&cells, m, p, 3);
            check(one, None);
            check(three, None);
            let (o1, o3) = (
                one["overhead"].as_f64().expect("overhead"),
                three["overhead"].as_f64().expect("overhead"),
            );
            assert!(o3 > 2.0 * o1, "{m}/{p}: 3 programs cost {o3}, 1 costs {o1}");
        }
    }
}

/// The baseline of an in-kernel workload: far below a syscall (getppid costs over 300
/// insn), since the call is made in the kernel.
fn check_in_kernel_baseline(cells: &[Value]) {
    let base = cells
        .iter()
        .find(|c| c["mechanism"] == "baseline")
        .expect("baseline row");
    let per_call = base["per_call"].as_f64().expect("baseline per call");
    assert!(per_call > 1.0 && per_call < 100.0, "{base}");
}

/// The in-kernel workload: a BPF driver run with BPF_PROG_TEST_RUN calls
/// bpf_get_numa_node_id, so a call costs no syscall; mechanisms on that function fire once
/// per call, and the syscall tracepoints say why they cannot.
#[test]
fn x86_64_6_12_in_kernel_workload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:x86_64/6.12",
        &[
            "--workload",
            "bpf-numa-batch",
            "--mechanisms",
            "baseline,kprobe,bpf-fentry,bpf-kprobe-multi,bpf-raw-tp",
            "--payloads",
            "empty,count",
        ],
        dir.path(),
    );
    check_in_kernel_baseline(&cells);
    let kprobe = cells
        .iter()
        .find(|c| c["mechanism"] == "kprobe")
        .expect("kprobe row");
    assert_eq!(kprobe["status"], "ok", "{kprobe}");
    assert_eq!(kprobe["function"], "bpf_get_numa_node_id", "{kprobe}");
    assert_eq!(
        kprobe["fired"].as_u64(),
        Some(common::cell_calls(kprobe, CALLS)),
        "{kprobe}"
    );
    for m in ["bpf-fentry", "bpf-kprobe-multi"] {
        for p in ["empty", "count"] {
            check(row(&cells, m, p, 1), None);
        }
    }
    for p in ["empty", "count"] {
        check(row(&cells, "bpf-raw-tp", p, 1), Some("fires no tracepoint"));
    }
}

/// The selftests' kfunc driver: BPF_PROG_TEST_RUN calls bpf_modify_return_test_tp, which
/// is in the kernel's fmod_ret set and fires bpf_test_run:bpf_trigger_tp, so fmod_ret and
/// the tracepoint mechanisms are measured in-kernel (on every kernel from 6.10), each
/// firing exactly once per call.
fn kfunc_workload(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mechanisms = [
        "bpf-fmod-ret",
        "bpf-tp",
        "bpf-raw-tp",
        "bpf-tp-btf",
        "bpf-fentry",
    ];
    let list = format!("baseline,{}", mechanisms.join(","));
    let cells = study(
        target,
        &[
            "--workload",
            "bpf-kfunc-batch",
            "--mechanisms",
            &list,
            "--payloads",
            "empty,record",
        ],
        dir.path(),
    );
    check_in_kernel_baseline(&cells);
    for m in mechanisms {
        for p in ["empty", "record"] {
            let c = row(&cells, m, p, 1);
            check(c, None);
            if m == "bpf-fmod-ret" || m == "bpf-fentry" {
                assert_eq!(c["function"], "bpf_modify_return_test_tp", "{c}");
            }
        }
    }
}

#[test]
fn x86_64_6_12_kfunc_workload() {
    kfunc_workload("vm:x86_64/6.12");
}

#[test]
fn arm64_7_3_kfunc_workload() {
    kfunc_workload("vm:arm64/7.3");
}

/// Before 6.10 the kfunc does not exist: every cell says so, none fails.
#[test]
fn x86_64_6_1_kfunc_workload_is_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study(
        "vm:x86_64/6.1",
        &[
            "--workload",
            "bpf-kfunc-batch",
            "--mechanisms",
            "baseline,bpf-fmod-ret,bpf-tp",
        ],
        dir.path(),
    );
    assert_eq!(cells.len(), 3, "{cells:?}");
    for c in &cells {
        assert_eq!(c["status"], "unsupported", "{c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("bpf_modify_return_test_tp"), "{reason}");
    }
}
