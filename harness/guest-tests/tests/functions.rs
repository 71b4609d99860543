//! The functions axis in real guests (`--functions`): every mechanism that can trace
//! many functions does so on the workload's and N − 1 others, fires exactly on the
//! workload's, and records its attach and detach times; the others are the same set for
//! every mechanism, and a smaller set is a prefix of a larger one.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const MANY: &str = "baseline,kprobe,fprobe,function,function-graph,bpf-kprobe,bpf-kprobe-multi,bpf-fentry,bpf-fentry-multi";
const CALLS: u64 = 500;

/// The stored cells (`cells/*.json`), in run order.
fn stored(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cells"))
        .expect("cells")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).expect("read")).expect("json"))
        .collect()
}

/// Runs the axis on `target` and checks every cell; `unsupported` lists mechanisms the
/// kernel lacks, with a word their reason must hold.
fn check(target: &str, functions: &str, unsupported: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    // One repeat: each attaches every function from nothing, which at 100 functions
    // costs 10^9 to 10^10 guest instructions per mechanism under TCG.
    let calls = CALLS.to_string();
    let (_, rows) = common::study(
        &[
            "--target",
            target,
            "--mechanisms",
            MANY,
            "--calls",
            &calls,
            "--repeats",
            "1",
            "--functions",
            functions,
        ],
        dir.path(),
    );
    let ns: Vec<u64> = functions
        .split(',')
        .map(|n| n.parse().expect("n"))
        .collect();
    // The baseline once, every other mechanism once per N.
    assert_eq!(rows.len(), 1 + 8 * ns.len(), "{rows:?}");
    for r in &rows {
        let mechanism = r["mechanism"].as_str().unwrap_or_default();
        if mechanism == "baseline" {
            continue;
        }
        if let Some((_, why)) = unsupported.iter().find(|(m, _)| *m == mechanism) {
            assert_eq!(r["status"], "unsupported", "{target}: {r}");
            let reason = r["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(why), "{target}: {reason}");
            continue;
        }
        assert_eq!(r["status"], "ok", "{target}: {r}");
        // Exactly the workload's calls fired: none of the others ran.
        assert_eq!(r["fired"], r["expected_fired"], "{target}: {r}");
        for t in ["attach_time", "detach_time", "attach_thread_time"] {
            assert!(r[t].as_f64().is_some_and(|x| x > 0.0), "{t}: {r}");
        }
        if mechanism == "bpf-fentry-multi" {
            let attach = r["attach"].as_str().unwrap_or_default();
            assert!(attach.contains("tracing_multi link"), "{attach}");
        }
    }
    // The same others for every mechanism at one N; a smaller N takes a prefix.
    let mut sets: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for c in stored(dir.path()) {
        let n = c["functions"].as_u64().unwrap_or(1);
        if c["status"] != "ok" || n == 1 || c["mechanism"] == "baseline" {
            assert!(c["traced"].is_null() || n > 1, "{c}");
            continue;
        }
        let others: Vec<String> = c["traced"]["others"]
            .as_array()
            .expect("others")
            .iter()
            .map(|o| o.as_str().expect("name").to_string())
            .collect();
        assert_eq!(others.len() as u64, n - 1, "{c}");
        let choice = c["traced"]["choice"].as_str().unwrap_or_default();
        assert!(choice.contains("ordered by FNV-1a"), "{choice}");
        assert!(!others.iter().any(|o| o.contains("getppid")), "{others:?}");
        match sets.get(&n) {
            Some(seen) => assert_eq!(seen, &others, "{target}: N={n} differs across mechanisms"),
            None => {
                sets.insert(n, others);
            }
        }
    }
    let sets: Vec<&Vec<String>> = sets.values().collect();
    for w in sets.windows(2) {
        assert_eq!(&w[1][..w[0].len()], &w[0][..], "{target}: not a prefix");
    }
}

#[test]
fn x86_64_7_3_up_to_100_functions() {
    check("vm:x86_64/7.3", "1,10,100", &[]);
}

#[test]
fn arm64_6_12_ten_functions_without_fprobe() {
    check(
        "vm:arm64/6.12",
        "1,10",
        &[
            ("fprobe", "CONFIG_FPROBE"),
            ("bpf-kprobe-multi", "CONFIG_FPROBE"),
            ("bpf-fentry-multi", "bpf_tracing_multi_attach"),
        ],
    );
}

#[test]
fn arm64_7_3_ten_functions() {
    check(
        "vm:arm64/7.3",
        "1,10",
        &[("bpf-fentry-multi", "CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS")],
    );
}

/// `--functions all`: the function tracer unfiltered and one kprobe_multi link over
/// every candidate still fire exactly once per call of the workload's function; a
/// mechanism that would need one probe per function says so. (function_graph takes the
/// tracer's path; its 2 G insn attach is left to the README's figures.)
#[test]
fn x86_64_6_12_every_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::study(
        &[
            "--target",
            "vm:x86_64/6.12",
            "--mechanisms",
            "baseline,kprobe,fprobe,function,bpf-kprobe-multi",
            "--calls",
            "200",
            "--repeats",
            "1",
            "--functions",
            "all",
        ],
        dir.path(),
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    for r in &rows {
        let mechanism = r["mechanism"].as_str().unwrap_or_default();
        match mechanism {
            "baseline" => continue,
            "kprobe" => {
                assert_eq!(r["status"], "unsupported", "{r}");
                let reason = r["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("on every function"), "{reason}");
                continue;
            }
            _ => {}
        }
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(
            r["functions"], "all",
            "all is the word, not the number 0 it once was: {r}"
        );
        assert_eq!(r["fired"], r["expected_fired"], "{r}");
        let attach = r["attach"].as_str().unwrap_or_default();
        assert!(
            attach.contains("every function") || attach.contains("other functions (the same link)"),
            "{attach}"
        );
        for t in ["attach_time", "detach_time"] {
            assert!(r[t].as_f64().is_some_and(|x| x > 0.0), "{t}: {r}");
        }
    }
}

/// fprobe on `*` where fprobe runs on function_graph: the glob registers the target once
/// per kallsyms name, and x86_64 7.3's getppid has three (`__do_sys_getppid`,
/// `__x64_sys_getppid`, `__ia32_sys_getppid`), so each call writes three events, every
/// one of them counted.
#[test]
fn x86_64_7_3_fprobe_on_every_function_fires_once_per_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::study(
        &[
            "--target",
            "vm:x86_64/7.3",
            "--mechanisms",
            "fprobe",
            "--calls",
            "200",
            "--repeats",
            "1",
            "--functions",
            "all",
        ],
        dir.path(),
    );
    let [r] = rows.as_slice() else {
        panic!("one cell: {rows:?}")
    };
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(
        r["expected_fired"],
        3 * 200,
        "three names, one event each: {r}"
    );
    assert_eq!(r["fired"], r["expected_fired"], "{r}");
    let attach = r["attach"].as_str().unwrap_or_default();
    assert!(attach.contains("f:tracelab/fprobe_"), "{attach}");
    assert!(attach.contains("3 events, one per name"), "{attach}");
}
