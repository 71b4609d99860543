//! The clock that times workload loops.

/// Reads CLOCK_MONOTONIC in nanoseconds. Under QEMU `-icount shift=0` the guest's clock
/// advances one nanosecond per executed instruction, so the same reading is an
/// instruction count there; the plan's unit says which.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
