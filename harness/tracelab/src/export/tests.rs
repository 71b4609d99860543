use super::*;
use crate::synthetic::{self, CellSpec};

/// A two-guest dataset: x86_64 6.12 (kprobe measured, fprobe unsupported) in insn, and
/// a native run in ns.
fn dataset() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = [
        synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[
                CellSpec::ok("kprobe", 818.86),
                CellSpec::unsupported("fprobe"),
            ],
            3,
        ),
        synthetic::run(
            "arm64",
            "7.3",
            Unit::Ns,
            &[CellSpec::ok("kprobe", 250.0)],
            3,
        ),
    ];
    synthetic::write_dataset(dir.path(), &runs).expect("write");
    dir
}

#[test]
fn openmetrics_keeps_each_unit_and_every_status() {
    let d = dataset();
    let e = export(d.path(), ExportFormat::Openmetrics, &Origin::default()).expect("export");
    let t = &e.text;
    assert!(
        t.contains("# UNIT tracelab_overhead_instructions instructions"),
        "{t}"
    );
    assert!(
        t.contains("# UNIT tracelab_overhead_seconds seconds"),
        "{t}"
    );
    let insn = t
        .lines()
        .find(|l| l.starts_with("tracelab_overhead_instructions{") && l.contains("stat=\"median\""))
        .expect("an insn sample");
    assert!(
        insn.contains("arch=\"x86_64\"") && insn.contains("cell=\"kprobe\""),
        "{insn}"
    );
    assert!(insn.ends_with(" 818.86"), "{insn}");
    // Real time in base units: 250 ns is 2.5e-7 s.
    let ns = t
        .lines()
        .find(|l| l.starts_with("tracelab_overhead_seconds{") && l.contains("stat=\"median\""))
        .expect("a seconds sample");
    let v: f64 = ns.rsplit(' ').next().unwrap().parse().expect("number");
    assert!((v - 2.5e-7).abs() < 1e-12, "{ns}");
    assert!(
        t.lines().any(|l| l.starts_with("tracelab_cell_info{")
            && l.contains("cell=\"fprobe\"")
            && l.contains("status=\"unsupported\"")),
        "{t}"
    );
    assert!(t.ends_with("# EOF\n"));
    // Every family's samples are contiguous, as OpenMetrics requires.
    let families: Vec<&str> = t
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('{').next().unwrap())
        .collect();
    let mut seen = Vec::new();
    for f in &families {
        if seen.last() != Some(f) {
            assert!(!seen.contains(f), "{f} is split: {t}");
            seen.push(f);
        }
    }
    assert!(e.left_out.is_empty());
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(openmetrics_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

fn openmetrics_escape(v: &str) -> String {
    // The private helper, through a cell whose reason holds every escaped character.
    let d = tempfile::tempdir().expect("tempdir");
    let mut spec = CellSpec::unsupported("fprobe");
    spec.status = tracelab_model::schema::Status::Unsupported;
    let mut run = synthetic::run("x86_64", "6.12", Unit::Insn, &[spec], 3);
    run.cells[0].measured.reason = Some(v.to_string());
    synthetic::write_dataset(d.path(), &[run]).expect("write");
    let t = export(d.path(), ExportFormat::Openmetrics, &Origin::default())
        .expect("export")
        .text;
    let line = t
        .lines()
        .find(|l| l.starts_with("tracelab_cell_info{"))
        .expect("info");
    let start = line.find("reason=\"").expect("reason") + "reason=\"".len();
    let end = line.rfind("\"} 1").expect("end");
    line[start..end].to_string()
}

#[test]
fn bencher_names_the_unit_and_lists_what_it_cannot_hold() {
    let d = dataset();
    let e = export(d.path(), ExportFormat::Bencher, &Origin::default()).expect("export");
    let v: serde_json::Value = serde_json::from_str(&e.text).expect("json");
    let kprobe = &v["x86_64/6.12/getppid/kprobe"]["overhead-insn-per-call"];
    assert_eq!(kprobe["value"].as_f64(), Some(818.86), "{v}");
    assert!(kprobe["lower_value"].as_f64().is_some() && kprobe["upper_value"].as_f64().is_some());
    assert!(
        v["arm64/7.3/getppid/kprobe"]["overhead-ns-per-call"]["value"].is_number(),
        "{v}"
    );
    assert!(v.get("x86_64/6.12/getppid/fprobe").is_none());
    assert_eq!(e.left_out.len(), 1, "{:?}", e.left_out);
    assert!(
        e.left_out[0].starts_with("x86_64/6.12/getppid/fprobe: unsupported"),
        "{:?}",
        e.left_out
    );
}

#[test]
fn lava_lines_follow_lava_test_case_grammar() {
    let d = dataset();
    let t = export(d.path(), ExportFormat::Lava, &Origin::default())
        .expect("export")
        .text;
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    for line in t.lines() {
        if let Some(q) = line.strip_prefix("echo ") {
            assert!(q.starts_with('\'') && q.ends_with('\''), "{line}");
            continue;
        }
        let w: Vec<&str> = line.split(' ').collect();
        assert!(
            w.len() >= 4 && w[0] == "lava-test-case" && name_ok(w[1]),
            "{line}"
        );
        match &w[2..] {
            ["--result", "pass", "--measurement", v, "--units", u] => {
                assert!(
                    v.parse::<f64>().is_ok() && ["insn", "ns"].contains(u),
                    "{line}"
                );
            }
            ["--result", "skip" | "fail"] => {}
            _ => panic!("not lava-test-case grammar: {line}"),
        }
    }
    assert!(
        t.contains("lava-test-case x86_64_6.12_getppid_kprobe --result pass --measurement 818.86 --units insn"),
        "{t}"
    );
    assert!(
        t.contains("lava-test-case x86_64_6.12_getppid_fprobe --result skip"),
        "{t}"
    );
    assert_eq!(lava::test_case_name("a/b c:d"), "a_b_c_d");
}

#[test]
fn names_stay_unique_across_datasets_side_by_side() {
    // Two datasets under one directory hold the same guests' cells.
    let root = tempfile::tempdir().expect("tempdir");
    let runs = [synthetic::run(
        "x86_64",
        "6.12",
        Unit::Insn,
        &[CellSpec::ok("kprobe", 1.0)],
        3,
    )];
    synthetic::write_dataset(&root.path().join("a"), &runs).expect("write");
    synthetic::write_dataset(&root.path().join("b"), &runs).expect("write");
    let e = export(root.path(), ExportFormat::Bencher, &Origin::default()).expect("export");
    let v: serde_json::Value = serde_json::from_str(&e.text).expect("json");
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    assert!(v["a/arch=x86_64/kernel=6.12/kprobe"].is_object(), "{v}");
}

#[test]
fn github_benchmark_lists_measured_cells_with_their_unit() {
    let d = dataset();
    let e = export(d.path(), ExportFormat::GithubBenchmark, &Origin::default()).expect("export");
    let v: serde_json::Value = serde_json::from_str(&e.text).expect("json");
    let list = v.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{v}");
    let kprobe = list
        .iter()
        .find(|b| b["name"] == "x86_64/6.12/getppid/kprobe")
        .expect("kprobe");
    assert_eq!(kprobe["unit"], "insn per call");
    assert_eq!(kprobe["value"].as_f64(), Some(818.86));
    assert!(
        kprobe["range"]
            .as_str()
            .is_some_and(|r| r.starts_with("± ")),
        "{kprobe}"
    );
    assert_eq!(e.left_out.len(), 1, "{:?}", e.left_out);
}

#[test]
fn kcidb_maps_status_number_and_path() {
    let d = dataset();
    let origin: Origin = "lab_one".parse().expect("origin");
    let t = export(d.path(), ExportFormat::Kcidb, &origin)
        .expect("export")
        .text;
    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
    assert_eq!(v["version"]["major"], 5);
    assert_eq!(v["builds"].as_array().map(Vec::len), Some(2), "{v}");
    let tests = v["tests"].as_array().expect("tests");
    let find = |path: &str, arch: &str| {
        tests
            .iter()
            .find(|t| t["path"] == path && t["build_id"].as_str().is_some_and(|b| b.contains(arch)))
            .unwrap_or_else(|| panic!("no {path} on {arch}: {v}"))
    };
    let kprobe = find("tracelab.getppid.kprobe", "x86_64");
    assert_eq!(kprobe["status"], "DONE");
    assert_eq!(kprobe["number"]["value"].as_f64(), Some(818.86));
    assert_eq!(kprobe["number"]["unit"], "insn");
    assert!(kprobe["id"]
        .as_str()
        .is_some_and(|i| i.starts_with("lab_one:")));
    let fprobe = find("tracelab.getppid.fprobe", "x86_64");
    assert_eq!(fprobe["status"], "SKIP");
    assert!(fprobe.get("number").is_none());
    // Real time in seconds, printed with a metric prefix.
    let native = find("tracelab.getppid.kprobe", "arm64");
    assert_eq!(native["number"]["unit"], "s");
    assert_eq!(native["number"]["prefix"], "metric");
    assert_eq!(
        kcidb::test_path("getppid", "bpf-fentry/count/k1"),
        "tracelab.getppid.bpf-fentry.count.k1"
    );
    assert!("Lab".parse::<Origin>().is_err() && "a:b".parse::<Origin>().is_err());
}

#[test]
fn kcidb_builds_of_one_debian_source_share_a_checkout() {
    let d = tempfile::tempdir().expect("tempdir");
    let runs: Vec<_> = [("x86_64", "amd64"), ("arm64", "arm64")]
        .into_iter()
        .map(|(arch, deb)| {
            let mut run =
                synthetic::run(arch, "6.12", Unit::Insn, &[CellSpec::ok("kprobe", 1.0)], 3);
            run.meta.kernel_package = Some(format!(
                "linux-image-6.12.118+deb12-cloud-{deb}-unsigned 6.12.118-1~deb12u1"
            ));
            run
        })
        .collect();
    synthetic::write_dataset(d.path(), &runs).expect("write");
    let t = export(d.path(), ExportFormat::Kcidb, &Origin::default())
        .expect("export")
        .text;
    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
    let checkouts = v["checkouts"].as_array().expect("checkouts");
    assert_eq!(checkouts.len(), 1, "{v}");
    assert_eq!(checkouts[0]["id"], "tracelab:debian-6.12.118-1~deb12u1");
    assert_eq!(v["builds"].as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn squad_gets_every_cell_as_a_test_and_every_figure_as_a_metric_with_its_unit() {
    let d = dataset();
    let p = squad::payload(&cells(d.path()).expect("cells"));
    assert_eq!(
        p.tests,
        serde_json::json!({
            "tracelab/x86_64/6.12/getppid/kprobe": "pass",
            "tracelab/x86_64/6.12/getppid/fprobe": "skip",
            "tracelab/arm64/7.3/getppid/kprobe": "pass",
        })
    );
    assert_eq!(
        p.metrics,
        serde_json::json!({
            "tracelab/x86_64/6.12/getppid/kprobe": {"value": 818.86, "unit": "insn"},
            "tracelab/arm64/7.3/getppid/kprobe": {"value": 250.0, "unit": "ns"},
        })
    );
    assert_eq!(p.metadata["runs"].as_array().map(Vec::len), Some(2));
    assert!(p.metadata["runs"][0]["clock"].is_string());
    // Without --url the export prints what would be sent.
    let e = export(d.path(), ExportFormat::Squad, &Origin::default()).expect("export");
    let printed: serde_json::Value = serde_json::from_str(&e.text).expect("json");
    assert_eq!(printed["metrics"], p.metrics);
}
