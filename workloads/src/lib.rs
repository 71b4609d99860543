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

mod macro_ops;
mod user_ops;

use macro_ops::MacroOps;
pub use user_ops::{user_function, UserFunction, USDT_PROBE};

/// A workload ready to run: the kind, and what its loop needs: for in-kernel workloads
/// the driver that makes the calls, for the macro workloads their file descriptors and
/// peer process; owned here so that no loop can run without them.
pub struct Runner {
    kind: Workload,
    ops: Ops,
}

enum Ops {
    Getppid,
    Driven(Box<dyn Driver>),
    Macro(MacroOps),
    User(UserFunction),
}

/// Why a workload could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// An in-kernel workload asked to run without a driver.
    NeedsDriver(Workload),
    /// Creating its pipes, sockets, files or peer failed.
    Os(Workload, String),
    /// Its function does not exist on this architecture (`user-nop5` off x86_64).
    Arch(Workload, String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::NeedsDriver(w) => write!(f, "workload {w} needs its in-kernel driver"),
            SetupError::Os(w, why) => write!(f, "setting up workload {w}: {why}"),
            SetupError::Arch(_, why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SetupError {}

impl Runner {
    /// A workload that makes its calls from user space (no driver); the macro workloads
    /// set up their files, sockets and peer process here, outside any loop.
    pub fn syscalls(kind: Workload) -> Result<Runner, SetupError> {
        if kind.in_kernel() {
            return Err(SetupError::NeedsDriver(kind));
        }
        if let Some(why) = kind.arch_limit(std::env::consts::ARCH) {
            return Err(SetupError::Arch(kind, why));
        }
        let ops = match kind {
            Workload::Getppid => Ops::Getppid,
            _ if kind.is_user() => Ops::User(user_function(kind).ok_or_else(|| {
                SetupError::Arch(kind, format!("workload {kind} has no function here"))
            })?),
            _ => Ops::Macro(MacroOps::new(kind).map_err(|e| SetupError::Os(kind, e))?),
        };
        Ok(Runner { kind, ops })
    }

    /// An in-kernel workload and the driver that makes its calls.
    pub fn driven(kind: Workload, driver: Box<dyn Driver>) -> Runner {
        Runner {
            kind,
            ops: Ops::Driven(driver),
        }
    }

    pub fn kind(&self) -> Workload {
        self.kind
    }

    /// Processes besides the agent that run the workload's kernel calls (the pipe's
    /// peer): their events are the workload's own.
    pub fn helper_pids(&self) -> Vec<u32> {
        match &self.ops {
            Ops::Macro(m) => m.helper_pids(),
            _ => Vec::new(),
        }
    }

    /// Runs the workload: `calls` calls (operations), nothing else. An error means not
    /// every call was made, so no figure may come out of this loop.
    #[inline(never)]
    pub fn run(&mut self, calls: u64) -> Result<(), String> {
        match &mut self.ops {
            Ops::Getppid => {
                getppid_loop(calls);
                Ok(())
            }
            Ops::Driven(d) => d
                .call(calls)
                .map_err(|why| format!("workload {}: {why}", self.kind)),
            Ops::Macro(m) => m
                .run(calls)
                .map_err(|why| format!("workload {}: {why}", self.kind)),
            Ops::User(f) => {
                f.run(calls);
                Ok(())
            }
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
        assert!(matches!(
            Runner::syscalls(Workload::BpfNumaBatch).err(),
            Some(SetupError::NeedsDriver(Workload::BpfNumaBatch))
        ));
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
    fn macro_workloads_run_here() {
        // The build machine can fork, pipe, read a memfd, open /dev/null and (when its
        // loopback is up) talk TCP: the loops are plain user-space code.
        for w in [
            Workload::Pipe,
            Workload::FileRead,
            Workload::Fork,
            Workload::OpenClose,
            Workload::Tcp,
        ] {
            let mut r = match Runner::syscalls(w) {
                Ok(r) => r,
                Err(SetupError::Os(Workload::Tcp, why)) => {
                    eprintln!("tcp skipped: {why}");
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            r.run(50).unwrap_or_else(|e| panic!("{w}: {e}"));
            assert_eq!(
                r.helper_pids().len(),
                usize::from(w == Workload::Pipe),
                "{w}"
            );
        }
    }

    #[test]
    fn syscall_workload_runs_without_a_driver() {
        let mut r = Runner::syscalls(Workload::Getppid).expect("no driver needed");
        r.run(10).expect("getppid never fails");
        assert_eq!(r.kind(), Workload::Getppid);
    }
}
