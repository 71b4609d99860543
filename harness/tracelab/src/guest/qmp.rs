//! A minimal client of QEMU's machine protocol (QMP) on a Unix socket: what keeping and
//! restoring a guest needs (stop, migrate to a file, load it, continue).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one QMP reply may take (a migration's progress is polled, not awaited).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A QMP socket path for one QEMU process: unique per host process and call, short enough
/// for a Unix socket's 108 bytes, removed when dropped.
pub struct SocketPath(PathBuf);

impl SocketPath {
    pub fn new() -> SocketPath {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tracelab-qmp-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// QEMU's option for a server on this path that does not wait for the client.
    pub fn qemu_args(&self) -> [String; 2] {
        [
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", self.0.display()),
        ]
    }
}

impl Default for SocketPath {
    fn default() -> Self {
        SocketPath::new()
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the QEMU listening at `path`, waiting up to `within` for it to start.
    pub fn connect(path: &Path, within: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + within;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(e).with_context(|| {
                        format!("connecting to QEMU's QMP socket {}", path.display())
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .context("setting the QMP socket's timeout")?;
        let writer = stream.try_clone().context("cloning the QMP socket")?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            bail!("QEMU's QMP socket did not greet: {greeting}");
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("reading from QEMU's QMP socket")?;
        if n == 0 {
            bail!("QEMU closed its QMP socket (it exited)");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent `{}`", line.trim()))
    }

    /// Runs `command` and returns its `return` value; asynchronous events in between are
    /// skipped, and an `error` reply is an error naming the command.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut request = json!({ "execute": command });
        if let Some(a) = arguments {
            request["arguments"] = a;
        }
        writeln!(self.writer, "{request}").context("writing to QEMU's QMP socket")?;
        loop {
            let reply = self.read()?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                bail!(
                    "QEMU refused {command}: {}",
                    e.get("desc").and_then(Value::as_str).unwrap_or("no reason")
                );
            }
        }
    }

    /// The guest's run state (`running`, `paused`, `inmigrate`, `postmigrate`, ...).
    pub fn status(&mut self) -> Result<String> {
        let r = self.execute("query-status", None)?;
        Ok(r.get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// Polls `probe` every 10 ms until it returns Some, for at most `within`.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut probe: impl FnMut(&mut Qmp) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = probe(self)? {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                bail!("QEMU: {what} took more than {} s", within.as_secs());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
