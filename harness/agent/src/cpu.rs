//! Placing threads on CPUs: the agent on one, a workload's peer on another, and the
//! quiesce's rehearsal keeping the peer's CPU busy through a tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Pins `pid` (0: the calling thread) to `cpu`; false if the kernel refused.
pub(crate) fn pin(pid: libc::pid_t, cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is below CPU_SETSIZE (checked by callers
    // against the online CPUs or given by the kernel).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` outlives the call.
    unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Pins the calling thread to the CPU it runs on, so every loop of a run sees the same
/// core (and its caches and counters). Returns that CPU.
pub(crate) fn pin_to_current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    let cpu = usize::try_from(cpu).ok()?;
    pin(0, cpu).then_some(cpu as u32)
}

/// CPUs online (1 if the kernel will not say).
pub(crate) fn online() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(1)
}

/// A thread pinned to one CPU that spins while asked to and sleeps otherwise. Created
/// once and parked, not spawned per use: a thread's exit frees its task after an RCU
/// grace period, the very work a quiet kernel must not have pending.
pub(crate) struct Spinner {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    spin: AtomicBool,
    state: Mutex<Wake>,
    wake: Condvar,
}

#[derive(Default)]
struct Wake {
    spin: bool,
    quit: bool,
}

impl Spinner {
    /// A parked spinner on `cpu`, or None if it could not be placed there.
    pub(crate) fn on(cpu: u32) -> Option<Spinner> {
        let shared = Arc::new(Shared::default());
        let (placed_tx, placed_rx) = std::sync::mpsc::channel();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("spin{cpu}"))
                .spawn(move || {
                    let placed = pin(0, cpu as usize);
                    let _ = placed_tx.send(placed);
                    if placed {
                        shared.serve();
                    }
                })
                .ok()?
        };
        let spinner = Spinner {
            shared,
            thread: Some(thread),
        };
        placed_rx.recv().unwrap_or(false).then_some(spinner)
    }

    /// Starts spinning.
    pub(crate) fn start(&self) {
        self.set(|w| w.spin = true);
    }

    /// Stops spinning (the thread parks).
    pub(crate) fn stop(&self) {
        self.set(|w| w.spin = false);
    }

    fn set(&self, change: impl FnOnce(&mut Wake)) {
        let mut w = self
            .shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut w);
        self.shared.spin.store(w.spin, Ordering::SeqCst);
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn serve(&self) {
        loop {
            {
                let mut w = self
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !w.spin && !w.quit {
                    w = self
                        .wake
                        .wait(w)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if w.quit {
                    return;
                }
            }
            while self.spin.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.set(|w| {
            w.spin = false;
            w.quit = true;
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinner_starts_stops_and_quits() {
        let Some(s) = Spinner::on(0) else {
            return; // a host that refuses placement: nothing to test
        };
        s.start();
        s.stop();
        s.start();
        drop(s);
    }
}
