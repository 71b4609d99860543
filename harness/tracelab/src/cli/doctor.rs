//! `tracelab doctor`: what this host, or a guest kernel judged from its config, can measure.

use super::stdout::out;
use super::Exit;
use crate::study::TargetSpec;
use anyhow::{Context, Result};
use tracelab_kernels::Catalog;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// local (default) or vm:<arch>/<version>.
    #[arg(long, default_value = "local")]
    pub target: TargetSpec,
    /// Debian mirror (default: $TRACELAB_MIRROR, the apt sources, or deb.debian.org).
    #[arg(long)]
    pub mirror: Option<String>,
}

pub(super) fn run(args: DoctorArgs) -> Result<Exit> {
    let (text, can_run) = doctor(&args.target, args.mirror)?;
    out!("{text}");
    if !can_run {
        eprintln!(
            "tracelab: doctor: the target {} cannot run a study (see above)",
            args.target
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}

/// The report, and whether the target can run a study.
fn doctor(target: &TargetSpec, mirror: Option<String>) -> Result<(String, bool)> {
    match target {
        TargetSpec::Local => Ok(crate::doctor::local_report()),
        TargetSpec::Vm {
            arch,
            kernel: Some(version),
            release,
        } => {
            let k = Catalog::new(mirror)?.fetch_release(
                *version,
                *arch,
                release.as_deref(),
                false,
                &super::progress::download(),
            )?;
            let text = std::fs::read_to_string(&k.config)
                .with_context(|| format!("reading {}", k.config.display()))?;
            let config = tracelab_model::kconfig::parse(&text);
            let env = crate::doctor::guest_env(&config, &k.release, *arch);
            let caps = crate::doctor::capabilities(&env);
            let facts: String = tracelab_model::kconfig::facts(&config)
                .into_iter()
                .map(|(name, value)| format!("  {name}: {value}\n"))
                .collect();
            Ok((
                format!(
                    "guest kernel {} ({arch}), judged from its config {}\n{}kernel facts that move figures:\n{facts}",
                    k.release,
                    k.config.display(),
                    crate::doctor::table(&caps)
                ),
                crate::doctor::can_run(&caps),
            ))
        }
        TargetSpec::Vm { .. } => {
            anyhow::bail!("doctor needs a catalog kernel (vm:<arch>/<version>)")
        }
    }
}
