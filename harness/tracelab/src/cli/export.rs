//! `tracelab export`: a results directory's or a dataset's cells in another system's
//! format, on stdout; the cells a format cannot hold are named on stderr. `--format squad
//! --url …` submits to a SQUAD server instead.

use super::stdout::out;
use super::Exit;
use crate::export::squad::{self, Destination};
use crate::export::{ExportFormat, Origin};
use anyhow::{bail, Result};
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
    /// `--format squad`: submit to the SQUAD server at this URL (with an API token in
    /// `$SQUAD_TOKEN`) instead of printing the submission.
    #[arg(long, requires_all = ["project", "build"])]
    pub url: Option<String>,
    /// `--format squad`: the group and project, `group/project`.
    #[arg(long, requires = "url")]
    pub project: Option<String>,
    /// `--format squad`: the build (e.g. the night, `2026-12-06-1`).
    #[arg(long, requires = "url")]
    pub build: Option<String>,
    /// `--format squad`: the environment.
    #[arg(long, requires = "url", default_value = "tracelab")]
    pub environment: String,
}

/// The SQUAD destination the flags name, checked before anything is read or sent.
fn destination(args: &ExportArgs) -> Result<Option<Destination>> {
    let Some(url) = &args.url else {
        return Ok(None);
    };
    if args.format != ExportFormat::Squad {
        bail!("--url submits to SQUAD: use it with --format squad");
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("--url {url:?}: give the SQUAD server's http:// or https:// address");
    }
    let project = args.project.as_deref().unwrap_or_default();
    let Some((group, project)) = project.split_once('/') else {
        bail!("--project {project:?}: give it as group/project");
    };
    let build = args.build.as_deref().unwrap_or_default();
    squad::check_segment("group", group)?;
    squad::check_segment("project", project)?;
    squad::check_segment("build", build)?;
    squad::check_segment("environment", &args.environment)?;
    let token = std::env::var("SQUAD_TOKEN").unwrap_or_default();
    if token.trim().is_empty() {
        bail!(
            "--url: set SQUAD_TOKEN to an API token of a user who may submit to {group}/{project}"
        );
    }
    Ok(Some(Destination {
        url: url.clone(),
        group: group.to_string(),
        project: project.to_string(),
        build: build.to_string(),
        environment: args.environment.clone(),
        token: token.trim().to_string(),
    }))
}

pub(super) fn run(args: ExportArgs) -> Result<Exit> {
    if let Some(to) = destination(&args)? {
        let payload = crate::export::squad_payload(&args.dir)?;
        let reply = squad::submit(&payload, &to)?;
        out!(
            "submitted {} metrics and {} tests to {} (test run {reply})\n",
            payload.metric_count(),
            payload.test_count(),
            to.endpoint()
        );
        return Ok(Exit::Ok);
    }
    let e = crate::export::export(&args.dir, args.format, &args.origin)?;
    out!("{}", e.text);
    for cell in &e.left_out {
        eprintln!("tracelab: not exported (no figure): {cell}");
    }
    Ok(Exit::Ok)
}
