//! Measurement: the clock, the statistics, and how raw samples become a summary.

pub mod clock;
pub mod stats;

use crate::schema::{Phase, Sample, Summary};

/// Per-call cost of one sample.
fn per_call(s: &Sample) -> f64 {
    s.elapsed as f64 / s.calls as f64
}

/// Summarizes interleaved samples: each repeat's mechanism loop is paired with the
/// baseline loop of the same repeat, so drift between repeats cancels.
///
/// Returns None when no repeat has both halves.
pub fn summarize(samples: &[Sample]) -> Option<Summary> {
    let mut paired = Vec::new();
    let mut mech = Vec::new();
    let mut base = Vec::new();
    for m in samples
        .iter()
        .filter(|s| s.phase == Phase::Mechanism && s.calls > 0)
    {
        let Some(b) = samples
            .iter()
            .find(|b| b.phase == Phase::Baseline && b.repeat == m.repeat && b.calls > 0)
        else {
            continue;
        };
        mech.push(per_call(m));
        base.push(per_call(b));
        paired.push(per_call(m) - per_call(b));
    }
    Some(Summary {
        per_call: stats::median(&mech)?,
        baseline_per_call: stats::median(&base)?,
        overhead: stats::median(&paired)?,
        overhead_min: stats::min(&paired)?,
        overhead_max: stats::max(&paired)?,
        overhead_ci_low: None,
        overhead_ci_high: None,
        outliers: 0,
        repeats: u32::try_from(paired.len()).ok()?,
    })
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
    }

    #[test]
    fn no_pairs_no_summary() {
        assert_eq!(summarize(&[s(0, Phase::Mechanism, 5)]), None);
        assert_eq!(summarize(&[]), None);
    }
}
