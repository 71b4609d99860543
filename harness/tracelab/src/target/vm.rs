//! The `vm` target: boots a Debian kernel in QEMU with the static agent and collects cells
//! from its console.

use crate::guest::console::{self, Ending, Event};
use crate::guest::initramfs;
use crate::guest::qemu::{self, Accel, Mode, Setup};
use crate::guest::qmp::{Qmp, SocketPath};
use crate::guest::snapshot::{self, Snapshot};
use crate::interrupt::Interrupted;
use crate::progress::{Event as StudyEvent, Observer};
use crate::results::{self, ResultsDir, RunMeta};
use crate::study::{Finished, Snapshots, Study};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracelab_kernels::cache::sha256_bytes;
use tracelab_kernels::{self, Catalog, FetchedKernel, KernelVersion};
use tracelab_model::arch::Arch;
use tracelab_model::cell::Cell;
use tracelab_model::kconfig;
use tracelab_model::protocol::Record;
use tracelab_model::schema::{CellContext, Measured, Status};

/// Env var naming the directory that holds `tracelab-agent-<arch>` binaries.
pub const AGENT_DIR_ENV: &str = "TRACELAB_AGENT_DIR";

/// Finds the static agent for `arch`: in `dir` when given (a matrix's snapshot), else in
/// `$TRACELAB_AGENT_DIR`, else beside this binary.
/// Where the agents and the plugin are looked for: `dir` (a matrix's snapshot), else
/// `$TRACELAB_AGENT_DIR`; then beside this binary.
fn search_dirs(dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = dir {
        dirs.push(d.to_path_buf());
    } else if let Some(d) = std::env::var_os(AGENT_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(d);
    }
    dirs
}

pub fn agent_binary(arch: Arch, dir: Option<&Path>) -> Result<PathBuf> {
    let name = format!("tracelab-agent-{}", arch.name());
    let dirs = search_dirs(dir);
    for d in &dirs {
        let path = d.join(&name);
        if path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            tracelab_kernels::elf::check_static(&bytes, arch)
                .with_context(|| format!("agent {}", path.display()))?;
            return Ok(path);
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "no static agent `{name}` (looked in {}): build it with `scripts/build-agents` or set {AGENT_DIR_ENV}",
        looked.join(", ")
    )
}

/// The QEMU plugin of `--attribution`, found as the agents are.
pub fn plugin_binary(dir: Option<&Path>) -> Result<PathBuf> {
    let name = crate::attribution::PLUGIN_FILE;
    let dirs = search_dirs(dir);
    for d in &dirs {
        let path = d.join(name);
        if path.is_file() {
            if path.to_string_lossy().contains(',') {
                bail!(
                    "the plugin's path {} holds a comma, which QEMU's -plugin option cannot take",
                    path.display()
                );
            }
            return Ok(path);
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "--attribution needs the QEMU plugin `{name}` (looked in {}): build it with `scripts/build-agents`",
        looked.join(", ")
    )
}

pub fn run(
    study: &Study,
    arch: Arch,
    version: Option<KernelVersion>,
    release: Option<&str>,
    observer: &dyn Observer,
) -> Result<Finished> {
    // The plugin first: a QEMU that cannot load it fails in milliseconds, before any
    // download or boot.
    let plugin = if study.plan.attribution {
        let plugin = plugin_binary(study.agent_dir.as_deref())?;
        qemu::check_plugin(guest_setup(study, arch, Accel::Tcg).binary(), &plugin)?;
        Some(plugin)
    } else {
        None
    };
    let catalog = Catalog::new(study.mirror.clone())?;
    let kernel = match (&study.custom_kernel, version) {
        (Some((image, config)), _) => tracelab_kernels::user_kernel(image, config, arch)?,
        (None, Some(v)) => {
            observer.event(
                None,
                StudyEvent::Stage(&format!(
                    "fetching Debian {} kernel for {arch}",
                    release.unwrap_or(v.name())
                )),
            );
            catalog.fetch_release(v, arch, release, false, &|_, _, _| {})?
        }
        (None, None) => bail!("target vm:{arch}/custom needs --kernel <image> and --config <file>"),
    };
    observer.event(
        None,
        StudyEvent::Stage(&format!("fetching busybox-static for {arch}")),
    );
    let busybox = catalog.fetch_busybox(arch)?;
    let agent = agent_binary(arch, study.agent_dir.as_deref())?;
    let config_text = std::fs::read_to_string(&kernel.config)
        .with_context(|| format!("reading kernel config {}", kernel.config.display()))?;
    let config = kconfig::relevant(
        &kconfig::parse(&config_text),
        &tracelab_agent::mechanism::relevant_options(),
    );

    let mut plan = study.plan.clone();
    plan.unit = study.mode.unit();
    plan.kernel_config = config.clone();
    // One line: the agent reads its plan from the console (a tty line, raw).
    let plan_line = serde_json::to_string(&plan)?;
    let initrd = write_initramfs(catalog.cache_dir(), &initramfs::build(&agent, &busybox)?)?;
    // With two vCPUs the plan's arrival time is part of the result: QEMU switches
    // between the vCPUs by guest time, and loops of two runs whose plans arrived on the
    // console at different times differed by up to 20 000 insn. From the initramfs,
    // two boots agree loop for loop; such guests are not kept.
    let plan_in = if study.plan.peer_cpu.is_some() {
        PlanIn::Initramfs {
            agent: &agent,
            busybox: &busybox,
            cache: catalog.cache_dir(),
        }
    } else {
        PlanIn::Console { initrd: &initrd }
    };

    let accel = if study.mode == Mode::Wall && qemu::kvm_usable(arch) {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let mut setup = guest_setup(study, arch, accel);
    let label = kernel.version.clone();
    let run_id = results::new_run_id(&format!("{arch}-{label}"));
    let mut meta = RunMeta {
        kernel_package: Some(package_label(&kernel)),
        kernel_config: config,
        cpu: setup.cpu().to_string(),
        qemu_version: Some(qemu::version(setup.binary())?),
        mode: study.mode.name().to_string(),
        accel: Some(accel.name().to_string()),
        clock: study.mode.clock(arch).to_string(),
        ..super::base_meta(
            study,
            &plan,
            &run_id,
            (arch.name(), &label),
            guest_extra(&setup, &kernel, &agent),
        )
    };
    let dir = study
        .out
        .clone()
        .unwrap_or_else(|| Study::default_out(&run_id));
    let mut store = ResultsDir::create(&dir, &meta)?;
    // One record file per boot: the plugin and the agent both number loops from 1 in each.
    let mut boots = 0;
    let mut next_boot = |setup: &mut Setup| -> Result<Option<PathBuf>> {
        let Some(plugin) = &plugin else {
            return Ok(None);
        };
        boots += 1;
        let out = dir.join(PLUGIN_DIR).join(format!("boot-{boots}.txt"));
        std::fs::create_dir_all(dir.join(PLUGIN_DIR))
            .with_context(|| format!("creating {}", dir.join(PLUGIN_DIR).display()))?;
        setup.plugin = Some((plugin.clone(), out.clone()));
        Ok(Some(out))
    };
    let first = next_boot(&mut setup)?;
    let context = CellContext {
        target: meta.target.clone(),
        arch: meta.arch.clone(),
        kernel: label,
        kernel_release: None,
    };
    let mut boot = Boot {
        store: &mut store,
        meta: &mut meta,
        context,
        plan: &plan,
        observer,
        fatal: None,
        garbled: None,
        hello: false,
        plugin: first.map(crate::attribution::Reader::new),
        symbol_parts: Vec::new(),
        symbols: Default::default(),
        cache: catalog.cache_dir().join("symbols"),
        clock: crate::timing::Clock::start(),
    };

    observer.event(
        None,
        StudyEvent::Stage(&format!(
            "booting {} in QEMU ({}, {})",
            kernel.release,
            accel.name(),
            study.mode.name()
        )),
    );
    // A KVM guest reaches the agent in seconds; one that has not in a minute will not
    // (on hosts where /dev/kvm opens but guests stall), and TCG gets the full timeout.
    let timeouts = match accel {
        Accel::Kvm => console::Timeouts {
            boot: study.timeouts.boot.min(KVM_BOOT_TIMEOUT),
            ..study.timeouts
        },
        Accel::Tcg => study.timeouts,
    };
    // Icount guests are deterministic up to the agent's `ready`: they are kept there and
    // restored (a wall-clock guest boots every time).
    let kept = match (study.snapshots, study.mode, &plan_in) {
        (Snapshots::Use, Mode::Icount, PlanIn::Console { .. }) => Some(Snapshot::of(
            catalog.cache_dir(),
            boot.meta.qemu_version.as_deref().unwrap_or("unknown"),
            &setup,
            &kernel.image,
            &initrd,
        )?),
        _ => None,
    };
    let guest = Guest {
        kernel: &kernel.image,
        plan_in,
        kept: kept.as_ref(),
        observer,
    };
    let mut outcome = guest.start(&setup, &plan_line, timeouts, &mut boot)?;
    if accel == Accel::Kvm && !boot.hello {
        // Debian kernels die early under some KVM hosts (emulation failures); TCG works.
        observer.event(
            None,
            StudyEvent::Stage("the guest did not start under KVM; falling back to TCG"),
        );
        setup = guest_setup(study, arch, Accel::Tcg);
        boot.plugin = next_boot(&mut setup)?.map(crate::attribution::Reader::new);
        boot.meta.accel = Some(Accel::Tcg.name().to_string());
        boot.meta.cpu = setup.cpu().to_string();
        boot.store.update_meta(boot.meta)?;
        outcome = guest.start(&setup, &plan_line, study.timeouts, &mut boot)?;
    }
    // A cell that hangs (an attach that never returns) fails alone: at the cell timeout
    // the guest is killed, that cell fails with the reason, and a fresh guest runs the
    // cells after it. Each restart fails one cell, so this ends. Not after a fault the
    // plan injects on purpose (the chaos and clean-up tests want the run to end there),
    // nor when the guest never reached the agent.
    let mut restarted = Vec::new();
    while let Ending::TimedOut(_) = &outcome.ending {
        let injected = plan
            .fault
            .is_some_and(|f| f != tracelab_model::plan::Fault::HangMidAttach);
        if !boot.hello || injected {
            break;
        }
        let Some(stuck) = boot.first_missing() else {
            break;
        };
        let label = stuck.id().label();
        boot.fail_cell(
            stuck,
            format!(
                "{}; the guest was restarted for the cells after it",
                outcome.ending.reason()
            ),
            &outcome.tail,
        )?;
        if boot.first_missing().is_none() {
            break;
        }
        restarted.push(label.clone());
        boot.meta
            .extra
            .insert("guest_restarts".into(), serde_json::json!(restarted));
        boot.store.update_meta(boot.meta)?;
        observer.event(
            None,
            StudyEvent::Stage(&format!(
                "cell {label} timed out; restarting the guest for the cells after it"
            )),
        );
        let mut rest = plan.clone();
        rest.skip = boot.reported();
        boot.hello = false;
        boot.plugin = next_boot(&mut setup)?.map(crate::attribution::Reader::new);
        outcome = guest.start(
            &setup,
            &serde_json::to_string(&rest)?,
            study.timeouts,
            &mut boot,
        )?;
    }
    if outcome.ending == Ending::Interrupted {
        // Cells the guest never ran are not failures: the run just stops here.
        return Err(Interrupted {
            finished: store.cells().len(),
            dir,
        }
        .into());
    }
    boot.fail_missing(&outcome.ending, &outcome.tail)?;
    let timing = boot.clock.finish(boot.store.cells(), plan.unit.name());
    boot.meta
        .extra
        .insert("timing".into(), serde_json::to_value(&timing)?);
    boot.store.update_meta(boot.meta)?;
    let cells = store.cells().to_vec();
    Ok(Finished { dir, meta, cells })
}

/// Where the agent finds its plan.
enum PlanIn<'a> {
    /// On the console, once it says `ready`: one initramfs serves every plan, and the
    /// guest can be kept there.
    Console { initrd: &'a Path },
    /// In `/plan.json` of an initramfs made for the plan.
    Initramfs {
        agent: &'a Path,
        busybox: &'a Path,
        cache: &'a Path,
    },
}

/// What every start of a run's guest shares.
struct Guest<'a> {
    kernel: &'a Path,
    plan_in: PlanIn<'a>,
    /// The kept state to restore, or to keep at the first boot (icount guests).
    kept: Option<&'a Snapshot>,
    observer: &'a dyn Observer,
}

impl Guest<'_> {
    /// Starts the guest of `setup` and runs `plan_line` in it: restores the kept guest when
    /// there is one, else boots (and keeps the guest at the agent's `ready` when it
    /// should be kept). A kept guest that fails to restore is removed, and the guest is
    /// booted and kept again.
    fn start(
        &self,
        setup: &Setup,
        plan_line: &str,
        timeouts: console::Timeouts,
        boot: &mut Boot,
    ) -> Result<console::Outcome> {
        let initrd = match &self.plan_in {
            PlanIn::Console { initrd } => *initrd,
            PlanIn::Initramfs {
                agent,
                busybox,
                cache,
            } => {
                let initrd = write_initramfs(
                    cache,
                    &initramfs::build_with_plan(agent, busybox, plan_line)?,
                )?;
                boot.clock.starts(crate::timing::Start::Boot);
                let outcome =
                    console::run(setup.command(self.kernel, &initrd), timeouts, &mut |e| {
                        boot.on_event(e)
                    });
                boot.note_start("booted; the plan in the initramfs")?;
                return outcome;
            }
        };
        if let Some((snap, (path, sha))) = self.kept.and_then(|k| Some((k, k.find()?))) {
            self.stage(&format!("restoring the kept guest {}", snap.key()));
            boot.clock.starts(crate::timing::Start::Restore);
            let socket = SocketPath::new();
            let mut cmd = setup.command(self.kernel, initrd);
            cmd.args(socket.qemu_args()).args(snapshot::INCOMING);
            let failed = std::cell::RefCell::new(None);
            let feed = console::Feed {
                at: console::FeedAt::Start,
                line: Box::new(|| {
                    let restored = Qmp::connect(socket.path(), QMP_CONNECT)
                        .and_then(|mut q| snap.restore(&mut q, &path, &sha));
                    if let Err(e) = restored {
                        let why = format!("{e:#}");
                        *failed.borrow_mut() = Some(why.clone());
                        bail!(why);
                    }
                    Ok(plan_line.to_string())
                }),
            };
            let outcome = console::run_fed(cmd, timeouts, Some(feed), &mut |e| boot.on_event(e));
            match (outcome, failed.into_inner()) {
                (Err(_), Some(why)) => {
                    self.stage(&format!(
                        "the kept guest could not be restored ({why}); booting"
                    ));
                    snap.discard();
                }
                (outcome, _) => {
                    boot.note_start(&format!("restored kept guest {}", snap.key()))?;
                    return outcome;
                }
            }
        }
        boot.clock.starts(crate::timing::Start::Boot);
        let socket = SocketPath::new();
        let mut cmd = setup.command(self.kernel, initrd);
        if self.kept.is_some() {
            cmd.args(socket.qemu_args());
        }
        let kept = std::cell::RefCell::new(None);
        let feed = console::Feed {
            at: console::FeedAt::Ready,
            line: Box::new(|| {
                if let Some(snap) = self.kept {
                    let started = std::time::Instant::now();
                    let saved = Qmp::connect(socket.path(), QMP_CONNECT)
                        .and_then(|mut q| snap.save(&mut q));
                    *kept.borrow_mut() =
                        Some((saved.map_err(|e| format!("{e:#}")), started.elapsed()));
                }
                Ok(plan_line.to_string())
            }),
        };
        let outcome = console::run_fed(cmd, timeouts, Some(feed), &mut |e| boot.on_event(e));
        let note = match (kept.into_inner(), self.kept) {
            (Some((Ok(()), took)), Some(snap)) => {
                boot.clock.kept(took);
                format!("booted; kept as {}", snap.key())
            }
            (Some((Err(why), _)), _) => {
                self.stage(&format!("the guest could not be kept: {why}"));
                format!("booted; not kept: {why}")
            }
            _ => "booted".to_string(),
        };
        boot.note_start(&note)?;
        outcome
    }

    fn stage(&self, what: &str) {
        self.observer.event(None, StudyEvent::Stage(what));
    }
}

/// How long QEMU gets to open its QMP socket.
const QMP_CONNECT: std::time::Duration = std::time::Duration::from_secs(30);

/// The state of one guest run, as records arrive.
struct Boot<'a> {
    store: &'a mut ResultsDir,
    meta: &'a mut RunMeta,
    context: CellContext,
    plan: &'a tracelab_model::plan::AgentPlan,
    observer: &'a dyn Observer,
    fatal: Option<String>,
    garbled: Option<String>,
    hello: bool,
    /// The plugin's records of this boot, read as they are written (`--attribution`).
    plugin: Option<crate::attribution::Reader>,
    /// The kernel's symbols as their parts arrive, then parsed.
    symbol_parts: Vec<Option<String>>,
    symbols: crate::attribution::Symbols,
    /// Where received symbols are kept: the user's cache, by content (not every results
    /// directory: they are about 0.7 MB deflated, and each cell keeps its breakdown).
    cache: PathBuf,
    /// What the run's wall time went to.
    clock: crate::timing::Clock,
}

impl Boot<'_> {
    fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Record(Record::Hello {
                kernel_release,
                function,
                cpu,
                counters_absent,
                leftovers_removed,
                environment,
                agent_revision,
                boot_id,
                uptime,
                ..
            }) => {
                self.hello = true;
                self.clock.hello();
                self.context.kernel_release = Some(kernel_release.clone());
                self.meta.kernel_release = Some(kernel_release);
                let extra = &mut self.meta.extra;
                if let Some(f) = function {
                    extra.insert("function".into(), serde_json::Value::String(f));
                }
                extra.insert("pinned_cpu".into(), serde_json::json!(cpu));
                // A counter the guest's PMU lacks is recorded as absent, with why.
                extra.insert("counters_absent".into(), serde_json::json!(counters_absent));
                extra.insert(
                    "leftovers_removed".into(),
                    serde_json::json!(leftovers_removed),
                );
                extra.insert("environment".into(), serde_json::json!(environment));
                extra.insert("agent_revision".into(), serde_json::json!(agent_revision));
                extra.insert("boot_id".into(), serde_json::json!(boot_id));
                extra.insert("agent_start_uptime".into(), serde_json::json!(uptime));
                self.store.update_meta(self.meta)?;
            }
            Event::Record(Record::Cell(measured)) => self.add(*measured, None)?,
            Event::Record(Record::Symbols { part, parts, data }) => {
                self.symbols_part(part, parts, data)?
            }
            Event::Record(Record::Fatal { message }) => self.fatal = Some(message),
            Event::Record(Record::Done | Record::Ready) => {}
            Event::Garbled(why) => self.garbled = Some(why),
            Event::Text(_) => {}
        }
        Ok(())
    }

    /// One part of the kernel's symbols; with the last, they are parsed, kept in the cache
    /// under their SHA256, and named in `meta.json` (`extra.kernel_symbols_sha256`).
    fn symbols_part(&mut self, part: u32, parts: u32, data: String) -> Result<()> {
        let (part, parts) = (part as usize, parts as usize);
        if part >= parts || parts > 100_000 {
            return Ok(());
        }
        self.symbol_parts.resize(parts, None);
        self.symbol_parts[part] = Some(data);
        if let Some(all) = self
            .symbol_parts
            .iter()
            .cloned()
            .collect::<Option<Vec<String>>>()
        {
            let text = crate::attribution::unpack(&all)?;
            self.symbols = crate::attribution::Symbols::parse(&text);
            let sha = sha256_bytes(text.as_bytes());
            let path = self.cache.join(format!("{sha}.txt.gz"));
            if !path.is_file() {
                std::fs::create_dir_all(&self.cache)
                    .with_context(|| format!("creating {}", self.cache.display()))?;
                let mut z =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut z, text.as_bytes())?;
                results::atomic::write(&path, &z.finish()?)?;
            }
            let extra = &mut self.meta.extra;
            extra.insert("kernel_symbols_sha256".into(), serde_json::json!(sha));
            extra.insert(
                "kernel_symbols".into(),
                serde_json::json!(self.symbols.len()),
            );
            self.store.update_meta(self.meta)?;
            self.symbol_parts.clear();
        }
        Ok(())
    }

    fn add(&mut self, mut measured: Measured, tail: Option<String>) -> Result<()> {
        let mut breakdown = None;
        if let Some(reader) = &mut self.plugin {
            let records = reader.update()?;
            match crate::attribution::attach(&mut measured, records) {
                Err(why) if measured.status == Status::Ok => {
                    measured.status = Status::Failed;
                    measured.reason = Some(why);
                }
                _ => breakdown = crate::attribution::breakdown(&measured, records, &self.symbols),
            }
            reader.forget(&measured);
        }
        let mut cell = Cell::new(self.context.clone(), measured, tail);
        cell.attribution = breakdown;
        let write = std::time::Instant::now();
        self.store.add_cell(cell)?;
        self.clock.cell(write.elapsed());
        let done = self.store.cells().len();
        if let Some(c) = self.store.cells().last() {
            self.observer.event(
                None,
                StudyEvent::Cell {
                    cell: c,
                    done,
                    total: self.plan.cells().len(),
                },
            );
        }
        Ok(())
    }

    /// Records how the guest started (each start of the run, in order) in `meta.json`.
    fn note_start(&mut self, how: &str) -> Result<()> {
        let starts = self
            .meta
            .extra
            .entry("guest_starts".to_string())
            .or_insert_with(|| serde_json::json!([]));
        if let Some(list) = starts.as_array_mut() {
            list.push(serde_json::json!(how));
        }
        self.store.update_meta(self.meta)
    }

    /// The cells reported so far.
    fn reported(&self) -> Vec<tracelab_model::cell_id::CellId> {
        self.store.cells().iter().map(|c| c.measured.id()).collect()
    }

    /// The first planned cell without a record.
    fn first_missing(&self) -> Option<tracelab_model::plan::CellSpec> {
        let reported = self.reported();
        self.plan
            .cells()
            .into_iter()
            .find(|c| !reported.contains(&c.id()))
    }

    /// Records `spec` as failed for `reason`, with the console tail.
    fn fail_cell(
        &mut self,
        spec: tracelab_model::plan::CellSpec,
        reason: String,
        tail: &[String],
    ) -> Result<()> {
        let id = spec.id();
        let mut measured = Measured::without_samples(
            spec.mechanism.name(),
            &self.plan.workload,
            self.plan.unit,
            Status::Failed,
            reason,
        );
        measured.payload = id.payload;
        measured.stack = id.stack;
        measured.functions = id.functions;
        measured.other_tracers = id.other_tracers;
        self.add(measured, Some(tail.join("\n")))
    }

    /// Every planned cell the agent did not report becomes a failed cell that says why,
    /// with the console tail.
    fn fail_missing(&mut self, ending: &Ending, tail: &[String]) -> Result<()> {
        let reason = match (&self.fatal, &self.garbled) {
            (Some(f), _) => format!("agent error: {f}"),
            (None, Some(g)) => format!("garbled reply from the guest ({g}); {}", ending.reason()),
            (None, None) => ending.reason(),
        };
        while let Some(spec) = self.first_missing() {
            self.fail_cell(spec, reason.clone(), tail)?;
        }
        Ok(())
    }
}

/// Where a run keeps the plugin's records, one file per boot (`--attribution`).
const PLUGIN_DIR: &str = "plugin";

/// How long a KVM guest gets to start its agent before the run falls back to TCG.
const KVM_BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn package_label(k: &FetchedKernel) -> String {
    let names: Vec<String> = k
        .packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    if names.is_empty() {
        format!("custom kernel {}", k.image.display())
    } else {
        names.join(", ")
    }
}

/// The guest's QEMU settings for `study`: the user's kernel arguments, and a second CPU
/// for a workload peer placed on one.
fn guest_setup(study: &Study, arch: Arch, accel: Accel) -> Setup {
    let mut setup = Setup::new(arch, study.mode, accel);
    setup.kernel_args = study.kernel_args.clone();
    setup.vcpus = study.plan.peer_cpu.map_or(1, |cpu| cpu + 1);
    setup
}

fn guest_extra(
    setup: &Setup,
    kernel: &FetchedKernel,
    agent: &Path,
) -> BTreeMap<String, serde_json::Value> {
    let mut extra = BTreeMap::new();
    let s = |v: String| serde_json::Value::String(v);
    extra.insert(
        "qemu_args".into(),
        s(setup
            .args(Path::new("<kernel>"), Path::new("<initrd>"))
            .join(" ")),
    );
    extra.insert("kernel_cmdline".into(), s(setup.kernel_cmdline()));
    // Only when given: a series without them keeps the identity it had before the flag.
    if !setup.kernel_args.is_empty() {
        extra.insert("kernel_args".into(), s(setup.kernel_args.join(" ")));
    }
    if setup.vcpus != 1 {
        // Part of a series' identity and of what compare matches, like kernel_args.
        extra.insert("vcpus".into(), serde_json::Value::from(setup.vcpus));
    }
    extra.insert("kernel_mirror".into(), s(kernel.mirror.clone()));
    extra.insert("kernel_suite".into(), s(kernel.suite.clone()));
    if let Ok(bytes) = std::fs::read(agent) {
        // Figures depend on the compiled workload binary: record which one ran.
        extra.insert("agent_sha256".into(), s(sha256_bytes(&bytes)));
    }
    extra
}

/// Stores the initramfs under the cache, named by its content (parallel guests never
/// share a file they could overwrite), and drops the ones no run used for a day: each
/// distinct plan makes one (about 5 MB), and they piled up to hundreds of MB.
fn write_initramfs(cache: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = cache.join("initramfs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.cpio", &sha256_bytes(bytes)[..16]));
    if path.exists() {
        // In use again: fresh for the pruning below.
        let _ = std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    } else {
        crate::results::atomic::write(&path, bytes)?;
    }
    crate::guest::prune_unused(&dir, INITRAMFS_KEEP, |name| name.ends_with(".cpio"));
    Ok(path)
}

/// How long an unused initramfs stays in the cache. Far longer than any guest runs, so a
/// parallel guest's file is never removed under it.
const INITRAMFS_KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn unused_initramfs_files_are_pruned_and_used_ones_kept() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = cache.path().join("initramfs");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let age = |p: &Path, days: u64| {
            let f = std::fs::File::options().append(true).open(p).expect("open");
            f.set_modified(SystemTime::now() - Duration::from_secs(days * 24 * 3600))
                .expect("mtime");
        };
        let old = dir.join("old.cpio");
        let other = dir.join("notes.txt");
        for p in [&old, &other] {
            std::fs::write(p, b"x").expect("write");
            age(p, 3);
        }
        // A file used again is made fresh, so the next write's pruning keeps it.
        let reused = write_initramfs(cache.path(), b"plan").expect("written");
        age(&reused, 3);
        assert_eq!(
            write_initramfs(cache.path(), b"plan").expect("reused"),
            reused
        );
        write_initramfs(cache.path(), b"another plan").expect("written");
        assert!(reused.exists(), "an initramfs in use was pruned");
        assert!(!old.exists(), "an initramfs unused for 3 days stays");
        assert!(other.exists(), "only .cpio files are pruned");
    }
}
