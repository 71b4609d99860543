//! Whether the native run measured every perf counter `doctor` said counts on that
//! kernel (arm64 TCG guests offer the PMU's `cycles` and `instructions`; x86 TCG guests
//! only the software counters).

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use tracelab_model::cell::Cell;

/// The counters `doctor` found counting, and those the native night 1 recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub counting: Vec<String>,
    pub measured: Vec<String>,
    /// Counting by `doctor`'s word, yet in no loop of the run.
    pub missing: Vec<String>,
}

/// The counter names of `doctor`'s `<name> counts (…)` lines.
fn counting(doctor: &str) -> Vec<String> {
    doctor
        .lines()
        .filter_map(|l| l.trim_start().split_once(" counts ("))
        .map(|(name, _)| name.trim().to_string())
        .collect()
}

/// Every counter any loop of any cell recorded.
fn measured(cells: &[Cell]) -> BTreeSet<String> {
    cells
        .iter()
        .flat_map(|c| &c.measured.samples)
        .flat_map(|s| s.counters.keys().cloned())
        .collect()
}

pub(super) fn check(doctor: &str, night: &Path) -> Result<Counters> {
    let (_, cells) = crate::results::load(night)
        .with_context(|| format!("the native results in {}", night.display()))?;
    let measured = measured(&cells);
    let counting = counting(doctor);
    let missing = counting
        .iter()
        .filter(|c| !measured.contains(*c))
        .cloned()
        .collect();
    Ok(Counters {
        counting,
        measured: measured.into_iter().collect(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_doctors_counting_counters() {
        let doctor = "perf counters (user + kernel, this thread):\n  cycles                   counts (1234 over a 100k-iteration loop)\n  instructions             counts (99 over a 100k-iteration loop)\n  branches                 opens, but was never scheduled (no PMU counts it)\n  L1-icache-load-misses    absent (No such file or directory)\n";
        assert_eq!(counting(doctor), ["cycles", "instructions"]);
    }
}
