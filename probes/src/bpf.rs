//! The BPF programs, compiled at build time (see `build.rs`), and the names that tie the
//! agent's mechanisms and payloads to programs in the object.

/// The compiled object (CO-RE; for this crate's target architecture).
pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tracelab.bpf.o"));

/// The libbpf-cargo skeleton: used for its generated types only (the agent loads
/// [`OBJECT`] itself, once per stacked program).
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::unwrap_used,
    missing_docs,
    non_camel_case_types,
    dead_code,
    unused_imports,
    unsafe_op_in_unsafe_fn
)]
#[allow(unreachable_pub)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tracelab.skel.rs"));
}

/// One event of the `record` payload, as the programs write it.
pub type Event = skel::types::tracelab_event;

// SAFETY: the event is a #[repr(C)] struct of integers generated from the program's BTF:
// every bit pattern is a valid value.
unsafe impl plain::Plain for Event {}

impl Event {
    /// Reads one ring-buffer record; None when it has the wrong size.
    pub fn from_record(bytes: &[u8]) -> Option<Event> {
        if bytes.len() != std::mem::size_of::<Event>() {
            return None;
        }
        let mut e = Event::default();
        plain::copy_from_bytes(&mut e, bytes).ok()?;
        Some(e)
    }
}

/// Map names in the object.
pub const COUNTS_MAP: &str = "tracelab_counts";
pub const EVENTS_MAP: &str = "tracelab_events";
/// The stacktrace payload's per-CPU buffer and the stackid payload's stack map: each is
/// created only for its payload.
pub const STACK_BUF_MAP: &str = "tracelab_stack_buf";
pub const STACKS_MAP: &str = "tracelab_stacks";
/// The target's address range for the program over every function (created only for it).
pub const TARGET_MAP: &str = "tracelab_target";
/// The kprobe_multi program over every function (`count`, the target apart).
pub const EVERY_PROGRAM: &str = "tracelab_kmultiall_count";
/// Slots of the per-CPU counter map: events, failures, frames of the stacks taken.
pub const SLOT_HITS: u32 = 0;
pub const SLOT_DROPS: u32 = 1;
pub const SLOT_FRAMES: u32 = 2;
/// Frames a stack map entry holds (`STACK_FRAMES` in the C).
pub const STACK_FRAMES: usize = 127;
/// The prefix of every program name (the kernel keeps 15 characters of a name).
pub const PROG_PREFIX: &str = "tracelab_";
/// The in-kernel workloads' driver programs: each `BPF_PROG_TEST_RUN` with a u64
/// context `n` calls the workload's function `n` times (at most [`DRIVER_BATCH`]):
/// `bpf_get_numa_node_id`, and the kfunc `bpf_modify_return_test_tp`.
pub const NUMA_DRIVER: &str = "tlab_numa_driver";
pub const KFUNC_DRIVER: &str = "tlab_kfunc_driver";
/// Helper calls per driver run at most (`TRACELAB_BATCH` in the C).
pub const DRIVER_BATCH: u64 = 100;

pub use tracelab_model::payload::Payload;

/// How a program attaches: one program family in the object per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attach {
    Kprobe,
    Kretprobe,
    KprobeMulti,
    KretprobeMulti,
    Fentry,
    /// One program on a tracing_multi link over every traced function.
    FentryMulti,
    Fexit,
    FmodRet,
    /// `syscalls/sys_enter_getppid` (a perf-event tracepoint).
    Tracepoint,
    /// Raw `sys_enter` (every syscall; the program filters on getppid's number).
    RawTp,
    /// BTF-typed `sys_enter` (same filter).
    TpBtf,
    /// Perf-event uprobe and uretprobe on one of the agent's own functions.
    Uprobe,
    Uretprobe,
    /// uprobe_multi links (one offset) on it.
    UprobeMulti,
    UretprobeMulti,
    /// The agent's USDT probe, through libbpf's USDT support.
    Usdt,
}

/// Which program of a family: the one filtering getppid on `sys_enter`, or the one for
/// a tracepoint only the workload fires (no filter). Only raw_tp and tp_btf differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    Getppid,
    None,
}

impl Attach {
    fn stem(self) -> &'static str {
        match self {
            Attach::Kprobe => "kprobe",
            Attach::Kretprobe => "kretprobe",
            Attach::KprobeMulti => "kmulti",
            Attach::KretprobeMulti => "kretmulti",
            Attach::Fentry => "fentry",
            Attach::FentryMulti => "fmulti",
            Attach::Fexit => "fexit",
            Attach::FmodRet => "fmodret",
            Attach::Tracepoint => "tp",
            Attach::RawTp => "rawtp",
            Attach::TpBtf => "tpbtf",
            Attach::Uprobe => "uprobe",
            Attach::Uretprobe => "uretprobe",
            Attach::UprobeMulti => "umulti",
            Attach::UretprobeMulti => "uretmulti",
            Attach::Usdt => "usdt",
        }
    }

    /// The program's name in the object (`tracelab_<attach>_<payload>`; the unfiltered
    /// raw_tp and tp_btf programs are `rawtpk` and `tpbtfk`).
    pub fn program(self, payload: Payload, filter: Filter) -> String {
        let k = match (self, filter) {
            (Attach::RawTp | Attach::TpBtf, Filter::None) => "k",
            _ => "",
        };
        format!("{PROG_PREFIX}{}{k}_{}", self.stem(), payload.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_holds_every_program() {
        // The object's symbol table names every program; a renamed C function breaks here,
        // not in a guest.
        let text = String::from_utf8_lossy(OBJECT);
        assert!(text.contains(NUMA_DRIVER) && text.contains(KFUNC_DRIVER));
        for a in [
            Attach::Kprobe,
            Attach::Kretprobe,
            Attach::KprobeMulti,
            Attach::KretprobeMulti,
            Attach::Fentry,
            Attach::FentryMulti,
            Attach::Fexit,
            Attach::FmodRet,
            Attach::Tracepoint,
            Attach::RawTp,
            Attach::TpBtf,
            Attach::Uprobe,
            Attach::Uretprobe,
            Attach::UprobeMulti,
            Attach::UretprobeMulti,
            Attach::Usdt,
        ] {
            for p in Payload::ALL {
                for f in [Filter::Getppid, Filter::None] {
                    let name = a.program(p, f);
                    assert!(text.contains(&name), "{name}");
                }
            }
        }
    }

    #[test]
    fn event_from_record_checks_size() {
        let size = std::mem::size_of::<Event>();
        assert_eq!(size, 16);
        let mut bytes = vec![0u8; size];
        bytes[8..12].copy_from_slice(&42u32.to_ne_bytes());
        assert_eq!(Event::from_record(&bytes).map(|e| e.tgid), Some(42));
        assert!(Event::from_record(&bytes[..8]).is_none());
    }
}
