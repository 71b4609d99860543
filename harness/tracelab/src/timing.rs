//! What a guest run's time went to (issue: an instrument that answers in seconds): the
//! host's wall time from QEMU's start to the agent's hello (boot), from the hello to the
//! last cell (the cells), what the host spent writing results, and QEMU's shutdown; and,
//! in the guest's own clock (`insn` under icount), the timed loops and the waits for a
//! quiet kernel. Kept in `meta.json` (`extra.timing`) and printed at the end of `run`.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tracelab_model::cell::Cell;

/// One run's time, by what it went to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Wall seconds: QEMU's start to the agent's first hello (every boot of the run).
    pub boot_s: f64,
    /// Wall seconds: the hello to the last cell's record.
    pub cells_s: f64,
    /// Wall seconds the host spent storing cells (cell files, Parquet, chart).
    pub host_writes_s: f64,
    /// Wall seconds after the last record until QEMU exited.
    pub shutdown_s: f64,
    /// Guest clock, in the run's unit: every stored timed loop, baseline and armed.
    pub guest_timed_loops: u64,
    /// Guest clock, in the run's unit: waiting for a quiet kernel before timed loops.
    pub guest_quiet_waits: u64,
    pub unit: String,
}

/// Wall-clock marks a guest run collects as records arrive.
#[derive(Debug)]
pub struct Clock {
    /// When the current boot started.
    started: Instant,
    boot: Duration,
    /// The current boot's hello, and the run's first.
    hello: Option<Instant>,
    first_hello: Option<Instant>,
    last_record: Option<Instant>,
    writes: Duration,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            started: Instant::now(),
            boot: Duration::ZERO,
            hello: None,
            first_hello: None,
            last_record: None,
            writes: Duration::ZERO,
        }
    }

    /// A (re)boot starts now: its time to the hello counts as boot.
    pub fn boot_starts(&mut self) {
        self.started = Instant::now();
        self.hello = None;
    }

    pub fn hello(&mut self) {
        if self.hello.is_none() {
            let now = Instant::now();
            self.boot += now - self.started;
            self.hello = Some(now);
            self.first_hello.get_or_insert(now);
            self.last_record = Some(now);
        }
    }

    /// A cell's record arrived and took `write` to store.
    pub fn cell(&mut self, write: Duration) {
        self.writes += write;
        self.last_record = Some(Instant::now());
    }

    /// The run's timing, once QEMU has exited.
    pub fn finish(&self, cells: &[Cell], unit: &str) -> Timing {
        let end = Instant::now();
        let last = self.last_record.unwrap_or(end);
        let cells_s = match (self.first_hello, self.last_record) {
            (Some(h), Some(l)) if l > h => (l - h).as_secs_f64(),
            _ => 0.0,
        };
        let samples = cells.iter().flat_map(|c| &c.measured.samples);
        Timing {
            boot_s: self.boot.as_secs_f64(),
            cells_s,
            host_writes_s: self.writes.as_secs_f64(),
            shutdown_s: (end - last).as_secs_f64(),
            guest_timed_loops: samples.map(|s| s.elapsed).sum(),
            guest_quiet_waits: cells
                .iter()
                .filter_map(|c| c.measured.cleanliness.as_ref())
                .map(|c| c.quiesce_time)
                .sum(),
            unit: unit.to_string(),
        }
    }
}

impl Timing {
    /// One line: `time: boot 8.9 s, cells 9.6 s (host writes 0.2 s), shutdown 0.1 s; guest
    /// clock: timed loops 1.49 G insn, quiet waits 0.02 G insn`.
    pub fn line(&self) -> String {
        let big = |x: u64| {
            if self.unit == "insn" {
                format!("{:.2} G insn", x as f64 / 1e9)
            } else {
                format!("{:.2} s", x as f64 / 1e9)
            }
        };
        format!(
            "time: boot {:.1} s, cells {:.1} s (host writes {:.1} s), shutdown {:.1} s; guest clock: timed loops {}, quiet waits {}",
            self.boot_s,
            self.cells_s,
            self.host_writes_s,
            self.shutdown_s,
            big(self.guest_timed_loops),
            big(self.guest_quiet_waits)
        )
    }

    /// The timing stored in a run's `meta.json`, if any.
    pub fn of(meta: &crate::results::RunMeta) -> Option<Timing> {
        serde_json::from_value(meta.extra.get("timing")?.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_each_part_with_its_clock() {
        let t = Timing {
            boot_s: 8.94,
            cells_s: 9.61,
            host_writes_s: 0.21,
            shutdown_s: 0.05,
            guest_timed_loops: 1_490_000_000,
            guest_quiet_waits: 20_000_000,
            unit: "insn".into(),
        };
        assert_eq!(
            t.line(),
            "time: boot 8.9 s, cells 9.6 s (host writes 0.2 s), shutdown 0.1 s; guest clock: timed loops 1.49 G insn, quiet waits 0.02 G insn"
        );
        let mut clock = Clock::start();
        clock.hello();
        clock.cell(Duration::from_millis(5));
        let timing = clock.finish(&[], "insn");
        assert!(timing.host_writes_s >= 0.005 && timing.guest_timed_loops == 0);
    }
}
