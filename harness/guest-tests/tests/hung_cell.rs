//! A cell that hangs fails alone: the agent stops forever halfway through defining a
//! kprobe cell's 10 probes (`--fault hang-mid-attach`, as an attach that never returns
//! would), the host kills the guest at the cell timeout, records that cell as failed with
//! the reason, and a fresh guest runs the cells after it; the kprobes the hung guest
//! defined died with it.

mod common;

#[test]
fn a_hung_attach_fails_its_cell_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::tracelab()
        .args([
            "run",
            "--target",
            "vm:x86_64/6.12",
            "--mechanisms",
            "baseline,kprobe,function",
            "--functions",
            "10",
            "--calls",
            "200",
            "--repeats",
            "1",
            "--fault",
            "hang-mid-attach",
            "--cell-timeout",
            "30",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .expect("run tracelab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 3: a cell failed (its reason stored), the run itself finished.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cell kprobe/n10 timed out; restarting the guest"),
        "{stderr}"
    );
    let rows = common::show(dir.path());
    let cell = |m: &str| {
        rows.iter()
            .find(|r| r["mechanism"] == m)
            .unwrap_or_else(|| panic!("{m}: {rows:?}"))
    };
    assert_eq!(cell("baseline")["status"], "ok");
    let hung = cell("kprobe");
    assert_eq!(hung["status"], "failed", "{hung}");
    let reason = hung["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("timeout") && reason.contains("restarted for the cells after it"),
        "{reason}"
    );
    // The cell after it ran in the fresh guest, and was measured in full.
    let after = cell("function");
    assert_eq!(after["status"], "ok", "{after}");
    assert_eq!(after["fired"], after["expected_fired"], "{after}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).expect("meta"))
            .expect("json");
    assert_eq!(
        meta["extra"]["guest_restarts"],
        serde_json::json!(["kprobe/n10"])
    );
}
