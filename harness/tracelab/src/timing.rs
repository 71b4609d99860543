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
    /// Wall seconds: QEMU's start to the agent's hello (every start of the run, booted or
    /// restored).
    pub boot_s: f64,
    /// How many of the run's guests were booted, and how many restored from a kept
    /// guest (absent in runs from before kept guests: all booted).
    #[serde(default)]
    pub booted: u32,
    #[serde(default)]
    pub restored: u32,
    /// Wall seconds, within `boot_s`: keeping the booted guest for later runs.
    #[serde(default)]
    pub keep_s: f64,
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

/// How a guest started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Boot,
    /// From a kept guest (`guest::snapshot`).
    Restore,
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
    booted: u32,
    restored: u32,
    keep: Duration,
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
            booted: 0,
            restored: 0,
            keep: Duration::ZERO,
        }
    }

    /// A guest starts now, as `how`: its time to the hello counts as boot.
    pub fn starts(&mut self, how: Start) {
        self.started = Instant::now();
        self.hello = None;
        match how {
            Start::Boot => self.booted += 1,
            Start::Restore => self.restored += 1,
        }
    }

    /// Keeping the booted guest took `took`.
    pub fn kept(&mut self, took: Duration) {
        self.keep += took;
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
            booted: self.booted,
            restored: self.restored,
            keep_s: self.keep.as_secs_f64(),
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
    /// clock: timed loops 1.49 G insn, quiet waits 0.02 G insn`; `restore 0.2 s` when the
    /// guest was restored, `boot 9.5 s (kept in 0.6 s)` when it was kept.
    pub fn line(&self) -> String {
        let big = |x: u64| {
            if self.unit == "insn" {
                format!("{:.2} G insn", x as f64 / 1e9)
            } else {
                format!("{:.2} s", x as f64 / 1e9)
            }
        };
        let start = match (self.booted, self.restored) {
            (0, r) if r > 0 => "restore",
            (b, r) if b > 0 && r > 0 => "boot and restore",
            _ => "boot",
        };
        let keep = if self.keep_s > 0.0 {
            format!(" (kept in {:.1} s)", self.keep_s)
        } else {
            String::new()
        };
        format!(
            "time: {start} {:.1} s{keep}, cells {:.1} s (host writes {:.1} s), shutdown {:.1} s; guest clock: timed loops {}, quiet waits {}",
            self.boot_s,
            self.cells_s,
            self.host_writes_s,
            self.shutdown_s,
            big(self.guest_timed_loops),
            big(self.guest_quiet_waits)
        )
    }

    /// The sum of several runs' timings (a matrix's guests, which run in one unit): the
    /// guest clocks of runs in another unit than the first's are left out. None for none.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Timing>) -> Option<Timing> {
        let mut all = all.into_iter();
        let mut total = all.next()?.clone();
        for t in all {
            total.boot_s += t.boot_s;
            total.booted += t.booted;
            total.restored += t.restored;
            total.keep_s += t.keep_s;
            total.cells_s += t.cells_s;
            total.host_writes_s += t.host_writes_s;
            total.shutdown_s += t.shutdown_s;
            if t.unit == total.unit {
                total.guest_timed_loops += t.guest_timed_loops;
                total.guest_quiet_waits += t.guest_quiet_waits;
            }
        }
        Some(total)
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
            booted: 1,
            restored: 0,
            keep_s: 0.0,
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
        let restored = Timing {
            boot_s: 0.21,
            booted: 0,
            restored: 1,
            ..t.clone()
        };
        assert!(restored.line().starts_with("time: restore 0.2 s, cells"));
        let kept = Timing {
            keep_s: 0.63,
            ..t.clone()
        };
        assert!(kept
            .line()
            .starts_with("time: boot 8.9 s (kept in 0.6 s), cells"));
        let both = Timing::sum([&t, &restored]).expect("a sum");
        assert_eq!((both.booted, both.restored), (1, 1));
        assert!(both
            .line()
            .starts_with("time: boot and restore 9.2 s, cells 19.2 s"));
        assert_eq!(both.guest_timed_loops, 2 * t.guest_timed_loops);
        assert!(Timing::sum([]).is_none());
        let mut clock = Clock::start();
        clock.starts(Start::Restore);
        clock.hello();
        clock.cell(Duration::from_millis(5));
        let timing = clock.finish(&[], "insn");
        assert!(timing.host_writes_s >= 0.005 && timing.guest_timed_loops == 0);
        assert_eq!((timing.booted, timing.restored), (0, 1));
    }
}
