//! Every interrupt and softirq that ran during a timed loop, by name (`/proc/interrupts`
//! and `/proc/softirqs`, summed over CPUs): what neither the thread's switches nor the
//! RCU softirq count shows, work charged to the loop from interrupt context.

use std::collections::BTreeMap;
use tracelab_model::workload::Workload;

/// The two files, opened once and re-read from offset 0 around every loop (a close would
/// queue RCU work of its own on 6.1, see [`crate::quiesce`]).
pub(crate) struct Interrupts {
    interrupts: std::fs::File,
    softirqs: std::fs::File,
    buf: Vec<u8>,
}

/// Counts since boot by row name: `LOC`, `arch_timer`, `softirq:TIMER`, …
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts(BTreeMap<String, u64>);

impl Interrupts {
    pub(crate) fn open() -> Option<Interrupts> {
        Some(Interrupts {
            interrupts: std::fs::File::open("/proc/interrupts").ok()?,
            softirqs: std::fs::File::open("/proc/softirqs").ok()?,
            buf: vec![0; 64 * 1024],
        })
    }

    pub(crate) fn read(&mut self) -> Option<Counts> {
        let mut rows = parse_interrupts(crate::quiesce::read_from_start(
            &self.interrupts,
            &mut self.buf,
        )?);
        for (name, n) in parse_softirqs(crate::quiesce::read_from_start(
            &self.softirqs,
            &mut self.buf,
        )?) {
            *rows.entry(name).or_default() += n;
        }
        Some(Counts(rows))
    }
}

impl Counts {
    /// The rows that moved since `before`, with how much.
    pub(crate) fn since(&self, before: &Counts) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .filter_map(|(name, &n)| {
                let d = n.saturating_sub(before.0.get(name).copied().unwrap_or(0));
                (d > 0).then(|| (name.clone(), d))
            })
            .collect()
    }
}

/// The local timer's rows (x86 `LOC`, arm64 `arch_timer`): a loop that starts right
/// after a tick holds as many as its length spans, the same in every repeat.
const TICK: [&str; 2] = ["LOC", "arch_timer"];

/// The rows of a loop's `moved` that are foreign work: anything but the tick (unless the
/// loop was sized to hold none, [`crate::loop_size`]: then a tick means it started late),
/// RCU's softirq (judged by its own rule, [`Workload::defers_rcu_work`]) and the softirqs
/// the workload raises itself. A workload that blocks by design has none: its wake-ups
/// (reschedule IPIs), the scheduler's softirq of a second busy CPU and the timers of its
/// sleeping tasks are its own, and its rows stay in the sample for the reader.
pub(crate) fn foreign(
    moved: &BTreeMap<String, u64>,
    workload: Workload,
    tick_free: bool,
) -> Vec<String> {
    if workload.blocks() {
        return Vec::new();
    }
    moved
        .iter()
        .filter(|(name, _)| {
            let softirq = name.strip_prefix("softirq:");
            (tick_free || !TICK.contains(&name.as_str()))
                && softirq != Some("RCU")
                && !softirq.is_some_and(|s| workload.own_softirqs().contains(&s))
        })
        .map(|(name, n)| format!("{name} {n}"))
        .collect()
}

/// The rows of `/proc/interrupts`, each summed over its CPU columns. A numbered row (an
/// IRQ line) is named by its action (the last field: `arch_timer`, `virtio0-input.0`),
/// a named row by its label (`LOC`, `RES`, `IPI0`).
fn parse_interrupts(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |h| h.split_whitespace().count());
    let mut rows = BTreeMap::new();
    for line in lines {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        let label = label.trim();
        let mut fields = rest.split_whitespace().peekable();
        let mut sum = 0u64;
        for _ in 0..cpus {
            match fields.peek().and_then(|f| f.parse::<u64>().ok()) {
                Some(n) => {
                    sum += n;
                    fields.next();
                }
                None => break,
            }
        }
        let name = if label.chars().all(|c| c.is_ascii_digit()) {
            match fields.last() {
                Some(action) => action.to_string(),
                None => format!("irq {label}"),
            }
        } else {
            label.to_string()
        };
        *rows.entry(name).or_default() += sum;
    }
    rows
}

/// The rows of `/proc/softirqs` as `softirq:NAME`, each summed over CPUs.
fn parse_softirqs(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (name, counts) = line.split_once(':')?;
            let sum = counts
                .split_whitespace()
                .filter_map(|c| c.parse::<u64>().ok())
                .sum();
            Some((format!("softirq:{}", name.trim()), sum))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_rows_are_named_by_label_or_action() {
        let text = "           CPU0       CPU1\n  0:         36          0   IO-APIC   2-edge      timer\n 11:          5          2   PCI-MSI 1-edge      virtio0-input.0\nNMI:          0          0   Non-maskable interrupts\nLOC:      12345        100   Local timer interrupts\nERR:          0\n";
        let rows = parse_interrupts(text);
        assert_eq!(rows["timer"], 36);
        assert_eq!(rows["virtio0-input.0"], 7);
        assert_eq!(rows["LOC"], 12445);
        assert_eq!(rows["ERR"], 0);
    }

    #[test]
    fn arm64_rows_and_softirqs() {
        let text = "           CPU0\n 11:      18779     GICv3  27 Level     arch_timer\nIPI0:         3       Rescheduling interrupts\n";
        let rows = parse_interrupts(text);
        assert_eq!(rows["arch_timer"], 18779);
        assert_eq!(rows["IPI0"], 3);
        let soft = parse_softirqs(
            "                    CPU0       CPU1\n          HI:          0          0\n       TIMER:        100         23\n",
        );
        assert_eq!(soft["softirq:TIMER"], 123);
        assert_eq!(soft["softirq:HI"], 0);
    }

    #[test]
    fn only_the_rows_that_moved_are_kept() {
        let a = Counts(BTreeMap::from([
            ("LOC".into(), 5),
            ("softirq:TIMER".into(), 7),
        ]));
        let b = Counts(BTreeMap::from([
            ("LOC".into(), 8),
            ("softirq:TIMER".into(), 7),
            ("RES".into(), 1),
        ]));
        assert_eq!(
            b.since(&a),
            BTreeMap::from([("LOC".into(), 3), ("RES".into(), 1)])
        );
    }

    #[test]
    fn only_the_tick_rcu_and_the_workloads_own_rows_are_not_foreign() {
        let moved = BTreeMap::from([
            ("LOC".to_string(), 5),
            ("softirq:RCU".to_string(), 1),
            ("softirq:NET_RX".to_string(), 2000),
            ("softirq:TIMER".to_string(), 1),
        ]);
        assert_eq!(
            foreign(&moved, Workload::Getppid, false),
            ["softirq:NET_RX 2000", "softirq:TIMER 1"]
        );
        assert_eq!(foreign(&moved, Workload::Tcp, false), ["softirq:TIMER 1"]);
        assert!(foreign(&moved, Workload::Pipe, false).is_empty());
        let ticks = BTreeMap::from([("arch_timer".to_string(), 8)]);
        assert!(foreign(&ticks, Workload::Getppid, false).is_empty());
        assert_eq!(foreign(&ticks, Workload::Getppid, true), ["arch_timer 8"]);
    }

    #[test]
    fn this_machine_reads() {
        if let Some(mut i) = Interrupts::open() {
            assert!(i.read().is_some_and(|c| !c.0.is_empty()));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_proc_text_parses(text in "\\PC{0,300}") {
            let _ = parse_interrupts(&text);
            let _ = parse_softirqs(&text);
        }
    }
}
