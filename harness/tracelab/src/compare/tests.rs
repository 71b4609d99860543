//! Verdicts on constructed datasets, and snapshots of the Markdown and JSON views.

use super::render::render;
use super::*;
use crate::render::Format;
use crate::synthetic::{self, CellSpec};

fn side(overhead: f64, low: f64, high: f64) -> Side {
    Side {
        run_id: "r".into(),
        unit: Unit::Insn,
        status: Status::Ok,
        reason: None,
        kernel_release: Some("6.12.0-1-cloud-amd64".into()),
        function: Some("__do_sys_getppid".into()),
        overhead: Some(overhead),
        interval: Some(Interval {
            low,
            high,
            kind: IntervalKind::Ci95,
        }),
        kernel_config: BTreeMap::new(),
        vcpus: 1,
    }
}

fn key() -> CellKey {
    CellKey {
        arch: "x86_64".into(),
        kernel: "6.12".into(),
        mechanism: "kprobe".into(),
        payload: None,
        stack: 1,
        functions: tracelab_model::cell_id::Functions::ONE,
        other_tracers: 0,
        workload: "getppid".into(),
    }
}

fn verdict(base: Side, cand: Side) -> Comparison {
    judge(key(), base, cand, &Threshold::default())
}

#[test]
fn growth_beyond_threshold_with_disjoint_intervals_regresses() {
    let c = verdict(side(100.0, 99.0, 101.0), side(110.0, 109.0, 111.0));
    assert_eq!(c.verdict, Verdict::Regressed);
    assert_eq!(c.change, Some(10.0));
    assert_eq!((c.change_low, c.change_high), (Some(8.0), Some(12.0)));
    assert_eq!(c.relative_change, Some(0.1));
}

#[test]
fn shrink_beyond_threshold_improves() {
    let c = verdict(side(100.0, 99.0, 101.0), side(80.0, 79.0, 81.0));
    assert_eq!(c.verdict, Verdict::Improved);
}

#[test]
fn overlapping_intervals_are_unchanged_with_a_note() {
    let c = verdict(side(100.0, 90.0, 120.0), side(110.0, 95.0, 125.0));
    assert_eq!(c.verdict, Verdict::Unchanged);
    assert!(c.reason.as_deref().unwrap_or("").contains("overlap"));
}

#[test]
fn change_within_threshold_is_unchanged() {
    // 4% up, intervals disjoint: below the 5% threshold.
    let c = verdict(side(100.0, 100.0, 100.0), side(104.0, 104.0, 104.0));
    assert_eq!(c.verdict, Verdict::Unchanged);
    assert_eq!(c.reason, None);
}

#[test]
fn absolute_floor_protects_near_zero_baselines() {
    // The baseline mechanism: overhead ~0, so 5% of it is nothing; the floor (1 per
    // call) keeps a 0.3 insn wobble from becoming a regression.
    let c = verdict(side(0.1, 0.1, 0.1), side(0.4, 0.4, 0.4));
    assert_eq!(c.verdict, Verdict::Unchanged);
    let strict = Threshold {
        floor: 0.0,
        ..Threshold::default()
    };
    let c = judge(key(), side(0.1, 0.1, 0.1), side(0.4, 0.4, 0.4), &strict);
    assert_eq!(c.verdict, Verdict::Regressed);
}

#[test]
fn unit_mismatch_is_not_comparable() {
    let mut cand = side(100.0, 100.0, 100.0);
    cand.unit = Unit::Ns;
    let c = verdict(side(100.0, 100.0, 100.0), cand);
    assert_eq!(c.verdict, Verdict::NotComparable);
    assert_eq!(c.unit, None);
    let reason = c.reason.unwrap_or_default();
    assert!(
        reason.contains("different units: insn") && reason.contains("ns"),
        "{reason}"
    );
}

#[test]
fn other_kernel_release_config_or_status_is_not_comparable() {
    let mut cand = side(100.0, 100.0, 100.0);
    cand.kernel_release = Some("6.12.1-1-cloud-amd64".into());
    let c = verdict(side(100.0, 100.0, 100.0), cand);
    assert!(c.reason.unwrap_or_default().contains("kernel releases"));

    let mut base = side(100.0, 100.0, 100.0);
    base.kernel_config
        .insert("CONFIG_FPROBE".into(), "y".into());
    base.kernel_config
        .insert("CONFIG_ONLY_OLD".into(), "y".into());
    let mut cand = side(100.0, 100.0, 100.0);
    cand.kernel_config
        .insert("CONFIG_FPROBE".into(), "n".into());
    let c = verdict(base, cand);
    assert_eq!(c.verdict, Verdict::NotComparable);
    assert_eq!(
        c.reason.as_deref(),
        Some("different kernel config: CONFIG_FPROBE: y → n")
    );

    let mut cand = side(0.0, 0.0, 0.0);
    cand.status = Status::Unsupported;
    cand.reason = Some("CONFIG_FPROBE_EVENTS is not set".into());
    let c = verdict(side(100.0, 100.0, 100.0), cand);
    assert_eq!(
        c.reason.as_deref(),
        Some("candidate is unsupported (CONFIG_FPROBE_EVENTS is not set)")
    );
}

#[test]
fn min_max_is_the_fallback_interval() {
    let i = interval(None, None, 3.0, 1.0).expect("interval");
    assert_eq!((i.low, i.high, i.kind), (1.0, 3.0, IntervalKind::MinMax));
    let i = interval(Some(1.5), Some(2.5), 1.0, 3.0).expect("interval");
    assert_eq!(i.kind, IntervalKind::Ci95);
    let i = interval(Some(f64::NAN), Some(2.5), 1.0, 3.0).expect("interval");
    assert_eq!(i.kind, IntervalKind::MinMax);
    assert_eq!(interval(None, None, f64::NAN, 1.0), None);
}

#[test]
fn thresholds_parse_and_name_what_is_accepted() {
    assert_eq!(parse_relative("5%"), Ok(0.05));
    assert_eq!(parse_relative("0.1"), Ok(0.1));
    assert_eq!(parse_relative(" 2.5 % "), Ok(0.025));
    assert!(parse_relative("-1%").unwrap_err().contains("e.g. 5%"));
    // A gate written `--threshold 5` once meant 500 % and never fired.
    let err = parse_relative("5").unwrap_err();
    assert!(err.contains("500%") && err.contains("5%"), "{err}");
    assert_eq!(parse_relative("1"), Ok(1.0));
    assert_eq!(parse_relative("150%"), Ok(1.5));
    assert!(parse_relative("five").is_err());
    assert_eq!(parse_floor("0.5"), Ok(0.5));
    assert!(parse_floor("inf").unwrap_err().contains("insn or ns"));
}

/// Baseline and candidate datasets that exercise every verdict.
fn datasets() -> (Vec<Run>, Vec<Run>) {
    let base = vec![
        synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[
                CellSpec::ok("baseline", 0.0),
                CellSpec::ok("kprobe", 200.0),
                CellSpec::ok("kretprobe", 400.0),
                CellSpec::ok("function", 120.0),
                CellSpec::ok("fprobe", 150.0),
                CellSpec::ok("kprobe-offset", 900.0),
            ],
            3,
        ),
        synthetic::run(
            "arm64",
            "6.12",
            Unit::Insn,
            &[
                CellSpec::unsupported("fprobe"),
                CellSpec::ok("kprobe", 250.0),
            ],
            3,
        ),
    ];
    let mut cand = vec![
        synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[
                CellSpec::ok("baseline", 0.2),
                CellSpec::ok("kprobe", 230.0),
                CellSpec::ok("kretprobe", 330.0),
                CellSpec::ok("function", 121.0),
                CellSpec::ok("function-graph", 300.0),
                CellSpec::ok("kprobe-offset", 900.0),
            ],
            3,
        ),
        synthetic::run(
            "arm64",
            "6.12",
            Unit::Ns,
            &[
                CellSpec::unsupported("fprobe"),
                CellSpec::ok("kprobe", 90.0),
            ],
            3,
        ),
    ];
    cand[0].meta.qemu_version = Some("10.1.0".into());
    (base, cand)
}

fn report() -> CompareReport {
    let (base, cand) = datasets();
    compare("base", &base, "cand", &cand, &Threshold::default())
}

#[test]
fn datasets_get_every_verdict() {
    let r = report();
    let by = |m: &str, arch: &str| {
        r.cells
            .iter()
            .find(|c| c.key.mechanism == m && c.key.arch == arch)
            .map(|c| (c.verdict, c.reason.clone().unwrap_or_default()))
            .unwrap_or((Verdict::Unchanged, "missing".into()))
    };
    assert_eq!(by("kprobe", "x86_64").0, Verdict::Regressed);
    assert_eq!(by("kretprobe", "x86_64").0, Verdict::Improved);
    assert_eq!(by("function", "x86_64").0, Verdict::Unchanged);
    assert_eq!(by("baseline", "x86_64").0, Verdict::Unchanged);
    assert_eq!(
        by("fprobe", "x86_64"),
        (Verdict::NotComparable, "only in the baseline".into())
    );
    assert_eq!(
        by("function-graph", "x86_64"),
        (Verdict::NotComparable, "only in the candidate".into())
    );
    let (v, why) = by("kprobe", "arm64");
    assert_eq!(v, Verdict::NotComparable);
    assert!(why.contains("different units"), "{why}");
    assert_eq!(r.regressions(), 1);
    assert_eq!(r.counts.get("regressed"), Some(&1));
    assert_eq!(r.counts.get("not_comparable"), Some(&4));
    assert_eq!(
        r.environment,
        vec![
            "arm64/6.12: mode icount → wall".to_string(),
            "x86_64/6.12: qemu 10.0.0 → 10.1.0".to_string()
        ]
    );
    // Regressions first, so a CI summary shows them at the top.
    assert_eq!(r.cells[0].verdict, Verdict::Regressed);
}

#[test]
fn a_key_twice_on_one_side_is_ambiguous_not_guessed() {
    let (base, _) = datasets();
    let twice = vec![base[0].clone(), base[0].clone()];
    let r = compare("a", &base, "b", &twice, &Threshold::default());
    assert!(r
        .cells
        .iter()
        .filter(|c| c.key.arch == "x86_64")
        .all(|c| c.verdict == Verdict::NotComparable
            && c.reason.as_deref().unwrap_or("").starts_with("ambiguous")));
}

#[test]
fn identical_runs_are_all_unchanged() {
    let runs = synthetic::matrix(&["x86_64", "arm64"], &["6.1", "7.3"], 5, 2.0);
    let r = compare("a", &runs, "b", &runs, &Threshold::default());
    assert_eq!(r.regressions(), 0);
    assert!(r
        .cells
        .iter()
        .all(|c| matches!(c.verdict, Verdict::Unchanged | Verdict::NotComparable)));
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(render(&report(), Format::Markdown).expect("markdown"));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(render(&report(), Format::Json).expect("json"));
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!(render(&report(), Format::Table).expect("table"));
}

#[test]
fn format_names_the_valid_choices() {
    let err = "xml".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("table, csv, json, markdown"), "{err}");
    let csv = render(&report(), Format::Csv).expect("csv");
    assert!(csv.starts_with("verdict,arch,kernel,mechanism"), "{csv}");
}

#[test]
fn real_time_cells_get_a_rank_test_beside_the_verdict() {
    let run = |overhead: f64| {
        vec![synthetic::run(
            "x86_64",
            "6.12",
            Unit::Ns,
            &[CellSpec {
                spread: 2.0,
                ..CellSpec::ok("kprobe", overhead)
            }],
            12,
        )]
    };
    let (base, cand) = (run(100.0), run(130.0));
    let mut r = compare("b", &base, "c", &cand, &Threshold::default());
    let paired = |runs: &[Run]| -> BTreeMap<CellKey, Vec<f64>> {
        runs[0]
            .cells
            .iter()
            .map(|c| {
                (
                    CellKey::of(c),
                    tracelab_model::summary::paired_overheads(&c.measured.samples),
                )
            })
            .collect()
    };
    add_rank_tests(&mut r, &paired(&base), &paired(&cand));
    let t = r.cells[0].test.expect("a rank test");
    assert_eq!((t.n_baseline, t.n_candidate), (12, 12));
    assert!(t.p < 1e-4, "{t:?}");
    assert!((t.shift - 30.0).abs() < 5.0, "{t:?}");
    assert!(t.shift_low > 0.0);
    let md = render(&r, Format::Markdown).expect("markdown");
    assert!(md.contains("Mann–Whitney U"), "{md}");
    assert!(md.contains("reproduce: `tracelab run --target"), "{md}");
    // Under icount no test is made: the figures are exact.
    let insn = synthetic::matrix(&["x86_64"], &["6.12"], 3, 0.0);
    let r = compare("b", &insn, "c", &insn, &Threshold::default());
    assert!(r.cells.iter().all(|c| c.test.is_none()));
}

/// One guest against a whole dataset once listed every other guest's cells, as "not
/// comparable", before the few compared: they are counted in one line instead.
#[test]
fn one_sided_cells_are_counted_not_listed_unless_asked() {
    let all = synthetic::matrix(&["x86_64", "arm64"], &["6.1", "7.3"], 3, 0.0);
    let one: Vec<Run> = all.iter().take(1).cloned().collect();
    let mut r = compare("guest", &one, "dataset", &all, &Threshold::default());
    let listed = r.cells.len();
    r.fold_one_sided();
    let (b, c) = r.one_sided.expect("folded");
    assert_eq!((b, c + r.cells.len()), (0, listed));
    let text = render(&r, Format::Table).expect("table");
    assert!(
        text.contains(&format!(
            "0 cells only in the baseline and {c} only in the candidate are not listed"
        )),
        "{text}"
    );
    assert!(text.starts_with("0 regressed"), "the verdict first: {text}");
    assert!(render(&r, Format::Markdown)
        .expect("md")
        .contains("--all lists them"));
}

/// Against a baseline overhead below the floor, a change of nothing once read +100 %.
#[test]
fn no_percentage_against_a_baseline_below_the_floor() {
    let (base, cand) = (
        synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[CellSpec::ok("baseline", 0.0), CellSpec::ok("kprobe", 0.004)],
            3,
        ),
        synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[CellSpec::ok("baseline", 0.0), CellSpec::ok("kprobe", 0.008)],
            3,
        ),
    );
    let r = compare("a", &[base], "b", &[cand], &Threshold::default());
    let kprobe = r
        .cells
        .iter()
        .find(|c| c.key.mechanism == "kprobe")
        .expect("kprobe");
    assert_eq!(kprobe.relative_change, None, "{kprobe:?}");
    assert!(!render(&r, Format::Table).expect("table").contains("100.0%"));
}

#[test]
fn movers_name_the_symbols_whose_part_changed_most() {
    use tracelab_model::attribution::{Breakdown, SymbolCost};
    let b = |rows: &[(&str, f64)]| Breakdown {
        symbols: "kallsyms".into(),
        calls: 1000,
        pairs: 1,
        rows: rows
            .iter()
            .map(|(s, o)| SymbolCost {
                symbol: s.to_string(),
                family: tracelab_model::family::Family::of(s),
                baseline_insn: 0.0,
                armed_insn: *o,
                overhead_insn: *o,
            })
            .collect(),
        families: Vec::new(),
        traps_per_call: None,
    };
    let m = super::movers(
        &b(&[
            ("ring_buffer_lock_reserve", 100.0),
            ("fprobe_handler", 50.0),
            ("x", 1.0),
            // The same function, split by the compiler in one kernel only: no move.
            ("rb_commit.part.0", 49.0),
        ]),
        &b(&[
            ("ring_buffer_lock_reserve", 100.2),
            ("ftrace_graph_func", 181.0),
            ("fprobe_handler", 40.0),
            ("rb_commit", 49.0),
        ]),
        5,
    );
    let named: Vec<(&str, f64)> = m
        .iter()
        .map(|m| (m.symbol.as_str(), m.change_insn))
        .collect();
    assert_eq!(
        named,
        [
            ("ftrace_graph_func", 181.0),
            ("fprobe_handler", -10.0),
            ("x", -1.0)
        ]
    );
}
