//! The workloads a plan can name: the code that calls into the traced kernel function
//! (run by `tracelab-workloads`).

use strum::{IntoStaticStr, VariantArray};

/// A workload the lab knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, VariantArray)]
pub enum Workload {
    /// `getppid(2)` in a tight loop: the cheapest syscall that reaches a traceable
    /// kernel function and returns without side effects.
    #[strum(serialize = "getppid")]
    Getppid,
    /// In-kernel calls of `bpf_get_numa_node_id`, made by a BPF driver program run with
    /// `BPF_PROG_TEST_RUN` (up to 100 calls per run, as the BPF selftests' trigger bench
    /// does): the traced call costs no syscall of its own.
    #[strum(serialize = "bpf-numa-batch")]
    BpfNumaBatch,
    /// In-kernel calls of the kfunc `bpf_modify_return_test_tp` (Linux 6.10+), made by a
    /// BPF driver program as the selftests' `trigger_driver_kfunc` does. The kfunc is in
    /// the kernel's registered fmod_ret set (no error injection needed) and fires the
    /// `bpf_test_run:bpf_trigger_tp` tracepoint, so fmod_ret, `tp`, `raw_tp` and `tp_btf`
    /// are measured in-kernel on it.
    #[strum(serialize = "bpf-kfunc-batch")]
    BpfKfuncBatch,
}

crate::named!(Workload, "workload");

impl Workload {
    pub const ALL: [Workload; 3] = [
        Workload::Getppid,
        Workload::BpfNumaBatch,
        Workload::BpfKfuncBatch,
    ];

    /// Whether the calls are made inside the kernel by a driver (no syscall per call).
    pub fn in_kernel(self) -> bool {
        matches!(self, Workload::BpfNumaBatch | Workload::BpfKfuncBatch)
    }

    /// The tracepoint each call fires, as (category, name), for the BPF `tp`, `raw_tp`
    /// and `tp_btf` mechanisms; None where the calls fire none of their own.
    pub fn tracepoint(self) -> Option<Tracepoint> {
        match self {
            Workload::Getppid => Some(Tracepoint {
                category: "syscalls",
                name: "sys_enter_getppid",
                raw: "sys_enter",
                raw_is_shared: true,
            }),
            Workload::BpfKfuncBatch => Some(Tracepoint {
                category: "bpf_test_run",
                name: "bpf_trigger_tp",
                raw: "bpf_trigger_tp",
                raw_is_shared: false,
            }),
            Workload::BpfNumaBatch => None,
        }
    }

    /// Kernel symbols this workload enters once per call, best first, for a given
    /// `uname -m` style architecture (`x86_64` or `aarch64`/`arm64`).
    ///
    /// Several of these may be aliases of one address (on x86_64 6.12,
    /// `__x64_sys_getppid` and `__do_sys_getppid` share one); the agent resolves aliases
    /// against the kernel's own symbol table and filter list.
    pub fn entry_symbols(self, arch: &str) -> &'static [&'static str] {
        match (self, arch) {
            (Workload::Getppid, "x86_64") => &["__x64_sys_getppid", "__do_sys_getppid"],
            (Workload::Getppid, "aarch64" | "arm64") => {
                &["__arm64_sys_getppid", "__do_sys_getppid"]
            }
            (Workload::Getppid, _) => &["__do_sys_getppid"],
            (Workload::BpfNumaBatch, _) => &["bpf_get_numa_node_id"],
            (Workload::BpfKfuncBatch, _) => &["bpf_modify_return_test_tp"],
        }
    }
}

/// The tracepoints one call of a workload fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracepoint {
    /// The perf-event tracepoint (`tracepoint` programs): `events/<category>/<name>`.
    pub category: &'static str,
    pub name: &'static str,
    /// The raw tracepoint (`raw_tp`, `tp_btf`).
    pub raw: &'static str,
    /// Whether the raw tracepoint fires for other calls too (`sys_enter`: every syscall),
    /// so the programs on it filter the workload's calls themselves.
    pub raw_is_shared: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
        }
    }

    #[test]
    fn unknown_workload_lists_valid_ones() {
        let err = "fork".parse::<Workload>().unwrap_err().to_string();
        assert!(err.contains("fork") && err.contains("getppid"), "{err}");
    }

    #[test]
    fn entry_symbols_are_arch_specific() {
        assert_eq!(
            Workload::Getppid.entry_symbols("x86_64")[0],
            "__x64_sys_getppid"
        );
        assert_eq!(
            Workload::Getppid.entry_symbols("aarch64")[0],
            "__arm64_sys_getppid"
        );
    }
}
