//! Runs a guest and reads the agent's records from its console, with timeouts.

use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracelab_model::protocol::{decode, Line, Record};

/// Console lines kept to explain a failure.
const TAIL_LINES: usize = 80;

/// What the host sees on the console.
#[derive(Debug)]
// Records come one a line; their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Record(Record),
    /// A framed line with a bad checksum or JSON.
    Garbled(String),
    /// Any other line (kernel messages, a test's shell).
    Text(String),
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From start until the agent says hello.
    pub boot: Duration,
    /// Between two records once the agent runs.
    pub record: Duration,
}

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The agent reported `done`.
    Done,
    /// QEMU exited before `done`.
    Exited(String),
    /// A timeout hit; QEMU was killed.
    TimedOut(String),
    /// The guest kernel panicked.
    Panicked,
    /// The host was asked to stop (SIGINT, SIGTERM); QEMU was killed.
    Interrupted,
}

impl Ending {
    /// Why cells without a record have none.
    pub fn reason(&self) -> String {
        match self {
            Ending::Done => "the agent finished without reporting this cell".into(),
            Ending::Exited(why) => format!("the guest exited before reporting this cell ({why})"),
            Ending::TimedOut(why) => format!("timeout: {why}"),
            Ending::Panicked => "the guest kernel panicked".into(),
            Ending::Interrupted => "interrupted by a signal on the host".into(),
        }
    }
}

pub struct Outcome {
    pub ending: Ending,
    /// The last console lines, for failed cells.
    pub tail: Vec<String>,
}

/// Kills the guest on every exit path, including a panic in the host.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How often a guest run looks for a stop request.
const POLL: Duration = Duration::from_millis(100);

/// When the host sends the agent its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedAt {
    /// When the agent says `ready` (a booted guest).
    Ready,
    /// At once: a restored guest's agent said `ready` before it was kept.
    Start,
}

/// The line the host sends to the agent's standard input (the guest's console).
pub struct Feed<'a> {
    pub at: FeedAt,
    /// Makes the line (the plan); it may act on the guest first (keep or restore it).
    /// An error ends the run with it.
    pub line: Box<dyn FnMut() -> Result<String> + 'a>,
}

/// Starts `cmd` and hands each record to `on_event` as it arrives.
pub fn run(
    cmd: Command,
    timeouts: Timeouts,
    on_event: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<Outcome> {
    run_fed(cmd, timeouts, None, on_event)
}

/// [`run`], sending `feed`'s line (with a newline) to the guest's console when it is due.
///
/// QEMU runs in its own process group, so a terminal's Ctrl-C reaches only the host, which
/// then kills it ([`crate::interrupt`]), and it dies with the thread that started it (a
/// host killed by SIGKILL leaves no guest running).
pub fn run_fed(
    mut cmd: Command,
    timeouts: Timeouts,
    mut feed: Option<Feed>,
    on_event: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<Outcome> {
    cmd.stdin(if feed.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = ChildGuard(
        cmd.spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?,
    );
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().context("guest stdout")?;
    let stderr = child.0.stderr.take().context("guest stderr")?;
    let tx2 = tx.clone();
    std::thread::spawn(move || forward(BufReader::new(stdout), tx));
    std::thread::spawn(move || forward(BufReader::new(stderr), tx2));
    // Kept open until the guest ends: QEMU's console sees no end of input.
    let mut stdin = child.0.stdin.take();
    let mut send = |feed: &mut Option<Feed>| -> Result<()> {
        let (Some(mut f), Some(input)) = (feed.take(), stdin.as_mut()) else {
            return Ok(());
        };
        let line = (f.line)()?;
        input
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| input.flush())
            .context("sending the plan to the guest's console")
    };
    if feed.as_ref().is_some_and(|f| f.at == FeedAt::Start) {
        send(&mut feed)?;
    }

    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut hello = false;
    let mut deadline = Instant::now() + timeouts.boot;
    let mut panicked = false;
    let ending = loop {
        if crate::interrupt::requested() {
            break Ending::Interrupted;
        }
        let now = Instant::now();
        if now >= deadline {
            break Ending::TimedOut(timeout_reason(hello, timeouts));
        }
        match rx.recv_timeout(deadline.saturating_duration_since(now).min(POLL)) {
            Ok(line) => {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                if line.contains("Kernel panic - not syncing") {
                    panicked = true;
                }
                let event = match decode(&line) {
                    Line::Record(r) => Event::Record(*r),
                    Line::Garbled(why) => Event::Garbled(why),
                    Line::Other => {
                        on_event(Event::Text(line))?;
                        continue;
                    }
                };
                let done = matches!(event, Event::Record(Record::Done));
                hello |= matches!(event, Event::Record(Record::Hello { .. }));
                if matches!(event, Event::Record(Record::Ready)) {
                    send(&mut feed)?;
                }
                on_event(event)?;
                if done {
                    break Ending::Done;
                }
                deadline = Instant::now()
                    + if hello {
                        timeouts.record
                    } else {
                        timeouts.boot
                    };
            }
            // Checked again at the top: a stop request, or the deadline.
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_exit(&mut child.0);
                break if panicked {
                    Ending::Panicked
                } else {
                    Ending::Exited(status)
                };
            }
        }
    };
    Ok(Outcome {
        ending,
        tail: tail.into_iter().collect(),
    })
}

fn timeout_reason(hello: bool, timeouts: Timeouts) -> String {
    if hello {
        format!(
            "no result from the agent for {} s",
            timeouts.record.as_secs()
        )
    } else {
        format!(
            "the agent did not start within {} s",
            timeouts.boot.as_secs()
        )
    }
}

fn wait_exit(child: &mut Child) -> String {
    match child.wait() {
        Ok(s) => describe(s),
        Err(e) => format!("wait failed: {e}"),
    }
}

fn describe(s: ExitStatus) -> String {
    match s.code() {
        Some(c) => format!("QEMU exit status {c}"),
        None => "QEMU killed by a signal".into(),
    }
}

fn forward(reader: impl BufRead, tx: mpsc::Sender<String>) {
    // Lines are read as bytes: a console may carry invalid UTF-8.
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        if tx.send(text).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::protocol::encode;

    fn timeouts(secs: u64) -> Timeouts {
        Timeouts {
            boot: Duration::from_secs(secs),
            record: Duration::from_secs(secs),
        }
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn reads_records_until_done() {
        let hello = encode(&Record::Hello {
            kernel_release: "6.12".into(),
            machine: "x86_64".into(),
            agent_version: "0".into(),
            function: None,
            cpu: Some(0),
            counters_absent: Default::default(),
            leftovers_removed: Vec::new(),
            environment: None,
            agent_revision: None,
            boot_id: None,
            uptime: None,
        });
        let script = format!("echo 'boot noise'; echo '{hello}'; echo '@@tracelab 00000000 {{}}'; echo '{}'; sleep 5", encode(&Record::Done));
        let mut events = Vec::new();
        let out = run(sh(&script), timeouts(10), &mut |e| {
            events.push(e);
            Ok(())
        })
        .expect("run");
        assert_eq!(out.ending, Ending::Done);
        events.retain(|e| !matches!(e, Event::Text(_)));
        assert_eq!(events.len(), 3);
        assert!(matches!(events[1], Event::Garbled(_)));
        assert!(out.tail.iter().any(|l| l == "boot noise"));
    }

    /// Bad-input corpus: what a broken guest may print. No line may panic the reader or
    /// be taken as a record; framed lines that do not check out are reported as garbled.
    #[test]
    fn console_garbage_is_never_read_as_a_record() {
        let done = encode(&Record::Done);
        let half = &done[..done.len() / 2];
        let script = format!(
            "printf '\\000\\377\\376 binary \\033[2J\\n'; \
             echo '{half}'; \
             echo '@@tracelab'; echo '@@tracelab zzzz {{}}'; \
             echo '[  1.0] kernel @@tracelab 00000000 {{\"record\":\"done\"}}'; \
             head -c 300000 /dev/zero | tr '\\0' x; echo; \
             echo 'abc{done}tail'; exit 1"
        );
        let mut garbled = 0;
        let mut records = 0;
        let out = run(sh(&script), timeouts(20), &mut |e| {
            match e {
                Event::Garbled(_) => garbled += 1,
                Event::Record(_) => records += 1,
                Event::Text(_) => {}
            }
            Ok(())
        })
        .expect("run");
        assert_eq!(records, 0);
        // The half record, the bad checksum word, the kernel-prefixed and the run-on
        // records; a bare `@@tracelab` (no space) is not framed at all.
        assert_eq!(garbled, 4, "{} lines", out.tail.len());
        assert_eq!(out.ending, Ending::Exited("QEMU exit status 1".into()));
    }

    #[test]
    fn the_plan_goes_to_the_console_when_the_agent_is_ready_or_at_once() {
        let script = format!(
            "echo '{}'; read line; echo \"got $line\"; echo '{}'",
            encode(&Record::Ready),
            encode(&Record::Done)
        );
        for at in [FeedAt::Ready, FeedAt::Start] {
            let mut calls = 0;
            let feed = Feed {
                at,
                line: Box::new(|| {
                    calls += 1;
                    Ok("{\"plan\":1}".to_string())
                }),
            };
            let mut texts = Vec::new();
            let out = run_fed(sh(&script), timeouts(10), Some(feed), &mut |e| {
                if let Event::Text(t) = e {
                    texts.push(t);
                }
                Ok(())
            })
            .expect("run");
            assert_eq!(out.ending, Ending::Done);
            assert_eq!(texts, ["got {\"plan\":1}"], "{at:?}");
            assert_eq!(calls, 1);
        }
        // A feed that fails (a kept guest that cannot be restored) ends the run with it.
        let feed = Feed {
            at: FeedAt::Start,
            line: Box::new(|| anyhow::bail!("damaged")),
        };
        let err = run_fed(sh(&script), timeouts(10), Some(feed), &mut |_| Ok(()))
            .err()
            .expect("an error");
        assert_eq!(format!("{err:#}"), "damaged");
    }

    #[test]
    fn times_out_and_detects_exit_and_panic() {
        let out = run(sh("sleep 30"), timeouts(1), &mut |_| Ok(())).expect("run");
        assert!(matches!(out.ending, Ending::TimedOut(ref w) if w.contains("did not start")));
        let out = run(sh("echo hi; exit 3"), timeouts(10), &mut |_| Ok(())).expect("run");
        assert_eq!(out.ending, Ending::Exited("QEMU exit status 3".into()));
        let out = run(
            sh("echo '[ 1.0] Kernel panic - not syncing: VFS'"),
            timeouts(10),
            &mut |_| Ok(()),
        )
        .expect("run");
        assert_eq!(out.ending, Ending::Panicked);
    }
}
