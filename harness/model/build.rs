//! Bakes the source revision into every binary: the git commit and whether the tree had
//! uncommitted changes, so a result names the exact code that made it (no git is asked at
//! run time, where the binary may sit far from its checkout).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    // Any change to the lab's sources or to HEAD makes a new revision or a dirty tree.
    for path in [
        "../../.git/HEAD",
        "../../.git/index",
        "../../harness",
        "../../probes",
        "../../workloads",
        "../../Cargo.toml",
        "../../Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    let dirty = match git(&["status", "--porcelain", "--", "../..", ":!../../results"]) {
        Some(s) => (!s.is_empty()).to_string(),
        None => String::new(),
    };
    println!("cargo:rustc-env=TRACELAB_GIT_REVISION={revision}");
    println!("cargo:rustc-env=TRACELAB_GIT_DIRTY={dirty}");
}
