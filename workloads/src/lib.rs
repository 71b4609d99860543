//! Workloads: the code that calls into the traced kernel function.
//!
//! A workload's loop is the measured hot path. It must stay minimal and identical for the
//! baseline and every mechanism, so the only thing that differs between two samples is
//! what the kernel does on each call.

use std::fmt;
use std::str::FromStr;

/// A workload the lab knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// `getppid(2)` in a tight loop: the cheapest syscall that reaches a traceable
    /// kernel function and returns without side effects.
    Getppid,
}

impl Workload {
    pub const ALL: [Workload; 1] = [Workload::Getppid];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid",
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
        }
    }

    /// Runs the workload: `calls` calls into the kernel, nothing else.
    #[inline(never)]
    pub fn run(self, calls: u64) {
        match self {
            Workload::Getppid => getppid_loop(calls),
        }
    }
}

#[inline(never)]
fn getppid_loop(calls: u64) {
    for _ in 0..calls {
        // SAFETY: getppid(2) takes no arguments, cannot fail and touches no memory of ours.
        let ppid = unsafe { libc::getppid() };
        std::hint::black_box(ppid);
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown workload name; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWorkload(pub String);

impl fmt::Display for UnknownWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        write!(
            f,
            "unknown workload `{}` (valid: {})",
            self.0,
            valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownWorkload {}

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
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
