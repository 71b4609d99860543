//! Waiting for the kernel to be idle before a timed loop, so that no deferred work (RCU
//! callbacks, the kprobe optimizer, workqueue frees of maps, trampolines and ring
//! buffers) finishes inside it.
//!
//! The agent sleeps in fixed windows and reads `/proc/stat` (context switches) and
//! `/proc/softirqs` (RCU) around each: a window in which only the agent's own sleep
//! switched the CPU (to idle and back) and no RCU softirq ran is quiet. Two quiet windows
//! in a row end the wait. Debian's kernels run at HZ=250, so a window of several jiffies
//! outlasts a grace period's steps. Under `-icount ... sleep=off` an idle guest costs
//! almost no host time, so a guest waits long; a native host waits briefly.

use crate::clock::{align_to_tick, now_ns, thread_switches};
use crate::cpu::Spinner;
use std::time::Duration;

/// How long to wait, and in what steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub window: Duration,
    /// Quiet windows in a row that end the wait.
    pub quiet_windows: u32,
    /// The wait gives up after this long (the loop's own contamination check remains).
    pub max: Duration,
    /// How the loop starts once the wait is over.
    pub start: Start,
}

/// Where in the timer tick's period a timed loop starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Rehearse the loop through up to this many ticks until one passes with no RCU
    /// softirq and no switch ([`Monitor::settle`]), then start right after a tick.
    Settled { ticks: u32 },
    /// Start right after a tick, without the rehearsal: a loop shorter than the tick's
    /// period then holds no tick. Unaligned, a tick (about 3,200 insn on x86_64 7.3) landed
    /// in a 0.6 ms armed loop by the phase the code before it happened to leave, in about
    /// half the loops of a cell, and flipped the median between two figures 0.72 % apart.
    AfterTick,
}

impl Policy {
    /// The policy for the `attempt`-th try of a loop: the same windows, a longer bound.
    pub(crate) fn longer(self, attempt: u32) -> Policy {
        Policy {
            max: self.max.saturating_mul(attempt.saturating_add(1)),
            ..self
        }
    }

    /// In a guest under icount: waiting is nearly free, so wait for certain.
    pub(crate) const GUEST: Policy = Policy {
        // 200 ms quiet, then a busy tick rehearsed ([`Monitor::settle`]); a loop that
        // something still reaches is rerun. The guest's kernel command line stops its
        // own periodic work, so the longest periodic wakeup left (the random-number
        // reseed, once a second early in a boot) leaves such windows; with the periodic
        // work on, no second was ever quiet.
        window: Duration::from_millis(100),
        quiet_windows: 2,
        max: Duration::from_secs(10),
        // Busy ticks rehearsed at most before a loop starts anyway.
        start: Start::Settled { ticks: 25 },
    };
    /// On a real host: real time is the price.
    pub(crate) const NATIVE: Policy = Policy {
        window: Duration::from_millis(5),
        quiet_windows: 2,
        max: Duration::from_millis(200),
        // A busy host rarely passes the rehearsal, and each failed one costs a tick.
        start: Start::AfterTick,
    };
}

/// What a wait found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waited {
    /// Time spent waiting (CLOCK_MONOTONIC: instructions under icount).
    pub time: u64,
    /// Whether the quiet windows were seen (false: the wait timed out).
    pub quiet: bool,
}

/// System-wide counters a quiet window leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Activity {
    switches: u64,
    rcu_softirqs: u64,
}

/// `/proc/stat` and `/proc/softirqs`, opened once and re-read from offset 0: on 6.1 every
/// close of a file queues an RCU callback (files were freed by RCU then), so opening them
/// for every window made each window run an RCU grace period of its own and never look
/// quiet.
struct Sources {
    stat: std::fs::File,
    softirqs: std::fs::File,
    buf: Vec<u8>,
}

impl Sources {
    fn open() -> Option<Sources> {
        Some(Sources {
            stat: std::fs::File::open("/proc/stat").ok()?,
            softirqs: std::fs::File::open("/proc/softirqs").ok()?,
            buf: vec![0; 64 * 1024],
        })
    }

    fn activity(&mut self) -> Option<Activity> {
        Some(Activity {
            switches: parse_ctxt(read_from_start(&self.stat, &mut self.buf)?)?,
            rcu_softirqs: self.rcu_softirqs()?,
        })
    }

    fn rcu_softirqs(&mut self) -> Option<u64> {
        parse_softirq(read_from_start(&self.softirqs, &mut self.buf)?, "RCU")
    }
}

/// The whole file, read from offset 0 (a seq_file regenerates itself for a read there).
pub(crate) fn read_from_start<'b>(file: &std::fs::File, buf: &'b mut Vec<u8>) -> Option<&'b str> {
    use std::os::unix::fs::FileExt;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read_at(&mut buf[len..], len as u64).ok()?;
        if n == 0 {
            break;
        }
        len += n;
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// The `ctxt` line of `/proc/stat`: context switches since boot, all CPUs.
fn parse_ctxt(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("ctxt "))
        .and_then(|v| v.trim().parse().ok())
}

/// One softirq's count over all CPUs from `/proc/softirqs`.
fn parse_softirq(text: &str, name: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}:")))?;
    let (_, counts) = line.split_once(':')?;
    counts
        .split_whitespace()
        .map(|c| c.parse::<u64>().ok())
        .sum()
}

/// Whether a window from `a` to `b` saw nothing but our own sleep: at most the two
/// switches of going to sleep and waking, and no RCU softirq.
fn quiet(a: Activity, b: Activity) -> bool {
    b.switches.saturating_sub(a.switches) <= 2 && b.rcu_softirqs == a.rcu_softirqs
}

/// The kernel's activity counters, open for a whole cell.
pub(crate) struct Monitor {
    sources: Option<Sources>,
    /// The CPU of the workload's peer, kept busy through the rehearsal ([`Monitor::settle`]).
    peer_cpu: Option<u32>,
    /// Its spinner, created at the first rehearsal (None: none yet, or it could not be).
    peer: Option<Spinner>,
}

impl Monitor {
    /// The counters, for a cell whose workload's peer runs on `peer_cpu` (if any).
    pub(crate) fn open(peer_cpu: Option<u32>) -> Monitor {
        Monitor {
            sources: Sources::open(),
            peer_cpu,
            peer: None,
        }
    }

    /// RCU softirqs so far, all CPUs (None without `/proc`).
    /// Reads only `/proc/softirqs`: it runs right before and after every timed loop.
    pub(crate) fn rcu_softirqs(&mut self) -> Option<u64> {
        self.sources.as_mut().and_then(Sources::rcu_softirqs)
    }

    fn activity(&mut self) -> Option<Activity> {
        self.sources.as_mut().and_then(Sources::activity)
    }

    /// Sleeps until the kernel has been idle for `policy.quiet_windows` windows in a row,
    /// or `policy.max` passed.
    pub(crate) fn wait(&mut self, policy: Policy) -> Waited {
        let start = now_ns();
        let max = u64::try_from(policy.max.as_nanos()).unwrap_or(u64::MAX);
        let mut in_a_row = 0;
        let Some(mut before) = self.activity() else {
            // No /proc to read: the best we can do is one window.
            std::thread::sleep(policy.window);
            return Waited {
                time: now_ns().saturating_sub(start),
                quiet: false,
            };
        };
        loop {
            std::thread::sleep(policy.window);
            let Some(after) = self.activity() else {
                break;
            };
            if quiet(before, after) {
                in_a_row += 1;
                if in_a_row >= policy.quiet_windows {
                    return Waited {
                        time: now_ns().saturating_sub(start),
                        quiet: true,
                    };
                }
            } else {
                in_a_row = 0;
            }
            before = after;
            if now_ns().saturating_sub(start) >= max {
                break;
            }
        }
        Waited {
            time: now_ns().saturating_sub(start),
            quiet: false,
        }
    }

    /// Returns at the loop's start as `start` defines it, and whether it was reached
    /// (settled, or a tick seen).
    pub(crate) fn start(&mut self, start: Start) -> bool {
        match start {
            Start::Settled { ticks } => self.settle(ticks),
            Start::AfterTick => align_to_tick(TICK_WAIT_NS),
        }
    }

    /// After the idle wait, rehearses the loop's conditions (the CPU busy in user mode,
    /// the tick running) through one timer tick: clean if no RCU softirq ran and the
    /// thread was not switched out, else again, for at most `ticks` ticks. Returns right
    /// after a tick, the loop's fixed phase, and whether the last rehearsal was clean.
    ///
    /// Why: an idle CPU can look quiet while waking it starts RCU work. On Debian arm64
    /// 6.1 the first ticks after the agent woke ran the RCU softirq, which woke
    /// `rcu_sched` and preempted the loop, in every try of every long armed loop.
    ///
    /// The peer's CPU (a workload across two CPUs) spins through the rehearsal too: idle
    /// through the wait, it had not yet noticed the grace periods that ended meanwhile
    /// (reading tracefs before every loop frees dentries by RCU), and its first tick
    /// inside the loop ran the RCU softirq that did, in every try (x86_64 6.12, pipe,
    /// two vCPUs).
    fn settle(&mut self, ticks: u32) -> bool {
        if self.peer.is_none() {
            self.peer = self.peer_cpu.and_then(Spinner::on);
        }
        if let Some(p) = &self.peer {
            p.start();
        }
        let settled = self.rehearse(ticks);
        if let Some(p) = &self.peer {
            p.stop();
        }
        settled
    }

    fn rehearse(&mut self, ticks: u32) -> bool {
        for _ in 0..ticks {
            let before = (self.rcu_softirqs(), thread_switches());
            if !align_to_tick(TICK_WAIT_NS) {
                return false;
            }
            let after = (self.rcu_softirqs(), thread_switches());
            if before.0.is_some() && before == after {
                return align_to_tick(TICK_WAIT_NS);
            }
        }
        align_to_tick(TICK_WAIT_NS);
        false
    }
}

/// How long to spin for a tick: one comes every 4 ms at HZ=250, every 10 ms at HZ=100.
pub(crate) const TICK_WAIT_NS: u64 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_softirqs() {
        assert_eq!(parse_ctxt("cpu  1 2 3\nctxt 12345\nbtime 1\n"), Some(12345));
        let softirqs = "                    CPU0       CPU1\n          HI:          0          0\n         RCU:        100         23\n";
        assert_eq!(parse_softirq(softirqs, "RCU"), Some(123));
        assert_eq!(parse_softirq(softirqs, "NET_RX"), None);
    }

    #[test]
    fn a_window_is_quiet_only_with_our_own_switches() {
        let a = Activity {
            switches: 10,
            rcu_softirqs: 5,
        };
        assert!(quiet(a, Activity { switches: 12, ..a }));
        assert!(!quiet(a, Activity { switches: 13, ..a }));
        assert!(!quiet(
            a,
            Activity {
                rcu_softirqs: 6,
                ..a
            }
        ));
    }

    #[test]
    fn sources_read_again_from_the_start() {
        let mut m = Monitor::open(None);
        let a = m.activity().expect("activity");
        let b = m.activity().expect("activity");
        assert!(b.switches >= a.switches && a.switches > 0);
    }

    #[test]
    fn wait_ends_within_its_bound() {
        let w = Monitor::open(None).wait(Policy {
            window: Duration::from_millis(1),
            quiet_windows: 1_000_000,
            max: Duration::from_millis(20),
            start: Start::AfterTick,
        });
        assert!(!w.quiet);
    }

    proptest::proptest! {
        #[test]
        fn any_proc_text_parses_or_is_none(text in "\\PC{0,300}") {
            let _ = parse_ctxt(&text);
            let _ = parse_softirq(&text, "RCU");
        }
    }
}
