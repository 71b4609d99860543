//! `tracelab bisect`: one cell followed across a kernel tree's commits (or a line's Debian
//! releases) to the first where its overhead steps.

use super::progress::CliObserver;
use super::run::RunArgs;
use super::stdout::outln;
use super::Exit;
use crate::render::fixed;
use crate::study::TargetSpec;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tracelab_model::arch::Arch;
use tracelab_model::mechanism::MechanismKind;

/// `tracelab bisect` flags: the tree, the range, the build, and one cell (the `run` flags
/// `--mechanisms`, `--payloads`, `--stack`, `--workload`, `--calls`, `--repeats`, ...).
#[derive(clap::Args, Debug)]
#[command(
    mut_arg("target", |a| a.hide(true)),
    mut_arg("kernel", |a| a.hide(true)),
    mut_arg("config", |a| a.hide(true)),
    mut_arg("store", |a| a.hide(true)),
    mut_arg("night", |a| a.hide(true))
)]
pub struct BisectArgs {
    /// The kernel git tree (with --good, --bad, --build).
    #[arg(long, required_unless_present = "releases", conflicts_with = "releases", requires_all = ["good", "bad", "build"])]
    pub repo: Option<PathBuf>,
    /// A revision where the cell is as it should be.
    #[arg(long)]
    pub good: Option<String>,
    /// A later revision (a descendant of --good) where it is not.
    #[arg(long)]
    pub bad: Option<String>,
    /// Run in the tree at each revision (`sh -c`, $TRACELAB_REVISION set), leaving the
    /// kernel at --image and its config at --kernel-config, e.g. 'make olddefconfig && make -j8 bzImage'.
    #[arg(long)]
    pub build: Option<String>,
    /// The built image, relative to the tree (default arch/x86/boot/bzImage on x86_64,
    /// arch/arm64/boot/Image on arm64).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The built kernel's config, relative to the tree.
    #[arg(long, default_value = ".config")]
    pub kernel_config: PathBuf,
    /// Instead of a tree: Debian releases of one line, oldest (good) first, newest (bad)
    /// last, e.g. 6.12.95,6.12.107,6.12.111,6.12.113,6.12.115,6.12.117 (`kernels list`).
    #[arg(long, value_delimiter = ',')]
    pub releases: Vec<String>,
    /// The guest architecture (x86_64, arm64).
    #[arg(long, default_value = "x86_64")]
    pub arch: Arch,
    /// Where each step's results and the step log (bisect.jsonl) go; a rerun with the same
    /// directory resumes.
    #[arg(long, default_value = "bisect")]
    pub out: PathBuf,
    /// Smallest relative step that counts: a percentage (1%) or a fraction up to 1.
    #[arg(long, default_value = "1%", value_parser = crate::compare::parse_relative)]
    pub threshold: f64,
    /// Smallest absolute step, per call in the cell's unit.
    #[arg(long, default_value = "1", value_parser = crate::compare::parse_floor)]
    pub floor: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

impl BisectArgs {
    pub fn into_bisect(self, command_line: Vec<String>) -> Result<crate::bisect::Bisect> {
        if self.run.out.is_some() {
            bail!("bisect writes each step under --out <dir> (its own flag), not a run's --out");
        }
        let mut study = self.run.into_study(command_line)?;
        let cells = study.plan.cells();
        let measured: Vec<_> = cells
            .iter()
            .filter(|c| c.mechanism != MechanismKind::Baseline)
            .collect();
        if measured.len() != 1 {
            bail!(
                "bisect follows one cell: give one mechanism (and one payload and stack), e.g. --mechanisms fprobe-exit; this selects {}",
                measured.len()
            );
        }
        study.target = TargetSpec::Vm {
            arch: self.arch,
            kernel: None,
            release: None,
        };
        let source = match self.repo {
            Some(repo) => crate::bisect::Source::Git {
                repo,
                good: self.good.unwrap_or_default(),
                bad: self.bad.unwrap_or_default(),
                build: self.build.unwrap_or_default(),
                image: self.image.unwrap_or_else(|| match self.arch {
                    Arch::X86_64 => PathBuf::from("arch/x86/boot/bzImage"),
                    Arch::Arm64 => PathBuf::from("arch/arm64/boot/Image"),
                }),
                config: self.kernel_config,
            },
            None => {
                let mut line = None;
                for r in &self.releases {
                    let spec: TargetSpec = format!("vm:{}/{r}", self.arch).parse()?;
                    let TargetSpec::Vm {
                        kernel: Some(k),
                        release: Some(_),
                        ..
                    } = spec
                    else {
                        bail!("--releases: `{r}` is a kernel line, not one of its releases (see `tracelab kernels list`)");
                    };
                    if line.is_some_and(|l| l != k) {
                        bail!("--releases must all be of one kernel line (`{r}` is of {k})");
                    }
                    line = Some(k);
                }
                crate::bisect::Source::Releases {
                    arch: self.arch,
                    line: line.context("--releases is empty")?,
                    releases: self.releases,
                }
            }
        };
        Ok(crate::bisect::Bisect {
            source,
            study,
            out: self.out,
            relative: self.threshold,
            floor: self.floor,
        })
    }
}

pub(super) fn run(args: BisectArgs, command_line: Vec<String>) -> Result<Exit> {
    let b = args;
    let b = b.into_bisect(command_line)?;
    crate::interrupt::catch().context("installing the Ctrl-C handler")?;
    let observer = CliObserver::new(1, "steps");
    let found = crate::bisect::run(&b, &observer, &mut |s| {
        observer.line(&format!(
            "{} {}: {} {}/call → {}",
            &s.revision[..s.revision.len().min(12)],
            s.subject,
            fixed(s.overhead, 2),
            s.unit,
            s.verdict
        ));
    });
    observer.finish();
    let found = found?;
    let (g, f) = (&found.last_good, &found.first_bad);
    outln!(
        "first bad commit: {} {}\n  {} {}/call at {} (last good) → {} at {} ({:+.1}%), {} steps measured over {} candidates; log {}",
        f.revision,
        f.subject,
        fixed(g.overhead, 2),
        f.unit,
        &g.revision[..g.revision.len().min(12)],
        fixed(f.overhead, 2),
        &f.revision[..f.revision.len().min(12)],
        (f.overhead - g.overhead) / g.overhead.abs() * 100.0,
        found.steps.len(),
        found.candidates,
        b.out.join("bisect.jsonl").display()
    );
    let movers = found.movers()?;
    if !movers.is_empty() {
        outln!(
            "  by symbol (insn/call): {}",
            crate::compare::render::movers_text(&movers)
        );
    }
    Ok(Exit::Ok)
}
