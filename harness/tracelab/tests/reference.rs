//! Snapshots of what users read from the published reference dataset
//! (`results/reference/dataset`, getppid; `results/reference/workloads/<workload>`, the
//! others): `show` in every format, `compare` of the dataset with itself, and the
//! report's Markdown. A refactoring that changes a byte of them fails
//! here; a deliberate change updates the snapshots (`cargo insta review`) and says so.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tracelab_model::workload::Workload;

fn dataset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reference/dataset")
}

/// The getppid dataset, the many-functions and other-tracers ones, then every workload's.
fn datasets() -> Vec<PathBuf> {
    let workloads = dataset().join("../workloads");
    let mut out = vec![
        dataset(),
        dataset().join("../functions"),
        dataset().join("../other-tracers"),
    ];
    if let Ok(entries) = std::fs::read_dir(&workloads) {
        let mut more: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
        more.sort();
        out.extend(more);
    }
    out
}

fn tracelab(args: &[&str]) -> String {
    let out = Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .args(args)
        .output()
        .expect("run tracelab");
    String::from_utf8_lossy(&out.stdout).into_owned()
        + &format!("[exit {}]\n", out.status.code().unwrap_or(-1))
}

#[test]
fn show_every_format() {
    let guest = dataset().join("arch=x86_64/kernel=6.12");
    let guest = guest.to_str().expect("utf-8 path");
    for format in ["table", "csv", "json", "markdown"] {
        insta::assert_snapshot!(
            format!("show_x86_64_6_12_{format}"),
            tracelab(&["show", guest, "--format", format])
        );
    }
    let arm = dataset().join("arch=arm64/kernel=6.1");
    insta::assert_snapshot!(
        "show_arm64_6_1_table",
        tracelab(&[
            "show",
            arm.to_str().expect("utf-8 path"),
            "--format",
            "table"
        ])
    );
}

#[test]
fn compare_with_itself() {
    let ds = dataset();
    let ds = ds.to_str().expect("utf-8 path");
    // JSON carries the same comparisons (666 kB): the table and Markdown pin them.
    for format in ["table", "markdown"] {
        let text = tracelab(&["compare", ds, ds, "--format", format]).replace(ds, "<dataset>");
        insta::assert_snapshot!(format!("compare_self_{format}"), text);
    }
}

#[test]
fn report_markdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report");
    let ds = dataset();
    let ds = ds.to_str().expect("utf-8 path");
    tracelab(&["report", ds, "--out", out.to_str().expect("utf-8 path")]);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    insta::assert_snapshot!("report_md", md.replace(ds, "<dataset>"));
}

/// The published datasets are consistent with what the lab promises of their figures: one
/// agent build per arch (hashed once by each matrix), overhead = per call − baseline,
/// fired = expected, every stored loop clean (but for the switches and RCU work a
/// workload does by design), every unsupported cell naming its cause, and no cell failed.
#[test]
fn reference_dataset_is_consistent() {
    let all = datasets();
    assert!(all.len() > 1, "no workload datasets beside {all:?}");
    for ds in all {
        check_dataset(&ds);
    }
}

fn check_dataset(ds: &Path) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("dataset.json")).expect("dataset.json"))
            .expect("dataset.json is JSON");
    let agents = index["agents"]
        .as_object()
        .expect("dataset.json lists its agents");
    assert_eq!(agents.len(), 2, "{agents:?}");
    for guest in index["guests"].as_array().expect("guests") {
        let dir = ds.join(guest["dir"].as_str().expect("dir"));
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta"))
                .expect("meta.json");
        let arch = meta["arch"].as_str().expect("arch");
        assert_eq!(
            meta["extra"]["agent_sha256"], agents[arch]["sha256"],
            "{dir:?}: not the agent the matrix hashed"
        );
        let mut files: Vec<_> = std::fs::read_dir(dir.join("cells"))
            .expect("cells")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let c: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&f).expect("cell")).expect("cell json");
            let what = format!("{}", f.display());
            match c["status"].as_str() {
                Some("ok") => {
                    let s = &c["summary"];
                    let (p, b, o) = (
                        s["per_call"].as_f64().expect("per_call"),
                        s["baseline_per_call"].as_f64().expect("baseline"),
                        s["overhead"].as_f64().expect("overhead"),
                    );
                    assert!((p - b - o).abs() < 1e-6, "{what}: {p} − {b} ≠ {o}");
                    let loops = c["samples"].as_array().expect("samples");
                    let workload: Workload = c["workload"]
                        .as_str()
                        .and_then(|w| w.parse().ok())
                        .expect("a known workload");
                    for l in loops {
                        if !workload.blocks() {
                            assert_eq!(l["switches"].as_u64(), Some(0), "{what}: {l}");
                        }
                        if !workload.defers_rcu_work() {
                            assert_eq!(l["rcu_softirqs"].as_u64().unwrap_or(0), 0, "{what}: {l}");
                        }
                    }
                    if let (Some(fired), Some(epc)) =
                        (c["fired"].as_u64(), c["events_per_call"].as_u64())
                    {
                        let per_op = c["traced_per_op"].as_u64().unwrap_or(1);
                        let armed = loops.iter().filter(|l| l["phase"] == "mechanism");
                        let expected: u64 = armed
                            .map(|l| l["calls"].as_u64().unwrap_or(0) * epc * per_op)
                            .sum();
                        assert_eq!(fired, expected, "{what}");
                    }
                    assert_eq!(c["cleanliness"]["firing_slack"].as_u64(), Some(0), "{what}");
                }
                Some("unsupported") => {
                    let reason = c["reason"].as_str().unwrap_or_default();
                    let named = reason.contains("CONFIG_")
                        || reason.contains("(os error 524)")
                        || reason.contains("(os error 95)")
                        || reason.contains("no syscall per call")
                        || reason.contains("error injection")
                        || reason.contains("needs the kfunc")
                        || reason.contains("x86_64 only")
                        || reason.contains("workload usdt")
                        || reason.contains("user-space")
                        || reason.contains("uprobe_multi")
                        || reason.contains("traces kernel functions")
                        || reason.contains("on every function: it would attach")
                        || reason.contains("no bpf_tracing_multi_attach")
                        || reason.contains("func_stack_trace option is the function tracer's only");
                    assert!(
                        named,
                        "{what}: an unsupported reason without a cause: {reason}"
                    );
                }
                // Its README says which cells failed and why: on the operations whose loops
                // the kernel's own work may enter (a kernel thread forking inside a `fork`
                // loop; on 6.1, the RCU work of closed files preempting `open-close` loops),
                // the count or the cleanliness check refused the figure; and the stackid
                // cells below. Nothing else fails.
                Some("failed") => {
                    let reason = c["reason"].as_str().unwrap_or_default();
                    let stackid = c["payload"] == "stackid"
                        && reason.contains("stacks were not taken (stackid returned an error)");
                    // The x86_64 6.1 guest of the other-tracers matrix never reached its
                    // agent (reproduced; the README says what is known of it).
                    let unbooted = c["arch"] == "x86_64"
                        && c["kernel"] == "6.1"
                        && ds.ends_with("other-tracers")
                        && reason.contains("the agent did not start within 300 s");
                    let known = unbooted
                        || match c["workload"].as_str() {
                            // 6.1 gives a BPF program on a syscall tracepoint no kernel stack
                            // (stacktrace takes 0 frames there), so every stackid fails; one
                            // arm64 7.3 fexit cell lost a tenth of its stacks in this run only.
                            Some("getppid") if stackid => {
                                (c["kernel"] == "6.1" && c["mechanism"] == "bpf-tp")
                                    || (c["arch"] == "arm64"
                                        && c["kernel"] == "7.3"
                                        && c["mechanism"] == "bpf-fexit"
                                        && c["stack"] == 1)
                            }
                            Some("fork") => reason.contains("fired 201 times for an expected 200"),
                            Some("open-close") => {
                                c["kernel"] == "6.1" && reason.contains("no clean figure")
                            }
                            _ => false,
                        };
                    assert!(known, "{what}: failed: {reason}");
                }
                other => panic!("{what}: status {other:?}: {}", c["reason"]),
            }
        }
    }
}
