//! Perf counters around each timed loop (user + kernel, this thread).
//!
//! A PMU without an event (the build machines, x86 TCG guests) gives a labelled absence:
//! the counter is left out of every sample and its reason is recorded, never a zero.

use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Event, Hardware, Software};
use perf_event::{Builder, Counter};
use std::collections::BTreeMap;

type Opener = Box<dyn Fn() -> std::io::Result<Counter>>;

/// Opens a disabled counter of this thread, user and kernel.
fn opener<E: Event + Clone + 'static>(e: E) -> Opener {
    Box::new(move || {
        Builder::new(e.clone())
            .observe_self()
            .any_cpu()
            .include_kernel()
            .enabled(false)
            .build()
    })
}

/// The counters the lab asks for, by the names `perf stat` uses.
fn wanted() -> Vec<(&'static str, Opener)> {
    let l1i_miss = Cache {
        which: CacheId::L1I,
        operation: CacheOp::READ,
        result: CacheResult::MISS,
    };
    vec![
        ("cycles", opener(Hardware::CPU_CYCLES)),
        ("instructions", opener(Hardware::INSTRUCTIONS)),
        ("branches", opener(Hardware::BRANCH_INSTRUCTIONS)),
        ("branch-misses", opener(Hardware::BRANCH_MISSES)),
        ("L1-icache-load-misses", opener(l1i_miss)),
        // Noise indicators: a measured loop should see neither.
        ("context-switches", opener(Software::CONTEXT_SWITCHES)),
        ("cpu-migrations", opener(Software::CPU_MIGRATIONS)),
    ]
}

/// The counters this host offers, opened once and reused for every loop.
pub struct Counters {
    open: Vec<(&'static str, Counter)>,
    absent: BTreeMap<String, String>,
}

impl Counters {
    /// Opens every wanted counter that the kernel and PMU provide.
    pub fn open() -> Counters {
        let mut open = Vec::new();
        let mut absent = BTreeMap::new();
        for (name, open_one) in wanted() {
            match open_one() {
                Ok(c) => open.push((name, c)),
                Err(e) => {
                    absent.insert(name.to_string(), e.to_string());
                }
            }
        }
        Counters { open, absent }
    }

    /// Counters that opened.
    pub fn available(&self) -> Vec<&'static str> {
        self.open.iter().map(|(n, _)| *n).collect()
    }

    /// Counters that could not be opened, with the kernel's reason.
    pub fn absent(&self) -> &BTreeMap<String, String> {
        &self.absent
    }

    /// Resets and starts every counter (just before a timed loop).
    pub fn start(&mut self) {
        for (_, c) in &mut self.open {
            let _ = c.reset();
            let _ = c.enable();
        }
    }

    /// Stops the counters and reads them. A counter the kernel did not schedule for the
    /// whole loop (multiplexed, or not at all) is left out rather than extrapolated.
    pub fn stop(&mut self) -> BTreeMap<String, u64> {
        for (_, c) in &mut self.open {
            let _ = c.disable();
        }
        let mut values = BTreeMap::new();
        for (name, c) in &mut self.open {
            let Ok(ct) = c.read_count_and_time() else {
                continue;
            };
            if ct.time_running == ct.time_enabled && ct.time_running > 0 {
                values.insert(name.to_string(), ct.count);
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On any host: every wanted counter is either open or absent with a reason, and a
    /// counted loop gives only counters that really ran.
    #[test]
    fn counters_are_open_or_absent_with_a_reason() {
        let mut c = Counters::open();
        assert_eq!(c.open.len() + c.absent.len(), wanted().len());
        assert!(c.absent.values().all(|why| !why.is_empty()));
        c.start();
        std::hint::black_box((0..10_000u64).sum::<u64>());
        let values = c.stop();
        for name in values.keys() {
            assert!(!c.absent.contains_key(name));
        }
    }
}
