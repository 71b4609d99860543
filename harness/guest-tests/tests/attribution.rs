//! `--attribution` in real guests: the QEMU TCG plugin counts every marked loop, its count
//! equals the loop's icount clock plus a constant, within the clock's few instructions of
//! jitter, on every loop of the boot (the independent proof of the `insn` unit), and the
//! kernel/user split accounts for each cell's overhead.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const CALLS: u64 = 2000;

/// The samples of every cell of a results directory, from the cells' JSON (the record).
fn samples(dir: &Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cells"))
        .expect("cells")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        let cell: Value = serde_json::from_slice(&std::fs::read(&f).expect("cell")).expect("json");
        let label = format!("{}/{}", cell["mechanism"], cell["payload"]);
        for s in cell["samples"].as_array().expect("samples") {
            out.push((label.clone(), s.clone()));
        }
    }
    out
}

fn check(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::small_study(
        target,
        "getppid",
        "kprobe,kprobe-offset,bpf-fentry",
        CALLS,
        &["--attribution"],
        dir.path(),
    );
    assert!(dir.path().join("plugin/boot-1.txt").is_file());
    for r in &rows {
        assert_eq!(r["status"], "ok", "{target}: {r}");
    }
    // Every loop: the plugin's count less the clock is one constant.
    let all = samples(dir.path());
    assert!(!all.is_empty());
    let outside: BTreeSet<u64> = all
        .iter()
        .map(|(label, s)| {
            s["counters"]["tcg-plugin:insn-outside-clock"]
                .as_u64()
                .unwrap_or_else(|| panic!("{target} {label}: no plugin count in {s}"))
        })
        .collect();
    let spread = outside.last().copied().unwrap_or(0) - outside.first().copied().unwrap_or(0);
    assert!(spread <= 8, "{target}: {outside:?}");
    // The overhead is all kernel instructions: per call, armed minus baseline kernel
    // instructions is the cell's overhead, and user space did not change.
    for r in rows.iter().filter(|r| r["mechanism"] != "baseline") {
        let label = format!("{}/{}", r["mechanism"], r["payload"]);
        let of = |phase: &str, counter: &str| -> f64 {
            let v: Vec<f64> = all
                .iter()
                .filter(|(l, s)| *l == label && s["phase"] == phase)
                .map(|(_, s)| s["counters"][counter].as_f64().expect("counter"))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let kernel = (of("mechanism", "tcg-plugin:insn-kernel")
            - of("baseline", "tcg-plugin:insn-kernel"))
            / CALLS as f64;
        let user = of("mechanism", "tcg-plugin:insn-user") - of("baseline", "tcg-plugin:insn-user");
        let overhead = r["overhead"].as_f64().expect("overhead");
        assert!(
            (kernel - overhead).abs() <= 8.0 / CALLS as f64,
            "{target} {label}: kernel {kernel} vs overhead {overhead}"
        );
        assert_eq!(user, 0.0, "{target} {label}");
    }
}

#[test]
fn x86_64_6_12_plugin_counts_agree_with_the_clock() {
    check("vm:x86_64/6.12");
}

#[test]
fn arm64_7_3_plugin_counts_agree_with_the_clock() {
    check("vm:arm64/7.3");
}
