//! Datasets: many results directories read as one set of runs.
//!
//! A dataset is any directory holding results directories below it. `tracelab matrix`
//! writes one laid out Hive-style, `<dataset>/arch=<arch>/kernel=<label>/` (each a normal
//! results directory), plus [`INDEX_FILE`] at the top, so that datasets from many hosts
//! merge by copying directories and Parquet readers (polars, DuckDB, Spark) see `arch` and
//! `kernel` as partition columns. Readers here do not need the index: they find results
//! directories by their `meta.json`, so a hand-assembled tree works too.

use crate::results::{self, RunMeta};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use tracelab_model::cell::Cell;

/// The dataset-level index written by `tracelab matrix`.
pub const INDEX_FILE: &str = "dataset.json";

/// Version of [`DatasetIndex`]; bump on an incompatible change.
pub const INDEX_VERSION: u32 = 1;

/// How deep below a dataset directory results directories are looked for: the Hive
/// layout needs two levels; a few more allow datasets of datasets (one per host).
const MAX_DEPTH: usize = 6;

/// One results directory, loaded.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub meta: RunMeta,
    pub cells: Vec<Cell>,
}

/// What `tracelab matrix` ran, guest by guest (`dataset.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetIndex {
    pub index_version: u32,
    /// RFC 3339 UTC start of the matrix.
    pub started_at: String,
    pub tracelab_version: String,
    pub git_revision: Option<String>,
    pub command_line: Vec<String>,
    /// Guests run at once.
    pub jobs: usize,
    /// The agent builds every guest ran, by arch: hashed once at the matrix's start, and
    /// the same files used throughout (`<dataset>/.agents/`).
    #[serde(default)]
    pub agents: BTreeMap<String, AgentBuild>,
    pub guests: Vec<GuestEntry>,
    /// `i/N` for one shard of a matrix (`--shard`); None for a whole matrix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Every guest of the full matrix (`x86_64 6.12`, …), sharded or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matrix_guests: Vec<String>,
    /// What the matrix measures ([`crate::matrix::plan_fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
}

/// One static agent a matrix used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentBuild {
    pub sha256: String,
    /// The revision of the lab that started the matrix (`-dirty` with uncommitted changes).
    pub lab_revision: Option<String>,
}

/// One (arch, kernel) guest of a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestEntry {
    pub arch: String,
    pub kernel: String,
    /// The results directory, relative to the dataset (`arch=x86_64/kernel=6.12`).
    pub dir: String,
    /// `pending`, `running`, `done` (every cell stored; some may be failed or
    /// unsupported) or `error` (the guest could not run; `error` says why).
    pub state: String,
    pub error: Option<String>,
    pub cells: usize,
    pub ok_cells: usize,
    pub failed_cells: usize,
    /// Wall time of this guest, fetch excluded.
    pub wall_seconds: Option<f64>,
}

/// Copies a directory tree (results directories are small: JSON, Parquet, SVG).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dest)?;
        } else {
            fs::copy(&src, &dest)
                .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
        }
    }
    Ok(())
}

/// The Hive partition directory of one guest, relative to the dataset.
pub fn partition_dir(arch: &str, kernel: &str) -> PathBuf {
    PathBuf::from(format!("arch={arch}")).join(format!("kernel={kernel}"))
}

/// Reads a results directory, or every results directory under a dataset directory
/// (sorted by path).
pub fn load(path: &Path) -> Result<Vec<Run>> {
    load_dirs(&results_dirs(path)?)
}

/// Maps `f` over `items` on plain threads, one per core, in order. Not rayon: a rayon
/// worker that waits on polars' own pool steals queued jobs meanwhile, nesting one load in
/// another until the stack overflows (it did at 2920 results directories).
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut o) = out.lock() {
                    o.push((i, r));
                }
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_default();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Loads results directories in parallel: their summaries through polars (Parquet), not
/// the samples (`report` and `compare` need none).
fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<Run>> {
    parallel_map(dirs, |dir| {
        results::load_summaries(dir)
            .with_context(|| format!("loading {}", dir.display()))
            .map(|(meta, cells)| Run {
                dir: dir.clone(),
                meta,
                cells,
            })
    })
    .into_iter()
    .collect()
}

/// [`load`] over several paths, in the order given.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for p in paths {
        runs.extend(load(p)?);
    }
    Ok(runs)
}

/// The results directories at or under `path`. A matrix dataset (with its index) may
/// have none yet: its guests had not started when it was stopped.
pub fn results_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        bail!(
            "{} is not a directory: give a results directory (with meta.json) or a dataset directory",
            path.display()
        );
    }
    let mut found = Vec::new();
    walk(path, 0, &mut found)?;
    if found.is_empty() && !path.join(INDEX_FILE).is_file() {
        bail!(
            "{} is neither a results directory (no {}) nor a dataset (no results directories below it)",
            path.display(),
            results::store::META_FILE
        );
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(results::store::META_FILE).is_file() {
        found.push(dir.to_path_buf());
        // A results directory holds no further runs (its `cells/` are not runs).
        return Ok(());
    }
    // A peers run's results were measured with a peer attached (bpftrace beside a
    // baseline loop): its `peers.json` says what they mean, and no dataset holds them.
    if depth >= MAX_DEPTH || dir.join(results::store::PEERS_FILE).is_file() {
        return Ok(());
    }
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        // Hidden directories are temp files, VCS state or notebook checkpoints.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&entry.path(), depth + 1, found)?;
        }
    }
    Ok(())
}

/// Reads `dataset.json` of a dataset directory, if it has one.
pub fn read_index(dataset: &Path) -> Result<Option<DatasetIndex>> {
    let file = dataset.join(INDEX_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let index: DatasetIndex =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    if index.index_version != INDEX_VERSION {
        bail!(
            "{} has dataset index version {}, this tracelab reads version {INDEX_VERSION}",
            file.display(),
            index.index_version
        );
    }
    Ok(Some(index))
}

/// Writes `dataset.json` atomically.
pub fn write_index(dataset: &Path, index: &DatasetIndex) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(index).context("serializing dataset.json")?;
    json.push(b'\n');
    results::atomic::write(&dataset.join(INDEX_FILE), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn finds_results_directories_at_any_depth_and_skips_hidden_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runs = synthetic::matrix(&["x86_64", "arm64"], &["6.1"], 2, 0.0);
        synthetic::write_dataset(&dir.path().join("host-a"), &runs).expect("write");
        synthetic::write_dataset(&dir.path().join(".trash"), &runs).expect("write");
        let found = results_dirs(dir.path()).expect("dirs");
        let rel: Vec<String> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            rel,
            vec![
                "host-a/arch=arm64/kernel=6.1",
                "host-a/arch=x86_64/kernel=6.1"
            ]
        );
        let loaded = load(dir.path()).expect("load");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[1].cells.len(), runs[0].cells.len());
        // A single results directory loads as itself.
        assert_eq!(load(&found[0]).expect("one").len(), 1);
    }

    #[test]
    fn errors_say_what_a_directory_should_be() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("neither a results directory"), "{err}");
        let err = format!("{:#}", load(&dir.path().join("missing")).unwrap_err());
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn index_round_trips_and_refuses_other_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_index(dir.path()).expect("none"), None);
        let mut index = DatasetIndex {
            index_version: INDEX_VERSION,
            started_at: "2026-11-21T00:00:00Z".into(),
            tracelab_version: "0".into(),
            git_revision: None,
            command_line: vec![],
            jobs: 2,
            agents: BTreeMap::new(),
            guests: vec![],
            shard: None,
            matrix_guests: vec![],
            plan_sha256: None,
        };
        write_index(dir.path(), &index).expect("write");
        assert_eq!(read_index(dir.path()).expect("read"), Some(index.clone()));
        index.index_version = 99;
        write_index(dir.path(), &index).expect("write");
        let err = format!("{:#}", read_index(dir.path()).unwrap_err());
        assert!(err.contains("version 99"), "{err}");
    }
}
