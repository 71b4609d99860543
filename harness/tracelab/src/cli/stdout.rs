//! Standard output for the commands: a reader that goes away (`tracelab show … | head -1`)
//! ends the printing quietly instead of panicking as `print!` does. The command still runs
//! to its end and keeps its exit status, so a gate such as `compare … | head` under
//! `pipefail` still fails on a regression.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has closed: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; a closed pipe is not an error, any other failure is.
pub(crate) fn write(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `print!` that survives a closed pipe (see the module header); `?`s other errors.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::stdout::write(format_args!($($t)*))
            .map_err(|e| anyhow::anyhow!("writing to stdout: {e}"))?
    };
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($t)*)))
            .map_err(|e| anyhow::anyhow!("writing to stdout: {e}"))?
    };
}

pub(crate) use {out, outln};
