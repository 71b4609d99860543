//! Snapshots of what users read from the published reference dataset
//! (`results/reference/dataset`): `show` in every format, `compare` of the dataset with
//! itself, and the report's Markdown. A refactoring that changes a byte of them fails
//! here; a deliberate change updates the snapshots (`cargo insta review`) and says so.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn dataset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reference/dataset")
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
