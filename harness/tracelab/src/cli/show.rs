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
}

pub(super) fn run(args: ShowArgs) -> Result<Exit> {
    let (meta, rows) = crate::results::load_rows(&args.dir)?;
    out!(
        "{}",
        crate::results::render_rows(&meta, &rows, args.format)?
    );
    Ok(Exit::Ok)
}
