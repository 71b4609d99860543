//! How a cell's raw samples become its summary.

use crate::schema::{Phase, Sample};
use crate::stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Summary statistics of a cell, derived from its samples (never stored without them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Median cost of one call with the mechanism armed.
    pub per_call: f64,
    /// Median cost of one call in the interleaved baseline loops.
    pub baseline_per_call: f64,
    /// Median over repeats of (mechanism − baseline) per call.
    pub overhead: f64,
    /// Smallest and largest paired overhead: the spread over repeats.
    pub overhead_min: f64,
    pub overhead_max: f64,
    /// Bootstrap 95% confidence interval of the median overhead (equal to the median when
    /// every pair agrees, as under icount).
    #[serde(default)]
    pub overhead_ci_low: Option<f64>,
    #[serde(default)]
    pub overhead_ci_high: Option<f64>,
    /// Paired overheads outside Tukey's fences (1.5 IQR): flagged, never dropped.
    #[serde(default)]
    pub outliers: u32,
    pub repeats: u32,
    /// Per perf counter: median count per call with the mechanism armed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_per_call: BTreeMap<String, f64>,
    /// Per perf counter: median over repeats of (armed − baseline) count per call.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_overhead: BTreeMap<String, f64>,
}

/// Per-call cost of one sample.
fn per_call(s: &Sample) -> f64 {
    s.elapsed as f64 / s.calls as f64
}

/// Seed of the bootstrap: fixed, so a stored run always summarizes to the same interval.
const BOOTSTRAP_SEED: u64 = 0x7472_6163_656c_6162;

/// Summarizes interleaved samples: each repeat's mechanism loop is paired with the
/// baseline loop of the same repeat, so drift between repeats cancels.
///
/// Returns None when no repeat has both halves.
pub fn summarize(samples: &[Sample]) -> Option<Summary> {
    let pairs: Vec<(&Sample, &Sample)> = samples
        .iter()
        .filter(|s| s.phase == Phase::Mechanism && s.calls > 0)
        .filter_map(|m| {
            let b = samples
                .iter()
                .find(|b| b.phase == Phase::Baseline && b.repeat == m.repeat && b.calls > 0)?;
            Some((b, m))
        })
        .collect();
    let mech: Vec<f64> = pairs.iter().map(|(_, m)| per_call(m)).collect();
    let base: Vec<f64> = pairs.iter().map(|(b, _)| per_call(b)).collect();
    let paired: Vec<f64> = mech.iter().zip(&base).map(|(m, b)| m - b).collect();
    let ci = stats::bootstrap_median_ci(&paired, 0.95, stats::BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
    let (counter_per_call, counter_overhead) = counters(&pairs);
    Some(Summary {
        per_call: stats::median(&mech)?,
        baseline_per_call: stats::median(&base)?,
        overhead: stats::median(&paired)?,
        overhead_min: stats::min(&paired)?,
        overhead_max: stats::max(&paired)?,
        overhead_ci_low: ci.map(|c| c.0),
        overhead_ci_high: ci.map(|c| c.1),
        outliers: u32::try_from(stats::tukey_outliers(&paired)).ok()?,
        repeats: u32::try_from(paired.len()).ok()?,
        counter_per_call,
        counter_overhead,
    })
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
        Sample {
            repeat,
            phase,
            calls: 10,
            elapsed,
            fired: None,
            counters: Default::default(),
        }
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
        assert_eq!(sum.per_call, 170.0);
        assert_eq!(sum.baseline_per_call, 100.0);
        let (lo, hi) = (sum.overhead_ci_low.unwrap(), sum.overhead_ci_high.unwrap());
        assert!(
            (50.0..=60.0).contains(&lo) && (60.0..=70.0).contains(&hi),
            "{lo}..{hi}"
        );
        assert_eq!(sum.outliers, 0);
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
    }

    #[test]
    fn no_pairs_no_summary() {
        assert_eq!(summarize(&[s(0, Phase::Mechanism, 5)]), None);
        assert_eq!(summarize(&[]), None);
    }
}
