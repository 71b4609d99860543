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
}

crate::named!(Workload, "workload");

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::Getppid, Workload::BpfNumaBatch];

    /// Whether the calls are made inside the kernel by a driver (no syscall per call).
    pub fn in_kernel(self) -> bool {
        matches!(self, Workload::BpfNumaBatch)
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
        }
    }
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
