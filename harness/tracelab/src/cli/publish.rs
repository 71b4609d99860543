//! `tracelab publish`: a static site (and Atom feed) of a store's history.

use super::stdout::outln;
use super::Exit;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The store (`run|matrix --store <dir>`).
    pub store: PathBuf,
    /// The site's directory (created; its pages are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// One series across kernel lines (as `history --across-kernels`).
    #[arg(long)]
    pub across_kernels: bool,
}

pub(super) fn run(args: PublishArgs) -> Result<Exit> {
    let grouping = crate::history::Grouping {
        across_kernels: args.across_kernels,
    };
    let (nights, series) = crate::history::load(&args.store, grouping)?;
    let h = crate::history::analyse(nights, &series, 0.01, 1.0);
    let id = crate::publish::store_id(&args.store);
    let p = crate::publish::publish(&series, &h, &args.out, &id)?;
    outln!(
        "site: {} ({} pages: {} series, {} changes; feed {})",
        args.out.join("index.html").display(),
        p.pages,
        p.series,
        p.changes,
        args.out.join("feed.xml").display()
    );
    Ok(Exit::Ok)
}
