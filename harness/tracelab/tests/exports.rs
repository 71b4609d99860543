//! `tracelab export` over the published reference, read back by the other systems' own
//! parsers: OpenMetrics by `prometheus-client`'s (in the venv `./lab test` makes and names
//! in `TRACELAB_PYTHON`).

use assert_cmd::Command;
use std::path::PathBuf;

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../results/reference")
}

fn export(format: &str) -> String {
    let out = Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .args(["export", "--format", format])
        .arg(reference())
        .output()
        .expect("run tracelab");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn openmetrics_parses_with_prometheus_client() {
    let python = std::env::var_os("TRACELAB_PYTHON").expect(
        "TRACELAB_PYTHON is not set: run the tests with `./lab test` (it makes the venv with prometheus-client)",
    );
    let text = export("openmetrics");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).expect("write");
    // Every family and sample as the parser reads them: (family, type, unit, samples).
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nfor f in p(open(sys.argv[1]).read()):\n    print(f.name, f.type, f.unit or '-', len(f.samples))\n";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("run python");
    let parsed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prometheus-client refused the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = |family: &str| -> usize {
        parsed
            .lines()
            .find(|l| l.starts_with(&format!("{family} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no family {family}: {parsed}"))
    };
    assert!(
        parsed.contains("tracelab_overhead_instructions gauge instructions"),
        "{parsed}"
    );
    // Every cell has its status sample; every measured one its median.
    let cells = text
        .lines()
        .filter(|l| l.starts_with("tracelab_cell_info{"))
        .count();
    let measured = text
        .lines()
        .filter(|l| l.starts_with("tracelab_cell_info{") && l.contains("status=\"ok\""))
        .count();
    assert_eq!(samples("tracelab_cell"), cells);
    let medians = text
        .lines()
        .filter(|l| l.starts_with("tracelab_overhead_") && l.contains("stat=\"median\""))
        .count();
    assert_eq!(medians, measured);
    assert!(
        measured > 1000,
        "{measured} measured cells in the reference"
    );
}

#[test]
fn lava_and_bencher_cover_every_cell() {
    let lava = export("lava");
    let cells = lava
        .lines()
        .filter(|l| l.starts_with("lava-test-case "))
        .count();
    let bencher: serde_json::Value = serde_json::from_str(&export("bencher")).expect("json");
    let passed = lava
        .lines()
        .filter(|l| l.contains(" --result pass "))
        .count();
    assert_eq!(bencher.as_object().map(|o| o.len()), Some(passed));
    assert!(cells > passed, "the reference has unsupported cells too");
}
