//! `tracelab`: parses the command line, calls the library, prints.

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tracelab::cli::{self, Cli, Command, KernelsCommand};
use tracelab::study::{self, Progress};
use tracelab_kernels::{self, Catalog};
use tracelab_model::cell::Cell;
use tracelab_model::schema::Status;

/// A progress bar on a terminal; plain lines on stderr otherwise (CI logs).
struct CliProgress {
    bar: Option<ProgressBar>,
}

impl CliProgress {
    fn new(total: usize) -> CliProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        CliProgress { bar }
    }
}

impl Progress for CliProgress {
    fn stage(&self, what: &str) {
        match &self.bar {
            Some(b) => b.set_message(what.to_string()),
            None => eprintln!("tracelab: {what}"),
        }
    }

    fn cell(&self, cell: &Cell, done: usize, total: usize) {
        let m = &cell.measured;
        let name = match &m.payload {
            Some(p) => format!("{}/{p}/k{}", m.mechanism, m.stack),
            None => m.mechanism.clone(),
        };
        let what = match (&cell.summary, m.status) {
            (Some(s), Status::Ok) => {
                format!("{name}: ok, overhead {:.2} {}/call", s.overhead, m.unit)
            }
            _ => format!("{name}: {} {}", m.status, m.reason.as_deref().unwrap_or("")),
        };
        match &self.bar {
            Some(b) => {
                b.set_position(done as u64);
                b.println(format!("  {what}"));
            }
            None => eprintln!("tracelab: cell {done}/{total} {what}"),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tracelab: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => {
            let study = args.into_study(std::env::args().collect())?;
            let progress = CliProgress::new(study.plan.cells().len());
            let finished = study::run(&study, &progress)?;
            if let Some(b) = &progress.bar {
                b.finish_and_clear();
            }
            print!(
                "{}",
                tracelab::results::render(
                    &finished.meta,
                    &finished.cells,
                    tracelab::results::Format::Table
                )?
            );
            println!("results: {}", finished.dir.display());
            let failed = finished
                .cells
                .iter()
                .filter(|c| c.measured.status == Status::Failed)
                .count();
            if failed > 0 {
                eprintln!(
                    "tracelab: {failed} cell(s) failed; see their reasons above and in {}",
                    finished.dir.display()
                );
                return Ok(3);
            }
            Ok(0)
        }
        Command::Show { dir, format } => {
            let format = cli::format(&format)?;
            let (meta, cells) = tracelab::results::load(&dir)?;
            print!("{}", tracelab::results::render(&meta, &cells, format)?);
            Ok(0)
        }
        Command::Compare(args) => tracelab::compare::main(&args),
        Command::Matrix(args) => tracelab::matrix::main(args, std::env::args().collect()),
        Command::Report(args) => tracelab::report::main(&args),
        Command::Kernels { command } => kernels_command(command),
        Command::Doctor { target, mirror } => {
            print!("{}", doctor(&target, mirror)?);
            Ok(0)
        }
    }
}

fn doctor(target: &str, mirror: Option<String>) -> Result<String> {
    use tracelab::target::TargetSpec;
    match target.parse::<TargetSpec>()? {
        TargetSpec::Local => Ok(tracelab::doctor::local_report()),
        TargetSpec::Vm {
            arch,
            kernel: Some(version),
        } => {
            let k = Catalog::new(mirror)?.fetch_kernel(version, arch, false)?;
            let text = std::fs::read_to_string(&k.config)
                .with_context(|| format!("reading {}", k.config.display()))?;
            let env =
                tracelab::doctor::guest_env(&tracelab_model::kconfig::parse(&text), &k.release);
            Ok(format!(
                "guest kernel {} ({arch}), from its config {}\n{}",
                k.release,
                k.config.display(),
                tracelab::doctor::table(&tracelab::doctor::capabilities(&env))
            ))
        }
        TargetSpec::Vm { .. } => {
            anyhow::bail!("doctor needs a catalog kernel (vm:<arch>/<version>)")
        }
    }
}

fn kernels_command(command: KernelsCommand) -> Result<i32> {
    match command {
        KernelsCommand::List { mirror } => {
            let catalog = Catalog::new(mirror)?;
            println!(
                "{:<8} {:<7} {:<18} {:<55} cached",
                "version", "arch", "suite", "package"
            );
            for e in tracelab_kernels::catalog_table() {
                let cached = catalog
                    .cached(e.version, e.arch)
                    .map_or_else(|| "-".to_string(), |k| k.release);
                println!(
                    "{:<8} {:<7} {:<18} {:<55} {cached}",
                    e.version.name(),
                    e.arch.name(),
                    e.suite,
                    e.package
                );
            }
            println!(
                "mirror: {}  cache: {}",
                catalog.mirror(),
                catalog.cache_dir().display()
            );
            Ok(0)
        }
        KernelsCommand::Fetch {
            version,
            arch,
            refresh,
            mirror,
        } => {
            let (version, arch) = cli::kernel_choice(&version, &arch)?;
            let catalog = Catalog::new(mirror)?;
            let k = catalog
                .fetch_kernel(version, arch, refresh)
                .with_context(|| format!("fetching Debian {} for {arch}", version.name()))?;
            println!("{} {} ({})", k.version, k.release, k.arch);
            println!("image:  {}", k.image.display());
            println!("config: {}", k.config.display());
            for p in &k.packages {
                println!("package: {} {} sha256 {}", p.name, p.version, p.sha256);
            }
            Ok(0)
        }
    }
}
