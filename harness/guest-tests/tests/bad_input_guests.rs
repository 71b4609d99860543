//! The bad-input cases that need a real run: a disk that fills up while cells are written,
//! and two runs that race for one results directory. Each ends with one error line that
//! names the fix, and every finished cell still loads.

mod common;

use std::process::Command;

/// The `error:` lines of a run's stderr.
fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("error:"))
        .map(String::from)
        .collect()
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tracelab-test",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_with_one_line_and_keeps_finished_cells() {
    let Some(disk) = Tmpfs::mount("72k") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let out = disk.0.path().join("r");
    let run = common::tracelab()
        .args([
            "run",
            "--mechanisms",
            "kprobe,kretprobe,fprobe,fprobe-exit,function,function-graph,bpf-kprobe,bpf-fentry",
            "--calls",
            "2000",
            "--repeats",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run tracelab");
    let errors = error_lines(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{errors:?}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("is full: free space or choose another --out"),
        "{errors:?}"
    );
    let kept = common::show(&out);
    assert!(!kept.is_empty() && kept.len() < 8, "{} cells", kept.len());
    assert!(
        errors[0].contains("cells stored before are kept"),
        "{errors:?}"
    );
}

#[test]
fn two_runs_racing_for_one_directory_one_wins_one_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r");
    let start = || {
        std::process::Command::new(std::env::var_os("TRACELAB_BIN").expect("TRACELAB_BIN"))
            .args(["run", "--mechanisms", "kprobe", "--calls", "2000", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tracelab")
    };
    let (a, b) = (start(), start());
    let runs = [
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    ];
    let codes: Vec<Option<i32>> = runs.iter().map(|r| r.status.code()).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(2)),
        "{codes:?}"
    );
    let loser = runs
        .iter()
        .find(|r| r.status.code() == Some(2))
        .expect("loser");
    let errors = error_lines(&loser.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("choose another --out"), "{errors:?}");
    assert_eq!(common::show(&out).len(), 1);
}
