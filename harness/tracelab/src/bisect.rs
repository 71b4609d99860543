//! `tracelab bisect`: the first commit of a kernel tree — or the first of an ordered list
//! of Debian releases — where one cell's overhead steps.
//!
//! Each step checks a revision out, runs the build command in the tree, boots the kernel it
//! made (`--image`, `--config`) and measures the cell; or boots the release from the
//! archive (`vm:<arch>/<release>`). Under icount the figure is exact,
//! so one measurement per step decides: a revision is *bad* when its overhead is nearer the
//! bad revision's than the good one's and differs from the good one's by more than the
//! threshold. Every step is appended to `<out>/bisect.jsonl` as it finishes; a rerun with
//! the same `--out` reuses the steps done (an interrupted bisect loses nothing). The tree
//! is put back on the branch or commit it was on, whatever happens.

use crate::progress::Observer;
use crate::study::Study;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the candidates come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Commits of a kernel tree, `good..bad` along the history, each built.
    Git {
        repo: PathBuf,
        good: String,
        bad: String,
        /// Run in the tree (`sh -c`) at each revision; must leave the kernel at `image`.
        build: String,
        image: PathBuf,
        config: PathBuf,
    },
    /// Debian releases of one line, oldest (good) first, newest (bad) last.
    Releases {
        arch: tracelab_model::arch::Arch,
        line: tracelab_kernels::KernelVersion,
        releases: Vec<String>,
    },
}

/// What to bisect.
#[derive(Debug, Clone)]
pub struct Bisect {
    pub source: Source,
    /// The study of one cell (its target is set per step).
    pub study: Study,
    pub out: PathBuf,
    /// Smallest relative step that counts (as `compare --threshold`).
    pub relative: f64,
    pub floor: f64,
}

/// One measured revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub revision: String,
    pub subject: String,
    pub overhead: f64,
    pub unit: String,
    /// `good`, `bad`, or the ends' own `good (given)` / `bad (given)`.
    pub verdict: String,
    pub results: PathBuf,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Found {
    pub first_bad: Step,
    pub last_good: Step,
    pub steps: Vec<Step>,
    pub candidates: usize,
}

impl Found {
    /// The symbols whose part of the cell's overhead moved most between the last good and
    /// the first bad revision, when both were measured with `--attribution` (else none).
    pub fn movers(&self) -> Result<Vec<crate::compare::Mover>> {
        let breakdown = |s: &Step| -> Result<Option<tracelab_model::attribution::Breakdown>> {
            let (_, cells) = crate::results::load_summaries(&s.results)?;
            Ok(cells
                .into_iter()
                .filter(|c| c.measured.mechanism != "baseline")
                .find_map(|c| c.attribution))
        };
        Ok(
            match (breakdown(&self.last_good)?, breakdown(&self.first_bad)?) {
                (Some(g), Some(b)) => crate::compare::movers(&g, &b, 5),
                _ => Vec::new(),
            },
        )
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .with_context(|| format!("running git in {}", repo.display()))?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Puts the tree back where it was when dropped.
struct Restore {
    repo: PathBuf,
    place: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = git(&self.repo, &["checkout", "--quiet", &self.place]);
    }
}

/// The revisions from `good` (exclusive) to `bad` (inclusive), oldest first, along the
/// ancestry path; `good` must be an ancestor of `bad`.
fn range(repo: &Path, good: &str, bad: &str) -> Result<Vec<String>> {
    let g = git(
        repo,
        &["rev-parse", "--verify", &format!("{good}^{{commit}}")],
    )
    .with_context(|| format!("--good {good} is not a commit of {}", repo.display()))?;
    let b = git(
        repo,
        &["rev-parse", "--verify", &format!("{bad}^{{commit}}")],
    )
    .with_context(|| format!("--bad {bad} is not a commit of {}", repo.display()))?;
    let ancestor = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["merge-base", "--is-ancestor", &g, &b])
        .status()
        .context("running git merge-base")?;
    if !ancestor.success() || g == b {
        bail!("--good {good} is not an ancestor of --bad {bad}: a bisect range is good..bad along the history");
    }
    let list = git(
        repo,
        &[
            "rev-list",
            "--reverse",
            "--ancestry-path",
            &format!("{g}..{b}"),
        ],
    )?;
    Ok(list.lines().map(String::from).collect())
}

fn read_log(path: &Path) -> Vec<Step> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn append_log(path: &Path, step: &Step) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(step)?)?;
    f.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// Builds (or fetches) and measures one candidate.
fn measure(b: &Bisect, rev: &str, observer: &dyn Observer) -> Result<Step> {
    let mut study = b.study.clone();
    let subject = match &b.source {
        Source::Git {
            repo,
            build,
            image,
            config,
            ..
        } => {
            git(repo, &["checkout", "--quiet", "--detach", rev])?;
            let subject = git(repo, &["log", "-1", "--format=%s", rev]).unwrap_or_default();
            let status = Command::new("sh")
                .arg("-c")
                .arg(build)
                .current_dir(repo)
                .env("TRACELAB_REVISION", rev)
                .status()
                .with_context(|| format!("running the build command `{build}`"))?;
            if !status.success() {
                bail!(
                    "the build command failed at {} ({status}): `{build}`",
                    &rev[..rev.len().min(12)]
                );
            }
            study.custom_kernel = Some((repo.join(image), repo.join(config)));
            subject
        }
        Source::Releases { arch, line, .. } => {
            study.target = crate::study::TargetSpec::Vm {
                arch: *arch,
                kernel: Some(*line),
                release: Some(rev.to_string()),
            };
            format!("Debian {rev}")
        }
    };
    let results = b.out.join(&rev[..rev.len().min(12)]);
    let _ = std::fs::remove_dir_all(&results);
    study.out = Some(results.clone());
    let finished = crate::target::run(&study, observer)?;
    let cell = finished
        .cells
        .iter()
        .find(|c| c.measured.mechanism != "baseline")
        .context("the study measured no cell")?;
    let overhead = match (&cell.summary, cell.measured.status) {
        (Some(s), tracelab_model::schema::Status::Ok) => s.overhead,
        _ => bail!(
            "{} at {}: {} ({}); a bisect needs the cell measured at every revision",
            cell.measured.mechanism,
            &rev[..rev.len().min(12)],
            cell.measured.status,
            cell.measured.reason.as_deref().unwrap_or("no reason")
        ),
    };
    let step = Step {
        revision: rev.to_string(),
        subject,
        overhead,
        unit: cell.measured.unit.to_string(),
        verdict: String::new(),
        results,
    };
    Ok(step)
}

/// The candidates after the good end (the last is the bad end), the good end, and the
/// guard that puts a tree back.
fn candidates(source: &Source) -> Result<(Vec<String>, String, Option<Restore>)> {
    match source {
        Source::Git {
            repo, good, bad, ..
        } => {
            if !git(repo, &["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
                bail!(
                    "{} has uncommitted changes: commit or stash them first (the bisect checks revisions out)",
                    repo.display()
                );
            }
            let place = match git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]) {
                Ok(branch) => branch,
                Err(_) => git(repo, &["rev-parse", "HEAD"])?,
            };
            let revs = range(repo, good, bad)?;
            let good = git(repo, &["rev-parse", &format!("{good}^{{commit}}")])?;
            let restore = Restore {
                repo: repo.clone(),
                place,
            };
            Ok((revs, good, Some(restore)))
        }
        Source::Releases { releases, .. } => {
            if releases.len() < 2 {
                bail!("--releases needs at least two, oldest (good) first: e.g. 6.12.95,6.12.107,6.12.117");
            }
            Ok((releases[1..].to_vec(), releases[0].clone(), None))
        }
    }
}

/// Runs the bisect; `report` sees each step as it is decided.
pub fn run(b: &Bisect, observer: &dyn Observer, report: &mut dyn FnMut(&Step)) -> Result<Found> {
    let (revs, good, _restore) = candidates(&b.source)?;
    std::fs::create_dir_all(&b.out).with_context(|| format!("creating {}", b.out.display()))?;
    let log = b.out.join("bisect.jsonl");
    let mut done = read_log(&log);
    // A revision in the log is not measured again: a rerun resumes.
    let mut decide =
        |rev: &str, given: Option<&str>, verdict: &dyn Fn(f64) -> String| -> Result<Step> {
            if let Some(s) = done.iter().find(|s| s.revision == rev) {
                report(s);
                return Ok(s.clone());
            }
            let mut step = measure(b, rev, observer)?;
            step.verdict = match given {
                Some(g) => format!("{g} (given)"),
                None => verdict(step.overhead),
            };
            append_log(&log, &step)?;
            done.push(step.clone());
            report(&step);
            Ok(step)
        };
    let g = decide(&good, Some("good"), &|_| String::new())?;
    let last = revs.last().context("empty range")?.clone();
    let bad = decide(&last, Some("bad"), &|_| String::new())?;
    let minimum = (b.relative * g.overhead.abs()).max(b.floor);
    if (bad.overhead - g.overhead).abs() <= minimum {
        bail!(
            "the cell does not step between --good and --bad ({:.2} → {:.2} {}/call, threshold {:.2}): nothing to bisect",
            g.overhead,
            bad.overhead,
            g.unit,
            minimum
        );
    }
    let is_bad = |x: f64| {
        (x - g.overhead).abs() > minimum && (x - bad.overhead).abs() < (x - g.overhead).abs()
    };
    // revs[hi] is bad; the first bad is in revs[lo..=hi].
    let (mut lo, mut hi) = (0usize, revs.len() - 1);
    let mut last_good = g.clone();
    while lo < hi {
        let mid = (lo + hi) / 2;
        let s = decide(&revs[mid], None, &|x| {
            if is_bad(x) {
                "bad".into()
            } else {
                "good".into()
            }
        })?;
        if is_bad(s.overhead) {
            hi = mid;
        } else {
            last_good = s;
            lo = mid + 1;
        }
    }
    let first_bad = decide(&revs[hi], None, &|x| {
        if is_bad(x) {
            "bad".into()
        } else {
            "good".into()
        }
    })?;
    if hi > 0 && last_good.revision != revs[hi - 1] {
        last_good = decide(&revs[hi - 1], None, &|x| {
            if is_bad(x) {
                "bad".into()
            } else {
                "good".into()
            }
        })?;
    }
    Ok(Found {
        first_bad,
        last_good,
        steps: read_log(&log),
        candidates: revs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(commits: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .status()
                .expect("git")
                .success();
            assert!(ok, "git {args:?}");
        };
        g(&["init", "--quiet", "--initial-branch=main"]);
        for (i, c) in commits.iter().enumerate() {
            std::fs::write(dir.path().join("which"), c).expect("write");
            g(&["add", "which"]);
            g(&["commit", "--quiet", "-m", &format!("commit {i}: {c}")]);
        }
        dir
    }

    #[test]
    fn the_range_follows_the_ancestry_and_refuses_what_is_not_one() {
        let r = repo(&["a", "b", "c", "d"]);
        let revs = range(r.path(), "HEAD~3", "HEAD").expect("range");
        assert_eq!(revs.len(), 3);
        let err = format!("{:#}", range(r.path(), "HEAD", "HEAD~2").unwrap_err());
        assert!(err.contains("is not an ancestor"), "{err}");
        let err = format!("{:#}", range(r.path(), "nope", "HEAD").unwrap_err());
        assert!(err.contains("--good nope is not a commit"), "{err}");
    }

    #[test]
    fn the_log_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("bisect.jsonl");
        let step = Step {
            revision: "abc".into(),
            subject: "s".into(),
            overhead: 1.5,
            unit: "insn".into(),
            verdict: "good".into(),
            results: "r".into(),
        };
        append_log(&log, &step).expect("append");
        append_log(&log, &step).expect("append");
        assert_eq!(read_log(&log), vec![step.clone(), step]);
    }

    #[test]
    fn a_dirty_tree_is_refused_and_left_alone() {
        let r = repo(&["a", "b"]);
        std::fs::write(r.path().join("which"), "edited").expect("write");
        let study = crate::cli::run::parse_study(&["tracelab".into(), "run".into()]);
        let b = Bisect {
            source: Source::Git {
                repo: r.path().to_path_buf(),
                good: "HEAD~1".into(),
                bad: "HEAD".into(),
                build: "true".into(),
                image: "vmlinuz".into(),
                config: "config".into(),
            },
            study: study.expect("parse"),
            out: r.path().join("out"),
            relative: 0.01,
            floor: 1.0,
        };
        struct Quiet;
        impl Observer for Quiet {
            fn event(&self, _: Option<&str>, _: crate::progress::Event<'_>) {}
        }
        let err = format!("{:#}", run(&b, &Quiet, &mut |_| {}).unwrap_err());
        assert!(err.contains("uncommitted changes"), "{err}");
        assert_eq!(
            std::fs::read_to_string(r.path().join("which")).expect("read"),
            "edited"
        );
    }
}
