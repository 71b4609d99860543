//! Ctrl-C on the host: the first SIGINT or SIGTERM asks a run or matrix to stop (its QEMU
//! guests are killed, every finished cell stays, the exit status is 130); a second one
//! ends the process at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (idempotent). Until then a signal ends the process as usual.
pub fn catch() -> std::io::Result<()> {
    if REQUESTED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it: the
        // second signal exits, the first only sets the flag.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    let _ = REQUESTED.set(flag);
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// A run stopped by a signal (exit status 130): what it kept, and where.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; the {finished} finished cells are kept in {}", dir.display())]
pub struct Interrupted {
    pub finished: usize,
    pub dir: PathBuf,
}
