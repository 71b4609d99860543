//! `tracelab merge`: the shards of one matrix joined into one dataset.

use super::stdout::outln;
use super::Exit;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' dataset directories (all N of them).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// The merged dataset (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

pub(super) fn run(args: MergeArgs) -> Result<Exit> {
    let merged = crate::merge::merge(&args.shards, &args.out)?;
    outln!(
        "merged {} shards, {} guests, into {}",
        merged.shards,
        merged.guests,
        args.out.display()
    );
    Ok(Exit::Ok)
}
