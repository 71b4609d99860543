//! Access to tracefs, and what the running kernel offers there.
//!
//! Probe control files (`kprobe_events`, `dynamic_events`) are only ever appended to:
//! opening them with O_TRUNC would delete every probe on the system, including other
//! users'. Text written here comes from validated parts (see `tracelab_probes`).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MOUNT_POINTS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Jump optimization of kprobes (x86 optprobes), switched off for the breakpoint path.
pub const KPROBES_OPTIMIZATION: &str = "/proc/sys/debug/kprobes-optimization";

/// A tracefs mount.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Finds the mounted tracefs.
    pub fn open() -> Result<Tracefs> {
        for m in MOUNT_POINTS {
            if Path::new(m).join("trace").exists() {
                return Ok(Tracefs {
                    root: PathBuf::from(m),
                });
            }
        }
        bail!(
            "tracefs is not mounted (looked in {})",
            MOUNT_POINTS.join(", ")
        )
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }

    pub fn read(&self, rel: &str) -> Result<String> {
        fs::read_to_string(self.root.join(rel))
            .with_context(|| format!("reading {}", self.root.join(rel).display()))
    }

    /// Reads at most `limit` bytes of a file (the trace buffer can be large).
    pub fn read_head(&self, rel: &str, limit: u64) -> Result<String> {
        let path = self.root.join(rel);
        let mut text = String::new();
        fs::File::open(&path)
            .and_then(|f| f.take(limit).read_to_string(&mut text))
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text)
    }

    /// Replaces a file's content (`current_tracer`, `set_ftrace_filter`, `enable` files).
    pub fn write(&self, rel: &str, text: &str) -> Result<()> {
        self.write_with(rel, text, false)
    }

    /// Appends one line to a probe control file.
    pub fn append(&self, rel: &str, line: &str) -> Result<()> {
        self.write_with(rel, line, true)
    }

    /// Appends `lines` to a file that takes one entry per line (`set_ftrace_filter`), a
    /// bounded number per write: the kernel parses a write a page at a time.
    pub fn append_lines(&self, rel: &str, lines: &[&str]) -> Result<()> {
        const LINES_PER_WRITE: usize = 200;
        for chunk in lines.chunks(LINES_PER_WRITE) {
            self.append(rel, &chunk.join("\n"))?;
        }
        Ok(())
    }

    fn write_with(&self, rel: &str, text: &str, append: bool) -> Result<()> {
        let path = self.root.join(rel);
        let result = OpenOptions::new()
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        result.with_context(|| {
            let log = self.error_log_tail();
            format!("writing {text:?} to {}{log}", path.display())
        })
    }

    /// The kernel's own explanation of the last rejected command, if it kept one.
    fn error_log_tail(&self) -> String {
        match self.read("error_log") {
            Ok(log) if !log.trim().is_empty() => {
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(" (error_log: {})", tail.join(" | ").trim())
            }
            _ => String::new(),
        }
    }

    /// Empties the trace buffer.
    pub fn clear_trace(&self) -> Result<()> {
        self.write("trace", "")
    }

    /// Events written into the ring buffer since its last reset, over all CPUs:
    /// what it holds plus what it overwrote.
    pub fn ring_buffer_events(&self) -> Result<u64> {
        let dir = self.root.join("per_cpu");
        let mut total = 0u64;
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path().join("stats");
            let stats =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            total += ring_buffer_written(&stats)
                .with_context(|| format!("parsing {}", path.display()))?;
        }
        Ok(total)
    }
}

/// `entries + overrun` of one `per_cpu/cpuN/stats` file.
pub fn ring_buffer_written(stats: &str) -> Result<u64> {
    let field = |name: &str| -> Result<u64> {
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .with_context(|| format!("no `{name}:` line"))?;
        let value = line[name.len() + 1..].trim();
        value
            .parse()
            .with_context(|| format!("bad `{name}` value {value:?}"))
    };
    Ok(field("entries")? + field("overrun")?)
}

/// What the running kernel offers for tracing.
#[derive(Debug, Clone, Default)]
pub struct KernelEnv {
    /// `uname -r`.
    pub release: String,
    /// `uname -m`.
    pub machine: String,
    /// The kernel's build configuration when known (`CONFIG_*` → value).
    pub config: BTreeMap<String, String>,
    /// Whether tracefs is mounted at all.
    pub tracefs: bool,
    pub tracers: Vec<String>,
    pub kprobe_events: bool,
    pub dynamic_events: bool,
    pub uprobe_events: bool,
    pub ftrace_filter: bool,
    /// tracefs `README`: lists the probe syntaxes this kernel accepts.
    pub readme: String,
}

impl KernelEnv {
    /// Inspects the running kernel. `config` comes from the caller (the host knows a
    /// guest's config; a native run reads /proc/config.gz or /boot).
    pub fn probe(tracefs: Option<&Tracefs>, config: BTreeMap<String, String>) -> KernelEnv {
        let uts = uname();
        let mut env = KernelEnv {
            release: uts.0,
            machine: uts.1,
            config,
            ..KernelEnv::default()
        };
        if let Some(t) = tracefs {
            env.tracefs = true;
            env.tracers = t
                .read("available_tracers")
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default();
            env.kprobe_events = t.exists("kprobe_events");
            env.dynamic_events = t.exists("dynamic_events");
            env.uprobe_events = t.exists("uprobe_events");
            env.ftrace_filter = t.exists("set_ftrace_filter");
            env.readme = t.read("README").unwrap_or_default();
        }
        env
    }
}

/// `(release, machine)` from uname(2).
pub fn uname() -> (String, String) {
    // SAFETY: utsname is plain old data; zeroed is a valid value for it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (String::from("unknown"), String::from("unknown"));
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&uts.release), field(&uts.machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ring_buffer_stats() {
        let stats = "entries: 120\noverrun: 30\ncommit overrun: 0\nbytes: 4000\n";
        assert_eq!(ring_buffer_written(stats).expect("parse"), 150);
        assert!(ring_buffer_written("bytes: 1\n").is_err());
    }

    #[test]
    fn append_never_truncates() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("trace"), "").expect("write");
        fs::write(dir.path().join("kprobe_events"), "p:other/x foo\n").expect("write");
        let t = Tracefs {
            root: dir.path().to_path_buf(),
        };
        t.append("kprobe_events", "p:tracelab/kprobe bar\n")
            .expect("append");
        let text = t.read("kprobe_events").expect("read");
        assert!(
            text.starts_with("p:other/x foo\n") && text.ends_with("bar\n"),
            "{text}"
        );
        t.write("kprobe_events", "x").expect("write");
        assert_eq!(t.read("kprobe_events").expect("read"), "x");
    }
}
