//! `tracelab matrix`: one study per (arch, kernel) guest, run in parallel, stored as one
//! Hive-partitioned dataset (`<out>/arch=<arch>/kernel=<label>/`, each a normal results
//! directory, plus `dataset.json`).
//!
//! Guests are independent: one that cannot fetch its kernel, boot, or report fails on its
//! own (its error is in `dataset.json`, its cells say why) and the others go on.

use crate::dataset::{self, DatasetIndex, GuestEntry, INDEX_VERSION};
use crate::study::{self, Progress, Study};
use crate::target::TargetSpec;
use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;
use tracelab_model::cell::Cell;
use tracelab_model::schema::Status;

/// `tracelab matrix` flags: which guests, how many at once, and every `run` flag (but
/// `--target`, `--kernel`, `--config`: the matrix picks the guests).
#[derive(clap::Args, Debug)]
#[command(
    mut_arg("target", |a| a.hide(true)),
    mut_arg("kernel", |a| a.hide(true)),
    mut_arg("config", |a| a.hide(true))
)]
pub struct MatrixArgs {
    /// Comma-separated architectures (x86_64, arm64), or `all`.
    #[arg(long, default_value = "x86_64,arm64")]
    pub arch: String,
    /// Comma-separated Debian kernel versions (6.1, 6.12, 7.2, 7.3), or `all`.
    #[arg(long, default_value = "6.1,6.12,7.2,7.3")]
    pub kernels: String,
    /// Guests run at once (default: the cores available).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub run: crate::cli::RunArgs,
}

/// One guest of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    pub arch: Arch,
    pub kernel: KernelVersion,
}

impl Guest {
    fn label(&self) -> String {
        format!("{} {}", self.arch, self.kernel.name())
    }

    fn partition(&self) -> PathBuf {
        dataset::partition_dir(self.arch.name(), self.kernel.name())
    }
}

/// A validated matrix: the guests and the study each one runs.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub guests: Vec<Guest>,
    /// The study of every guest, but for its target and results directory.
    pub study: Study,
    pub out: PathBuf,
    pub jobs: usize,
}

/// Parses a comma-separated list of names (or `all`) with `parse`; errors come from it
/// and so name the valid choices.
fn list<T: Copy + PartialEq>(
    s: &str,
    all: &[T],
    parse: impl Fn(&str) -> Result<T>,
) -> Result<Vec<T>> {
    if s.trim() == "all" {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let v = parse(name)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        bail!("empty list `{s}`");
    }
    Ok(out)
}

impl MatrixArgs {
    pub fn into_matrix(self, command_line: Vec<String>) -> Result<Matrix> {
        let arches = list(&self.arch, &Arch::ALL, |n| Ok(n.parse::<Arch>()?)).context("--arch")?;
        let kernels = list(&self.kernels, &KernelVersion::ALL, |n| {
            Ok(n.parse::<KernelVersion>()?)
        })
        .context("--kernels")?;
        if self.run.target != TargetSpec::default_vm().to_string() {
            bail!("matrix picks its guests with --arch and --kernels, not --target");
        }
        if self.run.kernel.is_some() {
            bail!("matrix runs Debian kernels only; use `tracelab run --target vm:<arch>/custom --kernel ...` for a kernel you built");
        }
        let study = self.run.into_study(command_line)?;
        let guests: Vec<Guest> = arches
            .iter()
            .flat_map(|&arch| kernels.iter().map(move |&kernel| Guest { arch, kernel }))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = match self.jobs {
            Some(0) => bail!("--jobs must be at least 1"),
            Some(j) => j,
            None => cores,
        }
        .min(guests.len());
        let out = study
            .out
            .clone()
            .unwrap_or_else(|| Study::default_out(&crate::results::new_run_id("matrix")));
        Ok(Matrix {
            guests,
            study,
            out,
            jobs,
        })
    }
}

/// What happened to one guest.
#[derive(Debug, Clone)]
pub struct GuestOutcome {
    pub guest: Guest,
    pub entry: GuestEntry,
}

/// Runs a guest's study (the real one is [`study::run`]; tests pass a mock).
pub type Runner<'a> = dyn Fn(&Study, &dyn Progress) -> Result<study::Finished> + Sync + 'a;

/// Applies a change to one guest's entry of `dataset.json` and rewrites it.
type SaveEntry<'a> = dyn Fn(&dyn Fn(&mut GuestEntry)) -> Result<()> + 'a;

/// Makes a guest's kernel ready in the cache, or says why it cannot be.
pub type Fetcher<'a> = dyn Fn(Guest) -> Result<()> + 'a;

/// Runs every guest, `jobs` at a time, into `matrix.out`. Errors only for what stops
/// the whole matrix (the output directory); a guest's error is in its outcome.
pub fn run(matrix: &Matrix, reporter: &dyn Reporter) -> Result<Vec<GuestOutcome>> {
    let catalog = Catalog::new(matrix.study.mirror.clone());
    let fetch = |g: Guest| -> Result<()> {
        let catalog = catalog.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        catalog.fetch_kernel(g.kernel, g.arch, false)?;
        catalog.fetch_busybox(g.arch)?;
        Ok(())
    };
    run_with(matrix, reporter, &fetch, &study::run)
}

/// [`run`] with the fetch and study steps given.
pub fn run_with(
    matrix: &Matrix,
    reporter: &dyn Reporter,
    fetch: &Fetcher<'_>,
    runner: &Runner<'_>,
) -> Result<Vec<GuestOutcome>> {
    create_empty_dir(&matrix.out)?;
    let entries: Vec<GuestEntry> = matrix
        .guests
        .iter()
        .map(|g| GuestEntry {
            arch: g.arch.name().to_string(),
            kernel: g.kernel.name().to_string(),
            dir: g.partition().to_string_lossy().into_owned(),
            state: "pending".into(),
            error: None,
            cells: 0,
            ok_cells: 0,
            failed_cells: 0,
            wall_seconds: None,
        })
        .collect();
    let index = Mutex::new(DatasetIndex {
        index_version: INDEX_VERSION,
        started_at: crate::results::rfc3339_utc(std::time::SystemTime::now()),
        tracelab_version: tracelab_model::VERSION.to_string(),
        git_revision: study::git_revision(),
        command_line: matrix.study.command_line.clone(),
        jobs: matrix.jobs,
        guests: entries,
    });
    let save = |i: usize, f: &dyn Fn(&mut GuestEntry)| -> Result<()> {
        let mut idx = index
            .lock()
            .map_err(|_| anyhow::anyhow!("dataset index lock poisoned"))?;
        if let Some(e) = idx.guests.get_mut(i) {
            f(e);
        }
        dataset::write_index(&matrix.out, &idx)
    };
    save(usize::MAX, &|_| {})?;

    // Kernels are fetched one after another before any guest starts: parallel downloads
    // of one cache entry would race, and the network is the slow part on a cold cache.
    let fetch_errors: Vec<Option<String>> = matrix
        .guests
        .iter()
        .map(|&g| {
            reporter.line(&format!("[{}] fetching the kernel", g.label()));
            fetch(g)
                .err()
                .map(|e| format!("fetching the kernel: {e:#}"))
        })
        .collect();

    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..matrix.guests.len()).collect());
    let outcomes: Mutex<Vec<Option<GuestEntry>>> = Mutex::new(vec![None; matrix.guests.len()]);
    let save_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..matrix.jobs {
            scope.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(i) = next else { break };
                let guest = matrix.guests[i];
                let entry = run_guest(
                    matrix,
                    guest,
                    fetch_errors[i].clone(),
                    reporter,
                    runner,
                    &|f| save(i, f),
                );
                let stored = save(i, &|e| *e = entry.clone());
                if let Err(e) = stored {
                    if let Ok(mut slot) = save_error.lock() {
                        slot.get_or_insert(e);
                    }
                }
                if let Ok(mut o) = outcomes.lock() {
                    o[i] = Some(entry);
                }
            });
        }
    });
    if let Some(e) = save_error.into_inner().ok().flatten() {
        return Err(e.context("writing dataset.json"));
    }
    let outcomes = outcomes
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a guest thread panicked while recording"))?;
    Ok(matrix
        .guests
        .iter()
        .zip(outcomes)
        .filter_map(|(g, e)| e.map(|entry| GuestOutcome { guest: *g, entry }))
        .collect())
}

/// Runs one guest's study; never fails: an error becomes the entry's `error`.
fn run_guest(
    matrix: &Matrix,
    guest: Guest,
    fetch_error: Option<String>,
    reporter: &dyn Reporter,
    runner: &Runner<'_>,
    save: &SaveEntry<'_>,
) -> GuestEntry {
    let dir = matrix.out.join(guest.partition());
    let mut entry = GuestEntry {
        arch: guest.arch.name().to_string(),
        kernel: guest.kernel.name().to_string(),
        dir: guest.partition().to_string_lossy().into_owned(),
        state: "running".into(),
        error: None,
        cells: 0,
        ok_cells: 0,
        failed_cells: 0,
        wall_seconds: None,
    };
    if let Some(e) = fetch_error {
        reporter.line(&format!("[{}] error: {e}", guest.label()));
        entry.state = "error".into();
        entry.error = Some(e);
        return entry;
    }
    // The index is rewritten when the guest finishes; a failure to mark it running only
    // leaves it `pending` a little longer.
    let _ = save(&|e| e.state = "running".into());
    let mut study = matrix.study.clone();
    study.target = TargetSpec::Vm {
        arch: guest.arch,
        kernel: Some(guest.kernel),
    };
    study.out = Some(dir);
    let progress = GuestProgress {
        label: guest.label(),
        reporter,
    };
    let started = Instant::now();
    // A panic in one guest's thread must not take the others down with it.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(&study, &progress)));
    entry.wall_seconds = Some(round_ms(started.elapsed()));
    match result {
        Ok(Ok(finished)) => {
            entry.state = "done".into();
            count(&mut entry, &finished.cells);
            reporter.line(&format!(
                "[{}] done in {:.0} s: {} cells, {} ok, {} failed",
                guest.label(),
                entry.wall_seconds.unwrap_or(0.0),
                entry.cells,
                entry.ok_cells,
                entry.failed_cells
            ));
        }
        Ok(Err(e)) => {
            entry.state = "error".into();
            entry.error = Some(format!("{e:#}"));
            reporter.line(&format!("[{}] error: {e:#}", guest.label()));
        }
        Err(_) => {
            entry.state = "error".into();
            entry.error = Some("the guest's thread panicked".into());
            reporter.line(&format!("[{}] error: panicked", guest.label()));
        }
    }
    entry
}

fn count(entry: &mut GuestEntry, cells: &[Cell]) {
    entry.cells = cells.len();
    entry.ok_cells = cells
        .iter()
        .filter(|c| c.measured.status == Status::Ok)
        .count();
    entry.failed_cells = cells
        .iter()
        .filter(|c| c.measured.status == Status::Failed)
        .count();
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn create_empty_dir(path: &Path) -> Result<()> {
    if path.exists() {
        let mut entries = std::fs::read_dir(path)
            .with_context(|| format!("{} exists and is not a directory", path.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty; choose another --out",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

/// Where progress lines go; shared by the guests' threads.
pub trait Reporter: Sync {
    fn line(&self, text: &str);
}

/// Progress lines on stderr, under a bar of finished guests on a terminal.
pub struct CliReporter {
    multi: Option<(MultiProgress, ProgressBar)>,
}

impl CliReporter {
    pub fn new(guests: usize) -> CliReporter {
        let multi = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let bar = multi.add(ProgressBar::new(guests as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} guests",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            (multi, bar)
        });
        CliReporter { multi }
    }

    pub fn finish(&self) {
        if let Some((_, bar)) = &self.multi {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for CliReporter {
    fn line(&self, text: &str) {
        match &self.multi {
            Some((multi, bar)) => {
                if text.contains("] done in ") || text.contains("] error") {
                    bar.inc(1);
                }
                let _ = multi.println(text);
            }
            None => eprintln!("tracelab: {text}"),
        }
    }
}

/// A study's progress, prefixed with its guest.
struct GuestProgress<'a> {
    label: String,
    reporter: &'a dyn Reporter,
}

impl Progress for GuestProgress<'_> {
    fn stage(&self, what: &str) {
        self.reporter.line(&format!("[{}] {what}", self.label));
    }

    fn cell(&self, cell: &Cell, done: usize, total: usize) {
        let m = &cell.measured;
        let what = match (&cell.summary, m.status) {
            (Some(s), Status::Ok) => format!("ok, overhead {:.2} {}/call", s.overhead, m.unit),
            _ => format!(
                "{} {}",
                m.status,
                m.reason
                    .as_deref()
                    .map(crate::results::row::one_line)
                    .unwrap_or_default()
            ),
        };
        self.reporter.line(&format!(
            "[{}] cell {done}/{total} {}{}{}: {what}",
            self.label,
            m.mechanism,
            m.payload
                .as_deref()
                .map(|p| format!("/{p}"))
                .unwrap_or_default(),
            if m.stack > 1 {
                format!(" ×{}", m.stack)
            } else {
                String::new()
            }
        ));
    }
}

/// The closing table: one line per guest.
pub fn summary(out: &Path, outcomes: &[GuestOutcome]) -> String {
    let mut s = format!(
        "{:<8} {:<6} {:<7} {:>5} {:>4} {:>6} {:>8}  error\n",
        "arch", "kernel", "state", "cells", "ok", "failed", "wall (s)"
    );
    for o in outcomes {
        let e = &o.entry;
        s.push_str(&format!(
            "{:<8} {:<6} {:<7} {:>5} {:>4} {:>6} {:>8}  {}\n",
            e.arch,
            e.kernel,
            e.state,
            e.cells,
            e.ok_cells,
            e.failed_cells,
            e.wall_seconds
                .map_or_else(|| "-".to_string(), |w| format!("{w:.0}")),
            e.error
                .as_deref()
                .map(crate::results::row::one_line)
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!("dataset: {}\n", out.display()));
    s
}

/// `tracelab matrix`: exit 0 when every guest stored every cell without failure, 3
/// otherwise (as `tracelab run` does for failed cells).
pub fn main(args: MatrixArgs, command_line: Vec<String>) -> Result<i32> {
    let matrix = args.into_matrix(command_line)?;
    let reporter = CliReporter::new(matrix.guests.len());
    reporter.line(&format!(
        "{} guests, {} at a time, into {}",
        matrix.guests.len(),
        matrix.jobs,
        matrix.out.display()
    ));
    let started = Instant::now();
    let outcomes = run(&matrix, &reporter)?;
    reporter.finish();
    print!("{}", summary(&matrix.out, &outcomes));
    println!("wall time: {:.0} s", started.elapsed().as_secs_f64());
    let bad = outcomes
        .iter()
        .any(|o| o.entry.state != "done" || o.entry.failed_cells > 0);
    Ok(if bad { 3 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        m: MatrixArgs,
    }

    fn matrix(args: &[&str]) -> Result<Matrix> {
        let mut argv = vec!["matrix"];
        argv.extend_from_slice(args);
        Wrap::try_parse_from(argv)?.m.into_matrix(vec![])
    }

    #[test]
    fn default_matrix_is_both_arches_times_four_kernels() {
        let m = matrix(&["--jobs", "3"]).expect("matrix");
        assert_eq!(m.guests.len(), 8);
        assert_eq!(m.jobs, 3);
        assert_eq!(
            m.guests[1],
            Guest {
                arch: Arch::X86_64,
                kernel: KernelVersion::V6_12
            }
        );
        assert_eq!(
            m.guests[1].partition(),
            PathBuf::from("arch=x86_64/kernel=6.12")
        );
        let one = matrix(&["--arch", "arm64", "--kernels", "7.3,7.3"]).expect("matrix");
        assert_eq!(one.guests.len(), 1);
        assert_eq!(one.jobs, 1, "never more jobs than guests");
    }

    #[test]
    fn bad_lists_name_the_valid_choices() {
        for (args, needle) in [
            (vec!["--arch", "sparc"], "x86_64, arm64"),
            (vec!["--kernels", "6.1,5.10"], "6.12"),
            (vec!["--kernels", ","], "empty list"),
            (vec!["--jobs", "0"], "at least 1"),
            (vec!["--target", "local"], "--arch and --kernels"),
            (vec!["--mechanisms", "nope"], "kprobe"),
        ] {
            let err = format!("{:#}", matrix(&args).unwrap_err());
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    struct Quiet;
    impl Reporter for Quiet {
        fn line(&self, _: &str) {}
    }

    /// One guest cannot fetch its kernel, one fails, one panics: each is an error in its
    /// own entry, and the fourth still runs and is recorded.
    #[test]
    fn a_failing_guest_does_not_stop_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("ds");
        let mut m =
            matrix(&["--arch", "all", "--kernels", "6.1,7.3", "--jobs", "2"]).expect("matrix");
        m.out = out.clone();
        let fetch = |g: Guest| -> Result<()> {
            if g.arch == Arch::Arm64 && g.kernel == KernelVersion::V6_1 {
                bail!("no such package")
            }
            Ok(())
        };
        let runner = |s: &Study, _: &dyn Progress| -> Result<study::Finished> {
            let TargetSpec::Vm {
                arch,
                kernel: Some(k),
            } = &s.target
            else {
                bail!("not a Debian guest")
            };
            match (arch, k) {
                (Arch::X86_64, KernelVersion::V6_1) => bail!("guest did not boot"),
                (Arch::X86_64, _) => panic!("simulated bug"),
                _ => {}
            }
            let run = crate::synthetic::matrix(&[arch.name()], &[k.name()], 3, 0.0)
                .pop()
                .expect("one run");
            Ok(study::Finished {
                dir: s.out.clone().expect("out"),
                meta: run.meta,
                cells: run.cells,
            })
        };
        let outcomes = run_with(&m, &Quiet, &fetch, &runner).expect("the matrix itself runs");
        let states: Vec<(String, String, String)> = outcomes
            .iter()
            .map(|o| {
                (
                    o.entry.arch.clone(),
                    o.entry.kernel.clone(),
                    o.entry.state.clone(),
                )
            })
            .collect();
        assert_eq!(
            states,
            vec![
                ("x86_64".into(), "6.1".into(), "error".into()),
                ("x86_64".into(), "7.3".into(), "error".into()),
                ("arm64".into(), "6.1".into(), "error".into()),
                ("arm64".into(), "7.3".into(), "done".into()),
            ]
        );
        assert!(outcomes[0]
            .entry
            .error
            .as_deref()
            .unwrap_or("")
            .contains("did not boot"));
        assert!(outcomes[1]
            .entry
            .error
            .as_deref()
            .unwrap_or("")
            .contains("panicked"));
        assert!(outcomes[2]
            .entry
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no such package"));
        assert_eq!(outcomes[3].entry.ok_cells, 8);
        let index = dataset::read_index(&out).expect("index").expect("present");
        assert_eq!(index.guests.len(), 4);
        assert_eq!(index.guests[3].dir, "arch=arm64/kernel=7.3");
        assert_eq!(index.guests[3].state, "done");
    }
}
