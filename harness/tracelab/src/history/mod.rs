//! `tracelab history <store>`: every night of a store read as series (one per cell
//! identity: arch, kernel line, host, workload, mechanism, payload, stack, unit, guest
//! kernel arguments), each searched for change points ([`changepoint`]); each change with
//! its night, before → after, relative change, significance, and what else changed that
//! night by the runs' `meta.json` (kernel release, kernel config, QEMU, agent build, lab
//! build, host, kernel command line), so a kernel regression reads apart from a lab change.

pub mod changepoint;
pub mod store;

use crate::render::{fixed, signed, Format, Table};
use crate::results::{RunMeta, SummaryRow};
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tracelab_model::schema::Status;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What identifies a series across nights.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    pub arch: String,
    pub kernel: String,
    pub host: String,
    pub workload: String,
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    /// Functions traced at once (`--functions`; left out of the JSON when 1).
    #[serde(skip_serializing_if = "tracelab_model::cell_id::Functions::is_one")]
    pub functions: tracelab_model::cell_id::Functions,
    /// Other tracers beside the cell (`--other-tracers`; left out of the JSON when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub other_tracers: u32,
    pub unit: String,
    pub kernel_args: String,
    /// Guest CPUs (`--vcpus`).
    pub vcpus: u32,
}

impl SeriesKey {
    pub fn label(&self) -> String {
        let mut s = format!(
            "{} {} {} {}",
            self.arch, self.kernel, self.workload, self.mechanism
        );
        if let Some(p) = &self.payload {
            s.push_str(&format!(" {p}"));
        }
        if self.stack != 1 {
            s.push_str(&format!(" ×{}", self.stack));
        }
        match self.functions {
            tracelab_model::cell_id::Functions::Count(1) => {}
            tracelab_model::cell_id::Functions::All => s.push_str(" on every function"),
            tracelab_model::cell_id::Functions::Count(n) => {
                s.push_str(&format!(" on {n} functions"))
            }
        }
        if self.other_tracers != 0 {
            s.push_str(&format!(" beside {} other tracers", self.other_tracers));
        }
        if !self.kernel_args.is_empty() {
            s.push_str(&format!(" [{}]", self.kernel_args));
        }
        if self.vcpus != 1 {
            s.push_str(&format!(" [{} vCPUs]", self.vcpus));
        }
        s
    }
}

/// One night of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub night: String,
    pub value: f64,
    /// Half the night's own spread: its interval, else its min..max.
    pub half_width: f64,
    /// The facts of the run that made it (kernel release, config, QEMU, builds, host).
    pub facts: BTreeMap<String, String>,
    /// Where the night's overhead went (`--attribution` nights).
    #[serde(skip)]
    pub attribution: Option<tracelab_model::attribution::Breakdown>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub key: SeriesKey,
    pub points: Vec<Point>,
}

/// One change point, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub series: String,
    pub key: SeriesKey,
    pub night: String,
    pub before: f64,
    pub after: f64,
    pub relative: f64,
    pub z: f64,
    pub p: f64,
    pub regression: bool,
    /// The change is in the store's newest night.
    pub newest: bool,
    /// What else differs between the last night before and the night of the change.
    pub also_changed: Vec<String>,
    /// The symbols whose part moved most between those two nights (both with
    /// `--attribution`), insn per call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub movers: Vec<crate::compare::Mover>,
}

/// A store's history: how much was read and every change found.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub nights: usize,
    pub series: usize,
    pub points: usize,
    pub changes: Vec<Found>,
    /// Whether the newest night is whole (set by the caller from [`load_checked`]).
    pub completeness: Completeness,
}

impl History {
    pub fn new_regressions(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.newest && c.regression)
            .count()
    }
}

/// The facts of a run a series point carries.
fn facts(meta: &RunMeta, host: &str) -> BTreeMap<String, String> {
    let extra = |k: &str| {
        meta.extra.get(k).map(|v| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string())
        })
    };
    let config = serde_json::to_string(&meta.kernel_config).unwrap_or_default();
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            f.insert(k.to_string(), v);
        }
    };
    put("kernel", meta.kernel_release.clone());
    put(
        "kernel config",
        Some(tracelab_kernels::cache::sha256_bytes(config.as_bytes())[..12].to_string()),
    );
    put("QEMU", meta.qemu_version.clone());
    put("agent", extra("agent_revision"));
    put("lab", meta.git_revision.clone());
    put("host", Some(host.to_string()));
    put("kernel command line", extra("kernel_cmdline"));
    put(
        "plan",
        Some(format!("{} calls × {} repeats", meta.calls, meta.repeats)),
    );
    f
}

fn key(row: &SummaryRow, meta: &RunMeta, host: &str) -> SeriesKey {
    SeriesKey {
        arch: row.arch.clone(),
        kernel: row.kernel.clone(),
        host: host.to_string(),
        workload: row.workload.clone(),
        mechanism: row.mechanism.clone(),
        payload: row.payload.clone(),
        stack: row.stack,
        functions: row.functions,
        other_tracers: row.other_tracers,
        unit: row.unit.to_string(),
        kernel_args: meta
            .extra
            .get("kernel_args")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        vcpus: meta.vcpus(),
    }
}

/// How nights group into series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grouping {
    /// One series across kernel lines (a nightly job that follows the distribution's
    /// kernel): the kernel line leaves the identity and a new kernel is a fact that
    /// changed that night.
    pub across_kernels: bool,
}

/// Whether the store's newest night is whole: a gate must not read "0 changes" off a
/// night that measured almost nothing. Made by [`load_checked`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Completeness {
    /// The newest night, and the latest earlier night of its arches and hosts (the
    /// reference for what should be there).
    pub newest: Option<String>,
    pub previous: Option<String>,
    /// Series of the earlier night (per arch and host) with no figure in the newest.
    pub missing: Vec<String>,
    /// How many series those earlier nights had.
    pub expected: usize,
    /// Cells of the newest night that failed (label: reason).
    pub failed: Vec<String>,
    /// An earlier night holding exactly the same runs (the same dataset added twice).
    pub duplicate_of: Option<String>,
}

impl Completeness {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.failed.is_empty() && self.duplicate_of.is_none()
    }

    /// One line for the top of `history`'s output: the verdict on the newest night.
    pub fn line(&self) -> String {
        let Some(newest) = &self.newest else {
            return "no nights".into();
        };
        if self.is_complete() {
            return format!(
                "newest night {newest}: complete ({} series of the night before all measured, no failed cells or guests)",
                self.expected
            );
        }
        let mut what = Vec::new();
        if !self.missing.is_empty() {
            what.push(format!(
                "{} of {} series of night {} missing (e.g. {})",
                self.missing.len(),
                self.expected,
                self.previous.as_deref().unwrap_or("-"),
                self.missing
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if !self.failed.is_empty() {
            what.push(format!(
                "{} failed cells or guests (e.g. {})",
                self.failed.len(),
                self.failed
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if let Some(d) = &self.duplicate_of {
            what.push(format!("the same runs as night {d} (added twice)"));
        }
        format!("newest night {newest} is INCOMPLETE: {}", what.join("; "))
    }
}

/// Reads every night of `store` into series (in parallel; each results directory by its
/// `summary.parquet`, or its cells where that is missing or stale).
pub fn load(store: &Path, grouping: Grouping) -> Result<(usize, Vec<Series>)> {
    load_checked(store, grouping).map(|(n, s, _)| (n, s))
}

/// [`load`], and whether the newest night is whole ([`Completeness`]).
pub fn load_checked(
    store: &Path,
    grouping: Grouping,
) -> Result<(usize, Vec<Series>, Completeness)> {
    let nights = store::nights(store)?;
    let mut dirs = Vec::new();
    for (label, dir, info) in &nights {
        let host = info
            .as_ref()
            .map(|i| i.host.clone())
            .unwrap_or_else(|| "unknown".into());
        for d in crate::dataset::results_dirs(dir).with_context(|| format!("night {label}"))? {
            dirs.push((label.clone(), host.clone(), d));
        }
    }
    type Loaded = (String, String, RunMeta, Vec<SummaryRow>, Breakdowns);
    type Breakdowns = BTreeMap<u32, tracelab_model::attribution::Breakdown>;
    let loaded: Vec<Loaded> = crate::dataset::parallel_map(&dirs, |(night, host, d)| {
        let context = || format!("night {night}: {}", d.display());
        let (meta, rows) = crate::results::load_rows(d).with_context(context)?;
        let breakdowns = crate::results::load_breakdowns(d).with_context(context)?;
        Ok((night.clone(), host.clone(), meta, rows, breakdowns))
    })
    .into_iter()
    .collect::<Result<_>>()?;
    let labels: Vec<&String> = nights.iter().map(|(l, _, _)| l).collect();
    let newest = labels.last().map(|l| l.to_string());
    let mut check = Completeness {
        newest: newest.clone(),
        ..Completeness::default()
    };
    let mut runs: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    let mut series: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
    for (night, host, meta, rows, breakdowns) in &loaded {
        runs.entry(night.as_str())
            .or_default()
            .insert(meta.run_id.as_str());
        let f = facts(meta, host);
        // A baseline cell's overhead is 0 by construction: no series of its own.
        for row in rows.iter().filter(|r| r.mechanism != "baseline") {
            if row.status == Status::Failed && newest.as_deref() == Some(night.as_str()) {
                let mut k = key(row, meta, host);
                if grouping.across_kernels {
                    k.kernel = "any kernel".into();
                }
                check.failed.push(format!(
                    "{}: {}",
                    k.label(),
                    row.reason
                        .as_deref()
                        .map(crate::results::row::one_line)
                        .unwrap_or_default()
                ));
            }
            let (Status::Ok, Some(value)) = (row.status, row.overhead) else {
                continue;
            };
            let half_width = match (row.overhead_ci_low, row.overhead_ci_high) {
                (Some(l), Some(h)) => (h - l) / 2.0,
                _ => match (row.overhead_min, row.overhead_max) {
                    (Some(l), Some(h)) => (h - l) / 2.0,
                    _ => 0.0,
                },
            };
            let mut k = key(row, meta, host);
            if grouping.across_kernels {
                k.kernel = "any kernel".into();
            }
            series.entry(k).or_default().push(Point {
                night: night.clone(),
                value,
                half_width,
                facts: f.clone(),
                attribution: breakdowns.get(&row.cell).cloned(),
            });
        }
    }
    let mut out: Vec<Series> = series
        .into_iter()
        .map(|(key, mut points)| {
            points.sort_by(|a, b| a.night.cmp(&b.night));
            Series { key, points }
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(newest) = &newest {
        // Judged per (arch, host): a store may keep one night per arch, so what the newest
        // night should hold is what the last earlier night of the same arch and host held.
        let has = |s: &Series, n: &str| s.points.iter().any(|p| p.night == n);
        let group = |k: &SeriesKey| (k.arch.clone(), k.host.clone());
        let groups: std::collections::BTreeSet<(String, String)> = out
            .iter()
            .filter(|s| has(s, newest))
            .map(|s| group(&s.key))
            .collect();
        for g in groups {
            let here: Vec<&Series> = out.iter().filter(|s| group(&s.key) == g).collect();
            let before = here
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.night.as_str()))
                .filter(|n| *n < newest.as_str())
                .max()
                .map(str::to_string);
            let Some(before) = before else { continue };
            check.expected += here.iter().filter(|s| has(s, &before)).count();
            check.missing.extend(
                here.iter()
                    .filter(|s| has(s, &before) && !has(s, newest))
                    .map(|s| s.key.label()),
            );
            if check.previous.as_ref().is_none_or(|p| *p < before) {
                check.previous = Some(before);
            }
        }
        // A guest of the newest night that could not run has no cells to miss: its
        // dataset index says so.
        if let Some((_, dir, _)) = nights.last() {
            if let Ok(Some(index)) = crate::dataset::read_index(dir) {
                check
                    .failed
                    .extend(index.guests.iter().filter(|g| g.state != "done").map(|g| {
                        format!(
                            "guest {} {}: {} ({})",
                            g.arch,
                            g.kernel,
                            g.state,
                            g.error
                                .as_deref()
                                .map(crate::results::row::one_line)
                                .unwrap_or_default()
                        )
                    }));
            }
        }
        let newest_runs = runs.get(newest.as_str());
        check.duplicate_of = runs
            .iter()
            .find(|(n, r)| *n != newest && Some(*r) == newest_runs && !r.is_empty())
            .map(|(n, _)| n.to_string());
    }
    Ok((nights.len(), out, check))
}

/// Finds the changes of every series. `relative` and `floor` are the smallest change
/// reported (as `compare`'s threshold).
pub fn analyse(nights: usize, series: &[Series], relative: f64, floor: f64) -> History {
    let newest = series
        .iter()
        .flat_map(|s| s.points.last().map(|p| p.night.clone()))
        .max();
    let mut changes: Vec<Found> = series
        .par_iter()
        .flat_map_iter(|s| {
            let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
            let halves: Vec<f64> = s.points.iter().map(|p| p.half_width).collect();
            let settings = changepoint::Settings {
                sigma: changepoint::noise_scale(&values, &halves),
                relative,
                floor,
            };
            let found = changepoint::detect(&values, settings);
            let newest = newest.clone();
            found.into_iter().map(move |c| {
                let (prev, now) = (&s.points[c.at - 1], &s.points[c.at]);
                let also_changed = now
                    .facts
                    .iter()
                    .filter_map(|(k, v)| match prev.facts.get(k) {
                        Some(old) if old != v => Some(format!("{k} {old} → {v}")),
                        None => Some(format!("{k} → {v}")),
                        _ => None,
                    })
                    .collect();
                Found {
                    series: s.key.label(),
                    key: s.key.clone(),
                    night: now.night.clone(),
                    before: c.before,
                    after: c.after,
                    relative: c.relative(),
                    z: c.z,
                    p: c.p,
                    regression: c.after > c.before,
                    newest: newest.as_deref() == Some(now.night.as_str()),
                    also_changed,
                    movers: match (&prev.attribution, &now.attribution) {
                        (Some(b), Some(a)) => crate::compare::movers(b, a, 5),
                        _ => Vec::new(),
                    },
                }
            })
        })
        .collect();
    changes.sort_by(|a, b| a.night.cmp(&b.night).then(a.series.cmp(&b.series)));
    History {
        nights,
        series: series.len(),
        points: series.iter().map(|s| s.points.len()).sum(),
        changes,
        completeness: Completeness::default(),
    }
}

fn p_text(p: f64) -> String {
    if p < 1e-12 {
        "<1e-12".into()
    } else {
        format!("{p:.2e}")
    }
}

/// The history as a table (or Markdown, CSV, JSON): a line on what was read, then one row
/// per change.
pub fn render(h: &History, format: Format) -> Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(h)? + "\n");
    }
    let headers = [
        "night",
        "series",
        "before",
        "after",
        "unit",
        "change",
        "p",
        "verdict",
        "also changed that night",
    ];
    let right = [false, false, true, true, false, true, true, false, false];
    // The symbols that moved, where the nights were made with --attribution.
    let by_symbol = h.changes.iter().any(|c| !c.movers.is_empty());
    let (headers, right) = if by_symbol {
        let mut hs = headers.to_vec();
        hs.push("by symbol (insn/call, last night before → night of the change)");
        let mut r = right.to_vec();
        r.push(false);
        (hs, r)
    } else {
        (headers.to_vec(), right.to_vec())
    };
    let mut t = Table::new(
        headers.iter().map(|h| h.to_string()).collect(),
        right.to_vec(),
    );
    for c in &h.changes {
        let mut row = vec![
            c.night.clone(),
            c.series.clone(),
            fixed(c.before, 2),
            fixed(c.after, 2),
            format!("{}/call", c.key.unit),
            format!("{}%", signed(c.relative * 100.0, 1)),
            p_text(c.p),
            match (c.regression, c.newest) {
                (true, true) => "new regression",
                (true, false) => "regression",
                (false, true) => "new improvement",
                (false, false) => "improvement",
            }
            .to_string(),
            if c.also_changed.is_empty() {
                "nothing (same kernel, config, QEMU, builds, host)".into()
            } else {
                c.also_changed.join("; ")
            },
        ];
        if by_symbol {
            row.push(crate::compare::render::movers_text(&c.movers));
        }
        t.push(row);
    }
    let head = format!(
        "{} nights, {} series, {} points: {} changes ({} regressions, {} improvements; {} new regressions in the newest night). Change points: penalised piecewise-constant fit (optimal partitioning, as asv), scale = each series' own spread; overhead in each series' unit.\n",
        h.nights,
        h.series,
        h.points,
        h.changes.len(),
        h.changes.iter().filter(|c| c.regression).count(),
        h.changes.iter().filter(|c| !c.regression).count(),
        h.new_regressions()
    );
    let body = match format {
        Format::Markdown => t.markdown(),
        Format::Csv => return Ok(t.csv()),
        _ => t.text(true),
    };
    // The verdict on the newest night first: a night that measured little shows no change.
    let head = match &h.completeness.newest {
        Some(_) => format!("{}\n{head}", h.completeness.line()),
        None => head,
    };
    Ok(if h.changes.is_empty() {
        head
    } else {
        format!("{head}\n{body}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{self, CellSpec};
    use tracelab_model::schema::Unit;

    /// A night of one x86_64 6.12 run: kprobe steady, fprobe-exit at `exit`, the kernel
    /// release `release`.
    fn night(store: &Path, label: &str, exit: f64, release: &str) {
        let mut run = synthetic::run(
            "x86_64",
            "6.12",
            Unit::Insn,
            &[
                CellSpec::ok("kprobe", 820.56),
                CellSpec::ok("fprobe-exit", exit),
            ],
            3,
        );
        run.meta.kernel_release = Some(release.to_string());
        // Made with --attribution: 7.x kernels run fprobe on fgraph, 6.x on rethook.
        let handler = if release.starts_with('7') {
            "fprobe_fgraph_entry"
        } else {
            "rethook_trampoline_handler"
        };
        let row = |symbol: &str, o: f64| tracelab_model::attribution::SymbolCost {
            symbol: symbol.into(),
            family: tracelab_model::family::Family::of(symbol),
            baseline_insn: 0.0,
            armed_insn: o,
            overhead_insn: o,
        };
        run.cells[1].attribution = Some(tracelab_model::attribution::Breakdown {
            symbols: "kallsyms".into(),
            calls: 2000,
            pairs: 1,
            rows: vec![
                row("ring_buffer_lock_reserve", 500.0),
                row(handler, exit - 500.0),
            ],
            families: Vec::new(),
            traps_per_call: Some(0.0),
        });
        let dir = store.join(format!("{}{label}", store::NIGHT_PREFIX));
        synthetic::write_dataset(&dir, &[run]).expect("write night");
    }

    #[test]
    fn a_step_is_found_at_its_night_with_the_kernel_that_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, r) in ["95", "107", "111", "113"].iter().enumerate() {
            night(
                dir.path(),
                &format!("2026-11-0{}-a", i + 1),
                1106.35,
                &format!("6.12.{r}"),
            );
        }
        for i in 5..=7 {
            night(dir.path(), &format!("2026-11-0{i}-a"), 1283.37, "7.2.13");
        }
        let (nights, series) = load(dir.path(), Grouping::default()).expect("load");
        assert_eq!((nights, series.len()), (7, 2));
        let h = analyse(nights, &series, 0.01, 1.0);
        assert_eq!(h.changes.len(), 1, "{:?}", h.changes);
        let c = &h.changes[0];
        assert_eq!(c.night, "2026-11-05-a");
        assert!(c.series.contains("fprobe-exit"), "{}", c.series);
        assert!((c.relative - 0.16).abs() < 0.001, "{}", c.relative);
        assert!(c.regression && !c.newest);
        assert!(
            c.also_changed
                .iter()
                .any(|a| a == "kernel 6.12.113 → 7.2.13"),
            "{:?}",
            c.also_changed
        );
        assert_eq!(h.new_regressions(), 0);
        // The nights carry breakdowns: the change names the symbols that moved.
        let moved: Vec<(&str, i64)> = c
            .movers
            .iter()
            .map(|m| (m.symbol.as_str(), m.change_insn.round() as i64))
            .collect();
        assert_eq!(
            moved,
            [
                ("fprobe_fgraph_entry", 783),
                ("rethook_trampoline_handler", -606)
            ]
        );
        let text = render(&h, Format::Table).expect("render");
        assert!(
            text.contains("7 nights, 2 series, 14 points: 1 changes")
                && text.contains(
                    "+783.37 in fprobe_fgraph_entry, -606.35 in rethook_trampoline_handler"
                ),
            "{text}"
        );
        // A night where the cell is missing (a gap) does not move the change.
        std::fs::remove_dir_all(dir.path().join("night=2026-11-03-a")).expect("rm");
        night(dir.path(), "2026-11-03-a", 1106.35, "6.12.111");
        let gap = dir.path().join("night=2026-11-02-a");
        std::fs::remove_dir_all(&gap).expect("rm");
        let (nights, series) = load(dir.path(), Grouping::default()).expect("load");
        let h = analyse(nights, &series, 0.01, 1.0);
        assert_eq!(h.changes.len(), 1);
        assert_eq!(h.changes[0].night, "2026-11-05-a");
        // A night of another schema version is named in the error.
        night(dir.path(), "2026-11-02-a", 1106.35, "6.12.107");
        let meta = gap.join("arch=x86_64/kernel=6.12/meta.json");
        let text = std::fs::read_to_string(&meta).expect("meta");
        std::fs::write(
            &meta,
            text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
        )
        .expect("write");
        let err = format!("{:#}", load(dir.path(), Grouping::default()).unwrap_err());
        assert!(
            err.contains("night 2026-11-02-a") && err.contains("schema version 99"),
            "{err}"
        );
        std::fs::remove_dir_all(&gap).expect("rm");
        // The same step on the newest night is a new regression (history exits 1).
        night(dir.path(), "2026-11-08-a", 1400.0, "7.2.14");
        let (nights, series) = load(dir.path(), Grouping::default()).expect("load");
        assert_eq!(analyse(nights, &series, 0.01, 1.0).new_regressions(), 1);
    }

    /// A store of one night per arch: the newest night (x86_64) is judged against the last
    /// x86_64 night, not against the arm64 night that sorts just before it.
    #[test]
    fn completeness_is_judged_per_arch_and_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let put = |label: &str, arch: &str, cells: &[CellSpec]| {
            let mut run = synthetic::run(arch, "6.12", Unit::Insn, cells, 3);
            run.meta.run_id = format!("{label}-{arch}");
            let d = dir.path().join(format!("{}{label}", store::NIGHT_PREFIX));
            synthetic::write_dataset(&d, &[run]).expect("night");
        };
        let both = [
            CellSpec::ok("kprobe", 820.0),
            CellSpec::ok("fprobe-exit", 1106.0),
        ];
        put("2026-11-01-arm64", "arm64", &both);
        put("2026-11-01-x86_64", "x86_64", &both);
        put("2026-11-02-arm64", "arm64", &both);
        put("2026-11-02-x86_64", "x86_64", &both);
        let (_, _, c) = load_checked(dir.path(), Grouping::default()).expect("load");
        assert!(c.is_complete(), "{}", c.line());
        assert_eq!(
            (c.expected, c.previous.as_deref()),
            (2, Some("2026-11-01-x86_64"))
        );
        put("2026-11-03-x86_64", "x86_64", &both[..1]);
        let (_, _, c) = load_checked(dir.path(), Grouping::default()).expect("load");
        assert_eq!(c.missing.len(), 1, "{}", c.line());
        assert!(
            c.line()
                .contains("1 of 2 series of night 2026-11-02-x86_64 missing"),
            "{}",
            c.line()
        );
    }
}
