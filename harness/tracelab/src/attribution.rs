//! `--attribution`: the QEMU TCG plugin's counts of every marked loop, joined to the
//! loop's sample as emulated counters, and checked against the loop's own clock.
//!
//! The counters are named `tcg-plugin:…` so that nobody mistakes them for a hardware
//! PMU's: they are instructions QEMU translated and executed, split at the kernel's half
//! of the address space. Under `-icount shift=0` a loop's elapsed time is its instruction
//! count, so the plugin's count of the same loop must equal it plus a constant (the
//! markers and one clock read lie inside the plugin's span, outside the clock's): that is
//! the independent check of the `insn` unit, made on every loop.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tracelab_model::attribution::{self, LoopCounts};
use tracelab_model::schema::Measured;

/// Instructions the loop executed in the kernel's half of the address space.
pub const KERNEL_INSN: &str = "tcg-plugin:insn-kernel";
/// Instructions the loop executed in user space.
pub const USER_INSN: &str = "tcg-plugin:insn-user";
/// The plugin's count less the clock's: the markers' and one clock read's instructions,
/// nearly the same for every loop of a boot (see [`CLOCK_JITTER_INSN`]).
pub const OUTSIDE_CLOCK: &str = "tcg-plugin:insn-outside-clock";

/// How far the plugin-minus-clock difference may wander between the loops of a cell.
/// The plugin counts every executed instruction exactly; the guest's clock under icount
/// is exact only to a few instructions: QEMU ends a translation block early when the host
/// interrupts the vCPU (its timers, I/O), which moves where within the block the clock
/// read is resolved. Seen on x86_64 6.12 with the host busy: 89 to 92 over one cell's
/// loops (every loop 92 on an idle host). A lost block or a clock jump moves it by far more.
pub const CLOCK_JITTER_INSN: i128 = 8;

/// The plugin's file name, as `scripts/build-agents` installs it beside the agents.
pub const PLUGIN_FILE: &str = "libtracelab_plugin.so";

/// Reads a plugin's records so far, by serial.
pub fn read(path: &Path) -> Result<BTreeMap<u64, LoopCounts>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let records = attribution::parse(&text).with_context(|| path.display().to_string())?;
    Ok(records.into_iter().map(|r| (r.serial, r)).collect())
}

/// Puts the plugin's counts of each marked loop into its sample's counters and checks
/// them against the loop's clock. Err: why the cell cannot be trusted (a loop the plugin
/// has no record of, or one whose count and clock disagree beyond the constant that the
/// cell's other loops share).
pub fn attach(measured: &mut Measured, records: &BTreeMap<u64, LoopCounts>) -> Result<(), String> {
    let mut offsets: BTreeMap<i128, Vec<u64>> = BTreeMap::new();
    for s in &mut measured.samples {
        let Some(serial) = s.loop_serial else {
            continue;
        };
        let Some(r) = records.get(&serial) else {
            return Err(format!(
                "the QEMU plugin has no record of marked loop {serial} (repeat {}, {:?})",
                s.repeat, s.phase
            ));
        };
        s.counters.insert(KERNEL_INSN.into(), r.kernel_insns);
        s.counters.insert(USER_INSN.into(), r.user_insns);
        let offset = i128::from(r.insns()) - i128::from(s.elapsed);
        if let Ok(o) = u64::try_from(offset) {
            s.counters.insert(OUTSIDE_CLOCK.into(), o);
        }
        offsets.entry(offset).or_default().push(serial);
    }
    let (lo, hi) = match (offsets.keys().next(), offsets.keys().next_back()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Ok(()),
    };
    if hi - lo > CLOCK_JITTER_INSN || lo < 0 {
        let seen: Vec<String> = offsets
            .iter()
            .map(|(o, loops)| {
                format!(
                    "{o:+} insn in {} loops (e.g. loop {})",
                    loops.len(),
                    loops[0]
                )
            })
            .collect();
        return Err(format!(
            "the QEMU plugin's instruction counts disagree with the icount clock by more than {CLOCK_JITTER_INSN} insn between loops: plugin − clock = {}",
            seen.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::schema::{Phase, Sample, Status, Unit};

    fn measured(elapsed: &[(u64, u64)]) -> Measured {
        let mut m =
            Measured::without_samples("kprobe", "getppid", Unit::Insn, Status::Ok, String::new());
        m.samples = elapsed
            .iter()
            .map(|&(serial, e)| {
                let mut s = Sample::timed(0, Phase::Mechanism, 1000, e, Some(1000));
                s.loop_serial = Some(serial);
                s
            })
            .collect();
        m
    }

    fn record(serial: u64, kernel: u64, user: u64) -> (u64, LoopCounts) {
        (
            serial,
            LoopCounts {
                serial,
                kernel_insns: kernel,
                user_insns: user,
                blocks: Vec::new(),
            },
        )
    }

    #[test]
    fn counts_join_their_loops_and_the_clock_checks_them() {
        let records: BTreeMap<_, _> = [record(1, 900, 130), record(2, 1900, 230)].into();
        let mut m = measured(&[(1, 1000), (2, 2100)]);
        attach(&mut m, &records).expect("one constant");
        let c = &m.samples[1].counters;
        assert_eq!(
            (c[KERNEL_INSN], c[USER_INSN], c[OUTSIDE_CLOCK]),
            (1900, 230, 30)
        );
        // The clock's few instructions of jitter pass; a loop that strays further fails
        // the cell with both numbers.
        let mut m = measured(&[(1, 1000), (2, 2095)]);
        attach(&mut m, &records).expect("within the clock's jitter");
        let mut m = measured(&[(1, 1000), (2, 2000)]);
        let err = attach(&mut m, &records).unwrap_err();
        assert!(
            err.contains("+30 insn in 1 loops") && err.contains("+130 insn"),
            "{err}"
        );
        // A loop the plugin never saw.
        let mut m = measured(&[(3, 1000)]);
        assert!(attach(&mut m, &records)
            .unwrap_err()
            .contains("no record of marked loop 3"));
    }
}
