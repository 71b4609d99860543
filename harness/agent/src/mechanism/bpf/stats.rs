//! The kernel's own view of our programs: `run_cnt`/`run_time_ns` (counted only while
//! `BPF_ENABLE_STATS` is on), and the kernel's program list (nothing of ours may remain).

use super::loaded::Loaded;
use super::BpfSpec;
use anyhow::{bail, Context, Result};
use std::os::fd::{FromRawFd, OwnedFd};
use tracelab_model::schema::KernelStatsLoop;
use tracelab_probes::bpf::PROG_PREFIX;

/// `BPF_ENABLE_STATS` on while this lives (the kernel turns it off when the last such fd
/// closes), so no path leaves every BPF program in the system paying for statistics.
struct StatsOn(#[allow(dead_code)] OwnedFd);

impl StatsOn {
    fn enable() -> Result<StatsOn> {
        // SAFETY: bpf_enable_stats only issues the BPF_ENABLE_STATS syscall with a plain
        // enum argument.
        let fd = unsafe {
            libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
        };
        if fd < 0 {
            bail!(
                "BPF_ENABLE_STATS failed: {} (kernel 5.8 or newer needed)",
                std::io::Error::from_raw_os_error(-fd)
            );
        }
        // SAFETY: `fd` is a new file descriptor the kernel just returned; nothing else owns it.
        Ok(StatsOn(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// (run_cnt, run_time_ns, recursion_misses) of the program behind `fd`.
fn prog_stats(fd: i32) -> Result<(u64, u64, u64)> {
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    let mut len = u32::try_from(std::mem::size_of_val(&info)).context("bpf_prog_info size")?;
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes; its pointer fields are
    // zero, so the kernel copies no arrays through them.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if rc != 0 {
        bail!(
            "reading program info: {}",
            std::io::Error::from_raw_os_error(-rc)
        );
    }
    Ok((info.run_cnt, info.run_time_ns, info.recursion_misses))
}

/// Runs `run` (one untimed-for-the-summary loop of `ops` operations, returning its
/// elapsed time) with statistics on, and checks every program ran once per call (plus
/// `extra_per_program` runs the kernel adds for programs on every syscall).
pub(super) fn stats_loop(
    loaded: &[Loaded],
    spec: BpfSpec,
    ops: u64,
    extra_per_program: u64,
    run: &mut dyn FnMut() -> Result<u64>,
) -> Result<KernelStatsLoop> {
    let fds: Vec<i32> = loaded.iter().map(Loaded::prog_fd).collect::<Result<_>>()?;
    // Ring buffers are drained first so the loop cannot overflow them.
    for l in loaded {
        l.hits(spec.payload)?;
    }
    let on = StatsOn::enable()?;
    let before: Vec<(u64, u64, u64)> = fds
        .iter()
        .map(|&fd| prog_stats(fd))
        .collect::<Result<_>>()?;
    let elapsed = run()?;
    let after: Vec<(u64, u64, u64)> = fds
        .iter()
        .map(|&fd| prog_stats(fd))
        .collect::<Result<_>>()?;
    drop(on);
    let mut total = KernelStatsLoop {
        calls: ops.saturating_mul(spec.traced_per_op),
        elapsed,
        programs: spec.stack,
        run_cnt: 0,
        run_time_ns: 0,
        recursion_misses: 0,
        extra_runs: extra_per_program * u64::from(spec.stack),
    };
    let expected = ops.saturating_mul(spec.traced_per_op) + extra_per_program;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let runs = a.0.checked_sub(b.0).context("run_cnt went backwards")?;
        let time = a.1.checked_sub(b.1).context("run_time_ns went backwards")?;
        let misses =
            a.2.checked_sub(b.2)
                .context("recursion_misses went backwards")?;
        // Over every function the program runs for every traced call in the kernel, and
        // misses those nested in its own run (migrate_disable, which the kprobe_multi
        // handler calls, is traced too): the counts are recorded, and the target's own
        // calls are proven by the program's counter, which counts them apart.
        total.recursion_misses += misses;
        if spec.every.is_some() {
            total.run_cnt += runs;
            total.run_time_ns += time;
            continue;
        }
        if misses > 0 {
            bail!(
                "program {} of {} missed {misses} runs (recursion)",
                i + 1,
                spec.stack
            );
        }
        // The timed loops' rule: none beyond the calls in a guest, fewer never.
        crate::firing::check(
            &format!("program {} of {} ran (kernel run_cnt)", i + 1, spec.stack),
            runs,
            expected,
            spec.alone,
        )?;
        total.run_cnt += runs;
        total.run_time_ns += time;
    }
    Ok(total)
}

/// Names of loaded programs whose name starts with our prefix, with their ids.
pub fn leftover_programs() -> Vec<String> {
    libbpf_rs::query::ProgInfoIter::default()
        .filter_map(|p| {
            let name = p.name.to_string_lossy().into_owned();
            name.starts_with(PROG_PREFIX)
                .then(|| format!("{name} (id {})", p.id))
        })
        .collect()
}

/// After removal nothing of ours may stay loaded. Releasing a program can finish
/// asynchronously (perf events and trampolines free it after an RCU grace period), so
/// this waits a little before calling it a leak.
pub(super) fn check_released() -> Result<()> {
    let mut left = leftover_programs();
    for _ in 0..50 {
        if left.is_empty() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = leftover_programs();
    }
    if left.is_empty() {
        return Ok(());
    }
    bail!(
        "BPF programs still loaded after removal: {}",
        left.join(", ")
    )
}
