//! `tracelab compare`: per cell, how a candidate run differs from a baseline run, and a
//! verdict a CI job can act on.
//!
//! Cells are matched by [`CellKey`] (arch, kernel, mechanism, payload, stack, workload).
//! The figure compared is the per-call `overhead`; its interval is the summary's bootstrap
//! confidence interval when stored, else the min..max over repeats. A cell is
//! *regressed* when its overhead grew by more than the threshold **and** the two intervals
//! do not overlap (the lower end of the change's interval is above zero); *improved*
//! symmetrically; otherwise *unchanged*. Cells whose figures cannot be put side by side
//! (other unit, kernel release, kernel config or traced function; a status other than
//! `ok` on either side; a cell on one side only) are *not comparable*, with the reason.
//!
//! Everything here is a pure function of loaded runs; [`render`] turns the result into
//! Markdown, JSON or a table.

pub mod render;

use crate::dataset::Run;
use crate::results::row::finite;
use crate::results::RunMeta;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use tracelab_model::cell::Cell;
use tracelab_model::schema::{Status, Unit};

/// What identifies "the same cell" across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CellKey {
    pub arch: String,
    pub kernel: String,
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    pub functions: tracelab_model::cell_id::Functions,
    /// Other tracers beside the cell (left out of the JSON when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub other_tracers: u32,
    pub workload: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CellKey {
    pub fn of(cell: &Cell) -> CellKey {
        CellKey {
            arch: cell.context.arch.clone(),
            kernel: cell.context.kernel.clone(),
            mechanism: cell.measured.mechanism.clone(),
            payload: cell.measured.payload.clone(),
            stack: cell.measured.stack,
            functions: cell.measured.functions,
            other_tracers: cell.measured.other_tracers,
            workload: cell.measured.workload.clone(),
        }
    }
}

impl fmt::Display for CellKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = tracelab_model::cell_id::CellId {
            mechanism: self.mechanism.clone(),
            payload: self.payload.clone(),
            stack: self.stack,
            functions: self.functions,
            other_tracers: self.other_tracers,
        };
        write!(
            f,
            "{}/{} {}{} ({})",
            self.arch,
            self.kernel,
            id.mechanism,
            id.qualifiers(),
            self.workload
        )
    }
}

/// When a change counts: more than `relative` × |baseline overhead|, and at least `floor`
/// per call (in the cell's own unit), so that a near-zero baseline does not turn noise
/// into a verdict; and which cells are one cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold {
    pub relative: f64,
    pub floor: f64,
    /// Cells of different kernels are one cell (`--across-kernels`): the kernel line
    /// leaves the key, and a different release, config or traced function is what is
    /// compared, not a reason to refuse.
    pub across_kernels: bool,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            relative: 0.05,
            floor: 1.0,
            across_kernels: false,
        }
    }
}

impl Threshold {
    /// The smallest change (absolute, in the cell's unit) that counts against `baseline`.
    pub fn minimum_change(&self, baseline: f64) -> f64 {
        (self.relative * baseline.abs()).max(self.floor)
    }
}

/// Parses a relative threshold: `5%`, `5 %` or the fraction `0.05`. A bare number above 1
/// is refused, not read as a fraction: `--threshold 5` would mean 500 %, and a CI gate
/// written so would never fire.
pub fn parse_relative(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (t, 1.0),
    };
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && scale == 1.0 && x > 1.0 => Err(format!(
            "invalid threshold `{s}`: a bare number is a fraction and {x} would mean {}%; write {x}% (or {} as a fraction)",
            x * 100.0,
            x / 100.0
        )),
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x * scale),
        _ => Err(format!(
            "invalid threshold `{s}`: give a percentage or a fraction up to 1, e.g. 5% or 0.05"
        )),
    }
}

/// Parses an absolute floor (per call, in each cell's unit).
pub fn parse_floor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!(
            "invalid floor `{s}`: give a non-negative number of insn or ns per call, e.g. 1 or 0.5"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regressed,
    Improved,
    NotComparable,
    Unchanged,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Regressed,
        Verdict::Improved,
        Verdict::NotComparable,
        Verdict::Unchanged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::NotComparable => "not comparable",
            Verdict::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an interval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalKind {
    /// The summary's bootstrap 95% confidence interval of the median overhead.
    Ci95,
    /// Smallest..largest paired overhead over repeats (no CI stored).
    MinMax,
}

/// A closed interval around a figure, in the cell's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub kind: IntervalKind,
}

/// One side of a comparison: what the cell says, reduced to what the verdict needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub run_id: String,
    pub unit: Unit,
    pub status: Status,
    pub reason: Option<String>,
    pub kernel_release: Option<String>,
    pub function: Option<String>,
    /// Median per-call overhead; None without a summary.
    pub overhead: Option<f64>,
    pub interval: Option<Interval>,
    #[serde(skip)]
    pub kernel_config: BTreeMap<String, String>,
    /// Guest CPUs: a peer on a CPU of its own changes what an operation costs.
    #[serde(skip)]
    pub vcpus: u32,
}

impl Side {
    pub fn of(meta: &RunMeta, cell: &Cell) -> Side {
        let s = cell.summary.as_ref();
        Side {
            run_id: meta.run_id.clone(),
            unit: cell.measured.unit,
            status: cell.measured.status,
            reason: cell.measured.reason.clone(),
            kernel_release: cell
                .context
                .kernel_release
                .clone()
                .or_else(|| meta.kernel_release.clone()),
            function: cell.measured.function.clone(),
            overhead: s.and_then(|s| finite(s.overhead)),
            interval: s.and_then(|s| {
                interval(
                    s.overhead_ci_low,
                    s.overhead_ci_high,
                    s.overhead_min,
                    s.overhead_max,
                )
            }),
            kernel_config: meta.kernel_config.clone(),
            vcpus: meta.vcpus(),
        }
    }
}

/// The CI when both ends are stored and finite, else min..max; either way ordered.
pub fn interval(ci_low: Option<f64>, ci_high: Option<f64>, min: f64, max: f64) -> Option<Interval> {
    let ordered = |a: f64, b: f64, kind| {
        (a.is_finite() && b.is_finite()).then(|| Interval {
            low: a.min(b),
            high: a.max(b),
            kind,
        })
    };
    match (ci_low, ci_high) {
        (Some(lo), Some(hi)) => {
            ordered(lo, hi, IntervalKind::Ci95).or_else(|| ordered(min, max, IntervalKind::MinMax))
        }
        _ => ordered(min, max, IntervalKind::MinMax),
    }
}

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    #[serde(flatten)]
    pub key: CellKey,
    pub verdict: Verdict,
    /// Why not comparable, or a note on an unchanged cell.
    pub reason: Option<String>,
    /// The unit of every figure below (None only when the sides disagree).
    pub unit: Option<Unit>,
    pub baseline: Option<Side>,
    pub candidate: Option<Side>,
    /// candidate − baseline overhead per call.
    pub change: Option<f64>,
    /// change / |baseline overhead|; None when the baseline overhead is 0.
    pub relative_change: Option<f64>,
    /// The interval of the change: candidate interval minus baseline interval.
    pub change_low: Option<f64>,
    pub change_high: Option<f64>,
    /// The smallest change that would have counted (threshold applied to this cell).
    pub minimum_change: Option<f64>,
    /// Real time only: the Mann–Whitney U test of the candidate's paired overheads
    /// against the baseline's, with the Hodges–Lehmann shift and its 95% interval.
    /// Under icount the figures are exact and no test is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<tracelab_model::rank_test::RankTest>,
    /// The command that measures this cell again as the candidate did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
    /// Where a change went, by kernel symbol, largest first (both sides measured with
    /// `--attribution`): candidate less baseline overhead per call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub movers: Vec<Mover>,
}

/// One symbol's part in a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mover {
    pub symbol: String,
    pub change_insn: f64,
}

/// The symbols whose part of the overhead moved most between two breakdowns: at most
/// `most`, each by at least half an instruction per call.
pub fn movers(
    base: &tracelab_model::attribution::Breakdown,
    cand: &tracelab_model::attribution::Breakdown,
    most: usize,
) -> Vec<Mover> {
    // A compiler's clone (`rb_commit.part.0`) is its function: kernels differ in which
    // functions the compiler split, and a move between the two names is no change.
    let function = |s: &str| -> String {
        match s.split_once('.') {
            Some((f, _)) if !s.starts_with('[') => f.to_string(),
            _ => s.to_string(),
        }
    };
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for r in &base.rows {
        *by.entry(function(&r.symbol)).or_default() -= r.overhead_insn;
    }
    for r in &cand.rows {
        *by.entry(function(&r.symbol)).or_default() += r.overhead_insn;
    }
    let mut out: Vec<Mover> = by
        .into_iter()
        .filter(|(_, d)| d.abs() >= 0.5)
        .map(|(symbol, change_insn)| Mover {
            symbol,
            change_insn,
        })
        .collect();
    out.sort_by(|a, b| b.change_insn.abs().total_cmp(&a.change_insn.abs()));
    out.truncate(most);
    out
}

/// Judges one matched pair. Pure: no I/O, no global state.
pub fn judge(key: CellKey, base: Side, cand: Side, threshold: &Threshold) -> Comparison {
    let mut c = Comparison {
        key,
        verdict: Verdict::NotComparable,
        reason: None,
        unit: (base.unit == cand.unit).then_some(base.unit),
        baseline: None,
        candidate: None,
        change: None,
        relative_change: None,
        change_low: None,
        change_high: None,
        minimum_change: None,
        test: None,
        reproduce: None,
        movers: Vec::new(),
    };
    if let Some(why) = not_comparable(&base, &cand, threshold.across_kernels) {
        c.reason = Some(why);
        c.baseline = Some(base);
        c.candidate = Some(cand);
        return c;
    }
    // not_comparable() has checked that both overheads and intervals are present.
    let (Some(b), Some(k), Some(bi), Some(ki)) =
        (base.overhead, cand.overhead, base.interval, cand.interval)
    else {
        c.reason = Some("no overhead to compare".into());
        return c;
    };
    let change = k - b;
    let (low, high) = (ki.low - bi.high, ki.high - bi.low);
    let minimum = threshold.minimum_change(b);
    c.verdict = if change > minimum && low > 0.0 {
        Verdict::Regressed
    } else if change < -minimum && high < 0.0 {
        Verdict::Improved
    } else {
        if change.abs() > minimum {
            c.reason = Some("change beyond the threshold, but the intervals overlap".into());
        }
        Verdict::Unchanged
    };
    c.change = Some(change);
    // Relative to a baseline below the floor, a change of nothing reads as +100 %.
    c.relative_change = (b.abs() >= threshold.floor && b != 0.0).then(|| change / b.abs());
    c.change_low = Some(low);
    c.change_high = Some(high);
    c.minimum_change = Some(minimum);
    c.baseline = Some(base);
    c.candidate = Some(cand);
    c
}

/// Why two sides cannot be compared, or None when they can. `across_kernels`: a different
/// kernel (release, config, the name of the traced function) is what is compared.
pub fn not_comparable(base: &Side, cand: &Side, across_kernels: bool) -> Option<String> {
    if base.unit != cand.unit {
        return Some(format!(
            "different units: {} in the baseline, {} in the candidate",
            base.unit, cand.unit
        ));
    }
    for (side, s) in [("baseline", base), ("candidate", cand)] {
        if s.status != Status::Ok {
            let why = s
                .reason
                .as_deref()
                .map(crate::results::row::one_line)
                .unwrap_or_else(|| "no reason recorded".into());
            return Some(format!("{side} is {} ({why})", s.status));
        }
    }
    if let (Some(a), Some(b), false) = (&base.kernel_release, &cand.kernel_release, across_kernels)
    {
        if a != b {
            return Some(format!("different kernel releases: {a} → {b}"));
        }
    }
    if base.vcpus != cand.vcpus {
        return Some(format!(
            "different guest CPUs (--vcpus): {} → {}",
            base.vcpus, cand.vcpus
        ));
    }
    let config = config_changes(&base.kernel_config, &cand.kernel_config);
    if !config.is_empty() && !across_kernels {
        return Some(format!("different kernel config: {}", config.join(", ")));
    }
    if let (Some(a), Some(b), false) = (&base.function, &cand.function, across_kernels) {
        if a != b {
            return Some(format!("different traced functions: {a} → {b}"));
        }
    }
    for (side, s) in [("baseline", base), ("candidate", cand)] {
        if s.overhead.is_none() || s.interval.is_none() {
            return Some(format!("{side} has no summary (no finite overhead)"));
        }
    }
    None
}

/// Options recorded on both sides with different values (`CONFIG_FPROBE: y → n`). An
/// option only one side recorded (a newer lab records more) is not a difference.
pub fn config_changes(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.iter()
        .filter_map(|(k, va)| {
            let vb = b.get(k)?;
            (va != vb).then(|| format!("{k}: {va} → {vb}"))
        })
        .collect()
}

/// The kernel of a key when cells of different kernels are one cell.
pub const ANY_KERNEL: &str = "any kernel";

/// The whole comparison of two sets of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub baseline: String,
    pub candidate: String,
    pub threshold: Threshold,
    /// How many cells got each verdict.
    pub counts: BTreeMap<String, usize>,
    /// Differences between the environments of matched runs (QEMU version, CPU model,
    /// agent binary, calls, repeats): not verdicts, but what a reader should know.
    pub environment: Vec<String>,
    /// Sorted by verdict (regressed first), then key.
    pub cells: Vec<Comparison>,
    /// Cells on one side only that a view left out (`compare` without `--all`): how many
    /// were only in the baseline and only in the candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_sided: Option<(usize, usize)>,
}

impl CompareReport {
    /// Leaves out the cells found on one side only, counting them in `one_sided`: a
    /// guest compared against a whole dataset would otherwise list the dataset's every
    /// other cell before the few it compared.
    pub fn fold_one_sided(&mut self) {
        let (mut b, mut c) = (0, 0);
        self.cells.retain(|x| match (&x.baseline, &x.candidate) {
            (Some(_), None) => {
                b += 1;
                false
            }
            (None, Some(_)) => {
                c += 1;
                false
            }
            _ => true,
        });
        self.one_sided = Some((b, c));
    }

    pub fn regressions(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
            .count()
    }
}

/// Matches the cells of two sets of runs by key and judges each pair.
pub fn compare(
    baseline_label: &str,
    baseline: &[Run],
    candidate_label: &str,
    candidate: &[Run],
    threshold: &Threshold,
) -> CompareReport {
    let base = index(baseline, threshold.across_kernels);
    let cand = index(candidate, threshold.across_kernels);
    let mut keys: Vec<&CellKey> = base.keys().chain(cand.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut cells = Vec::with_capacity(keys.len());
    for key in keys {
        let b = base.get(key).map(Vec::as_slice).unwrap_or_default();
        let k = cand.get(key).map(Vec::as_slice).unwrap_or_default();
        cells.push(match (b, k) {
            ([(bm, bc)], [(km, kc)]) => {
                let mut c = judge(key.clone(), Side::of(bm, bc), Side::of(km, kc), threshold);
                c.reproduce = Some(reproduce(km, key));
                c
            }
            _ => unmatched(key, b, k),
        });
    }
    cells.sort_by(|a, b| (a.verdict, &a.key).cmp(&(b.verdict, &b.key)));
    let mut counts: BTreeMap<String, usize> = Verdict::ALL
        .iter()
        .map(|v| (v.name().replace(' ', "_"), 0))
        .collect();
    for c in &cells {
        *counts
            .entry(c.verdict.name().replace(' ', "_"))
            .or_default() += 1;
    }
    CompareReport {
        baseline: baseline_label.to_string(),
        candidate: candidate_label.to_string(),
        threshold: *threshold,
        counts,
        environment: environment_changes(baseline, candidate),
        cells,
        one_sided: None,
    }
}

type Indexed<'a> = BTreeMap<CellKey, Vec<(&'a RunMeta, &'a Cell)>>;

fn index(runs: &[Run], across_kernels: bool) -> Indexed<'_> {
    let mut map: Indexed<'_> = BTreeMap::new();
    for run in runs {
        for cell in &run.cells {
            let mut key = CellKey::of(cell);
            if across_kernels {
                key.kernel = ANY_KERNEL.into();
            }
            map.entry(key).or_default().push((&run.meta, cell));
        }
    }
    map
}

/// A key present on one side only, or more than once on a side.
fn unmatched(key: &CellKey, base: &[(&RunMeta, &Cell)], cand: &[(&RunMeta, &Cell)]) -> Comparison {
    let reason = match (base.len(), cand.len()) {
        (0, _) => "only in the candidate".to_string(),
        (_, 0) => "only in the baseline".to_string(),
        (b, c) => format!(
            "ambiguous: the cell appears {b} time(s) in the baseline and {c} in the candidate"
        ),
    };
    let one = |xs: &[(&RunMeta, &Cell)]| match xs {
        [(m, c)] => Some(Side::of(m, c)),
        _ => None,
    };
    let (b, c) = (one(base), one(cand));
    Comparison {
        key: key.clone(),
        verdict: Verdict::NotComparable,
        reason: Some(reason),
        unit: b.as_ref().or(c.as_ref()).map(|s| s.unit),
        baseline: b,
        candidate: c,
        change: None,
        relative_change: None,
        change_low: None,
        change_high: None,
        minimum_change: None,
        test: None,
        reproduce: None,
        movers: Vec::new(),
    }
}

/// `tracelab run …` that measures `key` again with the candidate run's settings.
pub fn reproduce(meta: &RunMeta, key: &CellKey) -> String {
    let mut cmd = format!(
        "tracelab run --target {} --workload {} --mechanisms {}",
        meta.target, key.workload, key.mechanism
    );
    if let Some(p) = &key.payload {
        cmd.push_str(&format!(" --payloads {p}"));
    }
    if !key.functions.is_one() {
        cmd.push_str(&format!(" --functions {}", key.functions));
    }
    if key.other_tracers != 0 {
        cmd.push_str(&format!(" --other-tracers {}", key.other_tracers));
    }
    if key.stack != 1 {
        cmd.push_str(&format!(" --stack {}", key.stack));
    }
    cmd.push_str(&format!(
        " --calls {} --repeats {}",
        meta.calls, meta.repeats
    ));
    if meta.mode == "wall" {
        cmd.push_str(" --mode wall");
    }
    if let Some(args) = meta.extra.get("kernel_args").and_then(|v| v.as_str()) {
        cmd.push_str(&format!(" --kernel-args '{args}'"));
    }
    if meta.vcpus() != 1 {
        cmd.push_str(&format!(" --vcpus {}", meta.vcpus()));
    }
    cmd
}

/// Environment fields that differ between runs of the same (arch, kernel).
fn environment_changes(baseline: &[Run], candidate: &[Run]) -> Vec<String> {
    let mut out = Vec::new();
    for b in baseline {
        for c in candidate
            .iter()
            .filter(|c| c.meta.arch == b.meta.arch && c.meta.kernel == b.meta.kernel)
        {
            let (bm, cm) = (&b.meta, &c.meta);
            let extra = |m: &RunMeta, k: &str| {
                m.extra
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(|s| s.chars().take(16).collect::<String>())
            };
            let fields = [
                ("mode", Some(bm.mode.clone()), Some(cm.mode.clone())),
                ("qemu", bm.qemu_version.clone(), cm.qemu_version.clone()),
                ("cpu", Some(bm.cpu.clone()), Some(cm.cpu.clone())),
                (
                    "calls",
                    Some(bm.calls.to_string()),
                    Some(cm.calls.to_string()),
                ),
                (
                    "repeats",
                    Some(bm.repeats.to_string()),
                    Some(cm.repeats.to_string()),
                ),
                (
                    "agent sha256",
                    extra(bm, "agent_sha256"),
                    extra(cm, "agent_sha256"),
                ),
            ];
            for (name, x, y) in fields {
                if let (Some(x), Some(y)) = (x, y) {
                    if x != y {
                        out.push(format!("{}/{}: {name} {x} → {y}", bm.arch, bm.kernel));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;

/// Loads both sides and compares them cell by cell.
pub fn load_and_compare(
    baseline: &std::path::Path,
    candidate: &std::path::Path,
    threshold: &Threshold,
) -> anyhow::Result<CompareReport> {
    let base = crate::dataset::load(baseline)?;
    let cand = crate::dataset::load(candidate)?;
    let mut report = compare(
        &baseline.display().to_string(),
        &base,
        &candidate.display().to_string(),
        &cand,
        threshold,
    );
    if report.cells.iter().any(|c| c.unit == Some(Unit::Ns)) {
        let (b, k) = (paired_by_key(&base)?, paired_by_key(&cand)?);
        add_rank_tests(&mut report, &b, &k);
    }
    add_movers(&mut report, &base, &cand);
    Ok(report)
}

/// The symbols that moved in each changed cell whose runs carry breakdowns (loaded with
/// the summaries, from `attribution.parquet`).
fn add_movers(report: &mut CompareReport, base: &[Run], cand: &[Run]) {
    let breakdown = |runs: &[Run], run_id: &str, key: &CellKey| {
        runs.iter()
            .filter(|r| r.meta.run_id == run_id)
            .flat_map(|r| &r.cells)
            .find(|c| {
                let mut k = CellKey::of(c);
                k.kernel.clone_from(&key.kernel);
                k == *key
            })
            .and_then(|c| c.attribution.clone())
    };
    for c in report
        .cells
        .iter_mut()
        .filter(|c| matches!(c.verdict, Verdict::Regressed | Verdict::Improved))
    {
        let (Some(b), Some(k)) = (&c.baseline, &c.candidate) else {
            continue;
        };
        if let (Some(bb), Some(kb)) = (
            breakdown(base, &b.run_id, &c.key),
            breakdown(cand, &k.run_id, &c.key),
        ) {
            c.movers = movers(&bb, &kb, 5);
        }
    }
}

/// Paired overheads per cell of the real-time runs (read from their cells' samples).
pub fn paired_by_key(runs: &[Run]) -> anyhow::Result<BTreeMap<CellKey, Vec<f64>>> {
    let mut out = BTreeMap::new();
    for run in runs.iter().filter(|r| r.meta.unit == Unit::Ns) {
        let (_, cells) = crate::results::load(&run.dir)?;
        for cell in &cells {
            out.insert(
                CellKey::of(cell),
                tracelab_model::summary::paired_overheads(&cell.measured.samples),
            );
        }
    }
    Ok(out)
}

/// The rank test of every comparable real-time cell.
pub fn add_rank_tests(
    report: &mut CompareReport,
    baseline: &BTreeMap<CellKey, Vec<f64>>,
    candidate: &BTreeMap<CellKey, Vec<f64>>,
) {
    for c in report
        .cells
        .iter_mut()
        .filter(|c| c.unit == Some(Unit::Ns) && c.verdict != Verdict::NotComparable)
    {
        if let (Some(b), Some(k)) = (baseline.get(&c.key), candidate.get(&c.key)) {
            c.test = tracelab_model::rank_test::mann_whitney(b, k);
        }
    }
}
