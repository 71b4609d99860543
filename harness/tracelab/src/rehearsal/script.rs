//! What the rehearsal guest runs (its `/init`) and what comes back on its console: each
//! step's output and exit status between markers, then the results as a gzipped tar in
//! base64, framed the same way.

use anyhow::{bail, Context, Result};
use base64::Engine;
use std::collections::BTreeMap;
use std::path::Path;

/// Where the guest's `tracelab` is, and where it writes what the host takes back.
pub(super) const TRACELAB: &str = "usr/local/bin/tracelab";
pub(super) const RESULTS: &str = "/results";

/// The night labels of the two nightly passes (the guest's clock starts at 2020-01-01).
pub const NIGHTS: [&str; 2] = ["2020-01-01-rehearsal-1", "2020-01-01-rehearsal-2"];

const STEP: &str = "@@tracelab-step";
const ARCHIVE: &str = "@@tracelab-archive";

/// Quotes a word for `sh`: single quotes, with any `'` closed, escaped and reopened.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// One step: its name and the `tracelab` arguments.
pub(super) struct Step {
    pub(super) name: String,
    pub(super) args: Vec<String>,
}

/// The nightly steps of `docs/nightly.md` that a bare-metal runner does itself, in order:
/// `doctor`, then per night `run --target local` into the store, then `history`, the
/// last night against the one before with `compare`, `show`, `report` and `publish`.
pub(super) fn steps(run_flags: &[String]) -> Vec<Step> {
    let s = |name: &str, args: &[&str]| Step {
        name: name.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let store = format!("{RESULTS}/store");
    let mut steps = vec![s("doctor", &["doctor"])];
    for (i, night) in NIGHTS.iter().enumerate() {
        let out = format!("{RESULTS}/night-{}", i + 1);
        let mut args: Vec<String> = [
            "run", "--target", "local", "--out", &out, "--store", &store, "--night", night,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(run_flags.iter().cloned());
        steps.push(Step {
            name: format!("run-{}", i + 1),
            args,
        });
    }
    let (one, two) = (format!("{RESULTS}/night-1"), format!("{RESULTS}/night-2"));
    steps.extend([
        s("history", &["history", &store, "--threshold", "1%"]),
        s("compare", &["compare", &one, &two, "--threshold", "1%"]),
        s("show", &["show", &two]),
        s(
            "report",
            &["report", &one, &two, "--out", &format!("{RESULTS}/report")],
        ),
        s(
            "publish",
            &["publish", &store, "--out", &format!("{RESULTS}/site")],
        ),
    ]);
    steps
}

/// `/init`: mounts what a bare-metal host has (tracefs, debugfs, a tmpfs `/run` for the
/// lab's state file and lock), runs every step with its output and exit status framed,
/// sends `/results` back, and powers off (QEMU runs with `-no-reboot`).
pub(super) fn init(steps: &[Step]) -> String {
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
        let args: Vec<String> = step.args.iter().map(|a| quote(a)).collect();
        s.push_str(&format!(
            "echo '{STEP} {name} begin'\n/{TRACELAB} {args} 2>&1\necho \"{STEP} {name} rc=$?\"\n",
            name = step.name,
            args = args.join(" ")
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
pub(super) struct Console {
    pub(super) steps: Vec<StepOutput>,
    pub(super) archive: Option<Vec<u8>>,
}

/// Splits console lines into steps and the archive.
pub(super) fn parse(lines: &[String]) -> Result<Console> {
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
pub(super) fn unpack(archive: &[u8], dir: &Path) -> Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    tar.set_preserve_permissions(false);
    tar.unpack(dir)
        .with_context(|| format!("unpacking the guest's results into {}", dir.display()))
}

/// The step outputs by name, checked to be whole: every step ran to its end.
pub(super) fn by_name(steps: &[StepOutput]) -> Result<BTreeMap<&str, &StepOutput>> {
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
pub(super) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_runs_every_step_quoted_and_framed() {
        let steps = steps(&["--mechanisms".into(), "kprobe,fprobe".into(), "it's".into()]);
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["doctor", "run-1", "run-2", "history", "compare", "show", "report", "publish"]
        );
        let script = init(&steps);
        assert!(script.contains(
            "/usr/local/bin/tracelab 'run' '--target' 'local' '--out' '/results/night-1' '--store' '/results/store' '--night' '2020-01-01-rehearsal-1' '--mechanisms' 'kprobe,fprobe' 'it'\\''s' 2>&1"
        ), "{script}");
        assert!(script.contains("echo \"@@tracelab-step run-2 rc=$?\""));
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
