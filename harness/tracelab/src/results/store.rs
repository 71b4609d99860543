//! The results directory on disk: `meta.json`, one JSON file per finished cell, and the
//! files derived from them (`samples.parquet`, `summary.parquet`, `overhead.svg`).
//!
//! Cells are the record; derived files are rebuilt from all cells after each one, so an
//! interrupted run is complete up to its last finished cell in every file.

use super::meta::RunMeta;
use super::row::{finite, rows, SummaryRow};
use super::{atomic, parquet};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use tracelab_model::cell::Cell;
use tracelab_model::schema::SCHEMA_VERSION;

pub const META_FILE: &str = "meta.json";
/// What `tracelab peers` writes beside the results it measured with a peer attached.
pub const PEERS_FILE: &str = "peers.json";
pub const CELLS_DIR: &str = "cells";
pub const SAMPLES_FILE: &str = "samples.parquet";
pub const SUMMARY_FILE: &str = "summary.parquet";
/// Raw perf counter counts, one row per (sample, counter).
pub const COUNTERS_FILE: &str = "counters.parquet";
/// One row per cell and symbol of the cells' breakdowns (`--attribution` only).
pub const ATTRIBUTION_FILE: &str = "attribution.parquet";
/// Per-cell counter summaries, one row per (cell, counter): what `report` reads.
pub const COUNTER_SUMMARY_FILE: &str = "counter_summary.parquet";
pub const CHART_FILE: &str = "overhead.svg";
/// What the derived files were made from: every cell file's name, size and SHA256,
/// written last, so derived files are trusted only while the cells still hash to it.
pub const DERIVED_FILE: &str = "derived.json";

/// The content of [`DERIVED_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Derived {
    cells: Vec<CellFile>,
}

/// One cell file as the derived files saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CellFile {
    file: String,
    bytes: u64,
    sha256: String,
}

impl Derived {
    /// The cell files of `path` as they are now.
    fn of(path: &Path) -> Result<Derived> {
        use sha2::{Digest, Sha256};
        let cells = cell_files(path)?
            .into_iter()
            .map(|f| {
                let bytes = fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let sha256 = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Ok(CellFile {
                    file: f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    bytes: bytes.len() as u64,
                    sha256,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Derived { cells })
    }

    /// Whether the derived files of `path` were made from exactly its cell files. A
    /// directory written before this record existed is not current: its cells are read.
    fn current(path: &Path) -> Result<bool> {
        let Ok(text) = fs::read_to_string(path.join(DERIVED_FILE)) else {
            return Ok(false);
        };
        let Ok(recorded) = serde_json::from_str::<Derived>(&text) else {
            return Ok(false);
        };
        Ok(recorded == Derived::of(path)?)
    }
}

/// An open results directory being filled by a run.
#[derive(Debug)]
pub struct ResultsDir {
    path: PathBuf,
    cells: Vec<Cell>,
}

impl ResultsDir {
    /// Creates `path` (which must not exist or be empty) with `meta.json` and empty
    /// derived files. They are written into a hidden sibling that is then renamed into
    /// place, so a run killed at any point leaves either no directory or one that loads.
    pub fn create(path: &Path, meta: &RunMeta) -> Result<ResultsDir> {
        let staging = atomic::staging_dir(path)?;
        fs::create_dir_all(staging.path().join(CELLS_DIR))
            .with_context(|| format!("creating {}", staging.path().join(CELLS_DIR).display()))?;
        write_meta(staging.path(), meta)?;
        let mut dir = ResultsDir {
            path: staging.path().to_path_buf(),
            cells: Vec::new(),
        };
        dir.write_derived(meta)?;
        atomic::publish_dir(staging, path)?;
        dir.path = path.to_path_buf();
        Ok(dir)
    }

    /// Stores a finished cell as `cells/NNN-<mechanism>.json`, then rebuilds the derived
    /// files from all cells.
    ///
    /// A summary holding NaN or infinity is dropped first: JSON cannot represent it (it
    /// would be written as null and fail to load), and the summary can be recomputed from
    /// the samples, which are kept.
    pub fn add_cell(&mut self, mut cell: Cell) -> Result<()> {
        if let Some(s) = &cell.summary {
            let all = [
                s.per_call,
                s.baseline_per_call,
                s.overhead,
                s.overhead_min,
                s.overhead_max,
            ];
            if all.iter().any(|&x| finite(x).is_none()) {
                cell.summary = None;
            }
        }
        // BPF cells of one mechanism differ by payload and stack: name them apart.
        let name = cell_file_name(self.cells.len(), &cell.measured.id().file_stem());
        let file = self.path.join(CELLS_DIR).join(&name);
        let mut json = serde_json::to_vec_pretty(&cell).context("serializing cell")?;
        json.push(b'\n');
        atomic::write(&file, &json).map_err(|e| self.full_disk_hint(e))?;
        self.cells.push(cell);
        // meta.json is re-read so that an `update_meta` since `create` shows in the chart.
        let meta = read_meta(&self.path)?;
        self.write_derived(&meta)
            .map_err(|e| self.full_disk_hint(e))
    }

    /// A full disk, said so with the fix and what is kept (the cells written before).
    fn full_disk_hint(&self, e: anyhow::Error) -> anyhow::Error {
        // Polars wraps its I/O errors in its own type: the OS message is what is left.
        let full = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
                || c.to_string().contains("No space left on device")
        });
        if !full {
            return e;
        }
        anyhow::anyhow!(
            "the disk holding {} is full: free space or choose another --out; the {} cells stored before are kept",
            self.path.display(),
            self.cells.len()
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`update_meta`] of this directory, a full disk said so as for a cell.
    pub fn update_meta(&self, meta: &RunMeta) -> Result<()> {
        update_meta(&self.path, meta).map_err(|e| self.full_disk_hint(e))
    }

    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn write_derived(&self, meta: &RunMeta) -> Result<()> {
        write_derived(&self.path, meta, &self.cells)
    }
}

fn write_derived(path: &Path, meta: &RunMeta, cells: &[Cell]) -> Result<()> {
    let mut samples = parquet::samples_frame(cells)?;
    parquet::write(&path.join(SAMPLES_FILE), &mut samples)?;
    let mut summary = parquet::summary_frame(&rows(cells))?;
    parquet::write(&path.join(SUMMARY_FILE), &mut summary)?;
    let mut counters = parquet::counters_frame(cells)?;
    parquet::write(&path.join(COUNTERS_FILE), &mut counters)?;
    let mut counter_summary = parquet::counter_summary_frame(cells)?;
    parquet::write(&path.join(COUNTER_SUMMARY_FILE), &mut counter_summary)?;
    if let Some(mut attribution) = parquet::attribution_frame(cells)? {
        parquet::write(&path.join(ATTRIBUTION_FILE), &mut attribution)?;
    }
    atomic::write(
        &path.join(CHART_FILE),
        crate::plot::run_chart::overhead_svg(&meta.heading(), cells).as_bytes(),
    )?;
    // Last: a run killed before this line leaves a record the cells no longer match, so
    // readers go back to the cells.
    let mut json =
        serde_json::to_vec_pretty(&Derived::of(path)?).context("serializing derived.json")?;
    json.push(b'\n');
    atomic::write(&path.join(DERIVED_FILE), &json)
}

/// `NNN-<mechanism>.json`, with the mechanism reduced to characters safe in a file name.
fn cell_file_name(index: usize, mechanism: &str) -> String {
    let safe: String = mechanism
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.is_empty() {
        "cell".to_string()
    } else {
        safe
    };
    format!("{index:03}-{safe}.json")
}

/// The `NNN` of a cell file name, or None for anything else (temp files, stray files).
fn cell_index(name: &str) -> Option<usize> {
    if atomic::is_temp_name(name) || !name.ends_with(".json") {
        return None;
    }
    let (digits, _) = name.split_once('-')?;
    digits.parse().ok()
}

fn write_meta(path: &Path, meta: &RunMeta) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(meta).context("serializing meta.json")?;
    json.push(b'\n');
    atomic::write(&path.join(META_FILE), &json)
}

/// A results directory's `meta.json`.
pub fn read_meta(path: &Path) -> Result<RunMeta> {
    let file = path.join(META_FILE);
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    if !file.is_file() {
        bail!(
            "{} is not a tracelab results directory (no {META_FILE})",
            path.display()
        );
    }
    let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let meta: RunMeta =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    if meta.schema_version != SCHEMA_VERSION {
        bail!(
            "{} has results schema version {}, this tracelab reads version {SCHEMA_VERSION}",
            path.display(),
            meta.schema_version
        );
    }
    Ok(meta)
}

/// The cell files of a results directory in run order.
fn cell_files(path: &Path) -> Result<Vec<PathBuf>> {
    let dir = path.join(CELLS_DIR);
    let mut files = Vec::new();
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(i) = cell_index(&name) {
                files.push((i, name, entry.path()));
            }
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, _, f)| f).collect())
}

/// Reads a results directory: its metadata and its cells in run order, with every sample.
pub fn load(path: &Path) -> Result<(RunMeta, Vec<Cell>)> {
    let meta = read_meta(path)?;
    let files = cell_files(path)?;
    let mut cells = Vec::with_capacity(files.len());
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let cell: Cell = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged (it is the record of a cell; the derived files are not used in its place): restore it from a good copy, or remove it and lose that cell",
                file.display()
            )
        })?;
        cells.push(cell);
    }
    Ok((meta, cells))
}

/// The summary rows of a results directory, read from `summary.parquet` where it is
/// current (made from exactly the cell files there are, by [`DERIVED_FILE`]), else
/// derived from the cells' JSON, which fails naming a damaged cell file.
pub fn load_rows(path: &Path) -> Result<(RunMeta, Vec<SummaryRow>)> {
    let meta = read_meta(path)?;
    let cells = cell_files(path)?.len();
    let current = Derived::current(path)?;
    match parquet::read_summary(&path.join(SUMMARY_FILE)) {
        Ok(rows) if current && rows.len() == cells => Ok((meta, rows)),
        _ => {
            let (meta, cells) = load(path)?;
            Ok((meta, rows(&cells)))
        }
    }
}

/// A results directory's cells with their summaries and breakdowns but without samples,
/// read through polars from `summary.parquet`, `counter_summary.parquet` and
/// `attribution.parquet` (what `report` and `compare` need); from the cells' JSON where those are missing or not current (see
/// [`load_rows`]).
pub fn load_summaries(path: &Path) -> Result<(RunMeta, Vec<Cell>)> {
    let meta = read_meta(path)?;
    let files = cell_files(path)?.len();
    if !Derived::current(path)? {
        return load(path);
    }
    let parquet = parquet::read_summary(&path.join(SUMMARY_FILE)).and_then(|rows| {
        let counters = parquet::read_counter_summary(&path.join(COUNTER_SUMMARY_FILE))?;
        Ok((rows, counters))
    });
    match parquet {
        Ok((rows, mut counters)) if rows.len() == files => {
            let mut breakdowns = match path.join(ATTRIBUTION_FILE) {
                p if p.is_file() => parquet::read_attribution(&p)?,
                _ => BTreeMap::new(),
            };
            let cells = rows
                .into_iter()
                .map(|r| {
                    let c = counters.remove(&r.cell).unwrap_or_default();
                    let b = breakdowns.remove(&r.cell);
                    let mut cell = r.into_summary_cell(c);
                    cell.attribution = b;
                    cell
                })
                .collect();
            Ok((meta, cells))
        }
        _ => load(path),
    }
}

/// The breakdowns (`--attribution`) of a results directory's cells, by cell index: from
/// `attribution.parquet` where the derived files are current, else from the cells' JSON.
pub fn load_breakdowns(
    path: &Path,
) -> Result<BTreeMap<u32, tracelab_model::attribution::Breakdown>> {
    if !Derived::current(path)? {
        let (_, cells) = load(path)?;
        return Ok(cells
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| Some((u32::try_from(i).ok()?, c.attribution?)))
            .collect());
    }
    match path.join(ATTRIBUTION_FILE) {
        p if p.is_file() => parquet::read_attribution(&p),
        _ => Ok(BTreeMap::new()),
    }
}

/// Rewrites `meta.json` of an existing results directory atomically.
pub fn update_meta(path: &Path, meta: &RunMeta) -> Result<()> {
    read_meta(path)?;
    write_meta(path, meta)
}

/// Rebuilds the derived files of a results directory from its stored cells (e.g. after a
/// newer tracelab changed the chart).
pub fn regenerate(path: &Path) -> Result<()> {
    let (meta, cells) = load(path)?;
    write_derived(path, &meta, &cells)
}
