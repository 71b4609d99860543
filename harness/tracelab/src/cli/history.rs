//! `tracelab history`: change points of every series across a store's nights; exit 1 on
//! a regression in the newest night.

use super::stdout::out;
use super::Exit;
use crate::render::Format;
use anyhow::Result;
use std::path::PathBuf;

/// `tracelab history` flags.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The store (`run|matrix --store <dir>`).
    pub store: PathBuf,
    /// Smallest relative change reported: a percentage (1%) or a fraction up to 1 (0.01);
    /// a bare number above 1 is refused.
    #[arg(long, default_value = "1%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute change reported, per call in each series' unit.
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    /// One series across kernel lines (a job that follows the distribution's newest
    /// kernel): a new kernel line is then a fact that changed, not a new series.
    #[arg(long)]
    pub across_kernels: bool,
    /// Do not fail (exit 3) when the newest night is incomplete: series of the night
    /// before missing, failed cells, or the same runs as an earlier night.
    #[arg(long)]
    pub allow_incomplete: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub(super) fn run(args: HistoryArgs) -> Result<Exit> {
    let grouping = crate::history::Grouping {
        across_kernels: args.across_kernels,
    };
    let (nights, series, completeness) = crate::history::load_checked(&args.store, grouping)?;
    let mut h = crate::history::analyse(nights, &series, args.threshold, args.floor);
    h.completeness = completeness;
    out!("{}", crate::history::render(&h, args.format)?);
    Ok(if h.new_regressions() > 0 {
        Exit::Regression
    } else if !h.completeness.is_complete() && !args.allow_incomplete {
        eprintln!(
            "tracelab: {} (exit 3; --allow-incomplete accepts it)",
            h.completeness.line()
        );
        Exit::Failed
    } else {
        Exit::Ok
    })
}
