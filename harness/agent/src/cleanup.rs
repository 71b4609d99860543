//! Leaving the kernel as the lab found it, whatever happens.
//!
//! Three layers: every change sits behind a guard whose `Drop` undoes it (mechanism/);
//! SIGINT and SIGTERM only set a flag, so the agent stops between loops and the guards
//! run; and a state file records the global ftrace settings the lab changed, so a run
//! after a SIGKILL restores them (probes are found by their `tracelab` group instead). A
//! lock keeps two runs from measuring on one host at once.

use crate::tracefs::Tracefs;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Where the lock and state file live; `TRACELAB_STATE_DIR` overrides it (tests).
pub fn state_dir() -> PathBuf {
    std::env::var_os("TRACELAB_STATE_DIR")
        .map_or_else(|| PathBuf::from("/run/tracelab"), PathBuf::from)
}

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Routes SIGINT and SIGTERM to a flag (idempotent).
pub fn catch_signals() -> Result<()> {
    if INTERRUPTED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("installing a signal handler")?;
    }
    let _ = INTERRUPTED.set(flag);
    Ok(())
}

/// Fails once SIGINT or SIGTERM arrived, so the caller unwinds through its guards.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        bail!("interrupted by a signal");
    }
    Ok(())
}

/// Global ftrace settings a run changed and must restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    /// A tracer the lab set in `current_tracer`.
    pub tracer: Option<String>,
    /// The lab wrote `set_ftrace_filter`.
    pub ftrace_filter: bool,
    /// The lab wrote `set_graph_function`.
    #[serde(default)]
    pub graph_function: bool,
    /// The `kprobes-optimization` value to put back.
    pub kprobes_optimization: Option<String>,
    /// The ring buffer's `buffer_size_kb` to put back.
    #[serde(default)]
    pub buffer_size_kb: Option<String>,
    /// The `tracing_on` value to put back (a host may have had tracing off).
    #[serde(default)]
    pub tracing_on: Option<String>,
    /// Trace options (`options/<name>`) to put back, by name.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

fn state_path() -> PathBuf {
    state_dir().join("state.json")
}

/// Updates the state file (written before the kernel change it describes).
pub fn record(update: impl FnOnce(&mut State)) -> Result<()> {
    let path = state_path();
    let mut state: State = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    state.pid = std::process::id();
    update(&mut state);
    fs::create_dir_all(state_dir())
        .with_context(|| format!("creating {}", state_dir().display()))?;
    tracelab_model::atomic::write(&path, &serde_json::to_vec(&state)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Restores what a crashed run left according to its state file, and removes the file.
/// Returns what was restored.
pub fn recover(tracefs: &Tracefs) -> Result<Vec<String>> {
    let path = state_path();
    let Ok(bytes) = fs::read(&path) else {
        return Ok(Vec::new());
    };
    let state: State = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut done = Vec::new();
    if let Some(t) = &state.tracer {
        if tracefs.read("current_tracer")?.trim() == t {
            tracefs.write("current_tracer", "nop")?;
            done.push(format!("current_tracer {t} → nop"));
        }
    }
    if state.ftrace_filter {
        tracefs.write("set_ftrace_filter", "")?;
        done.push("set_ftrace_filter cleared".into());
    }
    if state.graph_function {
        tracefs.write("set_graph_function", "")?;
        done.push("set_graph_function cleared".into());
    }
    if let Some(old) = &state.buffer_size_kb {
        tracefs.write("buffer_size_kb", old)?;
        done.push(format!("buffer_size_kb → {old}"));
    }
    if let Some(old) = &state.tracing_on {
        tracefs.write("tracing_on", old)?;
        done.push(format!("tracing_on → {old}"));
    }
    for (name, old) in &state.options {
        tracefs.write(&format!("options/{name}"), old)?;
        done.push(format!("options/{name} → {old}"));
    }
    if let Some(old) = &state.kprobes_optimization {
        fs::write(crate::tracefs::KPROBES_OPTIMIZATION, old)
            .context("restoring kprobes-optimization")?;
        done.push(format!("kprobes-optimization → {old}"));
    }
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(done)
}

/// Removes the state file after a clean run.
pub fn forget() {
    let _ = fs::remove_file(state_path());
}

/// An exclusive lock on the host's tracing state, held for a run.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire() -> Result<RunLock> {
        let dir = state_dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "another tracelab run holds {} (pid {}); refusing to measure concurrently",
                path.display(),
                holder.trim()
            );
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_refuses_a_second_holder_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("TRACELAB_STATE_DIR", dir.path());
        let first = RunLock::acquire().unwrap();
        // flock is per open file description: a second open in this process conflicts too.
        let err = RunLock::acquire().err().unwrap().to_string();
        assert!(err.contains("another tracelab run"), "{err}");
        drop(first);
        RunLock::acquire().unwrap();

        record(|s| s.tracer = Some("function".into())).unwrap();
        record(|s| s.ftrace_filter = true).unwrap();
        record(|s| {
            s.options.insert("stacktrace".into(), "0".into());
        })
        .unwrap();
        let state: State = serde_json::from_slice(&fs::read(state_path()).unwrap()).unwrap();
        assert_eq!(state.tracer.as_deref(), Some("function"));
        assert!(state.ftrace_filter);
        assert_eq!(
            state.options.get("stacktrace").map(String::as_str),
            Some("0")
        );
        // A state file of a lab before trace options still reads.
        let old: State = serde_json::from_str(
            r#"{"pid":1,"tracer":null,"ftrace_filter":false,"kprobes_optimization":null}"#,
        )
        .unwrap();
        assert!(old.options.is_empty());
        forget();
        assert!(!state_path().exists());
    }
}
