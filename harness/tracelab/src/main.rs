//! `tracelab`: parses the command line, calls the library, prints, and maps the outcome
//! to one exit status ([`Exit`]).

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tracelab::cli::{Cli, Command, Exit, KernelsCommand};
use tracelab::compare::Threshold;
use tracelab::render::{fixed, Format};
use tracelab::results::row::one_line;
use tracelab::study::{Event, Observer, TargetSpec};
use tracelab_kernels::Catalog;
use tracelab_model::schema::Status;

/// The one progress observer of `run` and `matrix`: a bar (cells, or guests) and one line
/// per event on a terminal; plain lines on stderr otherwise (CI logs).
struct CliObserver {
    bar: Option<(MultiProgress, ProgressBar)>,
}

impl CliObserver {
    fn new(total: usize, what: &str) -> CliObserver {
        let bar = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}  {{msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            (multi, bar)
        });
        CliObserver { bar }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("tracelab: {text}"),
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for CliObserver {
    fn event(&self, guest: Option<&str>, event: Event<'_>) {
        let tag = guest.map(|g| format!("[{g}] ")).unwrap_or_default();
        match event {
            Event::Stage(what) => match (&self.bar, guest) {
                (Some((_, bar)), None) => bar.set_message(what.to_string()),
                _ => self.line(&format!("{tag}{what}")),
            },
            Event::Cell { cell, done, total } => {
                let m = &cell.measured;
                let what = match (&cell.summary, m.status) {
                    (Some(s), Status::Ok) => {
                        format!("ok, overhead {} {}/call", fixed(s.overhead, 2), m.unit)
                    }
                    _ => format!(
                        "{} {}",
                        m.status,
                        m.reason.as_deref().map(one_line).unwrap_or_default()
                    ),
                };
                if let (Some((_, bar)), None) = (&self.bar, guest) {
                    bar.set_position(done as u64);
                }
                self.line(&format!(
                    "{tag}cell {done}/{total} {}: {what}",
                    m.id().label()
                ));
            }
            Event::GuestDone(entry) => {
                if let Some((_, bar)) = &self.bar {
                    bar.inc(1);
                }
                match &entry.error {
                    Some(e) => self.line(&format!("{tag}error: {e}")),
                    None => self.line(&format!(
                        "{tag}done in {:.0} s: {} cells, {} ok, {} failed",
                        entry.wall_seconds.unwrap_or(0.0),
                        entry.cells,
                        entry.ok_cells,
                        entry.failed_cells
                    )),
                }
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(e) if e.is::<tracelab::interrupt::Interrupted>() => {
            eprintln!("tracelab: {e:#}");
            Exit::Interrupted.into()
        }
        Err(e) => {
            eprintln!("tracelab: error: {e:#}");
            Exit::Error.into()
        }
    }
}

fn run(cli: Cli) -> Result<Exit> {
    let command_line: Vec<String> = std::env::args().collect();
    match cli.command {
        Command::Run(args) => {
            let store = args.store_target()?;
            let study = args.into_study(command_line.clone())?;
            tracelab::interrupt::catch().context("installing the Ctrl-C handler")?;
            let observer = CliObserver::new(study.plan.cells().len(), "cells");
            let finished = tracelab::target::run(&study, &observer);
            observer.finish();
            let finished = finished?;
            print!(
                "{}",
                tracelab::results::render(&finished.meta, &finished.cells, Format::Table)?
            );
            println!("results: {}", finished.dir.display());
            if let Some(s) = store {
                let night = tracelab::history::store::append(
                    &s.store,
                    &s.night,
                    &finished.dir,
                    &command_line,
                )?;
                println!("stored: {}", night.display());
            }
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
                return Ok(Exit::Failed);
            }
            Ok(Exit::Ok)
        }
        Command::Show { dir, format } => {
            let (meta, rows) = tracelab::results::load_rows(&dir)?;
            print!("{}", tracelab::results::render_rows(&meta, &rows, format)?);
            Ok(Exit::Ok)
        }
        Command::Compare(args) => {
            let threshold = Threshold {
                relative: args.threshold,
                floor: args.floor,
            };
            let report =
                tracelab::compare::load_and_compare(&args.baseline, &args.candidate, &threshold)?;
            print!(
                "{}",
                tracelab::compare::render::render(&report, args.format)?
            );
            Ok(if report.regressions() > 0 {
                Exit::Regression
            } else {
                Exit::Ok
            })
        }
        Command::Matrix(args) => {
            let store = args.run.store_target()?;
            let matrix = args.into_matrix(command_line.clone())?;
            tracelab::interrupt::catch().context("installing the Ctrl-C handler")?;
            let observer = CliObserver::new(matrix.guests.len(), "guests");
            observer.line(&format!(
                "{} guests, {} at a time, into {}",
                matrix.guests.len(),
                matrix.jobs,
                matrix.out.display()
            ));
            let started = Instant::now();
            let outcomes = tracelab::matrix::run(&matrix, &observer);
            observer.finish();
            let outcomes = outcomes?;
            print!("{}", tracelab::matrix::summary(&matrix.out, &outcomes));
            println!("wall time: {:.0} s", started.elapsed().as_secs_f64());
            if tracelab::interrupt::requested() {
                eprintln!(
                    "tracelab: interrupted; every finished cell is kept in {}",
                    matrix.out.display()
                );
                return Ok(Exit::Interrupted);
            }
            if let Some(s) = store {
                let night = tracelab::history::store::append(
                    &s.store,
                    &s.night,
                    &matrix.out,
                    &command_line,
                )?;
                println!("stored: {}", night.display());
            }
            Ok(if tracelab::matrix::all_ok(&outcomes) {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        Command::Report(args) => {
            let made = tracelab::report::make(&args.inputs, &args.out, &args.title, args.png)?;
            println!(
                "report: {} ({} runs, {} figures)",
                args.out.join("report.html").display(),
                made.runs,
                made.figures
            );
            println!("summary: {}", args.out.join("report.md").display());
            Ok(Exit::Ok)
        }
        Command::Chaos(args) => chaos(args),
        Command::Peers(args) => {
            let p = tracelab::peers::Peers::new(
                &args.target,
                args.out,
                args.tracelab,
                args.calls,
                args.mirror,
            )?;
            tracelab::interrupt::catch().context("installing the Ctrl-C handler")?;
            let observer = CliObserver::new(tracelab::peers::PROBES.len(), "peers");
            let done = tracelab::peers::run(&p, &observer);
            observer.finish();
            done?;
            let path = p.out.join("peers.md");
            print!("{}", std::fs::read_to_string(&path)?);
            println!("peers: {} (and peers.json)", path.display());
            Ok(Exit::Ok)
        }
        Command::Rehearse(args) => {
            let r = tracelab::rehearsal::Rehearsal::new(
                &args.target,
                args.run,
                args.out,
                args.tracelab,
            )?;
            tracelab::interrupt::catch().context("installing the Ctrl-C handler")?;
            let observer = CliObserver::new(r.agent.plan.cells().len(), "cells");
            let done = tracelab::rehearsal::run(&r, &observer);
            observer.finish();
            let done = done?;
            let path = r.out.join("rehearsal.md");
            print!("{}", std::fs::read_to_string(&path)?);
            println!("rehearsal: {} (and rehearsal.json)", path.display());
            Ok(if done.passed() {
                Exit::Ok
            } else {
                Exit::Regression
            })
        }
        Command::History(args) => {
            let grouping = tracelab::history::Grouping {
                across_kernels: args.across_kernels,
            };
            let (nights, series) = tracelab::history::load(&args.store, grouping)?;
            let h = tracelab::history::analyse(nights, &series, args.threshold, args.floor);
            print!("{}", tracelab::history::render(&h, args.format)?);
            Ok(if h.new_regressions() > 0 {
                Exit::Regression
            } else {
                Exit::Ok
            })
        }
        Command::Publish {
            store,
            out,
            across_kernels,
        } => {
            let grouping = tracelab::history::Grouping { across_kernels };
            let (nights, series) = tracelab::history::load(&store, grouping)?;
            let h = tracelab::history::analyse(nights, &series, 0.01, 1.0);
            let id = tracelab::publish::store_id(&store);
            let p = tracelab::publish::publish(&series, &h, &out, &id)?;
            println!(
                "site: {} ({} pages: {} series, {} changes; feed {})",
                out.join("index.html").display(),
                p.pages,
                p.series,
                p.changes,
                out.join("feed.xml").display()
            );
            Ok(Exit::Ok)
        }
        Command::Bisect(args) => {
            let b = args.into_bisect(command_line)?;
            tracelab::interrupt::catch().context("installing the Ctrl-C handler")?;
            let observer = CliObserver::new(1, "steps");
            let found = tracelab::bisect::run(&b, &observer, &mut |s| {
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
            println!(
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
            Ok(Exit::Ok)
        }
        Command::AddNight {
            store,
            results,
            night,
        } => {
            // What is added must load: a night nobody can read would break every history.
            tracelab::dataset::load(&results)?;
            let night = night.unwrap_or_else(|| {
                tracelab::history::store::default_night(std::time::SystemTime::now())
            });
            let dir = tracelab::history::store::append(&store, &night, &results, &command_line)?;
            println!("stored: {}", dir.display());
            Ok(Exit::Ok)
        }
        Command::Merge { shards, out } => {
            let merged = tracelab::merge::merge(&shards, &out)?;
            println!(
                "merged {} shards, {} guests, into {}",
                merged.shards,
                merged.guests,
                out.display()
            );
            Ok(Exit::Ok)
        }
        Command::Kernels { command } => kernels_command(command),
        Command::Doctor { target, mirror } => {
            print!("{}", doctor(&target, mirror)?);
            Ok(Exit::Ok)
        }
    }
}

fn chaos(args: tracelab::cli::ChaosArgs) -> Result<Exit> {
    let temp = tempfile::Builder::new()
        .prefix("tracelab-chaos-")
        .tempdir()
        .context("creating a work directory")?;
    let work = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let chaos = args.into_chaos(work)?;
    let started = Instant::now();
    eprintln!(
        "tracelab: chaos: {} kills, seed {}, guest {} {}",
        chaos.kills,
        chaos.seed,
        chaos.arch,
        chaos.kernel.name()
    );
    let outcomes = tracelab::chaos::run(&chaos, &mut |o| {
        let what = o.kill.as_ref().map(|k| k.describe()).unwrap_or_default();
        let mut findings: Vec<String> = o
            .leftovers
            .iter()
            .map(|l| format!("leftover: {l}"))
            .collect();
        if o.lost > 0 {
            findings.push(format!("{} lost cells", o.lost));
        }
        findings.extend(o.corrupt.iter().map(|c| format!("corrupt: {c}")));
        let verdict = if findings.is_empty() {
            "clean".to_string()
        } else {
            findings.join("; ")
        };
        eprintln!("tracelab: {what}: {verdict} [{}]", o.note);
    })?;
    let summary = tracelab::chaos::Summary::of(&outcomes);
    println!("{summary}");
    println!("wall time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(if summary.clean() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn doctor(target: &TargetSpec, mirror: Option<String>) -> Result<String> {
    match target {
        TargetSpec::Local => Ok(tracelab::doctor::local_report()),
        TargetSpec::Vm {
            arch,
            kernel: Some(version),
            ..
        } => {
            let k = Catalog::new(mirror)?.fetch_kernel(*version, *arch, false)?;
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

fn kernels_command(command: KernelsCommand) -> Result<Exit> {
    match command {
        KernelsCommand::List { mirror } => {
            let catalog = Catalog::new(mirror)?;
            println!(
                "{:<8} {:<7} {:<20} {:<18} {:<55} note",
                "version", "arch", "release", "suite", "package"
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
                            println!(
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
                    Err(err) => println!(
                        "{:<8} {:<7} {:<20} {:<18} {:<55} index unavailable: {}",
                        e.version.name(),
                        e.arch.name(),
                        "-",
                        e.suite,
                        e.package,
                        tracelab::results::row::one_line(&format!("{err:#}"))
                    ),
                }
            }
            println!(
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
                .fetch_release(line, arch, release.as_deref(), refresh, &|_, _, _| {})
                .with_context(|| format!("fetching Debian {version} for {arch}"))?;
            println!("{} {} ({})", k.version, k.release, k.arch);
            println!("image:  {}", k.image.display());
            println!("config: {}", k.config.display());
            for p in &k.packages {
                println!("package: {} {} sha256 {}", p.name, p.version, p.sha256);
            }
            Ok(Exit::Ok)
        }
    }
}
