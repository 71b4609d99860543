//! `tracelab matrix`: one study per (arch, kernel) guest, run in parallel, stored as one
//! Hive-partitioned dataset (`<out>/arch=<arch>/kernel=<label>/`, each a normal results
//! directory, plus `dataset.json`).
//!
//! Guests are independent: one that cannot fetch its kernel, boot, or report fails on its
//! own (its error is in `dataset.json`, its cells say why) and the others go on.

use crate::dataset::{self, DatasetIndex, GuestEntry, INDEX_VERSION};
use crate::progress::{Event, Observer};
use crate::render::Table;
use crate::study::{self, Study, TargetSpec};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;
use tracelab_model::cell::Cell;
use tracelab_model::schema::Status;

/// One guest of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    pub arch: Arch,
    pub kernel: KernelVersion,
}

impl Guest {
    pub fn label(&self) -> String {
        format!("{} {}", self.arch, self.kernel.name())
    }

    fn partition(&self) -> PathBuf {
        dataset::partition_dir(self.arch.name(), self.kernel.name())
    }
}

/// One of N deterministic parts of a matrix (`--shard i/N`, i from 1): the guests whose
/// position in the full matrix's order (arches, then kernels, as listed) is i − 1 modulo
/// N, so CI runners given 1/N … N/N share the guests out without talking to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && (1..=count).contains(&index) => {
                Ok(Shard { index, count })
            }
            Some((_, count)) if count >= 1 => Err(format!(
                "`{s}`: the shard number must be 1 to {count} (i/N, e.g. 1/{count})"
            )),
            _ => Err(format!("`{s}`: a shard is i/N with 1 ≤ i ≤ N, e.g. 1/2")),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This shard's guests of the full matrix, in its order.
    pub fn pick(&self, all: &[Guest]) -> Vec<Guest> {
        all.iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index - 1)
            .map(|(_, g)| *g)
            .collect()
    }
}

/// What a matrix measures, as a fingerprint: the agent plan, the clock mode and every
/// guest of the full matrix. Shards merge only when theirs agree.
pub fn plan_fingerprint(study: &Study, all: &[Guest]) -> String {
    let guests: Vec<String> = all.iter().map(Guest::label).collect();
    let text = serde_json::json!({
        "plan": study.plan,
        "mode": study.mode.name(),
        "guests": guests,
    })
    .to_string();
    tracelab_kernels::cache::sha256_bytes(text.as_bytes())
}

/// A validated matrix: the guests and the study each one runs.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The guests this process runs: all of them, or its shard's.
    pub guests: Vec<Guest>,
    /// Every guest of the matrix (the same as `guests` unless sharded).
    pub all_guests: Vec<Guest>,
    pub shard: Option<Shard>,
    /// The study of every guest, but for its target and results directory.
    pub study: Study,
    pub out: PathBuf,
    pub jobs: usize,
}

/// What happened to one guest.
#[derive(Debug, Clone)]
pub struct GuestOutcome {
    pub guest: Guest,
    pub entry: GuestEntry,
}

/// Runs a guest's study (the real one is [`crate::target::run`]; tests pass a mock).
pub type Runner<'a> = dyn Fn(&Study, &dyn Observer) -> Result<study::Finished> + Sync + 'a;

/// Applies a change to one guest's entry of `dataset.json` and rewrites it.
type SaveEntry<'a> = dyn Fn(&dyn Fn(&mut GuestEntry)) -> Result<()> + 'a;

/// Makes a guest's kernel ready in the cache, or says why it cannot be.
pub type Fetcher<'a> = dyn Fn(Guest) -> Result<()> + 'a;

/// Runs every guest, `jobs` at a time, into `matrix.out`. Errors only for what stops
/// the whole matrix (the output directory); a guest's error is in its outcome.
pub fn run(matrix: &Matrix, observer: &dyn Observer) -> Result<Vec<GuestOutcome>> {
    let catalog = Catalog::new(matrix.study.mirror.clone());
    let fetch = |g: Guest| -> Result<()> {
        let catalog = catalog.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        catalog.fetch_kernel(g.kernel, g.arch, false)?;
        catalog.fetch_busybox(g.arch)?;
        Ok(())
    };
    run_with(matrix, observer, &fetch, &crate::target::run)
}

/// [`run`] with the fetch and study steps given.
pub fn run_with(
    matrix: &Matrix,
    observer: &dyn Observer,
    fetch: &Fetcher<'_>,
    runner: &Runner<'_>,
) -> Result<Vec<GuestOutcome>> {
    // The dataset appears whole: its agents and index are written into a hidden sibling
    // that is renamed into place, so a matrix killed at any point leaves nothing or a
    // dataset that loads (with no runs yet, at first).
    let staging = crate::results::atomic::staging_dir(&matrix.out)?;
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
        git_revision: tracelab_model::provenance::revision_label(),
        command_line: matrix.study.command_line.clone(),
        jobs: matrix.jobs,
        agents: snapshot_agents(matrix, &staging.path().join(AGENTS_DIR)),
        guests: entries,
        shard: matrix.shard.map(|s| s.to_string()),
        matrix_guests: matrix.all_guests.iter().map(Guest::label).collect(),
        plan_sha256: Some(plan_fingerprint(&matrix.study, &matrix.all_guests)),
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
    {
        let idx = index
            .lock()
            .map_err(|_| anyhow::anyhow!("dataset index lock poisoned"))?;
        dataset::write_index(staging.path(), &idx)?;
    }
    crate::results::atomic::publish_dir(staging, &matrix.out)?;

    // Kernels are fetched one after another before any guest starts: parallel downloads
    // of one cache entry would race, and the network is the slow part on a cold cache.
    let fetch_errors: Vec<Option<String>> = matrix
        .guests
        .iter()
        .map(|&g| {
            observer.event(Some(&g.label()), Event::Stage("fetching the kernel"));
            fetch(g)
                .err()
                .map(|e| format!("fetching the kernel: {e:#}"))
        })
        .collect();

    // `jobs` guests at once, on plain threads taking guests from a queue. Not a rayon
    // pool: a rayon worker that waits on another pool (polars writing Parquet) steals
    // queued jobs meanwhile, which started every guest at once.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let order = longest_first(&matrix.guests);
    let slots: Vec<Slot> = matrix.guests.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..matrix.jobs.max(1) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((i, &guest)) = order.get(n).map(|&i| (i, &matrix.guests[i])) else {
                    break;
                };
                let entry = run_guest(
                    matrix,
                    guest,
                    fetch_errors[i].clone(),
                    observer,
                    runner,
                    &|f| save(i, f),
                );
                let stored = save(i, &|e| *e = entry.clone());
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some((entry, stored));
                }
            });
        }
    });
    let mut outcomes = Vec::with_capacity(slots.len());
    for (guest, slot) in matrix.guests.iter().zip(slots) {
        let (entry, stored) = slot
            .into_inner()
            .ok()
            .flatten()
            .context("a guest's thread ended without an outcome")?;
        stored.context("writing dataset.json")?;
        outcomes.push(GuestOutcome {
            guest: *guest,
            entry,
        });
    }
    Ok(outcomes)
}

/// A guest's outcome and whether dataset.json took it, filled by the guest's thread.
type Slot = Mutex<Option<(GuestEntry, Result<()>)>>;

/// Runs one guest's study; never fails: an error becomes the entry's `error`.
fn run_guest(
    matrix: &Matrix,
    guest: Guest,
    fetch_error: Option<String>,
    observer: &dyn Observer,
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
    let not_run = fetch_error.or_else(|| {
        crate::interrupt::requested().then(|| "not started: interrupted by a signal".to_string())
    });
    if let Some(e) = not_run {
        entry.state = "error".into();
        entry.error = Some(e);
        observer.event(Some(&guest.label()), Event::GuestDone(&entry));
        return entry;
    }
    // The index is rewritten when the guest finishes; a failure to mark it running only
    // leaves it `pending` a little longer.
    let _ = save(&|e| e.state = "running".into());
    let mut study = matrix.study.clone();
    study.target = TargetSpec::Vm {
        arch: guest.arch,
        kernel: Some(guest.kernel),
        release: None,
    };
    study.out = Some(dir);
    let snapshot = agents_dir(&matrix.out);
    if snapshot
        .join(format!("tracelab-agent-{}", guest.arch.name()))
        .is_file()
    {
        study.agent_dir = Some(snapshot);
    }
    let tagged = Tagged {
        label: guest.label(),
        inner: observer,
    };
    let started = Instant::now();
    // A panic in one guest's thread must not take the others down with it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(&study, &tagged)));
    entry.wall_seconds = Some(round_ms(started.elapsed()));
    match result {
        Ok(Ok(finished)) => {
            entry.state = "done".into();
            count(&mut entry, &finished.cells);
        }
        Ok(Err(e)) => {
            entry.state = "error".into();
            entry.error = Some(format!("{e:#}"));
        }
        Err(_) => {
            entry.state = "error".into();
            entry.error = Some("the guest's thread panicked".into());
        }
    }
    observer.event(Some(&guest.label()), Event::GuestDone(&entry));
    entry
}

/// Where a matrix keeps the agents it hashed at its start (hidden: not a results dir).
/// Where a dataset keeps the agents its matrix hashed (hidden: not a results dir).
pub(crate) const AGENTS_DIR: &str = ".agents";

fn agents_dir(out: &Path) -> PathBuf {
    out.join(AGENTS_DIR)
}

/// Copies each arch's static agent into the dataset once, at the start, and hashes it:
/// every guest of the matrix then runs exactly these files, even if a build replaces the
/// originals meanwhile. An agent that cannot be found is left out (its guests fail with
/// the reason when they look for it).
fn snapshot_agents(
    matrix: &Matrix,
    dir: &Path,
) -> std::collections::BTreeMap<String, dataset::AgentBuild> {
    let mut out = std::collections::BTreeMap::new();
    let mut arches: Vec<Arch> = matrix.guests.iter().map(|g| g.arch).collect();
    arches.dedup();
    for arch in arches {
        let Ok(src) = crate::target::vm::agent_binary(arch, matrix.study.agent_dir.as_deref())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&src) else {
            continue;
        };
        let dest = dir.join(format!("tracelab-agent-{}", arch.name()));
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let mut f = tracelab_model::atomic::AtomicFile::create(&dest)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.set_mode(0o755)?;
            f.commit()
        });
        if written.is_ok() {
            out.insert(
                arch.name().to_string(),
                dataset::AgentBuild {
                    sha256: tracelab_kernels::cache::sha256_bytes(&bytes),
                    lab_revision: tracelab_model::provenance::revision_label(),
                },
            );
        }
    }
    // The plugin of --attribution goes with them, so every guest loads the same file.
    if matrix.study.plan.attribution {
        if let Ok(src) = crate::target::vm::plugin_binary(matrix.study.agent_dir.as_deref()) {
            let dest = dir.join(crate::attribution::PLUGIN_FILE);
            let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::copy(&src, &dest));
        }
    }
    out
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

/// A guest's study events, tagged with the guest.
struct Tagged<'a> {
    label: String,
    inner: &'a dyn Observer,
}

impl Observer for Tagged<'_> {
    fn event(&self, _: Option<&str>, event: Event<'_>) {
        self.inner.event(Some(&self.label), event);
    }
}

/// The closing table: one line per guest.
pub fn summary(out: &Path, outcomes: &[GuestOutcome]) -> String {
    let headers = [
        "arch", "kernel", "state", "cells", "ok", "failed", "wall (s)", "error",
    ];
    let right = vec![false, false, false, true, true, true, true, false];
    let mut t = Table::new(headers.map(String::from).to_vec(), right);
    for o in outcomes {
        let e = &o.entry;
        t.push(vec![
            e.arch.clone(),
            e.kernel.clone(),
            e.state.clone(),
            e.cells.to_string(),
            e.ok_cells.to_string(),
            e.failed_cells.to_string(),
            e.wall_seconds
                .map_or_else(|| "-".to_string(), |w| format!("{w:.0}")),
            e.error
                .as_deref()
                .map(crate::results::row::one_line)
                .unwrap_or_default(),
        ]);
    }
    format!("{}dataset: {}\n", t.text(true), out.display())
}

/// Whether every guest stored every cell without failure.
pub fn all_ok(outcomes: &[GuestOutcome]) -> bool {
    outcomes
        .iter()
        .all(|o| o.entry.state == "done" && o.entry.failed_cells == 0)
}

/// The order guests start in, longest first so that two short guests, not one long one,
/// end a matrix: those of another arch than the host's first (emulating a foreign
/// instruction set is slower: on an x86_64 host the reference's arm64 7.x guests took
/// 77–79 s against 54–55 s for x86_64), newer kernels before older ones (they support
/// more mechanisms, so more cells are measured rather than reported unsupported).
fn longest_first(guests: &[Guest]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..guests.len()).collect();
    order.sort_by_key(|&i| {
        let g = &guests[i];
        (Some(g.arch) == Arch::this(), std::cmp::Reverse(g.kernel))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[test]
    fn foreign_arch_and_newer_kernels_start_first() {
        let g = |arch, kernel| Guest { arch, kernel };
        let guests = [
            g(Arch::X86_64, KernelVersion::V6_1),
            g(Arch::X86_64, KernelVersion::V7_3),
            g(Arch::Arm64, KernelVersion::V6_1),
            g(Arch::Arm64, KernelVersion::V7_3),
        ];
        let order = longest_first(&guests);
        let foreign_first = match Arch::this() {
            Some(Arch::X86_64) => vec![3, 2, 1, 0],
            Some(Arch::Arm64) => vec![1, 0, 3, 2],
            None => vec![1, 3, 0, 2],
        };
        assert_eq!(order, foreign_first);
    }

    struct Quiet;
    impl Observer for Quiet {
        fn event(&self, _: Option<&str>, _: Event<'_>) {}
    }

    fn matrix(arches: &[Arch], kernels: &[KernelVersion]) -> Matrix {
        let guests: Vec<Guest> = arches
            .iter()
            .flat_map(|&arch| kernels.iter().map(move |&kernel| Guest { arch, kernel }))
            .collect();
        Matrix {
            all_guests: guests.clone(),
            guests,
            shard: None,
            study: crate::cli::run::parse_study(&["tracelab".into(), "run".into()]).expect("study"),
            out: PathBuf::new(),
            jobs: 2,
        }
    }

    #[test]
    fn shards_split_the_guests_once_each_and_refuse_bad_numbers() {
        let all = matrix(&Arch::ALL, &KernelVersion::ALL).all_guests;
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"]
            .iter()
            .map(|s| s.parse().expect("shard"))
            .collect();
        let mut seen: Vec<Guest> = shards.iter().flat_map(|s| s.pick(&all)).collect();
        assert_eq!(seen.len(), all.len());
        seen.sort_by_key(|g| all.iter().position(|x| x == g));
        assert_eq!(seen, all);
        assert_eq!(shards[0].pick(&all)[1], all[3]);
        for bad in ["3/2", "0/2", "1/0", "x", "1/", "/2", "-1/2"] {
            let err = bad.parse::<Shard>().expect_err(bad);
            assert!(
                err.contains("i/N") || err.contains("1 to 2"),
                "{bad}: {err}"
            );
        }
    }

    /// Never more guests at once than `jobs`, even when a guest's work waits on a thread
    /// pool of its own (polars writes Parquet on rayon's).
    #[test]
    fn never_more_guests_at_once_than_jobs() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = matrix(&Arch::ALL, &KernelVersion::ALL);
        m.out = dir.path().join("ds");
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let runner = |s: &Study, _: &dyn Observer| -> Result<study::Finished> {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(running, Ordering::SeqCst);
            let spin: u64 = {
                use rayon::prelude::*;
                (0..200_000u64).into_par_iter().map(|x| x % 7).sum()
            };
            std::thread::sleep(std::time::Duration::from_millis(20 + spin % 2));
            now.fetch_sub(1, Ordering::SeqCst);
            bail!("done: {}", s.target)
        };
        let fetch = |_: Guest| -> Result<()> { Ok(()) };
        run_with(&m, &Quiet, &fetch, &runner).expect("matrix runs");
        assert!(
            most.load(Ordering::SeqCst) <= m.jobs,
            "{most:?} > {}",
            m.jobs
        );
    }

    /// One guest cannot fetch its kernel, one fails, one panics: each is an error in its
    /// own entry, and the fourth still runs and is recorded.
    #[test]
    fn a_failing_guest_does_not_stop_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("ds");
        let mut m = matrix(&Arch::ALL, &[KernelVersion::V6_1, KernelVersion::V7_3]);
        m.out = out.clone();
        let fetch = |g: Guest| -> Result<()> {
            if g.arch == Arch::Arm64 && g.kernel == KernelVersion::V6_1 {
                bail!("no such package")
            }
            Ok(())
        };
        let runner = |s: &Study, _: &dyn Observer| -> Result<study::Finished> {
            let TargetSpec::Vm {
                arch,
                kernel: Some(k),
                ..
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
