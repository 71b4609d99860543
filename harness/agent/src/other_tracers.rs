//! Other ftrace users beside a cell (`--other-tracers M`): M trace instances, each with
//! the `function` tracer on one function of its own, none of which the workload's loops
//! call.
//!
//! Each instance registers an ftrace_ops of its own, so M of them are M other users of
//! ftrace, as M unrelated tools tracing one function each would be. Where a kernel has
//! no per-callsite ops (arm64 before `DYNAMIC_FTRACE_WITH_CALL_OPS`), every ftrace
//! callsite then goes through the list of all ops, and a mechanism's cost on its own
//! function grows with M; where it has them, it should not move. The instances are
//! created once per run, their tracers switched on per cell; a loop in which one of their
//! functions ran is contaminated (its tracer worked inside the loop) and is run again.

use crate::mechanism::CellError;
use crate::tracefs::Tracefs;
use anyhow::{bail, Context, Result};
use tracelab_probes::Symbol;

/// The lab's trace instances are `instances/tracelab_*` (the screening's too).
const LAB_PREFIX: &str = "tracelab_";
/// This module's instances: `instances/tracelab_other_<i>`.
const PREFIX: &str = "tracelab_other_";
/// Per-CPU ring buffer of each instance, in KB: its events are never wanted, only
/// counted, and 200 instances of the default 1.4 MB per CPU would not fit a guest.
const BUFFER_KB: &str = "4";
/// Free memory kept for the cells when instances are made (MiB). Before eventfs (6.6)
/// an instance makes every event's files at once and they stay: on x86_64 6.1 each took
/// about 9 MiB, and 99 of them left a 1 GiB guest deadlocked on memory (the kernel
/// panics, or the agent is never heard from).
const RESERVE_MIB: u64 = 64;

/// The other tracers of a run: created (tracers off), switched on for a cell's first M.
pub(crate) struct OtherTracers {
    tracefs: Tracefs,
    /// The function of each instance, in instance order.
    functions: Vec<Symbol>,
    /// How many instances exist (all of `functions` once created; fewer mid-creation).
    created: usize,
    /// How many have their tracer on (the first ones).
    on: usize,
    /// Why fewer than asked were made (memory), if so.
    short: Option<String>,
}

impl OtherTracers {
    /// Creates one instance per function (`spelled` as `set_ftrace_filter` takes it), its
    /// filter checked to hold exactly that function, its tracer off.
    pub(crate) fn create(
        tracefs: &Tracefs,
        functions: &[(Symbol, String)],
    ) -> std::result::Result<Self, CellError> {
        if !tracefs.exists("instances") {
            return Err(CellError::Unsupported(
                "other tracers are trace instances, and this kernel has none (instances/ in tracefs)".into(),
            ));
        }
        if !tracefs
            .read("available_tracers")?
            .split_whitespace()
            .any(|t| t == "function")
        {
            return Err(CellError::Unsupported(
                "other tracers run the function tracer, and this kernel has none (CONFIG_FUNCTION_TRACER is not set)".into(),
            ));
        }
        let mut made = OtherTracers {
            tracefs: tracefs.clone(),
            functions: functions.iter().map(|(f, _)| f.clone()).collect(),
            created: 0,
            on: 0,
            short: None,
        };
        // MemFree, not MemAvailable: the instances' files count as reclaimable slab,
        // yet tracefs pins them.
        let before = free_mib();
        for (i, (function, spelled)) in functions.iter().enumerate() {
            if let (Some(start), Some(now), true) = (before, free_mib(), i > 0) {
                let each = start.saturating_sub(now).div_ceil(i as u64);
                if now < RESERVE_MIB + each {
                    made.short = Some(format!(
                        "only {i} of {} trace instances fit: each took {each} MiB of this guest's memory (before eventfs, 6.6, an instance makes every event's files at once), and {now} MiB were left, {RESERVE_MIB} of them kept for the cells",
                        functions.len()
                    ));
                    break;
                }
            }
            let dir = tracefs.root().join(made.dir(i));
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            made.created = i + 1;
            tracefs.write(&made.file(i, "buffer_size_kb"), BUFFER_KB)?;
            let filter = made.file(i, "set_ftrace_filter");
            let held = |t: &Tracefs| -> Result<Vec<String>> {
                Ok(t.read(&filter)?
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                    .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
                    .collect())
            };
            let want = [function.to_string()];
            // By index where the screening found that to work, else (and as a fallback)
            // by name.
            if tracefs.write(&filter, spelled).is_err() || held(tracefs)? != want {
                tracefs.write(&filter, function.as_str())?;
                let got = held(tracefs)?;
                if got != want {
                    return Err(CellError::Failed(anyhow::anyhow!(
                        "the filter of {} holds {got:?} after {function} was written",
                        made.dir(i)
                    )));
                }
            }
        }
        Ok(made)
    }

    fn dir(&self, i: usize) -> String {
        format!("instances/{PREFIX}{i}")
    }

    /// Whether `m` instances exist, or why fewer fit.
    pub(crate) fn fits(&self, m: usize) -> std::result::Result<(), String> {
        match &self.short {
            Some(why) if m > self.created => Err(why.clone()),
            _ => Ok(()),
        }
    }

    fn file(&self, i: usize, name: &str) -> String {
        format!("{}/{name}", self.dir(i))
    }

    /// Switches the `function` tracer on in the first `m` instances (off in the rest) and
    /// proves each attached: its function is listed in `enabled_functions`.
    pub(crate) fn enable(&mut self, m: usize) -> Result<()> {
        if m > self.created {
            bail!("{m} other tracers asked for, {} created", self.created);
        }
        self.disable()?;
        for i in 0..m {
            self.tracefs
                .write(&self.file(i, "current_tracer"), "function")?;
            self.on = i + 1;
        }
        let enabled = self.tracefs.read("enabled_functions")?;
        let listed: std::collections::BTreeSet<&str> = enabled
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let missing: Vec<String> = self.functions[..m]
            .iter()
            .filter(|f| !listed.contains(f.as_str()))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} of the {m} other tracers are not in enabled_functions after their tracer was switched on: {}",
                missing.len(),
                missing.join(", ")
            );
        }
        Ok(())
    }

    /// Switches every instance's tracer off.
    pub(crate) fn disable(&mut self) -> Result<()> {
        while self.on > 0 {
            self.tracefs
                .write(&self.file(self.on - 1, "current_tracer"), "nop")?;
            self.on -= 1;
        }
        Ok(())
    }

    /// Empties the buffers of the tracers that are on, before a loop.
    pub(crate) fn clear(&self) -> Result<()> {
        for i in 0..self.on {
            self.tracefs.write(&self.file(i, "trace"), "")?;
        }
        Ok(())
    }

    /// The functions whose tracer recorded anything since [`OtherTracers::clear`].
    pub(crate) fn ran(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in 0..self.on {
            let rel = self.file(i, "trace");
            let head = self.tracefs.read_head(&rel, 1024)?;
            let n =
                entries_written(&head).with_context(|| format!("reading the header of {rel}"))?;
            if n > 0 {
                out.push(self.functions[i].to_string());
            }
        }
        Ok(out)
    }
}

impl Drop for OtherTracers {
    fn drop(&mut self) {
        let _ = self.disable();
        for i in (0..self.created).rev() {
            let _ = std::fs::remove_dir(self.tracefs.root().join(self.dir(i)));
        }
    }
}

/// `MemFree` of `/proc/meminfo`, in MiB.
fn free_mib() -> Option<u64> {
    meminfo_mib(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemFree:")
}

fn meminfo_mib(text: &str, field: &str) -> Option<u64> {
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024)
}

/// The events written since the buffer was last emptied, from the `trace` file's header
/// (`# entries-in-buffer/entries-written: 0/0   #P:2`).
fn entries_written(header: &str) -> Option<u64> {
    let rest = header
        .lines()
        .find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written:"))?;
    let pair = rest.split_whitespace().next()?;
    pair.split_once('/')?.1.parse().ok()
}

/// The lab's trace instances that exist (names under `instances/`).
pub(crate) fn lab_instances(tracefs: &Tracefs) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(tracefs.root().join("instances")) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(LAB_PREFIX))
        .collect();
    out.sort();
    out
}

/// Removes every trace instance of the lab a crashed run left (tracer off first, or the
/// kernel refuses); returns what it removed.
pub(crate) fn remove_leftovers(tracefs: &Tracefs) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in lab_instances(tracefs) {
        let rel = format!("instances/{name}");
        let _ = tracefs.write(&format!("{rel}/current_tracer"), "nop");
        let dir = tracefs.root().join(&rel);
        std::fs::remove_dir(&dir).with_context(|| format!("removing {}", dir.display()))?;
        removed.push(format!("trace instance {rel}"));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_header_says_what_was_written() {
        let header = "# tracer: function\n#\n# entries-in-buffer/entries-written: 3/17   #P:2\n#\n";
        assert_eq!(entries_written(header), Some(17));
        assert_eq!(
            entries_written("# entries-in-buffer/entries-written: 0/0   #P:1\n"),
            Some(0)
        );
        assert_eq!(entries_written("# tracer: nop\n"), None);
    }

    #[test]
    fn reads_free_memory() {
        let meminfo = "MemTotal:        1012345 kB\nMemFree:          614400 kB\nMemAvailable:     900000 kB\n";
        assert_eq!(meminfo_mib(meminfo, "MemFree:"), Some(600));
        assert_eq!(meminfo_mib("MemTotal: 1 kB\n", "MemFree:"), None);
    }
}
