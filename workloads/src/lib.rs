//! Workloads: the code that calls into the traced kernel function.
//!
//! A workload's loop is the measured hot path. It must stay minimal and identical for the
//! baseline and every mechanism, so the only thing that differs between two samples is
//! what the kernel does on each call.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// A workload the lab knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// `getppid(2)` in a tight loop: the cheapest syscall that reaches a traceable
    /// kernel function and returns without side effects.
    Getppid,
    /// In-kernel calls of `bpf_get_numa_node_id`, made by a BPF driver program run with
    /// `BPF_PROG_TEST_RUN` (up to 100 calls per run, as the BPF selftests' trigger bench
    /// does): the traced call costs no syscall of its own. The agent installs the driver
    /// ([`set_driver`]) before running it.
    BpfNumaBatch,
}

/// Makes `calls` in-kernel calls for an in-kernel workload; installed by whoever owns the
/// program that makes them (the agent, with its BPF driver).
pub type Driver = Box<dyn Fn(u64) -> Result<(), String> + Send + Sync>;

static DRIVER: Mutex<Option<Driver>> = Mutex::new(None);

/// Installs (or with None removes) the driver of the in-kernel workloads.
pub fn set_driver(driver: Option<Driver>) {
    if let Ok(mut d) = DRIVER.lock() {
        *d = driver;
    }
}

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::Getppid, Workload::BpfNumaBatch];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid",
            Workload::BpfNumaBatch => "bpf-numa-batch",
        }
    }

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

    /// Runs the workload: `calls` calls into the kernel, nothing else.
    #[inline(never)]
    pub fn run(self, calls: u64) {
        match self {
            Workload::Getppid => getppid_loop(calls),
            Workload::BpfNumaBatch => driven(self, calls),
        }
    }
}

/// Runs the installed driver. Without one, or when it fails, no call was made and no
/// figure may come out of this loop: stop the process with the reason (the host reports
/// the console tail) rather than let an empty loop look like a cheap one.
fn driven(workload: Workload, calls: u64) {
    let outcome = match DRIVER.lock() {
        Ok(d) => match d.as_ref() {
            Some(run) => run(calls),
            None => Err("no driver installed".to_string()),
        },
        Err(_) => Err("the driver lock is poisoned".to_string()),
    };
    if let Err(why) = outcome {
        panic!("workload {workload}: {why}");
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

    /// One test: the driver is process-global.
    #[test]
    fn in_kernel_workload_runs_its_driver_or_stops() {
        use std::sync::atomic::{AtomicU64, Ordering};
        set_driver(None);
        let without = std::panic::catch_unwind(|| Workload::BpfNumaBatch.run(1));
        assert!(without.is_err(), "ran without a driver");
        static CALLS: AtomicU64 = AtomicU64::new(0);
        set_driver(Some(Box::new(|n| {
            CALLS.fetch_add(n, Ordering::Relaxed);
            Ok(())
        })));
        Workload::BpfNumaBatch.run(250);
        set_driver(None);
        assert_eq!(CALLS.load(Ordering::Relaxed), 250);
        assert!(Workload::BpfNumaBatch.in_kernel() && !Workload::Getppid.in_kernel());
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
