//! The report on fabricated runs: units on every figure, payload/stack/counter figures
//! only when the data has them, a self-contained page, and a Markdown snapshot.

use super::*;
use crate::synthetic::{self, CellSpec};

fn matrix() -> Vec<Run> {
    synthetic::matrix(&["x86_64", "arm64"], &["6.12", "6.1", "7.3"], 5, 3.0)
}

#[test]
fn every_figure_names_its_unit_and_kernels_sort_by_version() {
    let r = build("t", &["ds".into()], &matrix());
    let ids: Vec<&str> = r.figures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "overhead-x86_64-insn",
            "overhead-arm64-insn",
            "heatmap-x86_64-insn",
            "heatmap-arm64-insn"
        ]
    );
    for f in &r.figures {
        assert!(f.title.ends_with("(insn)"), "{}", f.title);
        assert!(f.svg.contains("(insn)"), "{} has no unit on its axis", f.id);
        assert!(
            f.svg.starts_with("<svg") || f.svg.starts_with("<?xml"),
            "{}",
            f.id
        );
    }
    let svg = &r.figures[0].svg;
    let (a, b, c) = (
        svg.find("\nkernel 6.1\n").unwrap_or(usize::MAX),
        svg.find("\nkernel 6.12\n").unwrap_or(usize::MAX),
        svg.find("\nkernel 7.3\n").unwrap_or(usize::MAX),
    );
    assert!(a < b && b < c, "legend not in version order: {a} {b} {c}");
    // arm64 6.x has no fprobe in the fabricated matrix: marked, not drawn as zero.
    assert!(r.figures[1].svg.contains("\nn/s\n"));
    assert!(r.figures[3].svg.contains("\nunsupported\n"));
}

#[test]
fn units_are_never_mixed_in_one_figure() {
    let mut runs = matrix();
    runs.push(synthetic::run(
        "x86_64",
        "6.12",
        tracelab_model::schema::Unit::Ns,
        &[CellSpec::ok("kprobe", 40.0)],
        3,
    ));
    let r = build("t", &[], &runs);
    let ns: Vec<&Figure> = r.figures.iter().filter(|f| f.id.ends_with("-ns")).collect();
    assert_eq!(ns.len(), 2);
    for f in ns {
        assert!(
            f.title.ends_with("(ns)") && !f.svg.contains("(insn)"),
            "{}",
            f.id
        );
    }
}

#[test]
fn payload_stack_and_counter_figures_appear_when_the_data_has_them() {
    let mut specs = Vec::new();
    for (payload, base) in [("empty", 100.0), ("count", 130.0)] {
        for stack in [1, 2, 4] {
            specs.push(CellSpec {
                payload: Some(payload.to_string()),
                stack,
                ..CellSpec::ok("fentry", base * f64::from(stack))
            });
        }
    }
    let mut run = synthetic::run(
        "x86_64",
        "7.3",
        tracelab_model::schema::Unit::Insn,
        &specs,
        3,
    );
    // Cell 3: payload `count`, one attached: the cell the overview figures show.
    if let Some(s) = run.cells[3].summary.as_mut() {
        s.counter_overhead.insert("instructions".into(), 412.0);
    }
    let r = build("t", &[], &[run]);
    let sections: Vec<&str> = r.figures.iter().map(|f| f.section).collect();
    assert!(sections.contains(&"Stacking"), "{sections:?}");
    assert!(sections.contains(&"Payloads"), "{sections:?}");
    let counter = r
        .figures
        .iter()
        .find(|f| f.section == "Perf counters")
        .expect("a counter figure");
    assert!(
        counter.title.contains("(instructions per call)"),
        "{}",
        counter.title
    );
    let stack = r
        .figures
        .iter()
        .find(|f| f.section == "Stacking")
        .expect("stack figure");
    assert!(stack.svg.contains("fentry/empty") && stack.svg.contains("fentry/count"));
    assert!(
        stack.svg.contains("\n4 attached\n"),
        "stack depths are the groups"
    );
    let overview = &r.figures[0];
    assert!(overview.svg.contains("payload count, one program attached"));
    assert!(r.markdown.contains("| fentry/count ×4 |"), "{}", r.markdown);
}

#[test]
fn html_is_self_contained() {
    let r = build("<title & more>", &["a".into()], &matrix());
    let html = &r.html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("&lt;title &amp; more&gt;"));
    for forbidden in ["<script", "<link", "src=", "<img", "@import", "url("] {
        assert!(!html.contains(forbidden), "report contains {forbidden}");
    }
    // The only URL is the SVG namespace, which is a name, not something fetched.
    let urls = html.matches("http").count();
    let namespaces = html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(urls, namespaces);
    assert_eq!(html.matches("<svg").count(), r.figures.len());
    assert!(html.contains("Environment of each run"));
    assert!(html.contains("CONFIG_FPROBE"));
}

#[test]
fn an_empty_input_still_makes_a_page() {
    let r = build("t", &[], &[]);
    assert!(r.figures.is_empty());
    assert!(r.html.contains("No runs."));
}

#[test]
fn non_finite_values_do_not_break_figures() {
    let mut runs = matrix();
    if let Some(s) = runs[0].cells[1].summary.as_mut() {
        s.overhead = f64::NAN;
        s.overhead_max = f64::INFINITY;
    }
    let r = build("t", &[], &runs);
    assert!(r
        .figures
        .iter()
        .all(|f| !f.svg.contains("could not be drawn")));
}

#[test]
fn markdown_snapshot() {
    let runs = synthetic::matrix(&["x86_64", "arm64"], &["6.1", "7.3"], 5, 2.0);
    insta::assert_snapshot!(build("reference", &["ds".into()], &runs).markdown);
}

#[test]
fn workloads_get_figures_of_their_own() {
    let mut runs = synthetic::matrix(&["x86_64"], &["6.12"], 3, 3.0);
    let mut pipe = synthetic::matrix(&["x86_64"], &["6.12"], 3, 3.0);
    for cell in pipe.iter_mut().flat_map(|r| r.cells.iter_mut()) {
        cell.measured.workload = "pipe".into();
    }
    runs.extend(pipe);
    let r = build("t", &["ds".into()], &runs);
    let ids: Vec<&str> = r.figures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "overhead-x86_64-getppid-insn",
            "overhead-x86_64-pipe-insn",
            "heatmap-x86_64-getppid-insn",
            "heatmap-x86_64-pipe-insn",
            "workloads-x86_64-6.12-insn",
            "slowdown-x86_64-6.12-insn"
        ]
    );
    // A pipe figure is per operation, a getppid one per call.
    assert_eq!(
        r.figures[1].title,
        "x86_64 pipe: per-operation overhead by mechanism and kernel (insn)"
    );
    assert_eq!(
        r.figures[0].title,
        "x86_64 getppid: per-call overhead by mechanism and kernel (insn)"
    );
    // Across workloads: per traced call in insn, slowdown in %.
    assert!(r.figures[4].title.contains("overhead per traced call"));
    assert!(r.figures[5].svg.contains("slowdown (%)"));
    // The tables follow the same split, and the workloads table (one per kernel) has a
    // column per workload.
    for doc in [&r.markdown, &r.html] {
        assert!(
            doc.contains("x86_64 getppid: overhead per call (insn)"),
            "{doc}"
        );
        assert!(
            doc.contains("x86_64 pipe: overhead per operation (insn)"),
            "{doc}"
        );
        assert!(
            doc.contains("x86_64, kernel 6.12: overhead per traced call"),
            "{doc}"
        );
    }
}

#[test]
fn two_vcpu_runs_get_panels_of_their_own() {
    let mut runs = synthetic::matrix(&["x86_64"], &["6.12"], 3, 3.0);
    let mut two = synthetic::matrix(&["x86_64"], &["6.12"], 3, 3.0);
    for r in &mut two {
        r.meta.extra.insert("vcpus".into(), serde_json::json!(2));
    }
    runs.extend(two);
    let r = build("t", &["ds".into()], &runs);
    let titles: Vec<&str> = r.figures.iter().map(|f| f.title.as_str()).collect();
    assert!(
        titles
            .contains(&"x86_64 getppid, 2 vCPUs: per-call overhead by mechanism and kernel (insn)"),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"x86_64 getppid: per-call overhead by mechanism and kernel (insn)"),
        "{titles:?}"
    );
}

#[test]
fn the_functions_axis_gets_curves_and_leaves_the_overview_alone() {
    let mut runs = synthetic::matrix(&["x86_64"], &["6.12"], 3, 3.0);
    let run = &mut runs[0];
    let one = run
        .cells
        .iter()
        .find(|c| c.measured.mechanism == "kprobe" && c.summary.is_some())
        .expect("a kprobe cell")
        .clone();
    use tracelab_model::cell_id::Functions;
    for (n, attach) in [
        (Functions::Count(1), 3e7),
        (Functions::Count(10), 1.3e8),
        (Functions::Count(100), 1.2e9),
        (Functions::All, 4.1e9),
    ] {
        let mut c = one.clone();
        c.measured.functions = n;
        if let Some(s) = c.summary.as_mut() {
            s.attach = Some(tracelab_model::summary::AttachSummary {
                attach,
                detach: attach * 5.0,
                attach_thread: attach / 2.0,
                detach_thread: attach / 10.0,
            });
        }
        if n.is_one() {
            run.cells.retain(|x| x.measured.mechanism != "kprobe");
        }
        run.cells.push(c);
    }
    let r = build("t", &["ds".into()], &runs);
    let titles: Vec<&str> = r.figures.iter().map(|f| f.title.as_str()).collect();
    for t in [
        "x86_64, kernel 6.12: attach time against functions traced (insn)",
        "x86_64, kernel 6.12: detach time against functions traced (insn)",
        "x86_64, kernel 6.12: overhead per call of the workload's function against functions traced (insn)",
    ] {
        assert!(titles.contains(&t), "{t}: {titles:?}");
    }
    let overview = r
        .figures
        .iter()
        .find(|f| f.section == "Overhead")
        .expect("overview");
    assert!(
        !overview.svg.contains("on 10 functions"),
        "the overview keeps N = 1"
    );
    // `--functions all` was stored as 0 and vanished from the log axis; it is a point
    // of its own, a decade beyond N = 100, its tick `all`.
    let attach = r
        .figures
        .iter()
        .find(|f| f.title.starts_with("x86_64, kernel 6.12: attach time"))
        .expect("attach figure");
    assert!(
        attach.svg.split(['<', '>']).any(|t| t.trim() == "all"),
        "no `all` tick"
    );
    assert_eq!(
        attach.svg.matches("<circle").count(),
        4,
        "four points: 1, 10, 100 and all"
    );
}

#[test]
fn the_other_tracers_axis_gets_a_curve_and_leaves_the_overview_alone() {
    let mut runs = synthetic::matrix(&["arm64"], &["6.1"], 3, 3.0);
    let run = &mut runs[0];
    let one = run
        .cells
        .iter()
        .find(|c| c.measured.mechanism == "function" && c.summary.is_some())
        .expect("a function cell")
        .clone();
    for m in [1u32, 10, 100] {
        let mut c = one.clone();
        c.measured.other_tracers = m;
        run.cells.push(c);
    }
    let r = build("t", &["ds".into()], &runs);
    let fig = r
        .figures
        .iter()
        .find(|f| f.section == "Other tracers")
        .expect("an other-tracers figure");
    assert_eq!(
        fig.title,
        "arm64, kernel 6.1: overhead per call of the workload's function against other tracers (insn)"
    );
    // One line, for the one mechanism measured at several M; none drawn at M = 0 on a
    // log axis: M is drawn at M + 1.
    assert!(fig.svg.contains("\nfunction\n"), "{}", fig.svg);
    assert!(fig.svg.contains("1 + other tracers M"));
    let overview = r
        .figures
        .iter()
        .find(|f| f.section == "Overhead")
        .expect("overview");
    assert!(
        !overview.svg.contains("beside 10 other tracers")
            && overview.svg.contains("no other tracers (more below)"),
        "the overview keeps M = 0"
    );
}

/// Runs with breakdowns get a stacked figure by family per arch, and a table of what
/// changed between kernels that names the symbols that moved.
#[test]
fn breakdowns_give_a_family_figure_and_the_symbols_that_moved_between_kernels() {
    use tracelab_model::attribution::{Breakdown, SymbolCost};
    use tracelab_model::family::Family;
    let breakdown = |rows: &[(&str, f64)]| {
        let rows: Vec<SymbolCost> = rows
            .iter()
            .map(|(s, o)| SymbolCost {
                symbol: s.to_string(),
                family: Family::of(s),
                baseline_insn: 0.0,
                armed_insn: *o,
                overhead_insn: *o,
            })
            .collect();
        let families = tracelab_model::attribution::families(&rows);
        Breakdown {
            symbols: "kallsyms".into(),
            calls: 2000,
            pairs: 1,
            rows,
            families,
            traps_per_call: Some(0.0),
        }
    };
    let mut old = synthetic::run(
        "x86_64",
        "6.12",
        tracelab_model::schema::Unit::Insn,
        &[CellSpec::ok("fprobe-exit", 300.0)],
        3,
    );
    old.cells[0].attribution = Some(breakdown(&[
        ("fprobe_handler", 120.0),
        ("ring_buffer_lock_reserve", 180.0),
    ]));
    let mut new = synthetic::run(
        "x86_64",
        "7.2",
        tracelab_model::schema::Unit::Insn,
        &[CellSpec::ok("fprobe-exit", 440.0)],
        3,
    );
    new.cells[0].attribution = Some(breakdown(&[
        ("fprobe_handler", 46.0),
        ("fprobe_fgraph_entry", 141.0),
        ("function_graph_enter_regs", 73.0),
        ("ring_buffer_lock_reserve", 180.0),
    ]));
    let r = build("t", &[], &[new, old]);
    let fig = r
        .figures
        .iter()
        .find(|f| f.id == "attribution-x86_64")
        .expect("a family figure");
    assert!(
        fig.svg.contains("insn, QEMU TCG plugin"),
        "no unit on the axis"
    );
    for family in ["fprobe/fgraph", "ring buffer/output"] {
        assert!(fig.svg.contains(family), "{family} not in the legend");
    }
    assert!(r
        .markdown
        .contains("| x86_64 | fprobe-exit | 6.12 → 7.2 | 300.00 → 440.00 | +140.00 | +141.00 fprobe_fgraph_entry, -74.00 fprobe_handler, +73.00 function_graph_enter_regs |"),
        "{}", r.markdown);
    assert!(r.html.contains("what changed between kernels"));
}
