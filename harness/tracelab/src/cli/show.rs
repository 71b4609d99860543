//! `tracelab show`: one results directory's summary as a table, CSV, JSON or Markdown.

use super::stdout::out;
use super::Exit;
use crate::render::Format;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// A results directory (`results/<run-id>`).
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// One cell's breakdown by kernel symbol instead (a cell label as the table names it,
    /// e.g. kprobe or bpf-fentry/count/k1; the run needs --attribution).
    #[arg(long, value_name = "CELL")]
    pub breakdown: Option<String>,
}

pub(super) fn run(args: ShowArgs) -> Result<Exit> {
    if let Some(label) = &args.breakdown {
        let (_, cells) = crate::results::load(&args.dir)?;
        let labels: Vec<String> = cells.iter().map(|c| c.measured.id().label()).collect();
        let Some(cell) = cells.iter().find(|c| c.measured.id().label() == *label) else {
            anyhow::bail!(
                "no cell `{label}` in {} (its cells: {})",
                args.dir.display(),
                labels.join(", ")
            );
        };
        let Some(b) = &cell.attribution else {
            anyhow::bail!(
                "cell `{label}` has no breakdown: run it with --attribution (in a guest under icount)"
            );
        };
        out!(
            "{}",
            crate::attribution::render_breakdown(label, b, args.format)?
        );
        return Ok(Exit::Ok);
    }
    // A dataset holds results directories: name them rather than the meta.json it lacks.
    if args.dir.is_dir() && !args.dir.join(crate::results::store::META_FILE).is_file() {
        let guests = crate::dataset::results_dirs(&args.dir).unwrap_or_default();
        if !guests.is_empty() {
            let names: Vec<String> = guests
                .iter()
                .take(4)
                .map(|g| g.strip_prefix(&args.dir).unwrap_or(g).display().to_string())
                .collect();
            anyhow::bail!(
                "{} is a dataset of {} results directories, not one: show one of them, e.g. {}{}",
                args.dir.display(),
                guests.len(),
                names.join(", "),
                if guests.len() > 4 { ", …" } else { "" }
            );
        }
    }
    let (meta, rows) = crate::results::load_rows(&args.dir)?;
    out!(
        "{}",
        crate::results::render_rows(&meta, &rows, args.format)?
    );
    Ok(Exit::Ok)
}
