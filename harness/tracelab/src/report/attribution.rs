//! The report's "Where the overhead goes" section, from runs made with `--attribution`:
//! per arch, one stacked bar per mechanism and kernel by family, and a table of what
//! changed between consecutive kernels, naming the symbols that moved.

use super::model::{self, Point};
use super::{slug, Figure};
use crate::compare::{movers, Mover};
use crate::plot::figures::{self, Stacked};
use crate::render::{fixed, signed, Table};
use tracelab_model::family::Family;
use tracelab_model::schema::Status;

pub(super) const SECTION: &str = "Where the overhead goes";

/// What the section's figures and tables are made of, said once for both documents.
pub(super) const WHAT: &str = "Instructions per call from the QEMU TCG plugin's counts (the armed loop less the baseline loop of each cell's median pair), by the kernel symbol each executed block starts in; families group the symbols by name (harness/model/src/family.rs)";

/// The cells the section shows: measured, with a breakdown, one program on one function
/// and no other tracers (what the overview figures show too).
fn attributed(points: &[Point]) -> Vec<&Point> {
    points
        .iter()
        .filter(|p| {
            p.status == Status::Ok
                && p.attribution.is_some()
                && p.stack == 1
                && p.functions.is_one()
                && p.other_tracers == 0
        })
        .collect()
}

/// One stacked-bar figure per arch: each mechanism on each kernel, by family.
pub(super) fn figures(points: &[Point]) -> Vec<Figure> {
    let cells = attributed(points);
    let mut out = Vec::new();
    for arch in model::arches(points) {
        let here: Vec<&Point> = cells.iter().copied().filter(|p| p.arch == arch).collect();
        if here.is_empty() {
            continue;
        }
        let kernels = model::kernels(here.iter().copied());
        let mut rows: Vec<(String, &Point)> = Vec::new();
        for s in model::series(here.iter().copied()) {
            for k in &kernels {
                if let Some(p) = here.iter().find(|p| p.series() == s && &p.kernel == k) {
                    rows.push((format!("{s} · kernel {k}"), p));
                }
            }
        }
        let mut families: Vec<Family> = model::distinct(
            rows.iter()
                .filter_map(|(_, p)| p.attribution.as_ref())
                .flat_map(|b| b.families.iter())
                .filter(|f| f.overhead_insn.abs() >= 0.005)
                .map(|f| f.family),
        );
        families.sort();
        let values = rows
            .iter()
            .map(|(_, p)| {
                let b = p.attribution.as_ref();
                families
                    .iter()
                    .map(|f| {
                        b.and_then(|b| b.families.iter().find(|c| c.family == *f))
                            .map_or(0.0, |c| c.overhead_insn)
                    })
                    .collect()
            })
            .collect();
        let title = format!("{arch}: where each overhead goes, by family (insn per call)");
        let fig = Stacked {
            title: title.clone(),
            subtitle: "QEMU TCG plugin counts: armed less baseline loop of the median pair, by the family of each block's symbol".into(),
            x_label: "overhead per call (insn, QEMU TCG plugin)".into(),
            categories: rows.iter().map(|(c, _)| c.clone()).collect(),
            segments: families.iter().map(|f| f.label().to_string()).collect(),
            values,
        };
        out.push(Figure {
            id: slug(&format!("attribution-{arch}")),
            title,
            section: SECTION,
            svg: figures::stacked_bars(&fig),
        });
    }
    out
}

/// One mechanism's overhead on two consecutive kernels of one arch, and the symbols whose
/// part moved most.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Change {
    pub arch: String,
    pub series: String,
    pub from: String,
    pub to: String,
    pub before: f64,
    pub after: f64,
    pub movers: Vec<Mover>,
}

/// Every mechanism with breakdowns on two or more kernels of an arch: one change per pair
/// of consecutive kernels (in version order).
pub(super) fn changes(points: &[Point]) -> Vec<Change> {
    let cells = attributed(points);
    let mut out = Vec::new();
    for arch in model::arches(points) {
        let here: Vec<&Point> = cells.iter().copied().filter(|p| p.arch == arch).collect();
        let kernels = model::kernels(here.iter().copied());
        for s in model::series(here.iter().copied()) {
            let on: Vec<&Point> = kernels
                .iter()
                .filter_map(|k| {
                    here.iter()
                        .copied()
                        .find(|p| p.series() == s && &p.kernel == k)
                })
                .collect();
            for pair in on.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let (Some(ba), Some(bb)) = (&a.attribution, &b.attribution) else {
                    continue;
                };
                out.push(Change {
                    arch: arch.clone(),
                    series: s.clone(),
                    from: a.kernel.clone(),
                    to: b.kernel.clone(),
                    before: ba.total(),
                    after: bb.total(),
                    movers: movers(ba, bb, 3),
                });
            }
        }
    }
    out
}

/// The changes as a table: arch, mechanism, kernels, overhead before and after, the change
/// and the symbols that moved most (each by at least half an instruction per call).
pub(super) fn changes_table(changes: &[Change]) -> Table {
    let headers = [
        "arch",
        "mechanism",
        "kernels",
        "overhead (insn/call)",
        "change (insn/call)",
        "symbols that moved most (insn/call)",
    ];
    let mut t = Table::new(
        headers.map(String::from).to_vec(),
        vec![false, false, false, true, true, false],
    );
    let signed = |x: f64| signed(x, 2);
    for c in changes {
        let moved: Vec<String> = c
            .movers
            .iter()
            .map(|m| format!("{} {}", signed(m.change_insn), m.symbol))
            .collect();
        t.push(vec![
            c.arch.clone(),
            c.series.clone(),
            format!("{} → {}", c.from, c.to),
            format!("{} → {}", fixed(c.before, 2), fixed(c.after, 2)),
            signed(c.after - c.before),
            if moved.is_empty() {
                "none by ½ insn or more".into()
            } else {
                moved.join(", ")
            },
        ]);
    }
    t
}
