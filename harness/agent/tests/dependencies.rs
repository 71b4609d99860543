//! The agent is copied into every guest as one static binary: its dependency graph must
//! hold no dataframe library, no plotting library and no HTTP client. This reads the
//! graph cargo resolves (`cargo tree`), so a dependency that sneaks in fails here.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "polars",
    "plotters",
    "ureq",
    "reqwest",
    "hyper",
    "indicatif",
    "arrow",
    "parquet",
];

#[test]
fn agent_links_no_polars_plotters_or_http_client() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "tracelab-agent",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("tracelab-model"),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for f in FORBIDDEN {
        let found: Vec<&&str> = crates
            .iter()
            .filter(|c| **c == *f || c.starts_with(&format!("{f}-")))
            .collect();
        assert!(found.is_empty(), "the agent depends on {found:?}");
    }
}
