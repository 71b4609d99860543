//! Tests of the results store as a whole: files on disk, read back the way a notebook
//! or `tracelab show` would read them.

use super::*;
use crate::render::Format;
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use tracelab_model::cell::Cell;
use tracelab_model::schema::{CellContext, Measured, Phase, Sample, Status, Unit};
use tracelab_model::summary::Summary;

fn meta() -> RunMeta {
    RunMeta {
        schema_version: tracelab_model::schema::SCHEMA_VERSION,
        run_id: "20261121T210455Z-x86_64-6.12".into(),
        started_at: "2026-11-21T21:04:55Z".into(),
        tracelab_version: tracelab_model::VERSION.into(),
        git_revision: None,
        command_line: vec!["tracelab".into(), "run".into()],
        target: "vm:x86_64/6.12".into(),
        arch: "x86_64".into(),
        kernel: "6.12".into(),
        kernel_release: None,
        kernel_package: Some("linux-image-6.12.5-amd64 6.12.5-1".into()),
        kernel_config: BTreeMap::from([("CONFIG_FPROBE_EVENTS".into(), "is not set".into())]),
        cpu: "qemu64".into(),
        qemu_version: Some("9.2.0".into()),
        mode: "icount".into(),
        accel: Some("tcg".into()),
        clock: "CLOCK_MONOTONIC under -icount shift=0 (1 ns = 1 insn)".into(),
        unit: Unit::Insn,
        workload: "getpid".into(),
        calls: 1000,
        repeats: 3,
        mechanisms: vec!["kprobe".into(), "fprobe".into()],
        extra: BTreeMap::new(),
    }
}

fn ctx() -> CellContext {
    CellContext {
        target: "vm:x86_64/6.12".into(),
        arch: "x86_64".into(),
        kernel: "6.12".into(),
        kernel_release: Some("6.12.5-amd64".into()),
    }
}

/// An ok cell with three interleaved repeats; overhead 50, 60, 70 per call.
fn ok_cell(mechanism: &str, unit: Unit) -> Cell {
    let mut samples = Vec::new();
    for (r, extra) in [(0u32, 50_000u64), (1, 60_000), (2, 70_000)] {
        samples.push(Sample::timed(r, Phase::Baseline, 1000, 100_000, None));
        samples.push(Sample::timed(
            r,
            Phase::Mechanism,
            1000,
            100_000 + extra,
            Some(1000),
        ));
    }
    let measured = Measured {
        mechanism: mechanism.into(),
        payload: None,
        stack: 1,
        functions: tracelab_model::cell_id::Functions::ONE,
        traced: None,
        other_tracers: 0,
        beside: None,
        attach_times: Vec::new(),
        stack_traces: None,
        runtime_symbols: Vec::new(),
        workload: "getpid".into(),
        function: Some("__x64_sys_getpid".into()),
        attach: Some("p:tracelab/kp __x64_sys_getpid".into()),
        status: Status::Ok,
        reason: None,
        unit,
        calls: 1000,
        events_per_call: Some(1),
        traced_per_op: None,
        fired: Some(3000),
        samples,
        kernel_stats: Vec::new(),
        cleanliness: None,
        precision: None,
    };
    Cell::new(ctx(), measured, None)
}

fn unsupported_cell() -> Cell {
    let measured = Measured::without_samples(
        "fprobe",
        "getpid",
        Unit::Insn,
        Status::Unsupported,
        "CONFIG_FPROBE_EVENTS is not set".into(),
    );
    Cell::new(ctx(), measured, None)
}

fn with_summary(mut cell: Cell, overhead: f64, min: f64, max: f64) -> Cell {
    cell.summary = Some(Summary {
        per_call: 150.0,
        baseline_per_call: 100.0,
        overhead,
        overhead_min: min,
        overhead_max: max,
        overhead_ci_low: None,
        overhead_ci_high: None,
        range_coverage: Some(0.75),
        outliers: None,
        repeats: 3,
        counter_per_call: Default::default(),
        counter_overhead: Default::default(),
        cycles_minus_clock: None,
        attach: None,
        stack_depth: None,
    });
    cell
}

fn read_parquet(path: &Path) -> DataFrame {
    let file = fs::File::open(path).expect("open parquet");
    ParquetReader::new(file).finish().expect("read parquet")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn filled_dir(root: &Path) -> ResultsDir {
    let mut dir = ResultsDir::create(&root.join("run"), &meta()).expect("create");
    dir.add_cell(ok_cell("kprobe", Unit::Insn))
        .expect("add kprobe");
    dir.add_cell(unsupported_cell()).expect("add fprobe");
    dir
}

#[test]
fn round_trip_create_add_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    assert_eq!(dir.cells().len(), 2);
    assert_eq!(
        names_in(&dir.path().join("cells")),
        vec!["000-kprobe.json", "001-fprobe.json"]
    );
    let (m, cells) = load(dir.path()).expect("load");
    assert_eq!(m, meta());
    assert_eq!(cells, dir.cells());
}

#[test]
fn load_orders_by_number_not_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = ResultsDir::create(&tmp.path().join("run"), &meta()).expect("create");
    for i in 0..12 {
        dir.add_cell(ok_cell(&format!("m{i}"), Unit::Insn))
            .expect("add");
    }
    // Past 999 the name widens; numeric order must still hold.
    let c = dir.path().join("cells");
    fs::rename(c.join("011-m11.json"), c.join("1000-m11.json")).expect("rename");
    let (_, cells) = load(dir.path()).expect("load");
    let order: Vec<&str> = cells
        .iter()
        .map(|c| c.measured.mechanism.as_str())
        .collect();
    assert_eq!(order.last(), Some(&"m11"));
    assert_eq!(order[10], "m10");
}

#[test]
fn create_refuses_non_empty_dir_and_accepts_empty_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("x"), "x").expect("write");
    let err = ResultsDir::create(tmp.path(), &meta()).expect_err("non-empty");
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    ResultsDir::create(&empty, &meta()).expect("empty dir is fine");
}

#[test]
fn load_explains_a_non_results_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = load(tmp.path()).expect_err("not a results dir");
    assert!(
        format!("{err:#}").contains("not a tracelab results directory"),
        "{err:#}"
    );
    let err = update_meta(tmp.path(), &meta()).expect_err("not a results dir");
    assert!(
        format!("{err:#}").contains("not a tracelab results directory"),
        "{err:#}"
    );
}

#[test]
fn load_rejects_other_schema_versions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut m = meta();
    m.schema_version = tracelab_model::schema::SCHEMA_VERSION + 1;
    let dir = ResultsDir::create(&tmp.path().join("run"), &m).expect("create");
    let err = load(dir.path()).expect_err("newer schema");
    assert!(format!("{err:#}").contains("schema version"), "{err:#}");
}

#[test]
fn every_file_exists_and_no_temp_file_is_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    assert_eq!(
        names_in(dir.path()),
        vec![
            "cells",
            "counter_summary.parquet",
            "counters.parquet",
            "derived.json",
            "meta.json",
            "overhead.svg",
            "samples.parquet",
            "summary.parquet"
        ]
    );
    assert!(names_in(&dir.path().join("cells"))
        .iter()
        .all(|n| !n.starts_with('.')));
}

#[test]
fn load_ignores_leftover_temp_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    fs::write(dir.path().join("cells/.002-x.json.1234.tmp"), "{").expect("write");
    let (_, cells) = load(dir.path()).expect("load");
    assert_eq!(cells.len(), 2);
}

#[test]
fn derived_files_exist_before_the_first_cell() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ResultsDir::create(&tmp.path().join("run"), &meta()).expect("create");
    assert_eq!(
        read_parquet(&dir.path().join("samples.parquet")).height(),
        0
    );
    assert_eq!(
        read_parquet(&dir.path().join("summary.parquet")).height(),
        0
    );
    let svg = fs::read_to_string(dir.path().join("overhead.svg")).expect("svg");
    assert!(svg.contains("no measured cells"));
}

#[test]
fn samples_parquet_has_one_row_per_sample_with_context() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    let df = read_parquet(&dir.path().join("samples.parquet"));
    assert_eq!(df.height(), 6);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for col in [
        "target",
        "arch",
        "kernel",
        "kernel_release",
        "mechanism",
        "payload",
        "stack",
        "workload",
        "function",
        "unit",
        "repeat",
        "phase",
        "calls",
        "elapsed",
        "fired",
    ] {
        assert!(names.iter().any(|n| n == col), "missing {col}");
    }
    // Baseline loops have no fired count: null, not 0.
    assert_eq!(df.column("fired").expect("fired").null_count(), 3);
    let unit = df.column("unit").expect("unit").str().expect("str").get(0);
    assert_eq!(unit, Some("insn"));
}

#[test]
fn summary_parquet_has_nulls_for_what_was_not_measured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    let df = read_parquet(&dir.path().join("summary.parquet"));
    assert_eq!(df.height(), 2);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, row::COLUMNS);
    let f64_at = |c: &str, i: usize| df.column(c).expect(c).f64().expect("f64").get(i);
    let u64_at = |c: &str, i: usize| df.column(c).expect(c).u64().expect("u64").get(i);
    assert_eq!(f64_at("overhead", 0), Some(60.0));
    assert_eq!(f64_at("overhead_min", 0), Some(50.0));
    assert_eq!(f64_at("overhead", 1), None);
    assert_eq!(f64_at("per_call", 1), None);
    assert_eq!(
        u64_at("calls", 1),
        None,
        "an unmeasured cell has null calls, not 0"
    );
    assert_eq!(u64_at("fired", 0), Some(3000));
    assert_eq!(u64_at("expected_fired", 0), Some(3000));
    assert_eq!(u64_at("expected_fired", 1), None);
    let reason = df
        .column("reason")
        .expect("reason")
        .str()
        .expect("str")
        .get(1);
    assert_eq!(reason, Some("CONFIG_FPROBE_EVENTS is not set"));
    let status = df
        .column("status")
        .expect("status")
        .str()
        .expect("str")
        .get(1);
    assert_eq!(status, Some("unsupported"));
}

#[test]
fn update_meta_rewrites_and_reaches_the_chart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = ResultsDir::create(&tmp.path().join("run"), &meta()).expect("create");
    let mut m = meta();
    m.kernel_release = Some("6.12.5-amd64".into());
    update_meta(dir.path(), &m).expect("update");
    dir.add_cell(ok_cell("kprobe", Unit::Insn)).expect("add");
    assert_eq!(load(dir.path()).expect("load").0, m);
    let svg = fs::read_to_string(dir.path().join("overhead.svg")).expect("svg");
    assert!(svg.contains("kernel 6.12.5-amd64"), "{svg}");
}

#[test]
fn a_nan_summary_does_not_stop_the_run_and_stays_loadable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = ResultsDir::create(&tmp.path().join("run"), &meta()).expect("create");
    let cell = with_summary(
        ok_cell("kprobe", Unit::Insn),
        f64::NAN,
        f64::NEG_INFINITY,
        1.0,
    );
    dir.add_cell(cell).expect("add");
    let (_, cells) = load(dir.path()).expect("load");
    assert_eq!(cells[0].summary, None);
    assert_eq!(cells[0].measured.samples.len(), 6, "samples are kept");
    regenerate(dir.path()).expect("regenerate");
}

#[test]
fn table_names_units_clock_and_reasons() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), unsupported_cell()];
    let t = render(&meta(), &cells, Format::Table).expect("table");
    let first = t.lines().next().expect("header line");
    for want in [
        "x86_64",
        "6.12.5-amd64",
        "getpid",
        "1000 calls × 3 repeats",
        "unit insn",
        "CLOCK_MONOTONIC",
    ] {
        assert!(first.contains(want), "{want} not in {first}");
    }
    assert!(t.contains("overhead (insn)"), "{t}");
    assert!(t.contains("60.00"), "{t}");
    assert!(t.contains("50.00..70.00"), "{t}");
    assert!(t.contains("3000/3000"), "{t}");
    let fprobe = t
        .lines()
        .find(|l| l.starts_with("fprobe"))
        .expect("fprobe row");
    assert!(fprobe.contains("unsupported") && fprobe.ends_with("CONFIG_FPROBE_EVENTS is not set"));
}

#[test]
fn header_says_when_cells_made_fewer_calls_than_the_plan() {
    // A guest's cells make the calls that fit between two ticks, at most the plan's.
    let mut m = meta();
    m.calls = 20_000;
    let t = render(&m, &[ok_cell("kprobe", Unit::Insn)], Format::Table).expect("table");
    let first = t.lines().next().expect("header line");
    assert!(
        first.contains("1000 calls per loop (each cell: the most of 20000 that fit between two timer ticks) × 3 repeats"),
        "{first}"
    );
}

#[test]
fn table_with_mixed_units_shows_a_unit_column() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), ok_cell("kprobe", Unit::Ns)];
    let t = render(&meta(), &cells, Format::Table).expect("table");
    assert!(!t.contains("overhead (insn)"), "{t}");
    assert!(t.contains("unit mixed"), "{t}");
    assert!(t.lines().any(|l| l.contains(" ns ")), "{t}");
}

#[test]
fn empty_run_renders_in_every_format() {
    for f in Format::ALL {
        let s = render(&meta(), &[], f).expect("render");
        assert!(!s.is_empty(), "{f}");
    }
}

#[test]
fn csv_has_units_and_quotes_fields() {
    let mut odd = unsupported_cell();
    odd.measured.reason = Some("needs \"x\", y".into());
    let cells = vec![ok_cell("kprobe", Unit::Insn), odd];
    let s = render(&meta(), &cells, Format::Csv).expect("csv");
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some(row::COLUMNS.join(",").as_str()));
    let ok = lines.next().expect("row");
    assert_eq!(ok.split(',').count(), row::COLUMNS.len());
    assert!(ok.contains(",insn,1000,3,160,100,60,50,70,"), "{ok}");
    assert!(s.contains("\"needs \"\"x\"\", y\""), "{s}");
    assert!(s.contains(",unsupported,"), "{s}");
}

#[test]
fn json_lists_cells_with_nulls() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), unsupported_cell()];
    let s = render(&meta(), &cells, Format::Json).expect("json");
    let v: serde_json::Value = serde_json::from_str(&s).expect("parse");
    let list = v.as_array().expect("list");
    assert_eq!(list.len(), 2);
    for obj in list {
        let keys: Vec<&str> = obj
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        for col in row::COLUMNS {
            assert!(keys.contains(col), "missing {col}");
        }
    }
    assert_eq!(list[0]["unit"], "insn");
    assert_eq!(list[0]["overhead"], 60.0);
    assert_eq!(list[1]["status"], "unsupported");
    assert!(list[1]["overhead"].is_null());
    assert!(list[1]["calls"].is_null());
    assert_eq!(list[1]["reason"], "CONFIG_FPROBE_EVENTS is not set");
}

#[test]
fn markdown_is_a_table_with_units() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), unsupported_cell()];
    let s = render(&meta(), &cells, Format::Markdown).expect("md");
    assert!(
        s.contains("| mechanism | status | per call (insn) |"),
        "{s}"
    );
    assert!(s.contains("|---|---|---:|"), "{s}");
    assert!(s.contains("| fprobe | unsupported |"), "{s}");
    assert!(s.contains("CONFIG_FPROBE_EVENTS is not set |"), "{s}");
}

#[test]
fn format_parse_lists_choices() {
    assert_eq!("Markdown".parse::<Format>(), Ok(Format::Markdown));
    assert_eq!("md".parse::<Format>(), Ok(Format::Markdown));
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>(), Ok(f));
    }
    let err = "xml".parse::<Format>().expect_err("unknown").to_string();
    assert!(
        err.contains("xml") && err.contains("table, csv, json, markdown"),
        "{err}"
    );
}

#[test]
fn chart_labels_axis_with_unit_and_lists_unsupported() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), unsupported_cell()];
    let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &cells);
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains("overhead per call (insn)"));
    assert!(svg.contains("x86_64") && svg.contains("getpid"));
    assert!(svg.contains("fprobe: unsupported (CONFIG_FPROBE_EVENTS is not set)"));
    assert!(svg.contains("\nkprobe\n</text>"), "{svg}");
}

#[test]
fn chart_gives_each_unit_its_own_panel() {
    let cells = vec![ok_cell("kprobe", Unit::Insn), ok_cell("fentry", Unit::Ns)];
    let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &cells);
    assert!(svg.contains("overhead per call (insn)"));
    assert!(svg.contains("overhead per call (ns)"));
    assert!(svg.contains("different units"));
}

#[test]
fn chart_survives_nan_infinity_and_empty_input() {
    let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &[]);
    assert!(svg.contains("no measured cells"));
    let cells = vec![
        with_summary(ok_cell("a", Unit::Insn), f64::NAN, f64::NAN, f64::NAN),
        with_summary(
            ok_cell("b", Unit::Insn),
            5.0,
            f64::NEG_INFINITY,
            f64::INFINITY,
        ),
        with_summary(ok_cell("c", Unit::Insn), -3.0, -4.0, -2.0),
        with_summary(ok_cell("d", Unit::Insn), 0.0, 0.0, 0.0),
    ];
    let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &cells);
    assert!(svg.contains("a: ok, but no plottable overhead"), "{svg}");
    assert!(svg.contains("\nb\n</text>") && svg.contains("\nc\n</text>"));
    let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &cells[3..]);
    assert!(svg.contains("\nd\n</text>"));
}

#[test]
fn summary_row_serializes_exactly_the_columns() {
    let r = row::SummaryRow::from_cell(0, &ok_cell("kprobe", Unit::Insn));
    let v = serde_json::to_value(&r).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut want: Vec<&str> = row::COLUMNS.to_vec();
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
}

fn any_f64() -> impl proptest::strategy::Strategy<Value = f64> {
    use proptest::prelude::*;
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(0.0),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(1e15),
        Just(-9.99e14),
        -1e12f64..1e12,
        -1e-6f64..1e-6,
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Whatever the numbers, the chart and every view render without panicking.
    #[test]
    fn views_never_panic(vals in proptest::collection::vec((any_f64(), any_f64(), any_f64(), proptest::bool::ANY), 0..6)) {
        let cells: Vec<Cell> = vals
            .iter()
            .enumerate()
            .map(|(i, &(o, lo, hi, ns))| {
                let unit = if ns { Unit::Ns } else { Unit::Insn };
                with_summary(ok_cell(&format!("m{i}"), unit), o, lo, hi)
            })
            .collect();
        let svg = crate::plot::run_chart::overhead_svg(&meta().heading(), &cells);
        proptest::prop_assert!(svg.contains("<svg"));
        for f in Format::ALL {
            proptest::prop_assert!(render(&meta(), &cells, f).is_ok());
        }
    }
}

#[test]
fn summaries_read_through_parquet_equal_the_cells_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = filled_dir(tmp.path());
    let (_, full) = load(dir.path()).expect("json");
    let (_, light) = load_summaries(dir.path()).expect("parquet");
    assert_eq!(full.len(), light.len());
    for (f, l) in full.iter().zip(&light) {
        assert_eq!(f.summary, l.summary, "{}", f.measured.mechanism);
        assert_eq!(f.measured.status, l.measured.status);
        assert_eq!(f.measured.reason, l.measured.reason);
        assert!(l.measured.samples.is_empty());
    }
    let (_, rows) = load_rows(dir.path()).expect("rows");
    assert_eq!(rows, crate::results::row::rows(&full));
    // A summary.parquet that lags the cells is not trusted: the JSON decides.
    std::fs::remove_file(dir.path().join("counter_summary.parquet")).expect("rm");
    let (_, fallback) = load_summaries(dir.path()).expect("json fallback");
    assert_eq!(fallback, full);
}

/// A cell's breakdown comes back from `attribution.parquet` row for row, with its axes,
/// family and traps; the file exists only once a cell has a breakdown.
#[test]
fn attribution_parquet_round_trips_a_breakdown() {
    use polars::prelude::AnyValue;
    use tracelab_model::attribution::{Breakdown, SymbolCost};
    use tracelab_model::family::Family;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = ResultsDir::create(&tmp.path().join("run"), &meta()).expect("create");
    dir.add_cell(unsupported_cell()).expect("add fprobe");
    assert!(!dir.path().join(ATTRIBUTION_FILE).exists());
    let mut cell = ok_cell("kprobe-offset", Unit::Insn);
    let row = |symbol: &str, baseline_insn: f64, armed_insn: f64| SymbolCost {
        symbol: symbol.into(),
        family: Family::of(symbol),
        baseline_insn,
        armed_insn,
        overhead_insn: armed_insn - baseline_insn,
    };
    cell.attribution = Some(Breakdown {
        symbols: "kallsyms".into(),
        calls: 1000,
        pairs: 1,
        rows: vec![
            row("asm_exc_int3", 0.0, 40.5),
            row("kprobe_int3_handler", 0.0, 120.25),
            row("do_syscall_64", 30.0, 30.0),
        ],
        families: Vec::new(),
        traps_per_call: Some(1.0),
    });
    dir.add_cell(cell).expect("add kprobe-offset");
    let df = read_parquet(&dir.path().join(ATTRIBUTION_FILE));
    assert_eq!(df.height(), 3);
    let at = |column: &str, i: usize| {
        df.column(column)
            .expect(column)
            .get(i)
            .expect("row")
            .to_string()
    };
    assert_eq!(at("cell", 0), "1");
    assert_eq!(at("mechanism", 1), "\"kprobe-offset\"");
    assert_eq!(at("symbol", 1), "\"kprobe_int3_handler\"");
    assert_eq!(at("family", 0), "\"exceptions\"");
    assert_eq!(at("family", 2), "\"syscall-entry-exit\"");
    assert_eq!(
        df.column("overhead_per_call")
            .expect("overhead")
            .get(1)
            .expect("row"),
        AnyValue::Float64(120.25)
    );
    assert_eq!(at("cell_traps_per_call", 2), "1.0");
    assert_eq!(at("arch", 0), "\"x86_64\"");
    // Read back through polars as `report` and `compare` read it: the same rows, the
    // families summed from them, the traps.
    let (_, cells) = load_summaries(dir.path()).expect("load summaries");
    let back = cells[1].attribution.as_ref().expect("breakdown read back");
    let stored = dir.cells()[1].attribution.as_ref().expect("stored");
    assert_eq!(back.rows, stored.rows);
    assert_eq!(
        (back.calls, back.pairs, back.traps_per_call),
        (1000, 1, Some(1.0))
    );
    let family = |f: Family| {
        back.families
            .iter()
            .find(|c| c.family == f)
            .map(|c| c.overhead_insn)
    };
    assert_eq!(family(Family::Kprobes), Some(120.25));
    assert_eq!(family(Family::SyscallEntryExit), Some(0.0));
    assert!(cells[0].attribution.is_none());
}

/// An icount cell whose pairs spread beyond max(1 insn, 0.1 %) is flagged under the
/// table, never silently a median; a real-time cell's spread is noise its interval shows.
#[test]
fn unstable_cells_are_flagged_under_the_table_in_icount_only() {
    // ok_cell's pairs: 50, 60 and 70 per call.
    let text = render(&meta(), &[ok_cell("kprobe", Unit::Insn)], Format::Table).expect("table");
    assert!(
        text.contains(
            "unstable: kprobe: pairs span 50.00..70.00 insn per call, beyond max(1, 0.1 %) = 1.00"
        ),
        "{text}"
    );
    let ns = render(&meta(), &[ok_cell("kprobe", Unit::Ns)], Format::Table).expect("table");
    assert!(!ns.contains("unstable"), "{ns}");
    assert!(!tracelab_model::summary::is_unstable(
        Unit::Insn,
        1106.37,
        1106.38,
        1106.38
    ));
    assert!(tracelab_model::summary::is_unstable(
        Unit::Insn,
        1523.69,
        1535.69,
        1535.69
    ));
}
