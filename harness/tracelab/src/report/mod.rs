//! `tracelab report`: one self-contained HTML page (inline SVG, inline CSS, no script,
//! nothing fetched) and a Markdown summary of any number of results or dataset
//! directories, drawn only from stored results.
//!
//! Figures, each titled with its unit and never mixing units on an axis: per-call
//! overhead by mechanism with interval whiskers, one chart per (arch, unit) with a bar
//! per kernel; a mechanism × kernel heatmap per (arch, unit); perf counters per call when
//! cells have them; the stack axis (overhead against programs attached) and the payload
//! axis when cells vary along them. Then each run's environment.

mod attribution;
mod html;
mod markdown;
pub mod model;
mod peers;

use crate::dataset::{self, Run};
use crate::plot::figures::{self, Bar, Grouped, Heatmap, Tile};
use crate::plot::lines::{self, Lines};
use anyhow::{bail, Context, Result};
use model::Point;
use std::path::{Path, PathBuf};
use tracelab_model::cell_id::Functions;
use tracelab_model::schema::{Status, Unit};

/// One figure of the report.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem under `figures/` (`overhead-x86_64-insn`).
    pub id: String,
    /// The title drawn in the figure (it names the unit).
    pub title: String,
    /// The section the figure belongs to (`Overhead`, `Heatmaps`, ...).
    pub section: &'static str,
    pub svg: String,
}

/// A built report: figures and the two documents that show them.
#[derive(Debug, Clone)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub html: String,
    pub markdown: String,
}

/// A string safe as a file stem.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Sections of the report, in page order.
const SECTIONS: [&str; 9] = [
    "Overhead",
    attribution::SECTION,
    "Mechanism × kernel",
    "Workloads",
    "Payloads",
    "Stacking",
    "Functions traced",
    "Other tracers",
    "Perf counters",
];

const WHISKERS: &str =
    "bars: median; whiskers: bootstrap 95% CI, or min..max over repeats where no CI is stored";

/// The word drawn where a cell has no bar.
fn mark(p: &Point) -> Option<String> {
    match p.status {
        Status::Ok => None,
        Status::Unsupported => Some("n/s".into()),
        Status::Failed => Some("failed".into()),
    }
}

/// Builds every figure and both documents from loaded runs.
pub fn build(title: &str, inputs: &[String], runs: &[Run]) -> Report {
    let points = model::points(runs);
    let mut figs = Vec::new();
    for (label, here) in model::panels(&points) {
        for unit in model::units(here.iter().copied()) {
            let cells: Vec<&Point> = here.iter().copied().filter(|p| p.unit == unit).collect();
            let primary = primary(&cells);
            let note = primary_note(&cells);
            figs.push(overhead_figure(&label, unit, &primary, &note));
            figs.push(heatmap_figure(&label, unit, &primary, &note));
            figs.extend(stack_figures(&label, unit, &cells));
            figs.extend(payload_figures(&label, unit, &cells));
            figs.extend(functions_figures(&label, unit, &cells));
            figs.extend(other_tracers_figures(&label, unit, &cells));
        }
        figs.extend(counter_figures(&label, &primary(&here)));
    }
    // Across workloads, what is one unit whatever the workload: the traced call, and the
    // share of operations lost.
    if model::distinct(points.iter().map(Point::workload_label)).len() > 1 {
        for arch in model::arches(&points) {
            let here: Vec<&Point> = points.iter().filter(|p| p.arch == arch).collect();
            for unit in model::units(here.iter().copied()) {
                // One figure per kernel: every workload is a column.
                for kernel in model::kernels(here.iter().copied()) {
                    let cells: Vec<&Point> = here
                        .iter()
                        .copied()
                        .filter(|p| p.unit == unit && p.kernel == kernel)
                        .collect();
                    if !cells.is_empty() {
                        figs.extend(workload_figures(&arch, &kernel, unit, &primary(&cells)));
                    }
                }
            }
        }
    }
    figs.extend(attribution::figures(&points));
    // One section per kind of figure, arches in order inside it (the sort is stable).
    figs.sort_by_key(|f| SECTIONS.iter().position(|s| *s == f.section));
    let warnings = mixed_builds(runs);
    let mut html = html::page(title, inputs, runs, &points, &figs);
    let mut markdown = markdown::summary(title, inputs, runs, &points, &figs);
    if !warnings.is_empty() {
        // Right under the title: a reader must see it before any figure.
        let md: String = warnings
            .iter()
            .map(|w| format!("> **warning:** {w}\n"))
            .collect();
        if let Some(i) = markdown.find("\n\n") {
            markdown.insert_str(i + 2, &format!("{md}\n"));
        }
        let block: String = warnings
            .iter()
            .map(|w| {
                format!(
                    "<p class=\"warning\"><strong>warning:</strong> {}</p>\n",
                    crate::render::escape_html(w)
                )
            })
            .collect();
        if let Some(i) = html.find("</h1>") {
            html.insert_str(i + 5, &format!("\n{block}"));
        }
    }
    Report {
        figures: figs,
        html,
        markdown,
    }
}

/// A point's bar: its overhead with the interval as whiskers.
fn bar_of(p: &Point) -> Option<Bar> {
    p.overhead.map(|value| Bar {
        value,
        interval: p.interval.map(|i| (i.low, i.high)),
    })
}

/// One sentence per arch whose runs came from more than one agent build: their figures
/// may differ by the build, not by the kernel.
fn mixed_builds(runs: &[Run]) -> Vec<String> {
    let mut by_arch: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for r in runs {
        if let Some(sha) = r.meta.extra.get("agent_sha256").and_then(|v| v.as_str()) {
            by_arch.entry(r.meta.arch.as_str()).or_default().insert(sha);
        }
    }
    by_arch
        .into_iter()
        .filter(|(_, builds)| builds.len() > 1)
        .map(|(arch, builds)| {
            let short: Vec<String> = builds
                .iter()
                .map(|b| b.chars().take(12).collect())
                .collect();
            format!(
                "the {arch} runs come from {} agent builds ({}): tables and figures mix them",
                builds.len(),
                short.join(", ")
            )
        })
        .collect()
}

/// The payload the overview figures show: the lab's default (`count`) when measured,
/// else the first one seen.
fn primary_payload(cells: &[&Point]) -> Option<String> {
    let payloads = model::distinct(cells.iter().filter_map(|p| p.payload.clone()));
    payloads
        .iter()
        .find(|p| p.as_str() == "count")
        .or(payloads.first())
        .cloned()
}

/// One cell per mechanism for the overview figures: one program attached to one
/// function, the primary payload. The payload, stack and functions figures and the
/// tables show the others.
fn primary<'a>(cells: &[&'a Point]) -> Vec<&'a Point> {
    one_program(cells)
        .into_iter()
        .filter(|p| p.functions.is_one() && p.other_tracers == 0)
        .collect()
}

/// The cells with one program attached and the primary payload, on any number of
/// functions.
fn one_program<'a>(cells: &[&'a Point]) -> Vec<&'a Point> {
    let payload = primary_payload(cells);
    cells
        .iter()
        .copied()
        .filter(|p| p.stack == 1 && (p.payload.is_none() || p.payload == payload))
        .collect()
}

/// What the overview leaves out, for its subtitle.
fn primary_note(cells: &[&Point]) -> String {
    let payloads = model::distinct(cells.iter().filter_map(|p| p.payload.clone()));
    let stacked = cells.iter().any(|p| p.stack != 1);
    let mut note = match (primary_payload(cells), payloads.len() > 1 || stacked) {
        (Some(p), true) => format!("; BPF: payload {p}, one program attached (others below)"),
        _ => String::new(),
    };
    if cells.iter().any(|p| !p.functions.is_one()) {
        note.push_str("; one function traced (more below)");
    }
    if cells.iter().any(|p| p.other_tracers != 0) {
        note.push_str("; no other tracers (more below)");
    }
    note
}

/// The functions axis, per kernel: attach and detach time against the number of
/// functions traced (log–log), and the overhead per call of the workload's function
/// against it. One line per mechanism measured at more than one N.
fn functions_figures(arch: &str, unit: Unit, cells: &[&Point]) -> Vec<Figure> {
    if !cells.iter().any(|p| !p.functions.is_one()) {
        return Vec::new();
    }
    let cells: Vec<&Point> = one_program(cells)
        .into_iter()
        .filter(|p| p.other_tracers == 0)
        .collect();
    let axis = Axis {
        across: |p| p.id().across_functions(),
        // `all` has no count: it is drawn a decade beyond the largest N, its tick `all`.
        x: |p| p.functions.count().map_or(f64::INFINITY, f64::from),
    };
    let mut out = Vec::new();
    for kernel in model::kernels(cells.iter().copied()) {
        let here: Vec<&Point> = cells
            .iter()
            .copied()
            .filter(|p| p.kernel == kernel)
            .collect();
        if axis.series(&here, &|p| p.overhead).is_empty() {
            continue;
        }
        let all_at = all_position(&here);
        let line = |value: &dyn Fn(&Point) -> Option<f64>| {
            let mut series = axis.series(&here, value);
            for (_, points) in &mut series {
                for p in points.iter_mut().filter(|p| p.0.is_infinite()) {
                    p.0 = all_at;
                }
            }
            series
        };
        let all_note = if here.iter().any(|p| p.functions == Functions::All) {
            "; all: every function, drawn a decade right of the largest N"
        } else {
            ""
        };
        let clock = if unit == Unit::Insn {
            "elapsed guest time under icount (a wait counts at its virtual length)"
        } else {
            "elapsed real time"
        };
        for (what, step, value) in [
            (
                "attach",
                "from nothing to armed: install and arm",
                (|p: &Point| p.attach.map(|a| a.attach)) as fn(&Point) -> Option<f64>,
            ),
            (
                "detach",
                "from armed to nothing: disarm and remove",
                |p: &Point| p.attach.map(|a| a.detach),
            ),
        ] {
            let title =
                format!("{arch}, kernel {kernel}: {what} time against functions traced ({unit})");
            out.push(Figure {
                id: slug(&format!("functions-{what}-{arch}-{kernel}-{unit}")),
                title: title.clone(),
                section: "Functions traced",
                svg: lines::lines(&Lines {
                    title,
                    subtitle: format!("{step}; median over repeats; {clock}; log–log{all_note}"),
                    x_label: "functions traced at once".into(),
                    y_label: format!("{what} time ({unit})"),
                    log_y: true,
                    series: line(&value),
                    all_at: Some(all_at),
                }),
            });
        }
        let title = format!(
            "{arch}, kernel {kernel}: overhead per call of the workload's function against functions traced ({unit})"
        );
        out.push(Figure {
            id: slug(&format!("functions-overhead-{arch}-{kernel}-{unit}")),
            title: title.clone(),
            section: "Functions traced",
            svg: lines::lines(&Lines {
                title,
                subtitle: format!(
                    "the others attached but never called; median paired overhead{all_note}"
                ),
                x_label: "functions traced at once".into(),
                y_label: format!("overhead per call ({unit})"),
                log_y: false,
                series: line(&|p: &Point| p.overhead),
                all_at: Some(all_at),
            }),
        });
    }
    out
}

/// Where `--functions all` is drawn: the decade after the largest N among `cells`.
fn all_position(cells: &[&Point]) -> f64 {
    let largest = cells
        .iter()
        .filter_map(|p| p.functions.count())
        .max()
        .unwrap_or(1);
    10f64.powf((f64::from(largest)).log10().floor() + 1.0)
}

/// Cells along one axis: a line per series (the cell's identity without the axis)
/// measured at more than one value of it.
struct Axis {
    across: fn(&Point) -> String,
    x: fn(&Point) -> f64,
}

impl Axis {
    /// The lines of `value` against the axis among `here` (ok cells only).
    fn series(
        &self,
        here: &[&Point],
        value: &dyn Fn(&Point) -> Option<f64>,
    ) -> Vec<(String, Vec<(f64, f64)>)> {
        model::distinct(here.iter().map(|p| (self.across)(p)))
            .into_iter()
            .filter(|n| {
                model::distinct(
                    here.iter()
                        .filter(|p| &(self.across)(p) == n)
                        .map(|p| (self.x)(p).to_bits()),
                )
                .len()
                    > 1
            })
            .map(|n| {
                let mut points: Vec<(f64, f64)> = here
                    .iter()
                    .filter(|p| (self.across)(p) == n && p.status == Status::Ok)
                    .filter_map(|p| Some(((self.x)(p), value(p)?)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                (n, points)
            })
            .collect()
    }
}

/// The other-tracers axis, per kernel: the overhead per call of the workload's function
/// against the number of other ftrace users on the kernel. One line per mechanism
/// measured at more than one M.
fn other_tracers_figures(arch: &str, unit: Unit, cells: &[&Point]) -> Vec<Figure> {
    if !cells.iter().any(|p| p.other_tracers != 0) {
        return Vec::new();
    }
    let cells: Vec<&Point> = one_program(cells)
        .into_iter()
        .filter(|p| p.functions.is_one())
        .collect();
    // The x axis is logarithmic: none (M = 0) is drawn at 1.
    let axis = Axis {
        across: |p| p.id().across_other_tracers(),
        x: |p| f64::from(p.other_tracers) + 1.0,
    };
    let mut out = Vec::new();
    for kernel in model::kernels(cells.iter().copied()) {
        let here: Vec<&Point> = cells
            .iter()
            .copied()
            .filter(|p| p.kernel == kernel)
            .collect();
        let series = axis.series(&here, &|p| p.overhead);
        if series.is_empty() {
            continue;
        }
        let title = format!(
            "{arch}, kernel {kernel}: overhead per call of the workload's function against other tracers ({unit})"
        );
        out.push(Figure {
            id: slug(&format!("other-tracers-overhead-{arch}-{kernel}-{unit}")),
            title: title.clone(),
            section: "Other tracers",
            svg: lines::lines(&Lines {
                title,
                subtitle: "M trace instances, each with the function tracer on one function never called in the loops; median paired overhead".into(),
                x_label: "1 + other tracers M (log; 1 is none)".into(),
                y_label: format!("overhead per call ({unit})"),
                log_y: false,
                series,
                all_at: None,
            }),
        });
    }
    out
}

fn overhead_figure(arch: &str, unit: Unit, cells: &[&Point], note: &str) -> Figure {
    let categories = model::series(cells.iter().copied());
    let kernels = model::kernels(cells.iter().copied());
    let find = |s: &str, k: &str| cells.iter().find(|p| p.series() == s && p.kernel == k);
    let bars = categories
        .iter()
        .map(|s| {
            kernels
                .iter()
                .map(|k| find(s, k).and_then(|p| bar_of(p)))
                .collect()
        })
        .collect();
    let marks = categories
        .iter()
        .map(|s| {
            kernels
                .iter()
                .map(|k| find(s, k).and_then(|p| mark(p)))
                .collect()
        })
        .collect();
    let per = cells
        .first()
        .map_or("call", |p| model::per_what(&p.workload));
    let title = format!("{arch}: per-{per} overhead by mechanism and kernel ({unit})");
    let workloads = model::distinct(cells.iter().map(|p| p.workload.clone())).join(", ");
    let fig = Grouped {
        title: title.clone(),
        subtitle: format!(
            "workload {workloads}; {WHISKERS}; n/s: unsupported by that kernel{note}"
        ),
        y_label: format!("overhead per {per} ({unit})"),
        categories,
        groups: kernels.iter().map(|k| format!("kernel {k}")).collect(),
        bars,
        marks,
    };
    Figure {
        id: slug(&format!("overhead-{arch}-{unit}")),
        title,
        section: "Overhead",
        svg: figures::grouped_bars(&fig),
    }
}

fn heatmap_figure(arch: &str, unit: Unit, cells: &[&Point], note: &str) -> Figure {
    let rows = model::series(cells.iter().copied());
    let cols = model::kernels(cells.iter().copied());
    let tiles = rows
        .iter()
        .map(|s| {
            cols.iter()
                .map(|k| {
                    let p = cells.iter().find(|p| &p.series() == s && &p.kernel == k);
                    tile(p.copied(), |p| p.overhead)
                })
                .collect()
        })
        .collect();
    let per = cells
        .first()
        .map_or("call", |p| model::per_what(&p.workload));
    let title = format!("{arch}: overhead per {per}, mechanism × kernel ({unit})");
    let fig = Heatmap {
        title: title.clone(),
        subtitle: format!(
            "median paired (armed − baseline) cost per {per}; grey: not measured, with why{note}"
        ),
        scale_label: format!("overhead per {per} ({unit})"),
        rows,
        cols: cols.iter().map(|k| format!("kernel {k}")).collect(),
        tiles,
    };
    Figure {
        id: slug(&format!("heatmap-{arch}-{unit}")),
        title,
        section: "Mechanism × kernel",
        svg: figures::heatmap(&fig),
    }
}

/// With several workloads, for one (arch, kernel): the overhead per traced call and the
/// slowdown per operation as mechanism × workload heatmaps, so a uprobe on the agent's `nop` stands
/// beside a kprobe on `getppid` and a pipe's slowdown beside a fork's. A traced call is
/// one unit whatever the workload, so those figures share a scale; per-operation costs
/// do not, and stay in each workload's own figures above.
fn workload_figures(arch: &str, kernel: &str, unit: Unit, cells: &[&Point]) -> Vec<Figure> {
    let rows = model::series(cells.iter().copied().filter(|p| p.mechanism != "baseline"));
    // One kernel's cells: a column per workload, in run order.
    let cols = model::distinct(cells.iter().map(|p| p.workload_label()));
    let figure = |stem: &str,
                  what: &str,
                  subtitle: String,
                  scale: String,
                  value: fn(&Point) -> Option<f64>| {
        let title = format!("{arch}, kernel {kernel}: {what}, mechanism × workload");
        let tiles = rows
            .iter()
            .map(|s| {
                cols.iter()
                    .map(|w| tile(model::find_in(cells, s, w), value))
                    .collect()
            })
            .collect();
        Figure {
            id: slug(&format!("{stem}-{arch}-{kernel}-{unit}")),
            title: title.clone(),
            section: "Workloads",
            svg: figures::heatmap(&Heatmap {
                title,
                subtitle,
                scale_label: scale,
                rows: rows.clone(),
                cols: cols.clone(),
                tiles,
            }),
        }
    };
    vec![
        figure(
            "workloads",
            &format!("overhead per traced call ({unit})"),
            "median paired overhead per operation ÷ traced calls per operation; grey: not measured, with why".into(),
            format!("overhead per traced call ({unit})"),
            Point::overhead_per_traced_call,
        ),
        figure(
            "slowdown",
            "slowdown (% of operations per second)",
            format!("operations per second lost: overhead ÷ armed cost per operation, both in {unit}"),
            "slowdown (%)".into(),
            Point::slowdown_pct,
        ),
    ]
}

/// A heatmap tile: `value` of a measured cell, else why there is none.
fn tile(p: Option<&Point>, value: impl Fn(&Point) -> Option<f64>) -> Tile {
    match p {
        None => Tile::Empty,
        Some(p) => match (p.status, value(p)) {
            (Status::Ok, Some(v)) => Tile::Value(v),
            (Status::Ok, None) => Tile::Word("no summary".into()),
            (st, _) => Tile::Word(st.name().into()),
        },
    }
}

/// Per counter name: bars per mechanism (stack 1, no payload split) by kernel. The unit is
/// the counter's events per call, never insn or ns: these are not times.
fn counter_figures(arch: &str, cells: &[&Point]) -> Vec<Figure> {
    let names = model::distinct(cells.iter().flat_map(|p| p.counters.keys().cloned()));
    let mut out = Vec::new();
    for name in names {
        let with: Vec<&Point> = cells
            .iter()
            .copied()
            .filter(|p| p.counters.contains_key(&name))
            .collect();
        // A counter that moved in no cell (context switches in a one-CPU guest) would be
        // a chart of zeros: the tables and the notes say so instead.
        if with.iter().all(|p| p.counters.get(&name) == Some(&0.0)) {
            continue;
        }
        let categories = model::series(with.iter().copied());
        let kernels = model::kernels(with.iter().copied());
        let bars = categories
            .iter()
            .map(|s| {
                kernels
                    .iter()
                    .map(|k| {
                        with.iter()
                            .find(|p| &p.series() == s && &p.kernel == k)
                            .and_then(|p| p.counters.get(&name))
                            .map(|&value| Bar {
                                value,
                                interval: None,
                            })
                    })
                    .collect()
            })
            .collect();
        let per = with
            .first()
            .map_or("call", |p| model::per_what(&p.workload));
        // The plugin's counts are emulated: never titled as a PMU's.
        let kind = if name.starts_with("tcg-plugin:") {
            "emulated counter (QEMU TCG plugin, not a PMU)"
        } else {
            "perf counter"
        };
        let title = format!("{arch}: {kind} {name}, overhead per {per} ({name} per {per})");
        let fig = Grouped {
            title: title.clone(),
            subtitle: format!("median over repeats of (armed − baseline) count per {per}"),
            y_label: format!("{name} per {per}"),
            marks: vec![Vec::new(); categories.len()],
            categories,
            groups: kernels.iter().map(|k| format!("kernel {k}")).collect(),
            bars,
        };
        out.push(Figure {
            id: slug(&format!("counter-{arch}-{name}")),
            title,
            section: "Perf counters",
            svg: figures::grouped_bars(&fig),
        });
    }
    out
}

/// When cells vary in stack depth: overhead against the number of programs attached, one
/// line per (mechanism, payload), one chart per kernel.
fn stack_figures(arch: &str, unit: Unit, cells: &[&Point]) -> Vec<Figure> {
    if !cells.iter().any(|p| p.stack != 1) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for kernel in model::kernels(cells.iter().copied()) {
        let here: Vec<&Point> = cells
            .iter()
            .copied()
            .filter(|p| p.kernel == kernel)
            .collect();
        let name = |p: &Point| match &p.payload {
            Some(pl) => format!("{}/{pl}", p.mechanism),
            None => p.mechanism.clone(),
        };
        let mut stacks = model::distinct(here.iter().map(|p| p.stack));
        stacks.sort_unstable();
        // Only what was measured at more than one depth has a stack axis.
        let categories: Vec<String> = model::distinct(here.iter().map(|p| name(p)))
            .into_iter()
            .filter(|c| here.iter().filter(|p| &name(p) == c).count() > 1)
            .collect();
        if categories.is_empty() {
            continue;
        }
        let find = |c: &str, st: u32| here.iter().find(|p| name(p) == c && p.stack == st);
        let bars = categories
            .iter()
            .map(|c| {
                stacks
                    .iter()
                    .map(|&st| find(c, st).and_then(|p| bar_of(p)))
                    .collect()
            })
            .collect();
        let marks = categories
            .iter()
            .map(|c| {
                stacks
                    .iter()
                    .map(|&st| find(c, st).and_then(|p| mark(p)))
                    .collect()
            })
            .collect();
        let title = format!("{arch}, kernel {kernel}: overhead per call by stack depth ({unit})");
        out.push(Figure {
            id: slug(&format!("stack-{arch}-{kernel}-{unit}")),
            title: title.clone(),
            section: "Stacking",
            svg: figures::grouped_bars(&Grouped {
                title,
                subtitle: format!(
                    "programs attached to the function at once, per mechanism/payload; {WHISKERS}"
                ),
                y_label: format!("overhead per call ({unit})"),
                categories,
                groups: stacks.iter().map(|st| format!("{st} attached")).collect(),
                bars,
                marks,
            }),
        });
    }
    out
}

/// When cells differ in payload: bars per mechanism, one colour per payload (stack 1),
/// one chart per kernel.
fn payload_figures(arch: &str, unit: Unit, cells: &[&Point]) -> Vec<Figure> {
    // One payload alone is no axis: the overhead chart already shows it.
    if model::distinct(cells.iter().filter_map(|p| p.payload.clone())).len() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for kernel in model::kernels(cells.iter().copied()) {
        let here: Vec<&Point> = cells
            .iter()
            .copied()
            .filter(|p| p.kernel == kernel && p.stack == 1 && p.payload.is_some())
            .collect();
        if here.is_empty() {
            continue;
        }
        let mechanisms = model::distinct(here.iter().map(|p| p.mechanism.clone()));
        let payloads = model::distinct(here.iter().filter_map(|p| p.payload.clone()));
        let find = |m: &str, pl: &str| {
            here.iter()
                .find(|p| p.mechanism == m && p.payload.as_deref() == Some(pl))
        };
        let bars = mechanisms
            .iter()
            .map(|m| {
                payloads
                    .iter()
                    .map(|pl| find(m, pl).and_then(|p| bar_of(p)))
                    .collect()
            })
            .collect();
        let marks = mechanisms
            .iter()
            .map(|m| {
                payloads
                    .iter()
                    .map(|pl| find(m, pl).and_then(|p| mark(p)))
                    .collect()
            })
            .collect();
        let title = format!("{arch}, kernel {kernel}: overhead per call by payload ({unit})");
        out.push(Figure {
            id: slug(&format!("payload-{arch}-{kernel}-{unit}")),
            title: title.clone(),
            section: "Payloads",
            svg: figures::grouped_bars(&Grouped {
                title,
                subtitle: format!("what the attached program does; {WHISKERS}"),
                y_label: format!("overhead per call ({unit})"),
                categories: mechanisms,
                groups: payloads.iter().map(|p| format!("payload {p}")).collect(),
                bars,
                marks,
            }),
        });
    }
    out
}

/// Writes `report.html`, `report.md` and `figures/*.svg` into `out`.
pub fn write(out: &Path, report: &Report) -> Result<()> {
    let figs = out.join("figures");
    std::fs::create_dir_all(&figs).with_context(|| format!("creating {}", figs.display()))?;
    for f in &report.figures {
        crate::results::atomic::write(&figs.join(format!("{}.svg", f.id)), f.svg.as_bytes())?;
    }
    crate::results::atomic::write(&out.join("report.html"), report.html.as_bytes())?;
    crate::results::atomic::write(&out.join("report.md"), report.markdown.as_bytes())
}

/// Renders every `figures/*.svg` of `out` to PNG with `rsvg-convert` (Debian package
/// `librsvg2-bin`): plotters' own bitmap backend needs a font crate to draw text, which
/// the lab does not link.
pub fn write_png(out: &Path, report: &Report) -> Result<()> {
    let figs = out.join("figures");
    for f in &report.figures {
        let svg = figs.join(format!("{}.svg", f.id));
        let png = figs.join(format!("{}.png", f.id));
        let status = std::process::Command::new("rsvg-convert")
            .arg("--background-color=white")
            .arg("-o")
            .arg(&png)
            .arg(&svg)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => bail!("rsvg-convert failed on {} ({s})", svg.display()),
            Err(e) => bail!("--png needs rsvg-convert (Debian/Ubuntu package librsvg2-bin): {e}"),
        }
    }
    Ok(())
}

/// What `make` wrote.
pub struct Made {
    pub runs: usize,
    pub figures: usize,
}

/// Loads `inputs` and writes the report (`report.html`, `report.md`, `figures/`, and PNGs
/// when asked) into `out`.
pub fn make(inputs: &[PathBuf], out: &Path, title: &str, png: bool) -> Result<Made> {
    let mut runs = Vec::new();
    let mut found = Vec::new();
    for input in inputs {
        let here = crate::self_study::peers::find(input)?;
        match dataset::load(input) {
            Ok(r) => runs.extend(r),
            // A peers directory alone holds no run the report draws.
            Err(_) if !here.is_empty() => {}
            Err(e) => return Err(e),
        }
        found.extend(here);
    }
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let mut report = build(title, &names, &runs);
    peers::add(&mut report, &found);
    write(out, &report)?;
    if png {
        write_png(out, &report)?;
    }
    Ok(Made {
        runs: runs.len(),
        figures: report.figures.len(),
    })
}

#[cfg(test)]
mod tests;
