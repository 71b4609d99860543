//! How a cell's raw samples become its summary.

use crate::schema::{Phase, Sample};
use crate::stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Summary statistics of a cell, derived from its samples (never stored without them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Cost of one call with the mechanism armed, in the median pair (the pair whose
    /// overhead is the median; the mean of the two middle pairs for an even count), so
    /// that `overhead` = `per_call` − `baseline_per_call`.
    pub per_call: f64,
    /// Cost of one call in the baseline loop of the median pair.
    pub baseline_per_call: f64,
    /// Median over pairs of (armed − baseline) per call.
    pub overhead: f64,
    /// Smallest and largest paired overhead: the spread over repeats.
    pub overhead_min: f64,
    pub overhead_max: f64,
    /// Bootstrap 95% confidence interval of the median overhead, from
    /// [`stats::MIN_CI_PAIRS`] pairs on; None below (with 3 pairs such an interval is
    /// just min..max and covers the median only 75% of the time).
    #[serde(default)]
    pub overhead_ci_low: Option<f64>,
    #[serde(default)]
    pub overhead_ci_high: Option<f64>,
    /// How often `overhead_min..overhead_max` covers the true median overhead, for any
    /// distribution (an order-statistic interval: 1 − 2^(1−n) for n pairs; 75% for 3).
    #[serde(default)]
    pub range_coverage: Option<f64>,
    /// Paired overheads outside Tukey's fences (1.5 IQR): flagged, never dropped. None
    /// below [`stats::MIN_TUKEY_PAIRS`] pairs, where no value can fall outside them.
    #[serde(default)]
    pub outliers: Option<u32>,
    pub repeats: u32,
    /// Per perf counter: median count per call with the mechanism armed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_per_call: BTreeMap<String, f64>,
    /// Per perf counter: median over repeats of (armed − baseline) count per call.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_overhead: BTreeMap<String, f64>,
    /// Where the PMU counts `cycles` (arm64 TCG guests, where a cycle is an instruction
    /// under icount): the thread's own cycles overhead minus the clock's overhead, per
    /// call. Near zero when the clock saw nothing but the measuring thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles_minus_clock: Option<f64>,
    /// Medians over repeats of the time to attach and to detach (cells that installed
    /// and removed in a repeat; absent before the lab kept them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<AttachSummary>,
    /// Mean frames per stack trace (stack-trace payloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_depth: Option<f64>,
}

/// Medians of a cell's attach and detach times ([`crate::schema::AttachTime`]), in the
/// cell's unit: elapsed, and the attaching thread's own CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttachSummary {
    pub attach: f64,
    pub detach: f64,
    pub attach_thread: f64,
    pub detach_thread: f64,
}

/// The median attach and detach over the repeats that installed and removed (None
/// without any: BPF programs on one function are loaded once and only linked per
/// repeat, which is no attach from nothing).
pub fn attach_summary(times: &[crate::schema::AttachTime]) -> Option<AttachSummary> {
    let attach: Vec<_> = times.iter().filter_map(|t| t.attach()).collect();
    let detach: Vec<_> = times.iter().filter_map(|t| t.detach()).collect();
    if attach.is_empty() || detach.is_empty() {
        return None;
    }
    let median = |v: &[crate::schema::Span], f: fn(&crate::schema::Span) -> u64| {
        stats::median(&v.iter().map(|s| f(s) as f64).collect::<Vec<_>>())
    };
    Some(AttachSummary {
        attach: median(&attach, |s| s.elapsed)?,
        detach: median(&detach, |s| s.elapsed)?,
        attach_thread: median(&attach, |s| s.thread)?,
        detach_thread: median(&detach, |s| s.thread)?,
    })
}

/// The interval a real-time cell aims for: a 95% CI half-width of at most this, in ns
/// (0.5 ns, or 1% of the overhead where that is larger).
pub fn precision_goal(overhead: f64) -> f64 {
    (overhead.abs() * 0.01).max(0.5)
}

/// Half the width of the overhead's 95% CI, where there is one.
pub fn half_width(s: &Summary) -> Option<f64> {
    Some((s.overhead_ci_high? - s.overhead_ci_low?) / 2.0)
}

/// Per-call cost of one sample.
fn per_call(s: &Sample) -> f64 {
    s.elapsed as f64 / s.calls as f64
}

/// Seed of the bootstrap: fixed, so a stored run always summarizes to the same interval.
const BOOTSTRAP_SEED: u64 = 0x7472_6163_656c_6162;

/// Each repeat's (baseline, mechanism) loops, for the repeats that have both.
fn pairs(samples: &[Sample]) -> Vec<(&Sample, &Sample)> {
    samples
        .iter()
        .filter(|s| s.phase == Phase::Mechanism && s.calls > 0)
        .filter_map(|m| {
            let b = samples
                .iter()
                .find(|b| b.phase == Phase::Baseline && b.repeat == m.repeat && b.calls > 0)?;
            Some((b, m))
        })
        .collect()
}

/// How far a cell's paired overheads may spread and still be one state, in its unit:
/// max(1, 0.1 % of the overhead). Under icount, pairs differ only by what lands in a loop
/// (a timer tick) or by a state the cell's repeats can be in.
pub fn unstable_bound(overhead: f64) -> f64 {
    (overhead.abs() * 0.001).max(1.0)
}

/// Whether an icount cell's paired overheads (smallest and largest) spread beyond
/// [`unstable_bound`]: its median is then one of several modes, not a stable figure, and
/// every view flags it. Real-time cells have intervals for their noise instead.
pub fn is_unstable(unit: crate::schema::Unit, min: f64, max: f64, overhead: f64) -> bool {
    unit == crate::schema::Unit::Insn && max - min > unstable_bound(overhead)
}

/// The paired overheads per call (mechanism − baseline of each repeat): what the summary
/// is made from, and what `compare`'s rank test compares.
pub fn paired_overheads(samples: &[Sample]) -> Vec<f64> {
    pairs(samples)
        .iter()
        .map(|(b, m)| per_call(m) - per_call(b))
        .collect()
}

/// Summarizes interleaved samples: each repeat's mechanism loop is paired with the
/// baseline loop of the same repeat, so drift between repeats cancels.
///
/// Returns None when no repeat has both halves.
pub fn summarize(samples: &[Sample]) -> Option<Summary> {
    let pairs = pairs(samples);
    let mech: Vec<f64> = pairs.iter().map(|(_, m)| per_call(m)).collect();
    let base: Vec<f64> = pairs.iter().map(|(b, _)| per_call(b)).collect();
    let paired: Vec<f64> = mech.iter().zip(&base).map(|(m, b)| m - b).collect();
    let n = paired.len();
    let ci = (n >= stats::MIN_CI_PAIRS)
        .then(|| {
            stats::bootstrap_median_ci(&paired, 0.95, stats::BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
        })
        .flatten();
    let (per_call, baseline_per_call, overhead) = median_pair(&mech, &base)?;
    let (counter_per_call, counter_overhead) = counters(&pairs);
    let cycles_minus_clock = counter_overhead.get("cycles").map(|c| c - overhead);
    Some(Summary {
        per_call,
        baseline_per_call,
        overhead,
        overhead_min: stats::min(&paired)?,
        overhead_max: stats::max(&paired)?,
        overhead_ci_low: ci.map(|c| c.0),
        overhead_ci_high: ci.map(|c| c.1),
        range_coverage: stats::range_coverage(n),
        outliers: (n >= stats::MIN_TUKEY_PAIRS)
            .then(|| u32::try_from(stats::tukey_outliers(&paired)).ok())
            .flatten(),
        repeats: u32::try_from(n).ok()?,
        counter_per_call,
        counter_overhead,
        cycles_minus_clock,
        attach: None,
        stack_depth: None,
    })
}

/// (armed, baseline, overhead) per call of the median pair: the pair whose paired
/// overhead is the median, or the mean of the two middle pairs for an even count. Its
/// overhead is the median paired overhead, and it equals armed − baseline.
fn median_pair(mech: &[f64], base: &[f64]) -> Option<(f64, f64, f64)> {
    let n = mech.len();
    if n == 0 || base.len() != n {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| (mech[i] - base[i]).total_cmp(&(mech[j] - base[j])));
    let (lo, hi) = (order[(n - 1) / 2], order[n / 2]);
    let armed = (mech[lo] + mech[hi]) / 2.0;
    let baseline = (base[lo] + base[hi]) / 2.0;
    Some((armed, baseline, armed - baseline))
}

/// Per counter present in every pair: median per call armed, and median paired overhead.
fn counters(pairs: &[(&Sample, &Sample)]) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut per_call_med = BTreeMap::new();
    let mut overhead_med = BTreeMap::new();
    let Some((_, first)) = pairs.first() else {
        return (per_call_med, overhead_med);
    };
    for name in first.counters.keys() {
        let mut armed = Vec::new();
        let mut diff = Vec::new();
        for (b, m) in pairs {
            let (Some(&bc), Some(&mc)) = (b.counters.get(name), m.counters.get(name)) else {
                continue;
            };
            let (bp, mp) = (bc as f64 / b.calls as f64, mc as f64 / m.calls as f64);
            armed.push(mp);
            diff.push(mp - bp);
        }
        if diff.len() == pairs.len() {
            if let (Some(a), Some(d)) = (stats::median(&armed), stats::median(&diff)) {
                per_call_med.insert(name.clone(), a);
                overhead_med.insert(name.clone(), d);
            }
        }
    }
    (per_call_med, overhead_med)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(repeat: u32, phase: Phase, elapsed: u64) -> Sample {
        Sample::timed(repeat, phase, 10, elapsed, None)
    }

    #[test]
    fn pairs_by_repeat() {
        let samples = vec![
            s(0, Phase::Baseline, 1000),
            s(0, Phase::Mechanism, 1500),
            s(1, Phase::Baseline, 2000),
            s(1, Phase::Mechanism, 2600),
            s(2, Phase::Baseline, 1000),
            s(2, Phase::Mechanism, 1700),
        ];
        let sum = summarize(&samples).expect("summary");
        assert_eq!(sum.repeats, 3);
        assert_eq!(sum.overhead, 60.0);
        assert_eq!(sum.overhead_min, 50.0);
        assert_eq!(sum.overhead_max, 70.0);
        // The median pair is repeat 1 (overhead 60): its own armed and baseline figures.
        assert_eq!(sum.per_call, 260.0);
        assert_eq!(sum.baseline_per_call, 200.0);
        assert_eq!(sum.per_call - sum.baseline_per_call, sum.overhead);
        // Three pairs: no bootstrap "95% CI", the range with its true coverage, no Tukey.
        assert_eq!((sum.overhead_ci_low, sum.overhead_ci_high), (None, None));
        assert_eq!(sum.range_coverage, Some(0.75));
        assert_eq!(sum.outliers, None);
    }

    #[test]
    fn counters_are_summarized_per_call_only_when_every_pair_has_them() {
        let mut samples = Vec::new();
        for r in 0..3 {
            let mut b = s(r, Phase::Baseline, 1000);
            b.counters.insert("instructions".into(), 3000);
            b.counters.insert("cycles".into(), 5000);
            let mut m = s(r, Phase::Mechanism, 2000);
            m.counters.insert("instructions".into(), 8000);
            if r != 1 {
                m.counters.insert("cycles".into(), 9000);
            }
            samples.push(b);
            samples.push(m);
        }
        let sum = summarize(&samples).unwrap();
        assert_eq!(sum.counter_per_call.get("instructions"), Some(&800.0));
        assert_eq!(sum.counter_overhead.get("instructions"), Some(&500.0));
        assert!(!sum.counter_overhead.contains_key("cycles"));
        // No cycles counter in every pair: no cross-check either.
        assert_eq!(sum.cycles_minus_clock, None);
    }

    #[test]
    fn cycles_cross_check_is_counter_minus_clock() {
        let mut samples = Vec::new();
        for r in 0..3 {
            let mut b = s(r, Phase::Baseline, 1000);
            b.counters.insert("cycles".into(), 1000);
            let mut m = s(r, Phase::Mechanism, 2000);
            m.counters.insert("cycles".into(), 2030);
            samples.push(b);
            samples.push(m);
        }
        let sum = summarize(&samples).expect("summary");
        // Clock: 100 per call; own cycles: 103 per call.
        assert_eq!(sum.overhead, 100.0);
        assert_eq!(sum.cycles_minus_clock, Some(3.0));
    }

    #[test]
    fn no_pairs_no_summary() {
        assert_eq!(summarize(&[s(0, Phase::Mechanism, 5)]), None);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn tukey_counts_from_four_pairs_and_the_precision_goal() {
        let pairs = |diffs: &[u64]| -> Vec<Sample> {
            diffs
                .iter()
                .zip(0..)
                .flat_map(|(d, r)| [s(r, Phase::Baseline, 100), s(r, Phase::Mechanism, 100 + d)])
                .collect()
        };
        assert_eq!(summarize(&pairs(&[10, 10, 900])).expect("3").outliers, None);
        assert_eq!(
            summarize(&pairs(&[10, 10, 10, 900])).expect("4").outliers,
            Some(1)
        );
        // max(0.5, 1% of the overhead), whatever its sign.
        assert_eq!(precision_goal(20.0), 0.5);
        assert_eq!(precision_goal(-300.0), 3.0);
    }
}
