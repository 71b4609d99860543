//! `tracelab kernels`: the Debian kernels the lab knows (list) and their download (fetch).

use super::stdout::outln;
use super::Exit;
use crate::study::TargetSpec;
use anyhow::{Context, Result};
use tracelab_kernels::Catalog;
use tracelab_model::arch::Arch;

#[derive(clap::Subcommand, Debug)]
pub enum KernelsCommand {
    /// The kernels the lab knows, and which are cached.
    List {
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Download a kernel (checksummed against the Debian index) into the cache.
    Fetch {
        /// 6.1, 6.12, 7.2 or 7.3 (the newest release), or one release (6.12.111; see `list`).
        version: String,
        /// x86_64 or arm64.
        #[arg(long, default_value = "x86_64")]
        arch: Arch,
        /// Re-download the package index first.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        mirror: Option<String>,
    },
}

pub(super) fn run(command: KernelsCommand) -> Result<Exit> {
    match command {
        KernelsCommand::List { mirror } => {
            let catalog = Catalog::new(mirror)?;
            outln!(
                "{:<8} {:<7} {:<20} {:<18} {:<55} note",
                "version",
                "arch",
                "release",
                "suite",
                "package"
            );
            for e in tracelab_kernels::catalog_table() {
                let cached = catalog.cached(e.version, e.arch).map(|k| k.release);
                match catalog.releases(e.version, e.arch, false) {
                    Ok(releases) => {
                        for (i, r) in releases.iter().enumerate() {
                            let mut note = Vec::new();
                            if i == 0 {
                                note.push(format!(
                                    "default for vm:{}/{}",
                                    e.arch,
                                    e.version.name()
                                ));
                            }
                            if cached.as_deref() == Some(r.release.as_str()) {
                                note.push("cached".to_string());
                            }
                            outln!(
                                "{:<8} {:<7} {:<20} {:<18} {:<55} {}",
                                e.version.name(),
                                e.arch.name(),
                                r.label,
                                r.suite,
                                r.package,
                                note.join(", ")
                            );
                        }
                    }
                    Err(err) => outln!(
                        "{:<8} {:<7} {:<20} {:<18} {:<55} index unavailable: {}",
                        e.version.name(),
                        e.arch.name(),
                        "-",
                        e.suite,
                        e.package,
                        crate::results::row::one_line(&format!("{err:#}"))
                    ),
                }
            }
            outln!(
                "mirror: {}  cache: {}  (name a release as vm:<arch>/<release>, e.g. vm:x86_64/6.12.111)",
                catalog.mirror(),
                catalog.cache_dir().display()
            );
            Ok(Exit::Ok)
        }
        KernelsCommand::Fetch {
            version,
            arch,
            refresh,
            mirror,
        } => {
            let spec: TargetSpec = format!("vm:{arch}/{version}").parse()?;
            let TargetSpec::Vm {
                kernel: Some(line),
                release,
                ..
            } = spec
            else {
                anyhow::bail!("`{version}` is no Debian kernel (valid: 6.1, 6.12, 7.2, 7.3, or a release of one)");
            };
            let catalog = Catalog::new(mirror)?;
            let k = catalog
                .fetch_release(
                    line,
                    arch,
                    release.as_deref(),
                    refresh,
                    &super::progress::download(),
                )
                .with_context(|| format!("fetching Debian {version} for {arch}"))?;
            outln!("{} {} ({})", k.version, k.release, k.arch);
            outln!("image:  {}", k.image.display());
            outln!("config: {}", k.config.display());
            for p in &k.packages {
                outln!("package: {} {} sha256 {}", p.name, p.version, p.sha256);
            }
            Ok(Exit::Ok)
        }
    }
}
