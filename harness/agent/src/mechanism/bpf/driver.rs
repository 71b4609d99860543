//! The driver of the in-kernel workload (`bpf-numa-batch`): a BPF program run with
//! `BPF_PROG_TEST_RUN` that calls `bpf_get_numa_node_id` up to 100 times per run, loaded
//! once per agent run and owned by the workload's [`Runner`].

use super::libbpf_log;
use anyhow::{bail, Context, Result};
use libbpf_rs::{Object, ObjectBuilder};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tracelab_probes::bpf::{self as probes, DRIVER_BATCH, DRIVER_PROGRAM};
use tracelab_workloads::{Driver, Runner, Workload};

/// The loaded driver program; dropping it unloads it.
struct NumaDriver {
    _object: Object,
    fd: OwnedFd,
}

impl Driver for NumaDriver {
    fn call(&mut self, calls: u64) -> std::result::Result<(), String> {
        run_batches(&self.fd, calls).map_err(|e| format!("{e:#}"))
    }
}

/// The runner of `workload`: for an in-kernel workload, with its driver loaded (and
/// tried once); for the others, plain.
pub(crate) fn runner(workload: Workload) -> Result<Runner> {
    if !workload.in_kernel() {
        return Ok(Runner::syscalls(workload)?);
    }
    let captured = libbpf_log::Capture::start();
    let loaded = load();
    let log = captured.finish();
    let (object, fd) = loaded.map_err(|e| match log {
        Some(log) => e.context(format!("libbpf: {log}")),
        None => e,
    })?;
    // One run proves the driver works before any loop relies on it.
    run_batches(&fd, 1).context("test run of the workload driver")?;
    Ok(Runner::driven(
        workload,
        Box::new(NumaDriver {
            _object: object,
            fd,
        }),
    ))
}

fn load() -> Result<(Object, OwnedFd)> {
    let mut open = ObjectBuilder::default()
        .open_memory(probes::OBJECT)
        .context("opening the BPF object")?;
    for mut p in open.progs_mut() {
        let mine = p.name().to_str() == Some(DRIVER_PROGRAM);
        p.set_autoload(mine);
    }
    let object = open
        .load()
        .context("loading the workload driver (verifier)")?;
    let fd = object
        .progs()
        .find(|p| p.name().to_str() == Some(DRIVER_PROGRAM))
        .context("the BPF object has no workload driver")?
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating the driver's fd")?;
    Ok((object, fd))
}

/// `calls` helper calls: full batches, then the remainder.
fn run_batches(fd: &OwnedFd, calls: u64) -> Result<()> {
    let mut left = calls;
    while left > 0 {
        let n = left.min(DRIVER_BATCH);
        test_run(fd, n)?;
        left -= n;
    }
    Ok(())
}

fn test_run(fd: &OwnedFd, n: u64) -> Result<()> {
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
            "BPF_PROG_TEST_RUN of {DRIVER_PROGRAM}: {}",
            std::io::Error::from_raw_os_error(-rc)
        );
    }
    Ok(())
}
