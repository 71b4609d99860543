//! Kills of the host side: a real `tracelab run` or `matrix` is started, watched (its
//! progress lines say which cells it finished; each new cell file is hashed when it
//! appears), and at the kill's point signalled, or its QEMU killed, or its guest made to
//! panic. Then: did every reported cell survive unchanged, does the directory load, did
//! every QEMU die with it, did it exit as it should.

use super::{Chaos, Kill, Kind, Outcome};
use crate::dataset;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracelab_kernels::cache::sha256_bytes;

/// How often the run is looked at.
const TICK: Duration = Duration::from_millis(20);
/// A run asked to stop must be gone by then.
const STOP_BOUND: Duration = Duration::from_secs(120);
/// Any run must be done by then.
const RUN_BOUND: Duration = Duration::from_secs(900);
/// Guest milliseconds per mille of a panic's point: a killed run's agent takes about 6 s
/// of guest time (the calibrations of the agent kills), so the panic lands anywhere in it.
const PANIC_MS_PER_MILLE: u64 = 6;

/// The kill's run; `armed` adds its fault (the panic), which its calibration leaves out.
fn command(chaos: &Chaos, kill: &Kill, out: &Path, armed: bool) -> Command {
    let names: Vec<&str> = kill.mechanisms.iter().map(|m| m.name()).collect();
    let mut c = Command::new(&chaos.tracelab);
    let kernel = chaos.kernel.name();
    match kill.kind {
        Kind::MatrixSigint | Kind::MatrixSigkill => {
            // Two guests of one arch, at once: a kill finds both running.
            let other = if kernel == "6.1" { "6.12" } else { "6.1" };
            c.args(["matrix", "--arch", chaos.arch.name()])
                .args(["--kernels", &format!("{kernel},{other}")])
                .args(["--jobs", "2"]);
        }
        _ => {
            c.args([
                "run",
                "--target",
                &format!("vm:{}/{kernel}", chaos.arch.name()),
            ]);
        }
    }
    c.args(["--mechanisms", &names.join(",")])
        .args(["--calls", "2000", "--repeats", "2"])
        .arg("--out")
        .arg(out);
    if armed && kill.kind == Kind::GuestPanic {
        c.arg("--fault").arg(format!(
            "panic-after-ms={}",
            u64::from(kill.point) * PANIC_MS_PER_MILLE
        ));
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The results directory a progress line's guest tag names (`[x86_64 6.12]`, or none).
fn results_dir(out: &Path, tag: &str) -> PathBuf {
    match tag.split_once(' ') {
        Some((arch, kernel)) => out.join(dataset::partition_dir(arch, kernel)),
        None => out.to_path_buf(),
    }
}

/// A `cell k/n …` progress line: the guest tag it carries ("" for a run).
fn reported_cell(line: &str) -> Option<String> {
    let rest = line.strip_prefix("tracelab: ")?;
    let (tag, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (tag, r) = r.split_once("] ")?;
            (tag.to_string(), r)
        }
        None => (String::new(), rest),
    };
    let (count, _) = rest.strip_prefix("cell ")?.split_once(' ')?;
    count.contains('/').then_some(tag)
}

/// Every finished cell file under `out`, with its bytes' hash.
fn cell_files(out: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let dirs = dataset::results_dirs(out).unwrap_or_default();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join(crate::results::store::CELLS_DIR)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || crate::results::atomic::is_temp_name(&name) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                found.insert(path, sha256_bytes(&bytes));
            }
        }
    }
    found
}

/// Guest QEMU processes below `pid` (with `-kernel`: not the `--version` probes).
fn qemu_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(t.path().join("children")) else {
                continue;
            };
            for c in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
                let cmdline = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
                let guest = cmdline.split(|b| *b == 0).any(|a| a == b"-kernel");
                if comm.starts_with("qemu-system") && guest {
                    out.push(c);
                }
                stack.push(c);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid we started (or its QEMU child); no memory is involved.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// What the kill's run is expected to end with, for a run the kill hit.
fn expected_exit(kind: Kind) -> &'static str {
    match kind {
        Kind::RunSigint | Kind::MatrixSigint => "exit 130",
        Kind::RunSigkill | Kind::MatrixSigkill => "killed by signal 9",
        _ => "exit 3",
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown exit".into(),
    }
}

/// Whether the kill's run is a matrix (two guests) rather than a run.
pub(super) fn is_matrix(kind: Kind) -> bool {
    matches!(kind, Kind::MatrixSigint | Kind::MatrixSigkill)
}

/// How long the kill's run takes, unkilled: where its points fall.
pub(super) fn calibrate(chaos: &Chaos, kill: &Kill) -> Result<Duration> {
    let out = chaos.work.join(format!("calibration-{}", kill.index));
    let mut c = command(chaos, kill, &out, false);
    c.stderr(Stdio::null());
    let started = Instant::now();
    let status = c
        .status()
        .with_context(|| format!("starting {}", chaos.tracelab.display()))?;
    anyhow::ensure!(
        status.success(),
        "the unkilled calibration run of {} failed ({}); see {}",
        kill.describe(),
        describe_exit(status),
        out.display()
    );
    Ok(started.elapsed())
}

/// Runs one host kill and its checks; `length` is how long its run takes unkilled.
pub(super) fn run(chaos: &Chaos, kill: &Kill, length: Duration) -> Result<Outcome> {
    let out = chaos.work.join(format!("kill-{}", kill.index));
    let mut child: Child = command(chaos, kill, &out, true)
        .spawn()
        .with_context(|| format!("starting {}", chaos.tracelab.display()))?;
    let pid = child.id();
    let stderr = child.stderr.take().context("tracelab stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let guests = if is_matrix(kill.kind) { 2 } else { 1 };
    let kill_at = length.mul_f64(f64::from(kill.point) / 1000.0);

    let mut reported: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut qemus: Vec<u32> = Vec::new();
    let mut log: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let mut killed: Option<String> = None;
    let status = loop {
        for line in rx.try_iter() {
            if let Some(tag) = reported_cell(&line) {
                *reported.entry(tag).or_default() += 1;
            }
            log.push(line);
        }
        for (path, hash) in cell_files(&out) {
            seen.entry(path).or_insert(hash);
        }
        for q in qemu_children(pid) {
            if !qemus.contains(&q) {
                qemus.push(q);
            }
        }
        if let Some(status) = child.try_wait().context("waiting for tracelab")? {
            break status;
        }
        let due = started.elapsed() >= kill_at;
        if killed.is_none() && due && kill.kind != Kind::GuestPanic {
            match kill.kind {
                Kind::QemuSigkill => {
                    if let Some(&q) = qemus.iter().find(|&&q| alive(q)) {
                        signal(q, libc::SIGKILL);
                        killed = Some(format!("QEMU {q} killed"));
                    }
                }
                Kind::RunSigint | Kind::MatrixSigint => {
                    signal(pid, libc::SIGINT);
                    killed = Some("SIGINT sent".into());
                }
                _ => {
                    signal(pid, libc::SIGKILL);
                    killed = Some("SIGKILL sent".into());
                }
            }
            if killed.is_some() {
                killed_at = Some(Instant::now());
            }
        }
        let bound = if killed.is_some() {
            STOP_BOUND
        } else {
            RUN_BOUND
        };
        if killed_at.is_some_and(|t| t.elapsed() > bound) || started.elapsed() > RUN_BOUND {
            signal(pid, libc::SIGKILL);
            let _ = child.wait();
            anyhow::bail!(
                "{}: tracelab did not stop within {} s ({})",
                kill.describe(),
                bound.as_secs(),
                killed.as_deref().unwrap_or("not killed yet")
            );
        }
        std::thread::sleep(TICK);
    };
    let _ = reader.join();
    for line in rx.try_iter() {
        if let Some(tag) = reported_cell(&line) {
            *reported.entry(tag).or_default() += 1;
        }
        log.push(line);
    }

    let mut o = Outcome {
        kill: Some(kill.clone()),
        ..Outcome::default()
    };
    // QEMU dies with its host (PDEATHSIG) or is killed by it; none may outlive it.
    let gone_by = Instant::now() + Duration::from_secs(5);
    while qemus.iter().any(|&q| alive(q)) && Instant::now() < gone_by {
        std::thread::sleep(TICK);
    }
    for &q in qemus.iter().filter(|&&q| alive(q)) {
        o.leftovers
            .push(format!("QEMU (pid {q}) outlived its tracelab"));
        signal(q, libc::SIGKILL);
    }
    // A half-made results directory (`.<name>.partial-*`) left beside the run's.
    if let Ok(entries) = std::fs::read_dir(&chaos.work) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!(".kill-{}.", kill.index)) {
                o.leftovers
                    .push(format!("half-made results directory {name}"));
            }
        }
    }
    let now = cell_files(&out);
    for (path, hash) in &seen {
        match now.get(path) {
            None => {
                o.lost += 1;
                o.corrupt.push(format!(
                    "{} disappeared after it was written",
                    path.display()
                ));
            }
            Some(h) if h != hash => o
                .corrupt
                .push(format!("{} changed after it was written", path.display())),
            Some(_) => {}
        }
    }
    for (tag, n) in &reported {
        let dir = results_dir(&out, tag);
        let on_disk = now.keys().filter(|p| p.starts_with(&dir)).count();
        o.lost += n.saturating_sub(on_disk);
    }
    if out.exists() {
        let loaded = if guests == 2 {
            dataset::load(&out).map(|runs| runs.len())
        } else {
            crate::results::load(&out).map(|_| 1)
        };
        if let Err(e) = loaded {
            o.corrupt
                .push(format!("{} does not load: {e:#}", out.display()));
        }
    } else if reported.values().sum::<usize>() > 0 {
        o.corrupt.push(format!(
            "{} is gone, yet cells were reported",
            out.display()
        ));
    }
    let exit = describe_exit(status);
    let hit = killed.is_some() || kill.kind == Kind::GuestPanic;
    let panicked = kill.kind == Kind::GuestPanic
        && log.iter().any(|l| l.contains("the guest kernel panicked"));
    // A panic after the agent finished cannot hurt the run: it ends as a clean one.
    let panic_missed = kill.kind == Kind::GuestPanic && exit == "exit 0" && !panicked;
    if hit && !panic_missed && exit != expected_exit(kill.kind) {
        o.corrupt.push(format!(
            "{}: {exit}, expected {} (last lines: {})",
            kill.kind.name(),
            expected_exit(kill.kind),
            log.iter()
                .rev()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    o.note = format!(
        "{}; {exit}; {} cells reported, {} on disk{}",
        killed.unwrap_or_else(|| match (kill.kind, panicked) {
            (Kind::GuestPanic, true) => "the guest panicked".into(),
            (Kind::GuestPanic, false) => "the run ended before the panic".into(),
            _ => "the run ended before the kill".into(),
        }),
        reported.values().sum::<usize>(),
        now.len(),
        if qemus.is_empty() {
            String::new()
        } else {
            format!(", {} QEMU seen", qemus.len())
        }
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_name_their_guest() {
        assert_eq!(
            reported_cell("tracelab: cell 2/4 kprobe: ok, overhead 820.56 insn/call"),
            Some(String::new())
        );
        assert_eq!(
            reported_cell("tracelab: [x86_64 6.12] cell 1/4 baseline: ok"),
            Some("x86_64 6.12".into())
        );
        assert_eq!(reported_cell("tracelab: [x86_64 6.12] fetching"), None);
        assert_eq!(reported_cell("tracelab: cells are kept"), None);
        assert_eq!(
            results_dir(Path::new("/d"), "arm64 7.3"),
            Path::new("/d/arch=arm64/kernel=7.3")
        );
    }
}
