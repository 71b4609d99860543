//! The bare-metal path rehearsed (`tracelab rehearse`): the host's tracelab in a guest with
//! a Debian userland runs `doctor` and the nightly steps twice with `--target local`, and
//! every native figure agrees with the agent guest's within 0.5%.

mod common;

use serde_json::Value;

fn rehearse(target: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r");
    let run = common::tracelab()
        .args(["rehearse", "--target", target, "--out"])
        .arg(&out)
        .args([
            "--",
            "--mechanisms",
            "baseline,kprobe,fprobe,function,bpf-kprobe,bpf-fentry",
            "--calls",
            "500",
            "--repeats",
            "3",
        ])
        .output()
        .expect("run tracelab");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "rehearse {target} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("rehearsal.json")).expect("json"))
            .expect("parse");
    let steps: Vec<(&str, i64)> = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["rc"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("doctor", 0),
            ("run-1", 0),
            ("run-2", 0),
            ("history", 0),
            ("compare", 0),
            ("show", 0),
            ("report", 0),
            ("publish", 0)
        ],
        "{target}"
    );
    let rows = r["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6, "{target}: {rows:?}");
    assert_eq!(r["agreeing"], 6, "{target}: {stdout}");
    for row in rows {
        // Every cell measured on both sides: nothing here is unsupported on x86_64.
        assert!(
            row["native"].as_f64().is_some() && row["native_2"].as_f64().is_some(),
            "{row}"
        );
    }
    let doctor = std::fs::read_to_string(out.join("native/doctor.txt")).expect("doctor");
    assert!(doctor.contains("preflight: ok"), "{doctor}");
    for made in [
        "native/night-1/meta.json",
        "native/night-2/summary.parquet",
        "native/report/report.html",
        "native/site/index.html",
        "agent/meta.json",
    ] {
        assert!(out.join(made).exists(), "{target}: no {made}");
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(out.join("native/night-1/meta.json")).expect("meta"))
            .expect("json");
    assert_eq!(meta["mode"], "native", "{meta}");
}

#[test]
fn x86_64_6_12_native_path_agrees_with_the_agent() {
    rehearse("vm:x86_64/6.12");
}

#[test]
fn x86_64_7_3_native_path_agrees_with_the_agent() {
    rehearse("vm:x86_64/7.3");
}
