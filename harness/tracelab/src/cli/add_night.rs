//! `tracelab add-night`: a results directory or dataset appended to a store as one night.

use super::stdout::outln;
use super::Exit;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct AddNightArgs {
    /// The store.
    pub store: PathBuf,
    /// The results directory or dataset to add.
    pub results: PathBuf,
    /// The night's label: YYYY-MM-DD-<id> (default: now, UTC).
    #[arg(long, value_parser = super::parse_night)]
    pub night: Option<String>,
}

pub(super) fn run(args: AddNightArgs, command_line: Vec<String>) -> Result<Exit> {
    // What is added must load: a night nobody can read would break every history.
    crate::dataset::load(&args.results)?;
    let night = args
        .night
        .unwrap_or_else(|| crate::history::store::default_night(std::time::SystemTime::now()));
    let dir = crate::history::store::append(&args.store, &night, &args.results, &command_line)?;
    outln!("stored: {}", dir.display());
    Ok(Exit::Ok)
}
