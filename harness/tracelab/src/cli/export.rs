//! `tracelab export`: a results directory's or a dataset's cells in another system's
//! format, on stdout; the cells a format cannot hold are named on stderr.

use super::stdout::out;
use super::Exit;
use crate::export::{ExportFormat, Origin};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A results directory (`results/<run-id>`) or a dataset directory.
    pub dir: PathBuf,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The CI system's name in the ids a KCIDB submission carries.
    #[arg(long, default_value = "tracelab")]
    pub origin: Origin,
}

pub(super) fn run(args: ExportArgs) -> Result<Exit> {
    let e = crate::export::export(&args.dir, args.format, &args.origin)?;
    out!("{}", e.text);
    for cell in &e.left_out {
        eprintln!("tracelab: not exported (no figure): {cell}");
    }
    Ok(Exit::Ok)
}
