//! `tracelab export`: a results directory's or a dataset's cells in the formats of the
//! systems kernel people already watch. Each format keeps a figure's unit: instructions
//! stay instructions where the format allows a unit of its own, nanoseconds become
//! seconds where it wants base units. A cell that was not measured is a result too: each
//! format says so where it can (LAVA `skip`/`fail`, an OpenMetrics status sample), and the
//! formats that can hold only figures (Bencher) list it in [`Export::left_out`].

mod bencher;
mod github_benchmark;
mod kcidb;
mod lava;
mod openmetrics;
pub mod squad;

use crate::results::SummaryRow;
use anyhow::Result;
use std::path::Path;
use tracelab_model::cell_id::CellId;
use tracelab_model::schema::Unit;

/// The formats `tracelab export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// OpenMetrics text (a node_exporter textfile collector, a Pushgateway).
    Openmetrics,
    /// Bencher Metric Format JSON (`bencher run --adapter json`).
    Bencher,
    /// `lava-test-case` lines for a LAVA test definition's run steps.
    Lava,
    /// github-action-benchmark's custom JSON (`customSmallerIsBetter`).
    GithubBenchmark,
    /// A KCIDB submission (I/O schema v5.3): checkouts, builds and one test per cell.
    Kcidb,
    /// A SQUAD submission: sent with `--url` (token in `$SQUAD_TOKEN`), else printed.
    Squad,
}

/// The name the exporting CI system submits under (KCIDB's `origin`): lower-case letters,
/// digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl std::str::FromStr for Origin {
    type Err = String;
    fn from_str(s: &str) -> Result<Origin, String> {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            Ok(Origin(s.to_string()))
        } else {
            Err(format!(
                "origin {s:?}: use lower-case letters, digits and _ only (KCIDB's origin)"
            ))
        }
    }
}

impl Default for Origin {
    fn default() -> Origin {
        Origin("tracelab".to_string())
    }
}

/// One cell as every format sees it: where it ran, what it is, and its figure.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exported {
    pub arch: String,
    pub kernel: String,
    pub kernel_release: Option<String>,
    pub workload: String,
    /// `kprobe`, `bpf-fentry/count/k1`, `kprobe/n100`.
    pub label: String,
    /// `x86_64/6.12/getppid/bpf-fentry/count/k1`, or where two results directories hold
    /// that name (datasets side by side: `results/reference`), the results directory's
    /// path under the exported one and the label.
    pub name: String,
    /// The run that measured it: its id, clock and kernel package.
    pub run_id: String,
    pub clock: String,
    pub kernel_package: Option<String>,
    pub row: SummaryRow,
}

/// What an export wrote, and the cells its format could not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub text: String,
    /// `name: status (reason)` of every cell left out.
    pub left_out: Vec<String>,
}

/// Every cell of a results directory or of a dataset's results directories, in order.
fn cells(path: &Path) -> Result<Vec<Exported>> {
    let dirs = if path.join(crate::results::store::META_FILE).is_file() {
        vec![path.to_path_buf()]
    } else {
        crate::dataset::results_dirs(path)?
    };
    let mut out = Vec::new();
    let mut qualified = Vec::new();
    for dir in dirs {
        let (meta, rows) = crate::results::load_rows(&dir)?;
        let under = dir.strip_prefix(path).unwrap_or(&dir).display().to_string();
        for row in rows {
            let label = CellId {
                mechanism: row.mechanism.clone(),
                payload: row.payload.clone(),
                stack: row.stack,
                functions: row.functions,
                other_tracers: row.other_tracers,
            }
            .label();
            qualified.push(if under.is_empty() {
                label.clone()
            } else {
                format!("{under}/{label}")
            });
            out.push(Exported {
                name: format!("{}/{}/{}/{label}", row.arch, row.kernel, row.workload),
                run_id: meta.run_id.clone(),
                clock: meta.clock.clone(),
                kernel_package: meta.kernel_package.clone(),
                arch: row.arch.clone(),
                kernel: row.kernel.clone(),
                kernel_release: row.kernel_release.clone(),
                workload: row.workload.clone(),
                label,
                row,
            });
        }
    }
    let mut names: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        for (c, q) in out.iter_mut().zip(qualified) {
            c.name = q;
        }
    }
    Ok(out)
}

/// The cells under `path` in `format`, submitted as `origin` where the format asks.
pub fn export(path: &Path, format: ExportFormat, origin: &Origin) -> Result<Export> {
    let cells = cells(path)?;
    Ok(match format {
        ExportFormat::Openmetrics => Export {
            text: openmetrics::render(&cells),
            left_out: Vec::new(),
        },
        ExportFormat::Bencher => bencher::render(&cells)?,
        ExportFormat::Lava => Export {
            text: lava::render(&cells),
            left_out: Vec::new(),
        },
        ExportFormat::GithubBenchmark => github_benchmark::render(&cells)?,
        ExportFormat::Kcidb => Export {
            text: kcidb::render(&cells, &origin.0)?,
            left_out: Vec::new(),
        },
        ExportFormat::Squad => Export {
            text: serde_json::to_string_pretty(&squad::payload(&cells).to_json())? + "\n",
            left_out: Vec::new(),
        },
    })
}

/// The SQUAD submission of the cells under `path`.
pub fn squad_payload(path: &Path) -> Result<squad::Payload> {
    Ok(squad::payload(&cells(path)?))
}

/// The cells with a figure, with it, and `name: status (reason)` of the others: what a
/// format that holds only figures writes and leaves out.
fn measured(cells: &[Exported]) -> (Vec<(&Exported, f64)>, Vec<String>) {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for c in cells {
        match c.row.overhead.filter(|v| v.is_finite()) {
            Some(v) if c.row.status == tracelab_model::schema::Status::Ok => with.push((c, v)),
            _ => without.push(format!(
                "{}: {}{}",
                c.name,
                c.row.status,
                c.row
                    .reason
                    .as_deref()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            )),
        }
    }
    (with, without)
}

/// A figure in the format's base unit where it wants one: seconds for real time,
/// instructions as they are.
fn base_unit(value: f64, unit: Unit) -> (f64, &'static str) {
    match unit {
        Unit::Insn => (value, "instructions"),
        Unit::Ns => (value * 1e-9, "seconds"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
