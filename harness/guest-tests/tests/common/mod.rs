//! What the guest integration tests share: running a study through the CLI and reading
//! its cells back the way a user would (`tracelab show --format json`).

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

/// The `tracelab` binary under test: `$TRACELAB_BIN`, which `./lab test` sets to the
/// release binary it built.
pub(crate) fn tracelab() -> Command {
    let bin = std::env::var_os("TRACELAB_BIN")
        .expect("TRACELAB_BIN is not set: run the guest tests with `./lab test`");
    Command::new(bin)
}

/// Runs `tracelab run <args> --out <out>`, requires success, and returns its stdout and
/// the cells as `tracelab show --format json` prints them.
// Each test file compiles this module on its own, and the chaos test runs no study.
#[allow(dead_code)]
pub(crate) fn study(args: &[&str], out: &Path) -> (String, Vec<Value>) {
    assert!(
        std::env::var_os("TRACELAB_AGENT_DIR").is_some(),
        "TRACELAB_AGENT_DIR is not set: run the tests with `./lab test` (it builds the static agents)"
    );
    let run = tracelab()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run tracelab");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "tracelab run {args:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let cells = show(out);
    (stdout, cells)
}

/// `tracelab run` of `workload` on `target` with `mechanisms`, small loops (`calls`
/// operations, 2 repeats) and any `extra` flags, into `out`: (stdout, cells).
#[allow(dead_code)]
pub(crate) fn small_study(
    target: &str,
    workload: &str,
    mechanisms: &str,
    calls: u64,
    extra: &[&str],
    out: &Path,
) -> (String, Vec<Value>) {
    let calls = calls.to_string();
    let mut args = vec![
        "--target",
        target,
        "--workload",
        workload,
        "--mechanisms",
        mechanisms,
        "--calls",
        &calls,
        "--repeats",
        "2",
    ];
    args.extend_from_slice(extra);
    study(&args, out)
}

/// The cells of a results directory as `tracelab show --format json` prints them.
#[allow(dead_code)]
pub(crate) fn show(dir: &Path) -> Vec<Value> {
    let show = tracelab()
        .args(["show", "--format", "json"])
        .arg(dir)
        .output()
        .expect("run tracelab show");
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    serde_json::from_slice(&show.stdout).expect("show --format json is a JSON list")
}

/// A cell's calls per loop: in a guest, the most that fit between two ticks, at most the
/// plan's `--calls` (`bound`).
#[allow(dead_code)]
pub(crate) fn cell_calls(c: &Value, bound: u64) -> u64 {
    let calls = c["calls"]
        .as_u64()
        .unwrap_or_else(|| panic!("no calls: {c}"));
    assert!(
        (1..=bound).contains(&calls),
        "calls {calls} beyond {bound}: {c}"
    );
    calls
}
