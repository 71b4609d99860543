//! The clocks that time workload loops.

/// Reads `clock` in nanoseconds.
fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; every clock used here exists on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether loops are timed by the x86 TSC ([`count_with_tsc`]).
static TSC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Times loops ([`loop_clock`]) by the TSC from now on, on x86_64 (elsewhere: no change).
/// For a plan in instructions: under QEMU `-icount shift=0` the TSC is the guest's
/// instruction count itself, while CLOCK_MONOTONIC converts it through the kernel's
/// calibrated frequency (about 1 GHz, never exactly) and rounds by where in time a loop
/// began, so a guest restored from a kept state, whose plan arrived at another time than
/// a booted one's, measured 1-2 insn more or less per loop. arm64's counter runs at
/// exactly 1 GHz there, so its CLOCK_MONOTONIC is exact already.
pub(crate) fn count_with_tsc() {
    TSC.store(
        cfg!(target_arch = "x86_64"),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The clock of timed loops: CLOCK_MONOTONIC in nanoseconds, or the TSC after
/// [`count_with_tsc`]. Only differences of two readings are used. Not for spinning: under
/// icount each RDTSC ends a translated block, and a spin on it ran 50 % slower.
pub(crate) fn loop_clock() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if TSC.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    now_ns()
}

/// Reads CLOCK_MONOTONIC in nanoseconds. Under QEMU `-icount shift=0` the guest's clock
/// advances one nanosecond per executed instruction, so the same reading is an
/// instruction count there; the plan's unit says which.
pub(crate) fn now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) in nanoseconds (instructions
/// under icount).
pub(crate) fn thread_time_ns() -> u64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID)
}
/// Context switches of the calling thread so far (voluntary + involuntary).
pub(crate) fn thread_switches() -> u64 {
    // SAFETY: rusage is plain data; zeroed is a valid value for getrusage to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD names the calling thread; `ru` is valid and writable.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    if rc != 0 {
        return 0;
    }
    (ru.ru_nvcsw as u64).saturating_add(ru.ru_nivcsw as u64)
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the time of the last timer tick.
fn coarse_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

/// Spins until the next timer tick has happened (the coarse clock, updated by the tick,
/// moves), so the loop that follows starts at the same phase of the tick every time: in
/// a deterministic guest, every loop of a cell then takes its ticks at the same points.
/// Gives up after `max_ns`; returns whether a tick was seen.
pub(crate) fn align_to_tick(max_ns: u64) -> bool {
    let start = now_ns();
    let seen = coarse_ns();
    while now_ns().saturating_sub(start) < max_ns {
        if coarse_ns() != seen {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

/// The timer tick's period in nanoseconds: the coarse clock's resolution is one jiffy
/// (4 ms at HZ=250). None if the clock has no resolution to report.
pub(crate) fn tick_period_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the coarse clock exists on Linux.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    let ns = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
    (rc == 0 && ns > 1).then_some(ns)
}
