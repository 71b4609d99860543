//! `tracelab bisect` end to end: a small git tree whose commits select Debian's 6.12 or
//! 7.2 x86_64 image (the "build" copies the one a commit names), so the first 7.2 commit
//! is where fprobe-exit's overhead steps. The bisect must name it, leave the tree on its
//! branch, and a rerun with the same --out must reuse every step.

mod common;

use std::path::Path;
use std::process::Command;
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bisect_finds_the_first_commit_where_the_kernel_changes_the_cell() {
    let catalog = Catalog::new(None).expect("catalog");
    let k612 = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("6.12");
    let k72 = catalog
        .fetch_kernel(KernelVersion::V7_2, Arch::X86_64, false)
        .expect("7.2");
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    git(&tree, &["init", "--quiet", "--initial-branch=main"]);
    let picks = [&k612, &k612, &k612, &k72, &k72, &k72];
    for (i, k) in picks.iter().enumerate() {
        let script = format!(
            "# step {i}\ncp '{}' vmlinuz && cp '{}' config\n",
            k.image.display(),
            k.config.display()
        );
        std::fs::write(tree.join("build.sh"), script).expect("write");
        git(&tree, &["add", "build.sh"]);
        git(
            &tree,
            &[
                "commit",
                "--quiet",
                "-m",
                &format!("step {i}: {}", k.version),
            ],
        );
    }
    let first_bad = git(&tree, &["rev-parse", "HEAD~2"]);
    let out = dir.path().join("bisect");
    let run = || {
        common::tracelab()
            .arg("bisect")
            .arg("--repo")
            .arg(&tree)
            .args([
                "--good",
                "HEAD~5",
                "--bad",
                "HEAD",
                "--build",
                "sh build.sh",
            ])
            .args(["--image", "vmlinuz", "--kernel-config", "config"])
            .args([
                "--mechanisms",
                "fprobe-exit",
                "--calls",
                "2000",
                "--repeats",
                "2",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .expect("bisect")
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("first bad commit: {first_bad} step 3: 7.2")),
        "{stdout}\n{stderr}"
    );
    let log = std::fs::read_to_string(out.join("bisect.jsonl")).expect("log");
    let steps = log.lines().count();
    assert_eq!(steps, 4, "good, bad and two steps: {log}");
    // The tree is back on its branch, clean.
    assert_eq!(git(&tree, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(
        git(&tree, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    // A rerun measures nothing new and gives the same answer.
    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains(&first_bad));
    let log = std::fs::read_to_string(out.join("bisect.jsonl")).expect("log");
    assert_eq!(log.lines().count(), steps);
    eprintln!("{stdout}\n{stderr}");
}
