//! Workloads: the code that calls into the traced kernel function.
//!
//! A workload's loop is the measured hot path. It must stay minimal and identical for the
//! baseline and every mechanism, so the only thing that differs between two samples is
//! what the kernel does on each call.

pub use tracelab_model::workload::Workload;

/// Makes in-kernel calls for an in-kernel workload (the agent's BPF driver program).
pub trait Driver {
    /// Makes `calls` calls; an error means some were not made.
    fn call(&mut self, calls: u64) -> Result<(), String>;
}

/// A workload ready to run: the kind, and for in-kernel workloads the driver that makes
/// the calls, owned here so that no loop can run without it.
pub struct Runner {
    kind: Workload,
    driver: Option<Box<dyn Driver>>,
}

/// An in-kernel workload asked to run without a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsDriver(pub Workload);

impl std::fmt::Display for NeedsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "workload {} needs its in-kernel driver", self.0)
    }
}

impl std::error::Error for NeedsDriver {}

impl Runner {
    /// A workload that makes its calls from user space (no driver).
    pub fn syscalls(kind: Workload) -> Result<Runner, NeedsDriver> {
        if kind.in_kernel() {
            return Err(NeedsDriver(kind));
        }
        Ok(Runner { kind, driver: None })
    }

    /// An in-kernel workload and the driver that makes its calls.
    pub fn driven(kind: Workload, driver: Box<dyn Driver>) -> Runner {
        Runner {
            kind,
            driver: Some(driver),
        }
    }

    pub fn kind(&self) -> Workload {
        self.kind
    }

    /// Runs the workload: `calls` calls into the kernel, nothing else. An error means not
    /// every call was made, so no figure may come out of this loop.
    #[inline(never)]
    pub fn run(&mut self, calls: u64) -> Result<(), String> {
        match &mut self.driver {
            None => {
                getppid_loop(calls);
                Ok(())
            }
            Some(d) => d
                .call(calls)
                .map_err(|why| format!("workload {}: {why}", self.kind)),
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(std::rc::Rc<std::cell::Cell<u64>>);

    impl Driver for Counting {
        fn call(&mut self, calls: u64) -> Result<(), String> {
            self.0.set(self.0.get() + calls);
            if calls > 1000 {
                return Err("batch too large".into());
            }
            Ok(())
        }
    }

    #[test]
    fn in_kernel_workload_needs_and_runs_its_driver() {
        assert_eq!(
            Runner::syscalls(Workload::BpfNumaBatch).err(),
            Some(NeedsDriver(Workload::BpfNumaBatch))
        );
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut r = Runner::driven(Workload::BpfNumaBatch, Box::new(Counting(calls.clone())));
        r.run(250).expect("driven");
        assert_eq!(calls.get(), 250);
        let err = r.run(5000).unwrap_err();
        assert!(
            err.contains("bpf-numa-batch") && err.contains("too large"),
            "{err}"
        );
    }

    #[test]
    fn syscall_workload_runs_without_a_driver() {
        let mut r = Runner::syscalls(Workload::Getppid).expect("no driver needed");
        r.run(10).expect("getppid never fails");
        assert_eq!(r.kind(), Workload::Getppid);
    }
}
