//! `tracelab export` over the published reference, read back by the other systems' own
//! parsers: OpenMetrics by `prometheus-client`'s, KCIDB by `kcidb-io`'s schema validator
//! (in the venv `./lab test` makes and names in `TRACELAB_PYTHON`).

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

/// Runs `script` with the export in a file as its argument; its stdout.
fn python(script: &str, text: &str, what: &str) -> String {
    let python = std::env::var_os("TRACELAB_PYTHON").expect(
        "TRACELAB_PYTHON is not set: run the tests with `./lab test` (it makes the venv with prometheus-client and kcidb-io)",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export");
    std::fs::write(&file, text).expect("write");
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{what} refused the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn openmetrics_parses_with_prometheus_client() {
    let text = export("openmetrics");
    // Every family and sample as the parser reads them: (family, type, unit, samples).
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nfor f in p(open(sys.argv[1]).read()):\n    print(f.name, f.type, f.unit or '-', len(f.samples))\n";
    let parsed = python(script, &text, "prometheus-client");
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

#[test]
fn kcidb_validates_with_kcidb_io() {
    let text = export("kcidb");
    let script = "import sys, json, kcidb_io\nd = json.load(open(sys.argv[1]))\nkcidb_io.schema.V5_3.validate_exactly(d)\nprint(len(d['checkouts']), len(d['builds']), len(d['tests']))\n";
    let counts = python(script, &text, "kcidb-io");
    let n: Vec<usize> = counts
        .split_whitespace()
        .map(|x| x.parse().expect("count"))
        .collect();
    let lava = export("lava");
    let cells = lava
        .lines()
        .filter(|l| l.starts_with("lava-test-case "))
        .count();
    assert_eq!(n[2], cells, "one test per cell");
    assert!(n[0] >= 4 && n[1] >= 8, "{counts}");
}

#[test]
fn the_lava_test_definition_is_one_lava_reads() {
    let yaml = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../lava/tracelab.yaml"),
    )
    .expect("lava/tracelab.yaml");
    // Its structure as LAVA reads it, and every lava-test-case step in LAVA's grammar.
    let script = "import sys, yaml, re\nd = yaml.safe_load(open(sys.argv[1]))\nm = d['metadata']\nassert m['format'] == 'Lava-Test Test Definition 1.0', m\nassert m['name'] and m['description'], m\nsteps = d['run']['steps']\nassert all(isinstance(s, str) for s in steps), steps\ncase = re.compile(r'^lava-test-case [A-Za-z0-9._-]+ (--shell .+|--result (pass|fail|skip|unknown)( --measurement \\S+ --units \\S+)?)$')\nfor s in steps:\n    if s.startswith('lava-test-case'):\n        assert case.match(s), s\nprint(len(steps), ' '.join(sorted(d['params'])))\n";
    let out = python(script, &yaml, "PyYAML (LAVA's structure)");
    assert_eq!(out.trim(), "4 ARGS OUT TRACELAB", "{out}");
    // The step that reports the cells is the export tested above.
    assert!(yaml.contains("export --format lava"), "{yaml}");
}
