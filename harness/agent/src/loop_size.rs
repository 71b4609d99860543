//! How many calls a timed loop in a guest makes. Loops start right after a timer tick;
//! one that also ends before the next holds no tick's handler, so its figure is the
//! workload's and the mechanism's instructions alone, whatever the mechanism costs. A
//! guest's cell therefore runs the most calls, at most `--calls`, that an armed loop
//! fits into half the tick's period, on a 1-2-5 step (so that a cost a few instructions
//! different in another plan picks the same number). At `--calls 20000` a tick landed
//! in every loop, a few more in the armed ones than the baseline ones, and their handlers
//! (state that earlier cells left, timer wheel contents) added about 1 insn per call to
//! x86_64 6.12's kprobe, by an amount that depended on what ran before.

/// The share of the tick's period a loop may take: the rest covers what runs between
/// the tick and the loop's first call (reading the interrupt counts, starting counters).
const SHARE: f64 = 0.5;

/// A cell's loop size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sized {
    pub calls: u64,
    /// Whether its loops fit between two ticks (false only when one call takes more
    /// than the share: those loops hold ticks however few calls they make).
    pub tick_free: bool,
}

/// [`fit`], and whether the loop it gives fits.
pub(crate) fn size(bound: u64, ns_per_call: f64, period_ns: u64) -> Sized {
    let calls = fit(bound, ns_per_call, period_ns);
    Sized {
        calls,
        tick_free: calls as f64 * ns_per_call <= period_ns as f64 * SHARE,
    }
}

/// Calls that a loop costing `ns_per_call` fits into `SHARE` of `period_ns`, rounded
/// down to a 1-2-5 step, at most `bound` and at least 1.
fn fit(bound: u64, ns_per_call: f64, period_ns: u64) -> u64 {
    let room = (period_ns as f64 * SHARE / ns_per_call.max(1.0)).floor() as u64;
    if room >= bound {
        return bound.max(1);
    }
    let mut step = 1u64;
    let mut best = 1u64;
    while step <= room {
        for m in [1, 2, 5] {
            if step * m <= room {
                best = step * m;
            }
        }
        step = step.saturating_mul(10);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_half_a_tick_on_a_1_2_5_step() {
        // x86_64 6.12 at HZ=250: the baseline (about 330 insn a call), a kprobe (1 150).
        assert_eq!(fit(20_000, 330.0, 4_000_000), 5_000);
        assert_eq!(fit(20_000, 1_150.0, 4_000_000), 1_000);
        assert_eq!(fit(20_000, 9_800.0, 4_000_000), 200);
        // Within the bound nothing changes, and a loop always makes a call.
        assert_eq!(fit(500, 330.0, 4_000_000), 500);
        assert_eq!(fit(3_000, 100.0, 4_000_000), 3_000);
        assert_eq!(fit(20_000, 5e6, 4_000_000), 1);
        assert!(size(20_000, 1_150.0, 4_000_000).tick_free);
        assert!(!size(20_000, 5e6, 4_000_000).tick_free);
    }

    proptest::proptest! {
        #[test]
        fn never_beyond_the_bound_or_the_room(bound in 1u64..1_000_000, cost in 1.0f64..1e7) {
            let n = fit(bound, cost, 4_000_000);
            proptest::prop_assert!(n >= 1 && n <= bound);
            proptest::prop_assert!(n == 1 || n as f64 * cost <= 2_000_000.0);
        }
    }
}
