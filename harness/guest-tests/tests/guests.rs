//! Integration tests that boot real Debian kernels in QEMU guests and check every
//! mechanism's row. They need the static agents (`./lab test` builds them) and download
//! the kernels once into the cache.

mod common;

use serde_json::Value;
use std::path::Path;

const CALLS: &str = "2000";
/// Three pairs: the median overhead then stands even if one loop is disturbed (the first
/// baseline loop of an arm64 7.3 guest costs ~14 insn/call more than later ones).
const REPEATS: u64 = 3;

/// Runs a study and returns `tracelab show --format json` of it.
fn study(target: &str, out: &Path) -> Vec<Value> {
    let repeats = REPEATS.to_string();
    let args = ["--target", target, "--calls", CALLS, "--repeats", &repeats];
    let (stdout, cells) = common::study(&args, out);
    assert!(stdout.contains("unit insn"), "{stdout}");
    cells
}

fn row<'a>(cells: &'a [Value], mechanism: &str) -> &'a Value {
    cells
        .iter()
        .find(|c| c["mechanism"] == mechanism)
        .unwrap_or_else(|| panic!("no row for {mechanism}: {cells:?}"))
}

/// A supported mechanism fired once per call (twice for function_graph) and costs more
/// than nothing; an unsupported one names the missing config option.
fn check_row(cells: &[Value], mechanism: &str, unsupported_because: Option<&str>) {
    let c = row(cells, mechanism);
    assert_eq!(c["unit"], "insn", "{c}");
    if let Some(option) = unsupported_because {
        assert_eq!(c["status"], "unsupported", "{c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(option),
            "{mechanism}: reason {reason:?} does not name {option}"
        );
        return;
    }
    assert_eq!(c["status"], "ok", "{c}");
    let calls = common::cell_calls(c, CALLS.parse().expect("calls"));
    let per_call_events = if mechanism.starts_with("function-graph") {
        2
    } else {
        1
    };
    assert_eq!(
        c["fired"].as_u64(),
        Some(REPEATS * calls * per_call_events),
        "{c}"
    );
    assert_eq!(
        c["expected_fired"].as_u64(),
        Some(REPEATS * calls * per_call_events),
        "{c}"
    );
    let overhead = c["overhead"].as_f64().expect("overhead");
    assert!(
        overhead > 50.0,
        "{mechanism}: overhead {overhead} insn is implausibly small"
    );
    assert!(
        c["per_call"].as_f64().expect("per_call")
            > c["baseline_per_call"].as_f64().expect("baseline")
    );
}

fn check_baseline(cells: &[Value]) {
    let b = row(cells, "baseline");
    assert_eq!(b["status"], "ok", "{b}");
    assert!(b["per_call"].as_f64().expect("per_call") > 100.0, "{b}");
    assert!(b["overhead"].as_f64().expect("overhead").abs() < 5.0, "{b}");
}

/// The BPF mechanisms of the default study (payload `count`, one program).
const DEFAULT_BPF_MECHANISMS: [&str; 3] = ["bpf-kprobe", "bpf-kprobe-multi", "bpf-fentry"];

const TRACEFS_MECHANISMS: [&str; 7] = [
    "kprobe",
    "kprobe-offset",
    "kretprobe",
    "fprobe",
    "fprobe-exit",
    "function",
    "function-graph",
];

#[test]
fn x86_64_6_12_every_mechanism_fires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study("vm:x86_64/6.12", dir.path());
    assert_eq!(cells.len(), 11);
    check_baseline(&cells);
    for m in TRACEFS_MECHANISMS.into_iter().chain(DEFAULT_BPF_MECHANISMS) {
        check_row(&cells, m, None);
    }
    for c in &cells {
        let release = c["kernel_release"].as_str().unwrap_or_default();
        assert!(
            release.starts_with("6.12.") && release.ends_with("-cloud-amd64"),
            "{release}"
        );
    }
    assert!(row(&cells, "kprobe")["attach"]
        .as_str()
        .unwrap_or("")
        .contains("[FTRACE]"));
    assert!(row(&cells, "kprobe-offset")["attach"]
        .as_str()
        .unwrap_or("")
        .contains("(breakpoint)"));
    for f in [
        "samples.parquet",
        "summary.parquet",
        "overhead.svg",
        "meta.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
}

#[test]
fn arm64_6_12_has_no_fprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study("vm:arm64/6.12", dir.path());
    check_baseline(&cells);
    for m in TRACEFS_MECHANISMS.into_iter().chain(DEFAULT_BPF_MECHANISMS) {
        let missing =
            (m.starts_with("fprobe") || m == "bpf-kprobe-multi").then_some("CONFIG_FPROBE");
        check_row(&cells, m, missing);
    }
}

#[test]
fn arm64_7_3_runs_fprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cells = study("vm:arm64/7.3", dir.path());
    check_baseline(&cells);
    for m in TRACEFS_MECHANISMS.into_iter().chain(DEFAULT_BPF_MECHANISMS) {
        check_row(&cells, m, None);
    }
}

/// A guest that never reports fails every cell with the reason and the console tail, and
/// the run exits non-zero without losing the results directory.
#[test]
fn guest_timeout_fails_cells_with_console_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r");
    let run = common::tracelab()
        .args([
            "run",
            "--mechanisms",
            "baseline,kprobe",
            "--boot-timeout",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run tracelab");
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let show = common::tracelab()
        .args(["show", "--format", "json"])
        .arg(&out)
        .output()
        .expect("show");
    let cells: Vec<Value> = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(cells.len(), 2);
    for c in &cells {
        assert_eq!(c["status"], "failed", "{c}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("did not start within 1 s"),
            "{c}"
        );
    }
    let cell_file = std::fs::read_dir(out.join("cells"))
        .expect("cells dir")
        .next()
        .expect("a cell")
        .expect("entry");
    let cell: Value =
        serde_json::from_slice(&std::fs::read(cell_file.path()).expect("read")).expect("json");
    assert!(cell["console_tail"].is_string(), "{cell}");
}

/// function_graph as the lab filters it (`set_ftrace_filter`) and as trace-cmd -g and perf
/// ftrace -G set it up (`set_graph_function`, the filter left empty): each install writes
/// only its own file (the agent reads both back, and says so in `attach`), both fire
/// exactly on the target, and the tools' setup costs more: every function is hooked and
/// the target's callees are recorded too.
fn function_graph_setups(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repeats = REPEATS.to_string();
    let args = [
        "--target",
        target,
        "--mechanisms",
        "function-graph,function-graph-g",
        "--calls",
        CALLS,
        "--repeats",
        &repeats,
    ];
    let (_, cells) = common::study(&args, dir.path());
    for m in ["function-graph", "function-graph-g"] {
        check_row(&cells, m, None);
    }
    let attach = |m: &str| {
        row(&cells, m)["attach"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        attach("function-graph").starts_with("current_tracer=function_graph set_ftrace_filter="),
        "{}",
        attach("function-graph")
    );
    assert!(
        attach("function-graph-g").starts_with("current_tracer=function_graph set_graph_function=")
            && attach("function-graph-g").contains("set_ftrace_filter empty"),
        "{}",
        attach("function-graph-g")
    );
    let overhead = |m: &str| row(&cells, m)["overhead"].as_f64().expect("overhead");
    assert!(
        overhead("function-graph-g") > 2.0 * overhead("function-graph"),
        "{target}: {} vs {}",
        overhead("function-graph-g"),
        overhead("function-graph")
    );
}

#[test]
fn x86_64_6_12_function_graph_setups() {
    function_graph_setups("vm:x86_64/6.12");
}

#[test]
fn arm64_7_3_function_graph_setups() {
    function_graph_setups("vm:arm64/7.3");
}
