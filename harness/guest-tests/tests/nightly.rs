//! The nightly story on real guests: shards of a matrix merge into the unsharded dataset
//! cell for cell, and a store of nights finds the step where the kernel changed, and only
//! there (icount: reruns of a night give the same figures, so no noise passes for a step).

mod common;

use serde_json::Value;
use std::path::Path;

const PLAN: &[&str] = &[
    "--mechanisms",
    "kprobe,fprobe-exit",
    "--calls",
    "2000",
    "--repeats",
    "2",
];

fn ok(args: &[&str], extra: &[&Path]) -> String {
    let out = common::tracelab()
        .args(args)
        .args(extra)
        .output()
        .expect("run tracelab");
    assert!(
        out.status.success(),
        "tracelab {args:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The figures of a results directory that must not depend on which runner made them.
fn figures(dir: &Path) -> Vec<(String, String, String)> {
    common::show(dir)
        .iter()
        .map(|c| {
            (
                c["mechanism"].to_string(),
                c["overhead"].to_string(),
                c["baseline_per_call"].to_string(),
            )
        })
        .collect()
}

#[test]
fn shards_merged_equal_the_unsharded_matrix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |n: &str| dir.path().join(n);
    let matrix = ["matrix", "--arch", "x86_64", "--kernels", "6.12,7.3"];
    let run = |extra: &[&str], out: &Path| {
        let args: Vec<&str> = matrix.iter().chain(PLAN).chain(extra).copied().collect();
        ok(&[args.as_slice(), &["--out"]].concat(), &[out]);
    };
    run(&[], &d("whole"));
    run(&["--shard", "1/2"], &d("s1"));
    run(&["--shard", "2/2"], &d("s2"));
    let merged = ok(&["merge", "--out"], &[&d("merged"), &d("s2"), &d("s1")]);
    assert!(merged.contains("merged 2 shards, 2 guests"), "{merged}");
    for part in ["arch=x86_64/kernel=6.12", "arch=x86_64/kernel=7.3"] {
        assert_eq!(
            figures(&d("whole").join(part)),
            figures(&d("merged").join(part)),
            "{part}"
        );
    }
    // A shard given twice, or a whole matrix among shards, is refused.
    let refused = |paths: &[&Path]| {
        let out = common::tracelab()
            .args(["merge", "--out"])
            .arg(d("bad"))
            .args(paths)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(refused(&[&d("s1"), &d("s1")]).contains("given twice"));
    assert!(refused(&[&d("s1"), &d("whole")]).contains("not a shard"));
}

/// Runners of one arch each: `matrix --arch x86_64,arm64 --shard i/2` gives shard 1 the
/// x86_64 guest and shard 2 the arm64 one, so each records only its own arch's agent; the
/// merge compares agents per arch and keeps both (it once refused them as "another lab
/// build").
#[test]
fn shards_of_one_arch_each_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |n: &str| dir.path().join(n);
    let matrix = ["matrix", "--arch", "x86_64,arm64", "--kernels", "6.12"];
    let shard = |i: &str, out: &Path| {
        let args: Vec<&str> = matrix
            .iter()
            .chain(PLAN)
            .chain(&["--shard", i, "--out"])
            .copied()
            .collect();
        ok(&args, &[out]);
    };
    shard("1/2", &d("x86"));
    shard("2/2", &d("arm"));
    let merged = ok(&["merge", "--out"], &[&d("merged"), &d("arm"), &d("x86")]);
    assert!(merged.contains("merged 2 shards, 2 guests"), "{merged}");
    let index: Value = serde_json::from_slice(
        &std::fs::read(d("merged").join("dataset.json")).expect("dataset.json"),
    )
    .expect("json");
    let agents = index["agents"].as_object().expect("agents");
    assert!(
        agents.contains_key("x86_64") && agents.contains_key("arm64"),
        "{agents:?}"
    );
    for part in ["arch=x86_64/kernel=6.12", "arch=arm64/kernel=6.12"] {
        assert!(!figures(&d("merged").join(part)).is_empty(), "{part}");
    }
}

/// One night per arch: `run --target vm:<arch>/<release> --store <store> --night …`, the
/// two arches at once (two cores).
fn nights(dir: &Path, store: &Path, release: &str, night: &str) {
    std::thread::scope(|scope| {
        for arch in ["x86_64", "arm64"] {
            scope.spawn(move || {
                let target = format!("vm:{arch}/{release}");
                let label = format!("{night}-{arch}");
                let out = dir.join(format!(
                    "{}-{label}",
                    store.file_name().and_then(|n| n.to_str()).unwrap_or("s")
                ));
                let args: Vec<&str> = ["run", "--target", &target]
                    .into_iter()
                    .chain(PLAN.iter().copied())
                    .chain(["--night", &label, "--out"])
                    .collect();
                let stdout = ok(&args, &[&out, Path::new("--store"), store]);
                assert!(stdout.contains("stored: "), "{stdout}");
            });
        }
    });
}

fn history(store: &Path, across: bool) -> Value {
    let mut args = vec!["history", "--format", "json"];
    if across {
        args.push("--across-kernels");
    }
    let out = common::tracelab()
        .args(&args)
        .arg(store)
        .output()
        .expect("history");
    serde_json::from_slice(&out.stdout).expect("history json")
}

/// (series, night, before, after) of every change: what a rerun must reproduce.
fn changes(h: &Value) -> Vec<(String, String, String, String)> {
    h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["series"].to_string(),
                c["night"].to_string(),
                c["before"].to_string(),
                c["after"].to_string(),
            )
        })
        .collect()
}

/// A nightly job that follows Debian's 6.12 updates (95 … 117), then moves to 7.2, on
/// both arches: every change found names its night and the kernel release that changed;
/// x86_64 fprobe-exit steps by about +16% at the move to 7.2; and rerunning the 6.12
/// nights reproduces whatever history says of them, to the figure.
#[test]
fn a_store_of_nights_finds_the_steps_where_the_kernel_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, rerun) = (dir.path().join("store"), dir.path().join("rerun"));
    let releases = [
        "6.12.95", "6.12.107", "6.12.111", "6.12.113", "6.12.115", "6.12.117",
    ];
    for (i, r) in releases.iter().enumerate() {
        nights(dir.path(), &store, r, &format!("2026-11-{:02}", i + 1));
    }
    nights(dir.path(), &store, "7.2", "2026-11-07");
    nights(dir.path(), &store, "7.2", "2026-11-08");
    let h = history(&store, true);
    assert_eq!(h["nights"], 16, "{h}");
    let found = h["changes"].as_array().expect("changes");
    let exit = found
        .iter()
        .find(|c| c["key"]["mechanism"] == "fprobe-exit" && c["key"]["arch"] == "x86_64")
        .unwrap_or_else(|| panic!("no x86_64 fprobe-exit change in {h}"));
    assert_eq!(exit["night"], "2026-11-07-x86_64", "{exit}");
    let rel = exit["relative"].as_f64().expect("relative");
    assert!((0.10..0.25).contains(&rel), "{exit}");
    for c in found {
        let also = c["also_changed"].to_string();
        assert!(
            also.contains("kernel "),
            "a change without a kernel change: {c}"
        );
    }
    // Three boots of one kernel, or two: the 6.12 nights again give the same history.
    for (i, r) in releases.iter().enumerate() {
        nights(dir.path(), &rerun, r, &format!("2026-11-{:02}", i + 1));
    }
    let six_twelve = |h: &Value| {
        changes(h)
            .into_iter()
            .filter(|c| c.0.contains(" 6.12 "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        six_twelve(&history(&store, false)),
        six_twelve(&history(&rerun, false))
    );
    // The table names the night and what changed; the change is not in the newest night,
    // so history exits 0.
    let table = ok(&["history", "--across-kernels"], &[&store]);
    assert!(
        table.contains("2026-11-07-x86_64") && table.contains("→ 7.2.13"),
        "{table}"
    );
    eprintln!("{table}");
}
