//! Guests with a Debian userland that run the host's own tools: the `/init` that runs
//! shell steps with their output and exit status framed on the console, the boot, and
//! the results that come back as a gzipped tar in base64, framed the same way.

use crate::guest::console::{self, Event as ConsoleEvent, Timeouts};
use crate::guest::qemu::{Accel, Mode, Setup};
use crate::progress::{Event, Observer};
use anyhow::{bail, Context, Result};
use base64::Engine;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracelab_kernels::userland::Tree;
use tracelab_kernels::{FetchedKernel, Userland};
use tracelab_model::arch::Arch;

/// Where the guest's `tracelab` is, and where it writes what the host takes back.
pub const TRACELAB: &str = "/usr/local/bin/tracelab";
pub const RESULTS: &str = "/results";

const STEP: &str = "@@tracelab-step";
const ARCHIVE: &str = "@@tracelab-archive";

/// Quotes a word for `sh`: single quotes, with any `'` closed, escaped and reopened.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// One step of the guest: a name and the shell text it runs (its status is the last
/// command's).
pub struct Step {
    pub name: String,
    pub script: String,
}

impl Step {
    /// A step that runs the guest's `tracelab` with `args`.
    pub fn tracelab(name: &str, args: &[String]) -> Step {
        let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
        Step {
            name: name.to_string(),
            script: format!("{TRACELAB} {} 2>&1", args.join(" ")),
        }
    }
}

/// `/init`: mounts what a bare-metal host has (tracefs, debugfs, a tmpfs `/run` for the
/// lab's state file and lock), runs every step with its output and exit status framed,
/// sends `/results` back, and powers off (QEMU runs with `-no-reboot`).
pub fn init(steps: &[Step]) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh
/bin/busybox --install -s /usr/bin
export PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /results /root
cd /root
",
    );
    for step in steps {
        s.push_str(&format!(
            "echo '{STEP} {name} begin'\n{script}\necho \"{STEP} {name} rc=$?\"\n",
            name = step.name,
            script = step.script.trim_end()
        ));
    }
    s.push_str(&format!(
        "echo '{ARCHIVE} begin'\ntar -C {RESULTS} -cf - . | gzip -1 | base64\necho '{ARCHIVE} end'\nreboot -f\n"
    ));
    s
}

/// What one step printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepOutput {
    pub name: String,
    /// The exit status; None when the guest stopped before the step ended.
    pub rc: Option<i32>,
    pub output: String,
}

/// What the console said: the steps in order, and the results archive (gzipped tar) if it
/// came back whole.
#[derive(Debug, Default)]
pub struct Console {
    pub steps: Vec<StepOutput>,
    pub archive: Option<Vec<u8>>,
}

/// Splits console lines into steps and the archive.
pub fn parse(lines: &[String]) -> Result<Console> {
    let mut c = Console::default();
    let mut current: Option<StepOutput> = None;
    let mut base64: Option<String> = None;
    for line in lines {
        let line = line.trim_end_matches('\r');
        // A marker may follow the firmware's terminal escapes on the first line.
        if let Some(rest) = line.find(STEP).map(|at| line[at + STEP.len()..].trim()) {
            let (name, what) = rest.split_once(' ').unwrap_or((rest, ""));
            if what == "begin" {
                c.steps.extend(current.take());
                current = Some(StepOutput {
                    name: name.to_string(),
                    rc: None,
                    output: String::new(),
                });
            } else if let Some(rc) = what.strip_prefix("rc=") {
                if let Some(mut step) = current.take().filter(|s| s.name == name) {
                    step.rc = rc.trim().parse().ok();
                    c.steps.push(step);
                }
            }
            continue;
        }
        if line.ends_with(&format!("{ARCHIVE} begin")) {
            base64 = Some(String::new());
            continue;
        }
        if line.ends_with(&format!("{ARCHIVE} end")) {
            let text = base64.take().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .context("the results archive from the guest is not valid base64")?;
            c.archive = Some(bytes);
            continue;
        }
        if let Some(b) = base64.as_mut() {
            b.push_str(line.trim());
        } else if let Some(step) = current.as_mut() {
            step.output.push_str(line);
            step.output.push('\n');
        }
    }
    c.steps.extend(current);
    Ok(c)
}

/// Unpacks the gzipped tar into `dir` (the tar crate refuses paths leaving it).
pub fn unpack(archive: &[u8], dir: &Path) -> Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    tar.set_preserve_permissions(false);
    tar.unpack(dir)
        .with_context(|| format!("unpacking the guest's results into {}", dir.display()))
}

/// The step outputs by name, checked to be whole: every step ran to its end.
pub fn by_name(steps: &[StepOutput]) -> Result<BTreeMap<&str, &StepOutput>> {
    let map: BTreeMap<&str, &StepOutput> = steps.iter().map(|s| (s.name.as_str(), s)).collect();
    if let Some(cut) = steps.iter().find(|s| s.rc.is_none()) {
        bail!(
            "the guest stopped during `{}`; its output:\n{}",
            cut.name,
            tail(&cut.output, 20)
        );
    }
    Ok(map)
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A userland guest to boot: its kernel and userland, and the files beside them.
pub struct Guest<'a> {
    pub arch: Arch,
    pub kernel: &'a FetchedKernel,
    pub userland: &'a Userland,
    /// The `tracelab` copied to [`TRACELAB`].
    pub tracelab: &'a Path,
    /// Guest memory: the lab's usual 1024 MiB unless a userland needs more.
    pub memory_mib: u32,
    /// More executables for the guest: (path in the guest without the leading `/`, host file).
    pub files: Vec<(String, PathBuf)>,
}

/// What a userland guest did: its steps, and how long it took (host seconds).
pub struct Booted {
    pub steps: Vec<StepOutput>,
    pub secs: f64,
}

/// Boots `guest` with `steps`, under the same QEMU settings as every measuring guest
/// (icount, fixed seed and clock), and unpacks what it sent into `dir`, beside
/// `console.log` and each step's output (`<step>.txt`). `bound` limits the whole run.
pub fn boot(
    guest: &Guest<'_>,
    steps: &[Step],
    dir: &Path,
    bound: Duration,
    observer: &dyn Observer,
) -> Result<Booted> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let initrd = dir.join("initrd.cpio");
    let mut bytes = std::fs::read(&guest.userland.archive)
        .with_context(|| format!("reading {}", guest.userland.archive.display()))?;
    bytes.extend(extras(guest, steps)?);
    std::fs::write(&initrd, bytes).with_context(|| format!("writing {}", initrd.display()))?;
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut setup = Setup::new(guest.arch, Mode::Icount, Accel::Tcg);
    setup.memory_mib = guest.memory_mib;
    // The guest reports no framed record: one bound covers the whole run.
    let outcome = console::run(
        setup.command(&guest.kernel.image, &initrd),
        Timeouts {
            boot: bound,
            record: bound,
        },
        &mut |e| {
            if let ConsoleEvent::Text(t) = e {
                if let Some(at) = t.find(STEP) {
                    if let Some(name) = t[at + STEP.len()..].trim().strip_suffix(" begin") {
                        observer.event(None, Event::Stage(&format!("guest: {name}")));
                    }
                }
                lines.push(t);
            }
            Ok(())
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&initrd);
    crate::results::atomic::write(&dir.join("console.log"), lines.join("\n").as_bytes())?;
    if outcome.ending == console::Ending::Interrupted {
        return Err(crate::interrupt::Interrupted {
            finished: 0,
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let parsed = parse(&lines)?;
    for step in &parsed.steps {
        crate::results::atomic::write(
            &dir.join(format!("{}.txt", step.name)),
            step.output.as_bytes(),
        )?;
    }
    let Some(archive) = parsed.archive else {
        bail!(
            "the userland guest sent no results ({}); console tail:\n{}",
            outcome.ending.reason(),
            outcome.tail.join("\n")
        );
    };
    unpack(&archive, dir)?;
    by_name(&parsed.steps)?;
    Ok(Booted {
        steps: parsed.steps,
        secs,
    })
}

/// What the guest gets besides the userland: `/init`, the host's `tracelab`, the kernel's
/// config where `doctor` looks for it (`/boot/config-<release>`; no Debian cloud kernel
/// has `/proc/config.gz`), and the mount points.
fn extras(guest: &Guest<'_>, steps: &[Step]) -> Result<Vec<u8>> {
    let mut tree = Tree::default();
    for dir in ["proc", "sys", "dev", "run", "tmp", "root", "results"] {
        tree.dir(dir);
    }
    tree.char_device("dev/console", 5, 1);
    tree.file("init", 0o755, init(steps).into_bytes());
    let binary = std::fs::read(guest.tracelab)
        .with_context(|| format!("reading {}", guest.tracelab.display()))?;
    tree.file(TRACELAB, 0o755, binary);
    for (path, host) in &guest.files {
        let bytes = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        tree.file(path, 0o755, bytes);
    }
    let config = std::fs::read(&guest.kernel.config)
        .with_context(|| format!("reading {}", guest.kernel.config.display()))?;
    tree.file(
        &format!("boot/config-{}", guest.kernel.release),
        0o644,
        config,
    );
    tree.archive()
}

/// The `tracelab` for a guest of `arch`: `given`, else the running one; checked to be
/// built for that arch.
pub fn tracelab_for(arch: Arch, given: Option<PathBuf>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe().context("finding the running tracelab")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    tracelab_kernels::elf::check_machine(&bytes, arch).with_context(|| {
        format!(
            "{} cannot run in an {arch} guest: build tracelab for it and pass --tracelab",
            path.display()
        )
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_runs_every_step_quoted_and_framed() {
        let steps = [
            Step::tracelab("doctor", &["doctor".into()]),
            Step::tracelab("run", &["run".into(), "--mechanisms".into(), "it's".into()]),
            Step {
                name: "shell".into(),
                script: "sleep 1 &\nwait\n".into(),
            },
        ];
        let script = init(&steps);
        assert!(
            script.contains("/usr/local/bin/tracelab 'run' '--mechanisms' 'it'\\''s' 2>&1\n"),
            "{script}"
        );
        assert!(script.contains("echo \"@@tracelab-step run rc=$?\""));
        assert!(script.contains("sleep 1 &\nwait\necho \"@@tracelab-step shell rc=$?\""));
        assert!(script.ends_with("reboot -f\n"));
    }

    #[test]
    fn console_gives_steps_and_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        tar.append_data(&mut h, "night-1/x.txt", &b"hi"[..])
            .expect("append");
        let gz = tar.into_inner().expect("tar").finish().expect("gz");
        let text = base64::engine::general_purpose::STANDARD.encode(&gz);
        let mut lines: Vec<String> = [
            "[    1.0] booting",
            "\u{1b}c\u{1b}[?7l\u{1b}[2J@@tracelab-step doctor begin",
            "kprobe: supported",
            "@@tracelab-step doctor rc=0",
            "@@tracelab-step history begin",
            "regression",
            "@@tracelab-step history rc=1",
            "@@tracelab-archive begin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        lines.extend(
            text.as_bytes()
                .chunks(76)
                .map(|c| format!("{}\r", String::from_utf8_lossy(c))),
        );
        lines.push("@@tracelab-archive end".into());
        let c = parse(&lines).expect("parse");
        assert_eq!(c.steps.len(), 2);
        assert_eq!(
            (c.steps[0].rc, c.steps[0].output.as_str()),
            (Some(0), "kprobe: supported\n")
        );
        assert_eq!(c.steps[1].rc, Some(1));
        unpack(&c.archive.expect("archive"), dir.path()).expect("unpack");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("night-1/x.txt")).expect("read"),
            "hi"
        );
        let cut =
            parse(&["@@tracelab-step run-1 begin".to_string(), "cell 1".into()]).expect("parse");
        let err = by_name(&cut.steps).expect_err("cut");
        assert!(err.to_string().contains("during `run-1`"), "{err}");
    }
}
