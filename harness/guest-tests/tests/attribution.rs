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
    // Each cell's breakdown by symbol adds up to its overhead, and names what a kernel
    // engineer expects: the kprobe handlers for the probes, BPF code made at run time
    // (trampoline and program) or the BPF entry helpers first for fentry.
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).expect("meta"))
            .expect("json");
    let symbols = meta["extra"]["kernel_symbols"].as_u64().unwrap_or(0);
    assert!(
        symbols > 10_000,
        "{target}: {symbols} kernel symbols received"
    );
    for f in std::fs::read_dir(dir.path().join("cells")).expect("cells") {
        let cell: Value =
            serde_json::from_slice(&std::fs::read(f.expect("entry").path()).expect("cell"))
                .expect("json");
        let mechanism = cell["mechanism"].as_str().unwrap_or_default().to_string();
        if mechanism == "baseline" {
            continue;
        }
        let b = &cell["attribution"];
        let rows = b["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{target} {mechanism}: {b}"));
        let total: f64 = rows
            .iter()
            .map(|r| r["overhead_insn"].as_f64().unwrap_or(0.0))
            .sum();
        let overhead = cell["summary"]["overhead"].as_f64().expect("overhead");
        assert!(
            (total - overhead).abs() <= 8.0 / CALLS as f64,
            "{target} {mechanism}: rows {total} vs overhead {overhead}"
        );
        let names: Vec<&str> = rows.iter().filter_map(|r| r["symbol"].as_str()).collect();
        let top = names.first().copied().unwrap_or_default();
        if mechanism.starts_with("kprobe") {
            assert!(
                names.iter().any(|n| n.contains("kprobe")),
                "{target} {mechanism}: {names:?}"
            );
        } else {
            assert!(
                top.starts_with("[kernel code outside the image") || top.contains("bpf"),
                "{target} {mechanism}: {names:?}"
            );
        }
        eprintln!("{target} {mechanism}: {:?}", &names[..names.len().min(6)]);
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
