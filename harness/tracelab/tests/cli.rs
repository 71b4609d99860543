//! The command line: bad input gets one clear error naming the valid choices, and the
//! native target refuses on a host that cannot trace.

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn tracelab() -> Command {
    Command::cargo_bin("tracelab").expect("tracelab binary")
}

#[test]
fn unknown_names_list_the_valid_choices() {
    for (args, needle) in [
        (
            vec!["run", "--mechanisms", "uprobes"],
            "valid: baseline, kprobe, kprobe-offset",
        ),
        (
            vec!["run", "--target", "vm:x86_64/5.10"],
            "valid: 6.1, 6.12, 7.2, 7.3",
        ),
        (
            vec!["run", "--target", "vm:mips/6.12"],
            "valid: x86_64, arm64",
        ),
        (
            vec!["run", "--target", "qemu"],
            "valid: local, vm:<arch>/<version>",
        ),
        (
            vec!["run", "--function", "getppid\np:x/y do_exit"],
            "function name",
        ),
        (
            vec!["kernels", "fetch", "4.19"],
            "valid: 6.1, 6.12, 7.2, 7.3",
        ),
        (vec!["show", "/nonexistent", "--format", "xml"], "valid"),
    ] {
        tracelab()
            .args(&args)
            .assert()
            .code(2)
            .stderr(contains(needle));
    }
}

#[test]
fn show_rejects_a_directory_that_holds_no_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    tracelab()
        .arg("show")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("meta.json"));
}

/// On a host whose kernel forbids tracing (like the build machines) the native target
/// stops before touching anything and says what is missing.
#[test]
fn local_target_refuses_where_tracing_is_forbidden() {
    let forbidden =
        std::fs::read_to_string("/sys/kernel/tracing/available_filter_functions").is_err();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tracelab()
        .args([
            "run",
            "--target",
            "local",
            "--calls",
            "100",
            "--repeats",
            "1",
            "--out",
        ])
        .arg(dir.path().join("r"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if forbidden {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("the local target cannot trace on this host"),
            "{stderr}"
        );
    } else {
        // A host that can trace runs the study (exit 0) or reports failed cells (3).
        assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    }
}

/// A fabricated night: x86_64 on `kernels`, run ids made unique by `tag` (the same
/// dataset added twice is refused).
fn night_dataset(dir: &std::path::Path, kernels: &[&str], tag: &str) {
    let mut runs = tracelab::synthetic::matrix(&["x86_64"], kernels, 3, 0.0);
    for r in &mut runs {
        r.meta.run_id.push_str(tag);
    }
    tracelab::synthetic::write_dataset(dir, &runs).expect("dataset");
}

/// `tracelab add-night <store> <dataset> --night <night>`, to assert on.
fn add_night(
    store: &std::path::Path,
    ds: &std::path::Path,
    night: &str,
) -> assert_cmd::assert::Assert {
    tracelab()
        .arg("add-night")
        .arg(store)
        .arg(ds)
        .args(["--night", night])
        .assert()
}

/// `tracelab history <store>` with `flags`, to assert on.
fn history(store: &std::path::Path, flags: &[&str]) -> assert_cmd::assert::Assert {
    tracelab().arg("history").args(flags).arg(store).assert()
}

#[test]
fn add_night_appends_a_dataset_once_and_history_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("night");
    night_dataset(&ds, &["6.12", "7.3"], "-1");
    let store = dir.path().join("store");
    let add = |night: &str, ds: &std::path::Path| add_night(&store, ds, night);
    add("2026-12-01-a", &ds)
        .success()
        .stdout(contains("night=2026-12-01-a"));
    add("2026-12-01-a", &ds)
        .code(2)
        .stderr(contains("already in").and(contains("--night")));
    // The same dataset under another night's name would read as a night of no change.
    add("2026-12-02-a", &ds)
        .code(2)
        .stderr(contains("the same runs as night 2026-12-01-a"));
    let second = dir.path().join("second");
    night_dataset(&second, &["6.12", "7.3"], "-2");
    add("2026-12-02-a", &second).success();
    tracelab()
        .arg("history")
        .arg(&store)
        .assert()
        .success()
        .stdout(
            contains("2 nights, 14 series, 28 points: 0 changes").and(contains(
                "newest night 2026-12-02-a: complete (14 series of the night before all measured",
            )),
        );
    tracelab()
        .arg("add-night")
        .arg(&store)
        .arg(dir.path().join("nothing"))
        .assert()
        .code(2)
        .stderr(contains("is not a directory"));
    // A dataset is not a store: say so, and how to make one.
    tracelab()
        .arg("history")
        .arg(&ds)
        .assert()
        .code(2)
        .stderr(contains("is a dataset").and(contains("add-night")));
}

/// `history` on a store whose newest night lacks most series once printed "0 changes"
/// and exited 0: a gate that passed on a night that measured almost nothing.
#[test]
fn history_fails_the_gate_on_an_incomplete_newest_night() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    for (night, kernels, tag) in [
        ("2026-12-01-a", &["6.12", "7.3"][..], "-1"),
        ("2026-12-02-a", &["6.12"][..], "-2"),
    ] {
        let ds = dir.path().join(tag);
        night_dataset(&ds, kernels, tag);
        add_night(&store, &ds, night).success();
    }
    history(&store, &[])
        .code(3)
        .stdout(contains(
            "newest night 2026-12-02-a is INCOMPLETE: 7 of 14 series of night 2026-12-01-a missing",
        ))
        .stderr(contains("--allow-incomplete"));
    history(&store, &["--allow-incomplete"]).success();
    // A failed cell in the newest night fails the gate too.
    let ds = dir.path().join("failed");
    let mut runs = tracelab::synthetic::matrix(&["x86_64"], &["6.12", "7.3"], 3, 0.0);
    for r in &mut runs {
        r.meta.run_id.push_str("-3");
        if let Some(c) = r
            .cells
            .iter_mut()
            .find(|c| c.measured.mechanism == "kprobe")
        {
            c.measured.status = tracelab_model::schema::Status::Failed;
            c.measured.reason = Some("fired 19999 times for an expected 20000".into());
        }
    }
    tracelab::synthetic::write_dataset(&ds, &runs).expect("dataset");
    add_night(&store, &ds, "2026-12-03-a").success();
    history(&store, &[])
        .code(3)
        .stdout(contains("failed cells").and(contains("fired 19999 times")));
}

/// A reader that closes the pipe (`| head -1`) ends the printing quietly; the exit status
/// is the command's own (so `compare … | head` under pipefail still fails a gate).
#[test]
fn a_closed_pipe_ends_quietly_and_keeps_the_exit_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, cand) = (dir.path().join("base"), dir.path().join("cand"));
    tracelab::synthetic::write_dataset(
        &base,
        &tracelab::synthetic::matrix(&["x86_64"], &["6.12"], 3, 0.0),
    )
    .expect("base");
    let mut worse = tracelab::synthetic::matrix(&["x86_64"], &["6.12"], 3, 0.0);
    worse[0].cells = worse[0]
        .cells
        .iter()
        .map(|c| {
            let mut spec = tracelab::synthetic::CellSpec::ok(&c.measured.mechanism, 0.0);
            if let Some(s) = &c.summary {
                spec = tracelab::synthetic::CellSpec::ok(&c.measured.mechanism, s.overhead * 1.5);
            }
            tracelab::synthetic::cell(&worse[0].meta, &spec, 3, 1000)
        })
        .collect();
    tracelab::synthetic::write_dataset(&cand, &worse).expect("cand");
    let guest = base.join("arch=x86_64/kernel=6.12");
    for (args, code) in [
        (
            vec![
                "show".into(),
                guest.clone().into_os_string(),
                "--format".into(),
                "json".into(),
            ],
            0,
        ),
        (
            vec![
                "compare".into(),
                base.clone().into_os_string(),
                cand.clone().into_os_string(),
            ],
            1,
        ),
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tracelab"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}
