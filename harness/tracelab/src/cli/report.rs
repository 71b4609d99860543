//! `tracelab report`: one self-contained HTML report and a Markdown summary.

use super::stdout::outln;
use super::Exit;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Results directories and/or dataset directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where report.html, report.md and figures/ are written (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Title of the report.
    #[arg(long, default_value = "tracelab report")]
    pub title: String,
    /// Also write figures/*.png (needs rsvg-convert from librsvg2-bin).
    #[arg(long)]
    pub png: bool,
}

pub(super) fn run(args: ReportArgs) -> Result<Exit> {
    let made = crate::report::make(&args.inputs, &args.out, &args.title, args.png)?;
    outln!(
        "report: {} ({} runs, {} figures)",
        args.out.join("report.html").display(),
        made.runs,
        made.figures
    );
    outln!("summary: {}", args.out.join("report.md").display());
    Ok(Exit::Ok)
}
