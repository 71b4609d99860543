//! The drivers of the in-kernel workloads (`bpf-numa-batch`, `bpf-kfunc-batch`): BPF
//! programs run with `BPF_PROG_TEST_RUN` that call the workload's function up to 100
//! times per run, loaded once per agent run and owned by the workload's [`Runner`].

use super::libbpf_log;
use crate::mechanism::Unsupported;
use anyhow::{bail, Context, Result};
use libbpf_rs::{Object, ObjectBuilder};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tracelab_probes::bpf::{self as probes, DRIVER_BATCH, KFUNC_DRIVER, NUMA_DRIVER};
use tracelab_workloads::{Driver, Runner, SetupError, Workload};

/// A loaded driver program; dropping it unloads it.
struct ProgDriver {
    _object: Object,
    fd: OwnedFd,
    program: &'static str,
}

impl Driver for ProgDriver {
    fn call(&mut self, calls: u64) -> std::result::Result<(), String> {
        run_batches(&self.fd, self.program, calls).map_err(|e| format!("{e:#}"))
    }
}

/// The kfunc the `bpf-kfunc-batch` driver calls (Linux 6.10+).
const KFUNC: &str = "bpf_modify_return_test_tp";

/// The runner of `workload`: for an in-kernel workload, with its driver loaded (and
/// tried once); for the others, plain. A kernel without the workload's kfunc makes the
/// workload unsupported (every cell says so), not the run failed.
pub(crate) fn runner(workload: Workload) -> Result<std::result::Result<Runner, Unsupported>> {
    let program = match workload {
        Workload::BpfNumaBatch => NUMA_DRIVER,
        Workload::BpfKfuncBatch => {
            let kallsyms =
                std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
            if !has_symbol(&kallsyms, KFUNC) {
                return Ok(Err(Unsupported(format!(
                    "workload {workload} needs the kfunc {KFUNC} (Linux 6.10 and later), which this kernel lacks"
                ))));
            }
            KFUNC_DRIVER
        }
        _ => {
            return match Runner::syscalls(workload) {
                Ok(r) => Ok(Ok(r)),
                Err(SetupError::Arch(_, why)) => Ok(Err(Unsupported(why))),
                Err(e) => Err(e.into()),
            }
        }
    };
    let captured = libbpf_log::Capture::start();
    let loaded = load(program);
    let log = captured.finish();
    let (object, fd) = loaded.map_err(|e| match log {
        Some(log) => e.context(format!("libbpf: {log}")),
        None => e,
    })?;
    // One run proves the driver works before any loop relies on it.
    run_batches(&fd, program, 1).context("test run of the workload driver")?;
    Ok(Ok(Runner::driven(
        workload,
        Box::new(ProgDriver {
            _object: object,
            fd,
            program,
        }),
    )))
}

/// Whether kallsyms lists `name` (the third column, exactly).
pub(super) fn has_symbol(kallsyms: &str, name: &str) -> bool {
    kallsyms
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(name))
}

fn load(program: &str) -> Result<(Object, OwnedFd)> {
    let mut open = ObjectBuilder::default()
        .open_memory(probes::OBJECT)
        .context("opening the BPF object")?;
    for mut p in open.progs_mut() {
        let mine = p.name().to_str() == Some(program);
        p.set_autoload(mine);
    }
    let object = open
        .load()
        .context("loading the workload driver (verifier)")?;
    let fd = object
        .progs()
        .find(|p| p.name().to_str() == Some(program))
        .context("the BPF object has no workload driver")?
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating the driver's fd")?;
    Ok((object, fd))
}

/// `calls` helper calls: full batches, then the remainder.
fn run_batches(fd: &OwnedFd, program: &str, calls: u64) -> Result<()> {
    let mut left = calls;
    while left > 0 {
        let n = left.min(DRIVER_BATCH);
        test_run(fd, program, n)?;
        left -= n;
    }
    Ok(())
}

fn test_run(fd: &OwnedFd, program: &str, n: u64) -> Result<()> {
    // The raw tracepoint context: the program reads its first u64 as the call count.
    let ctx = [n];
    let mut opts = libbpf_rs::libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_test_run_opts>() as _,
        ctx_in: ctx.as_ptr().cast(),
        ctx_size_in: std::mem::size_of_val(&ctx) as u32,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid bpf_test_run_opts whose only pointer, ctx_in, points at
    // `ctx` (ctx_size_in bytes), which outlives the call; nothing is written back through it.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    if rc != 0 {
        bail!(
            "BPF_PROG_TEST_RUN of {program}: {}",
            std::io::Error::from_raw_os_error(-rc)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lookup_is_exact() {
        let text = "ffffffff81000000 T bpf_modify_return_test_tp\nffffffff81000010 t bpf_modify_return_test_tp2\n";
        assert!(has_symbol(text, KFUNC));
        assert!(!has_symbol(
            "ffffffff81000010 t bpf_modify_return_test_tp2\n",
            KFUNC
        ));
    }
}
