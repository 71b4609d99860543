//! The selftests bench and bpftrace beside the lab (`tracelab peers`): in one guest with a
//! Debian userland, each trig-* attach point's figures next to the lab's cells, within 3%
//! except where the programs or drivers differ in kind (bpftrace's tracepoint programs
//! return 1, so perf also records each event; the bench has no baseline for its kfunc
//! driver), and fmod_ret reported as a probe bpftrace does not have.

mod common;

use serde_json::Value;

fn peers(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("p");
    let run = common::tracelab()
        .args(["peers", "--target", target, "--calls", "5000", "--out"])
        .arg(&out)
        .output()
        .expect("run tracelab");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "peers {target} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let p: Value = serde_json::from_slice(&std::fs::read(out.join("peers.json")).expect("json"))
        .expect("parse");
    assert!(
        p["bpftrace"]
            .as_str()
            .unwrap_or("")
            .contains("bpftrace v0."),
        "{p}"
    );
    let rows = p["rows"].as_array().expect("rows");
    let row = |bench: &str| -> &Value {
        rows.iter()
            .find(|r| r["bench"] == bench)
            .unwrap_or_else(|| panic!("{target}: no {bench}: {stdout}"))
    };
    for bench in [
        "kprobe",
        "kretprobe",
        "kprobe-multi",
        "fentry",
        "fexit",
        "rawtp",
    ] {
        let r = row(bench);
        let (lab, peer) = (
            r["lab"]
                .as_f64()
                .unwrap_or_else(|| panic!("{target} {bench}: {r}")),
            r["bpftrace"]
                .as_f64()
                .unwrap_or_else(|| panic!("{target} {bench}: {r}")),
        );
        // Within 3%, or the few instructions bpftrace's map update adds to a small figure
        // (then the row is flagged, with that cause).
        assert!(
            (peer - lab).abs() <= (0.03 * lab).max(4.0),
            "{target} {bench}: {r}"
        );
        if (peer - lab).abs() > 0.03 * lab {
            assert!(
                r["note"].as_str().unwrap_or("").contains("program body"),
                "{r}"
            );
        }
        assert!(
            r["bpftrace_hits"].as_u64().unwrap_or(0)
                >= r["expected_hits"].as_u64().unwrap_or(u64::MAX),
            "{target} {bench}: {r}"
        );
    }
    let tp = row("tp");
    assert!(
        tp["bpftrace"].as_f64().unwrap_or(0.0) > 1.5 * tp["lab"].as_f64().unwrap_or(f64::MAX),
        "{target}: {tp}"
    );
    assert!(
        tp["note"].as_str().unwrap_or("").contains("return 1"),
        "{tp}"
    );
    // The selftests bench, built from the kernel's own Debian source, beside the lab's
    // `empty` cells: every trig-* bench gives a rate, and its figure is within 3% or the
    // few insn its different baseline or driver accounts for (then the note says which).
    assert!(
        p["selftests"]["built"]["source"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("linux-source-"),
        "{}",
        p["selftests"]
    );
    for r in rows {
        let bench = r["bench"].as_str().unwrap_or("?");
        let (lab, peer) = (
            r["lab_empty"]
                .as_f64()
                .unwrap_or_else(|| panic!("{target} {bench}: {r}")),
            r["selftests"]
                .as_f64()
                .unwrap_or_else(|| panic!("{target} {bench}: {r}")),
        );
        assert!(
            (peer - lab).abs() <= (0.03 * lab).max(15.0),
            "{target} {bench}: {r}"
        );
        if (peer - lab).abs() > 0.03 * lab {
            let note = r["note"].as_str().unwrap_or("");
            assert!(
                note.contains("bench differs beyond 3%, likely a different"),
                "{r}"
            );
        }
    }
    let fmodret = row("fmodret");
    assert!(fmodret["bpftrace"].is_null(), "{fmodret}");
    assert!(
        fmodret["note"]
            .as_str()
            .unwrap_or("")
            .contains("no fmod_ret probe type"),
        "{fmodret}"
    );
}

#[test]
fn x86_64_6_12_peers_beside_the_lab() {
    peers("vm:x86_64/6.12");
}

#[test]
fn x86_64_7_3_peers_beside_the_lab() {
    peers("vm:x86_64/7.3");
}
