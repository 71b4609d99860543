//! `tracelab compare`: two results or dataset directories judged cell by cell; exit 1 on
//! a regression, so a CI gate can use it.

use super::stdout::out;
use super::Exit;
use crate::compare::Threshold;
use crate::render::Format;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The reference: a results directory or a dataset directory.
    pub baseline: PathBuf,
    /// What is judged against it: a results directory or a dataset directory.
    pub candidate: PathBuf,
    /// Smallest relative change of the overhead that counts: a percentage (5%) or a
    /// fraction up to 1 (0.05); a bare number above 1 is refused (5 would mean 500%).
    #[arg(long, default_value = "5%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute change that counts, per call in each cell's unit (insn or ns).
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Compare cells across kernels (e.g. a 6.12 run with a 7.3 run): the kernel line
    /// leaves the cell's identity, and a different release or config is what is compared.
    #[arg(long)]
    pub across_kernels: bool,
    /// List the cells found on one side only too (by default a line counts them; JSON
    /// always lists every cell).
    #[arg(long)]
    pub all: bool,
}

pub(super) fn run(args: CompareArgs) -> Result<Exit> {
    let threshold = Threshold {
        relative: args.threshold,
        floor: args.floor,
        across_kernels: args.across_kernels,
    };
    let mut report = crate::compare::load_and_compare(&args.baseline, &args.candidate, &threshold)?;
    if !args.all && args.format != Format::Json {
        report.fold_one_sided();
    }
    out!("{}", crate::compare::render::render(&report, args.format)?);
    Ok(if report.regressions() > 0 {
        Exit::Regression
    } else {
        Exit::Ok
    })
}
