//! BPF mechanisms through libbpf-rs: kprobes, kprobe_multi (fprobe), fentry/fexit/fmod_ret
//! trampolines and tracepoints, each with a payload (`empty`, `count`, `record`) and K
//! programs stacked on the same function.
//!
//! Installing loads K copies of the object, each with only the chosen program loaded
//! (`K` verifier runs, `K` sets of maps); arming attaches them (links), disarming drops the
//! links, so a disarmed mechanism has nothing in the kernel's hot path. Dropping the
//! [`BpfMechanism`] closes every link, program and map.
//!
//! Proof of firing: `count` reads the per-CPU counters, `record` drains the ring buffers
//! (and counts failed reservations); `empty` counts nothing itself, so it is proven by the
//! kernel's own `run_cnt` in an untimed loop with `BPF_ENABLE_STATS` on
//! ([`Installed::stats_loop`]) after every armed loop. For the other payloads that loop
//! runs once per cell, a cross-check that records the kernel's `run_time_ns`/`run_cnt`
//! beside our figures; the timed loops always run with statistics
//! off, since the kernel's accounting (two clock reads per run) would inflate them.

pub mod driver;
mod libbpf_log;
mod loaded;
mod stats;

use super::{require, CellError, CellSetup, Installed, Mechanism, Unsupported};
use crate::resolve::TargetFunction;
use crate::tracefs::KernelEnv;
use anyhow::{bail, Context, Result};
use loaded::Loaded;
use std::path::Path;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::schema::{KernelStatsLoop, StackTraces};
use tracelab_model::workload::Workload;
use tracelab_probes::bpf::{self as probes, Attach, Payload};
use tracelab_probes::Symbol;

/// A BPF mechanism: programs of one attach type, with the cell's payload and stack.
pub(super) struct Bpf {
    kind: MechanismKind,
    attach: Attach,
}

impl Bpf {
    pub(super) const fn new(kind: MechanismKind, attach: Attach) -> Bpf {
        Bpf { kind, attach }
    }

    /// Refuses several functions where the attach type takes one.
    fn many(&self, cell: &CellSetup<'_>) -> Result<(), CellError> {
        if self.kind.traces_many() {
            return Ok(());
        }
        cell.one_function(
            self.kind,
            "its programs attach to one tracepoint, function or probe site",
        )
    }

    fn spec(&self, cell: &CellSetup<'_>) -> BpfSpec {
        BpfSpec {
            attach: self.attach,
            payload: cell.payload.unwrap_or(Payload::Count),
            stack: cell.stack,
            calls: cell.calls,
            traced_per_op: cell.traced_per_op,
            workload: cell.workload,
            every: cell
                .every_function
                .then(|| cell.target.as_ref().ok().and_then(|t| t.range()))
                .flatten(),
            alone: cell.alone,
        }
    }

    /// Over every function only kprobe_multi's counting program runs, and it needs the
    /// target's addresses.
    fn every(&self, cell: &CellSetup<'_>) -> Result<(), CellError> {
        if !cell.every_function {
            return Ok(());
        }
        if cell.payload.unwrap_or(Payload::Count) != Payload::Count {
            return Err(CellError::Unsupported(
                "over every function the program counts the target's calls apart from the others' (the count payload); other payloads would need their own filter".into(),
            ));
        }
        if self.spec(cell).every.is_none() {
            return Err(CellError::Failed(anyhow::anyhow!(
                "over every function the program tells the target by its address, and kallsyms gives no range for it"
            )));
        }
        Ok(())
    }
}

impl Mechanism for Bpf {
    fn kind(&self) -> MechanismKind {
        self.kind
    }

    fn requires(&self) -> &'static [&'static str] {
        options(self.attach)
    }

    fn check_support(&self, env: &KernelEnv, workload: Workload) -> Result<(), Unsupported> {
        check_workload(self.attach, workload)?;
        // The kernel's link type first: a kernel without it has no use for the options.
        if let Some(link) = link_type(self.attach) {
            let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
            check_link_type(link, &kallsyms)?;
        }
        check_support(self.attach, env, workload)
    }

    fn install(&self, cell: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError> {
        self.many(cell)?;
        self.every(cell)?;
        install(self.spec(cell), cell.target()?, &cell.peers, cell.others)
    }

    fn preflight(&self, cell: &CellSetup<'_>) -> Result<Option<Box<dyn Installed>>, CellError> {
        self.many(cell)?;
        self.every(cell)?;
        if self.attach == Attach::FmodRet && !in_fmod_ret_set(cell.workload) {
            check_error_injection(cell.target()?, Path::new(ERROR_INJECTION_LIST))?;
        }
        preflight(self.spec(cell), cell.target()?, &cell.peers, cell.others)
    }
}

/// What arm64 needs for BPF trampolines, beyond [`options`].
const ARM64_TRAMPOLINE_OPTION: &str = "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS";
/// What tracing_multi links need beyond trampolines (`select`ed by x86_64 alone).
const SINGLE_DIRECT_OPS_OPTION: &str = "CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS";

/// The kernel options each attach type needs.
fn options(attach: Attach) -> &'static [&'static str] {
    match attach {
        Attach::Kprobe | Attach::Kretprobe => {
            &["CONFIG_BPF_SYSCALL", "CONFIG_KPROBES", "CONFIG_BPF_EVENTS"]
        }
        // kprobe_multi links are built on fprobe.
        Attach::KprobeMulti | Attach::KretprobeMulti => {
            &["CONFIG_BPF_SYSCALL", "CONFIG_FPROBE", "CONFIG_BPF_EVENTS"]
        }
        Attach::Fentry | Attach::Fexit => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_DEBUG_INFO_BTF",
            "CONFIG_BPF_JIT",
        ],
        // The last is checked apart, with why (see check_support).
        Attach::FentryMulti => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_DEBUG_INFO_BTF",
            "CONFIG_BPF_JIT",
            SINGLE_DIRECT_OPS_OPTION,
        ],
        Attach::FmodRet => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_DEBUG_INFO_BTF",
            "CONFIG_BPF_JIT",
            "CONFIG_FUNCTION_ERROR_INJECTION",
        ],
        Attach::Tracepoint => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_FTRACE_SYSCALLS",
            "CONFIG_BPF_EVENTS",
        ],
        Attach::RawTp => &["CONFIG_BPF_SYSCALL", "CONFIG_BPF_EVENTS"],
        Attach::TpBtf => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_BPF_EVENTS",
            "CONFIG_DEBUG_INFO_BTF",
        ],
        // Perf-event uprobes come from the uprobe PMU, which lives in trace_uprobe.c;
        // libbpf attaches USDT probes through them.
        Attach::Uprobe | Attach::Uretprobe | Attach::Usdt => &[
            "CONFIG_BPF_SYSCALL",
            "CONFIG_UPROBES",
            "CONFIG_UPROBE_EVENTS",
            "CONFIG_BPF_EVENTS",
        ],
        Attach::UprobeMulti | Attach::UretprobeMulti => {
            &["CONFIG_BPF_SYSCALL", "CONFIG_UPROBES", "CONFIG_BPF_EVENTS"]
        }
    }
}

/// The kernel function behind uprobe_multi links (Linux 6.6 and later).
const UPROBE_MULTI_SYMBOL: &str = "bpf_uprobe_multi_link_attach";
/// The kernel function behind tracing_multi links (multi-function fentry).
const TRACING_MULTI_SYMBOL: &str = "bpf_tracing_multi_attach";

pub use stats::leftover_programs;

/// Largest total ring-buffer memory a `record` cell may ask for.
const MAX_RINGBUF_BYTES: u64 = 256 << 20;
/// Where the kernel lists the functions fmod_ret may attach to (debugfs).
const ERROR_INJECTION_LIST: &str = "/sys/kernel/debug/error_injection/list";

/// Whether the workload's function is in the kernel's registered fmod_ret set
/// (`bpf_modify_return_test_tp` is, in net/bpf/test_run.c), so fmod_ret attaches to it
/// without error injection.
fn in_fmod_ret_set(workload: Workload) -> bool {
    workload == Workload::BpfKfuncBatch
}

/// Checks the kernel can run `attach` at all (before anything is loaded).
fn check_support(attach: Attach, env: &KernelEnv, workload: Workload) -> Result<(), Unsupported> {
    let opts = options(attach);
    // arm64 attaches BPF trampolines through ftrace direct calls (x86 patches the call
    // site itself): without them the kernel answers ENOTSUPP (524), so name the option.
    let trampoline = matches!(
        attach,
        Attach::Fentry | Attach::FentryMulti | Attach::Fexit | Attach::FmodRet
    );
    if trampoline && matches!(env.machine.as_str(), "aarch64" | "arm64") {
        require(env, &[ARM64_TRAMPOLINE_OPTION]).map_err(|u| {
            Unsupported(format!(
                "{} (arm64 BPF trampolines attach through ftrace direct calls)",
                u.0
            ))
        })?;
    }
    if attach == Attach::FmodRet {
        let (general, injection) = opts.split_at(opts.len() - 1);
        require(env, general)?;
        if in_fmod_ret_set(workload) {
            return Ok(());
        }
        return require(env, injection).map_err(|u| {
            Unsupported(format!(
                "{} (fmod_ret attaches only to functions marked ALLOW_ERROR_INJECTION, which need it, and to security_* hooks)",
                u.0
            ))
        });
    }
    if attach == Attach::FentryMulti {
        let (general, direct_ops) = opts.split_at(opts.len() - 1);
        require(env, general)?;
        return require(env, direct_ops).map_err(|u| {
            Unsupported(format!(
                "{} (a tracing_multi link updates every function's call site through one shared ftrace direct ops, which Linux enables on x86_64 only; elsewhere the kernel answers EOPNOTSUPP)",
                u.0
            ))
        });
    }
    require(env, opts)?;
    if let Some(tp) = workload.tracepoint().filter(|_| is_tracepoint(attach)) {
        if let Some(t) = crate::tracefs::Tracefs::open().ok().filter(|_| env.tracefs) {
            let dir = format!("events/{}/{}", tp.category, tp.name);
            if !t.exists(&dir) {
                return Err(Unsupported(format!(
                    "no tracepoint {}/{} ({} does not exist)",
                    tp.category,
                    tp.name,
                    t.root().join(dir).display()
                )));
            }
        }
    }
    Ok(())
}

/// The kernel function behind the link type `attach` needs where the kernels the lab
/// boots differ, and what to call the link type.
fn link_type(attach: Attach) -> Option<(&'static str, &'static str)> {
    match attach {
        Attach::UprobeMulti | Attach::UretprobeMulti => Some((
            UPROBE_MULTI_SYMBOL,
            "uprobe_multi links (Linux 6.6 and later",
        )),
        Attach::FentryMulti => Some((
            TRACING_MULTI_SYMBOL,
            "multi-function fentry links (BPF_TRACE_FENTRY_MULTI, Linux 7.x",
        )),
        _ => None,
    }
}

/// Refuses a link type whose kernel function `kallsyms` lacks (an unreadable kallsyms
/// leaves the decision to the kernel).
fn check_link_type((symbol, what): (&str, &str), kallsyms: &str) -> Result<(), Unsupported> {
    if !kallsyms.is_empty() && !driver::has_symbol(kallsyms, symbol) {
        return Err(Unsupported(format!(
            "this kernel has no {what}; no {symbol} in /proc/kallsyms)"
        )));
    }
    Ok(())
}

fn is_tracepoint(attach: Attach) -> bool {
    matches!(attach, Attach::Tracepoint | Attach::RawTp | Attach::TpBtf)
}

/// The tracepoint mechanisms need a tracepoint the workload's calls fire: getppid's
/// syscall tracepoints, or the kfunc workload's `bpf_trigger_tp`.
fn check_workload(attach: Attach, workload: Workload) -> Result<(), Unsupported> {
    if is_tracepoint(attach) && workload.tracepoint().is_none() {
        return Err(Unsupported(format!(
            "workload {workload} fires no tracepoint of its own for them (getppid fires syscalls/sys_enter_getppid, bpf-kfunc-batch bpf_test_run:bpf_trigger_tp)"
        )));
    }
    if attach == Attach::Usdt && workload != Workload::Usdt {
        let (provider, name) = tracelab_workloads::USDT_PROBE;
        return Err(Unsupported(format!(
            "workload {workload} reaches no USDT probe (the agent's {provider}:{name} is in workload usdt)"
        )));
    }
    Ok(())
}

/// fmod_ret may only attach where the kernel allows error injection (ALLOW_ERROR_INJECTION):
/// the kernel checks the address, so any alias of the target counts.
fn check_error_injection(target: &TargetFunction, list: &Path) -> Result<(), Unsupported> {
    let Ok(text) = std::fs::read_to_string(list) else {
        // Unknown: let the attach decide (its error names the reason).
        return Ok(());
    };
    let listed = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|f| target.names().any(|n| n == f));
    if listed {
        Ok(())
    } else {
        Err(Unsupported(format!(
            "fmod_ret needs a function that allows error injection: neither {} nor its aliases ({}) are in {}",
            target.symbol,
            target.aliases.join(", "),
            list.display()
        )))
    }
}

/// What a BPF cell installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BpfSpec {
    pub attach: Attach,
    pub payload: Payload,
    /// Programs attached to the function at once.
    pub stack: u32,
    /// Calls per timed loop, at most (sizes the ring buffers).
    pub calls: u64,
    /// Traced calls per operation of the workload.
    pub traced_per_op: u64,
    /// Where the tracepoint mechanisms attach (the workload's tracepoint).
    pub workload: Workload,
    /// Over every function (`--functions all`, kprobe_multi): the target's addresses,
    /// which the program counts apart from every other function's.
    pub every: Option<crate::resolve::Range>,
    /// The agent runs alone: the statistics loops allow no extra run ([`crate::firing`]).
    pub alone: bool,
}

impl BpfSpec {
    /// The workload's tracepoint (tracepoint mechanisms only).
    fn tracepoint(&self) -> Result<tracelab_model::workload::Tracepoint> {
        self.workload
            .tracepoint()
            .with_context(|| format!("workload {} fires no tracepoint", self.workload))
    }

    /// Whether the programs filter getppid: on a raw tracepoint only the workload fires,
    /// they filter nothing.
    pub(super) fn filter(&self) -> probes::Filter {
        match self.workload.tracepoint() {
            Some(tp) if !tp.raw_is_shared => probes::Filter::None,
            _ => probes::Filter::Getppid,
        }
    }

    /// The program's name in the object.
    pub(super) fn program(&self) -> String {
        if self.every.is_some() {
            return probes::EVERY_PROGRAM.to_string();
        }
        self.attach.program(self.payload, self.filter())
    }
}

/// Loads, attaches and detaches `spec` once: what the kernel refuses shows up here, before
/// any measurement, classified as unsupported or failed. The loaded programs, detached,
/// are what the measurement then uses.
fn preflight(
    spec: BpfSpec,
    target: &TargetFunction,
    peers: &[u32],
    others: &[Symbol],
) -> Result<Option<Box<dyn Installed>>, CellError> {
    let mut installed = install(spec, target, peers, others)?;
    let attached = installed.arm();
    let disarmed = installed.disarm();
    match attached.and(disarmed) {
        Ok(()) => Ok(Some(installed)),
        Err(e) => {
            let _ = installed.remove();
            if loaded::is_unsupported(&e) {
                Err(CellError::Unsupported(format!("{e:#}")))
            } else {
                Err(CellError::Failed(e))
            }
        }
    }
}

/// Installs `spec` on `target` (and `others`), disarmed.
fn install(
    spec: BpfSpec,
    target: &TargetFunction,
    peers: &[u32],
    others: &[Symbol],
) -> Result<Box<dyn Installed>, CellError> {
    let ringbuf = ringbuf_bytes(spec)?;
    let mut loaded = Vec::new();
    // Every recorded event must come from the agent or the workload's helpers.
    let ours: Vec<u32> = std::iter::once(std::process::id())
        .chain(peers.iter().copied())
        .collect();
    let classify = |e: anyhow::Error, what: String| {
        let unsupported = loaded::is_unsupported(&e);
        let e = e.context(what);
        if unsupported {
            CellError::Unsupported(format!("{e:#}"))
        } else {
            CellError::Failed(e)
        }
    };
    for i in 0..spec.stack {
        let l = Loaded::load(spec, &target.symbol, ringbuf, &ours).map_err(|e| {
            classify(
                e,
                format!(
                    "loading program {} of {} ({})",
                    i + 1,
                    spec.stack,
                    spec.program()
                ),
            )
        })?;
        loaded.push(l);
    }
    if spec.attach == Attach::FentryMulti {
        let ids = multi_ids(target, others).map_err(CellError::Failed)?;
        for l in &mut loaded {
            l.set_multi_ids(ids.clone());
        }
    }
    // A trampoline program is loaded for one function: one more per other function.
    let mut trampolines = Vec::new();
    if needs_fd_per_function(spec.attach) && !others.is_empty() {
        raise_open_files();
    }
    if is_trampoline(spec.attach) {
        for f in others {
            let l = Loaded::load(spec, f, ringbuf, &ours)
                .map_err(|e| classify(e, format!("loading {} for {f}", spec.program())))?;
            trampolines.push((f.clone(), l));
        }
    }
    Ok(Box::new(BpfMechanism {
        spec,
        target: target.clone(),
        loaded,
        others: others.to_vec(),
        trampoline_hits: trampolines.iter().map(|_| Default::default()).collect(),
        trampolines,
        armed: false,
        tgid: std::process::id(),
    }))
}

/// The BTF ids of the target and `others`, which a tracing_multi link attaches to.
fn multi_ids(target: &TargetFunction, others: &[Symbol]) -> Result<Vec<u32>> {
    let btf = std::fs::read(crate::btf::VMLINUX)
        .with_context(|| format!("reading {}", crate::btf::VMLINUX))?;
    let names: Vec<&str> = std::iter::once(target.symbol.as_str())
        .chain(others.iter().map(|s| s.as_str()))
        .collect();
    crate::btf::func_ids(&btf, &names)
}

/// Whether the cell holds files per traced function: a trampoline program per function
/// (an object, its maps, a program and a link each), or a perf-event kprobe link per
/// function (a perf event and a link each).
fn needs_fd_per_function(attach: Attach) -> bool {
    is_trampoline(attach) || matches!(attach, Attach::Kprobe | Attach::Kretprobe)
}

/// Open files the agent asks for before it holds files per function
/// ([`needs_fd_per_function`]): 100 fentry programs or 1000 kprobe links pass the usual
/// soft limit of 1024, 1000 fentry programs the usual hard limit of 4096.
const OPEN_FILES: libc::rlim_t = 1 << 16;

/// Raises the limit on open files to [`OPEN_FILES`] (root may raise the hard limit), or
/// else the soft limit to the hard one, as bpftrace does. A limit that cannot be raised
/// leaves such a cell to fail with EMFILE, which names the cause.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for every call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= OPEN_FILES {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: OPEN_FILES,
            rlim_max: limit.rlim_max.max(OPEN_FILES),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn is_trampoline(attach: Attach) -> bool {
    matches!(attach, Attach::Fentry | Attach::Fexit | Attach::FmodRet)
}

/// Ring-buffer size per program for `record`: one loop's events (each 8 bytes of header
/// and 16 of data) between two drains, as a power of two of at least one page.
fn ringbuf_bytes(spec: BpfSpec) -> Result<u32> {
    let page = page_size();
    if spec.payload != Payload::Record {
        return Ok(page);
    }
    let need = spec
        .calls
        .saturating_add(64)
        .saturating_mul(24)
        .max(u64::from(page))
        .next_power_of_two();
    let total = need.saturating_mul(u64::from(spec.stack));
    if total > MAX_RINGBUF_BYTES {
        bail!(
            "the record payload needs {} MiB of ring buffer for {} calls × {} programs (limit {} MiB): use fewer --calls",
            total >> 20,
            spec.calls,
            spec.stack,
            MAX_RINGBUF_BYTES >> 20
        );
    }
    u32::try_from(need).context("ring buffer size")
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// Whether someone switched the kernel's BPF statistics on for good (sysctl), so every
/// program run, timed or not, pays two clock reads: the results must say so.
fn stats_always_on() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|v| v.trim() == "1")
}

/// K loaded programs of one kind on one function, and where the cell traces other
/// functions too, the links (kprobe types) or programs (trampolines) on them.
struct BpfMechanism {
    spec: BpfSpec,
    target: TargetFunction,
    loaded: Vec<Loaded>,
    /// The other functions (`--functions`).
    others: Vec<Symbol>,
    /// Trampoline programs on the other functions, one each, counted apart: one that
    /// fires names its function.
    trampolines: Vec<(Symbol, Loaded)>,
    /// Each trampoline's count at the last check.
    trampoline_hits: Vec<std::cell::Cell<u64>>,
    armed: bool,
    /// Our process: every recorded event must come from it.
    tgid: u32,
}

impl BpfMechanism {
    /// Whether the program runs on every syscall (and filters getppid itself), so its
    /// `run_cnt` also counts the agent's own syscalls.
    fn on_every_syscall(&self) -> bool {
        matches!(self.spec.attach, Attach::RawTp | Attach::TpBtf)
            && self
                .spec
                .workload
                .tracepoint()
                .is_some_and(|tp| tp.raw_is_shared)
    }

    fn attach_point(&self) -> String {
        if let Some(site) = &self.target.user {
            let (provider, name) = tracelab_workloads::USDT_PROBE;
            return match self.spec.attach {
                Attach::Usdt => format!("USDT {provider}:{name} in {}", site.path()),
                _ => format!(
                    "{} ({}:0x{:x})",
                    self.target.symbol,
                    site.path(),
                    site.offset
                ),
            };
        }
        let Some(tp) = self.spec.workload.tracepoint() else {
            return self.target.symbol.to_string();
        };
        match self.spec.attach {
            Attach::Tracepoint => format!("tracepoint {}/{}", tp.category, tp.name),
            Attach::RawTp | Attach::TpBtf if tp.raw_is_shared => {
                format!("{} (every syscall; the program filters getppid)", tp.raw)
            }
            Attach::RawTp | Attach::TpBtf => format!("raw tracepoint {}", tp.raw),
            _ => self.target.symbol.to_string(),
        }
    }
}

impl Installed for BpfMechanism {
    fn describe(&self) -> String {
        let how = match self.spec.attach {
            Attach::Kprobe | Attach::Kretprobe => "perf-event kprobe link",
            Attach::KprobeMulti | Attach::KretprobeMulti => "kprobe_multi link (fprobe)",
            Attach::Fentry | Attach::Fexit | Attach::FmodRet => "BPF trampoline",
            Attach::FentryMulti => "tracing_multi link (a BPF trampoline per function)",
            Attach::Tracepoint => "perf-event tracepoint link",
            Attach::RawTp => "raw tracepoint link",
            Attach::TpBtf => "BTF tracepoint link",
            Attach::Uprobe | Attach::Uretprobe => "perf-event uprobe link",
            Attach::UprobeMulti | Attach::UretprobeMulti => "uprobe_multi link",
            Attach::Usdt => "libbpf USDT attach (a uprobe on the note's address)",
        };
        let proof = match self.spec.payload {
            Payload::Empty => "fired = kernel run_cnt over untimed BPF_ENABLE_STATS loops",
            Payload::Count => "fired = per-CPU counters",
            Payload::Record => "fired = ring-buffer events drained",
            Payload::Stacktrace => {
                "bpf_get_stack into a per-CPU buffer; fired = per-CPU counters of stacks taken"
            }
            Payload::Stackid => {
                "bpf_get_stackid into a stack map; fired = per-CPU counters of stacks taken"
            }
        };
        let stats = if stats_always_on() {
            "; kernel.bpf_stats_enabled=1: the timed loops include the kernel's statistics"
        } else {
            ""
        };
        let others = match (self.others.len(), self.spec.attach) {
            (0, _) => String::new(),
            (n, Attach::Kprobe | Attach::Kretprobe) => {
                format!(" and {n} other functions (one link each)")
            }
            (n, Attach::KprobeMulti | Attach::KretprobeMulti | Attach::FentryMulti) => {
                format!(" and {n} other functions (the same link)")
            }
            (n, _) => format!(" and {n} other functions (one program each)"),
        };
        format!(
            "bpf {} × {} on {}{others} ({how}; {proof}{stats})",
            self.spec.program(),
            self.spec.stack,
            self.attach_point()
        )
    }

    fn arm(&mut self) -> Result<()> {
        for (i, l) in self.loaded.iter_mut().enumerate() {
            l.attach(&self.target, &self.others)
                .with_context(|| format!("attaching program {} of {}", i + 1, self.spec.stack))?;
        }
        for (f, l) in &mut self.trampolines {
            l.attach(&self.target, &[])
                .with_context(|| format!("attaching the program on {f}"))?;
        }
        self.armed = true;
        Ok(())
    }

    fn disarm(&mut self) -> Result<()> {
        for l in self
            .loaded
            .iter_mut()
            .chain(self.trampolines.iter_mut().map(|(_, l)| l))
        {
            l.detach();
        }
        self.armed = false;
        Ok(())
    }

    fn hits(&self) -> Result<Option<u64>> {
        if self.spec.payload == Payload::Empty {
            // Proven by the kernel's run_cnt in the statistics loop instead.
            return Ok(None);
        }
        let mut total = 0u64;
        for l in &self.loaded {
            let (hits, failed) = l.hits(self.spec.payload)?;
            if failed > 0 {
                match self.spec.payload {
                    Payload::Record => bail!("the ring buffer was full: {failed} events dropped"),
                    p => bail!("{failed} stacks were not taken ({p} returned an error)"),
                }
            }
            total += hits;
        }
        Ok(Some(total))
    }

    fn stack_traces(&self) -> Result<Option<StackTraces>> {
        let mut out = None;
        for l in &self.loaded {
            if let Some(t) = l.stack_traces(self.spec.payload)? {
                out = Some(t.plus(out.unwrap_or_default()));
            }
        }
        Ok(out)
    }

    fn events_per_call(&self) -> u64 {
        u64::from(self.spec.stack)
    }

    fn inert_when_disarmed(&self) -> bool {
        // A loaded program is only reached through a link, and disarming closes them all.
        true
    }

    fn check_trace(&self, _expected: u64, _slack: u64) -> Result<()> {
        if self.spec.payload != Payload::Empty {
            for ((f, l), seen) in self.trampolines.iter().zip(&self.trampoline_hits) {
                let (hits, _) = l.hits(self.spec.payload)?;
                // Counted since the last check: a loop that is run again starts afresh.
                let new = hits.saturating_sub(seen.replace(hits));
                if new > 0 {
                    bail!("the program on other function {f} fired {new} times in the loop");
                }
            }
        }
        if self.spec.payload != Payload::Record {
            return Ok(());
        }
        for l in &self.loaded {
            let (foreign, malformed) = l.foreign_events();
            if malformed > 0 {
                bail!("{malformed} ring-buffer records have the wrong size");
            }
            if foreign > 0 {
                bail!(
                    "{foreign} events came from another process than the agent (tgid {})",
                    self.tgid
                );
            }
        }
        Ok(())
    }

    fn stats_loop(
        &mut self,
        ops: u64,
        run: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<Option<KernelStatsLoop>> {
        let extra_per_program = if self.on_every_syscall() {
            // Each program's window spans one statistics read (a bpf() syscall) per
            // program, and sys_enter runs for each of them.
            u64::from(self.spec.stack)
        } else {
            0
        };
        stats::stats_loop(&self.loaded, self.spec, ops, extra_per_program, run).map(Some)
    }

    fn remove(mut self: Box<Self>) -> Result<()> {
        self.disarm()?;
        drop(std::mem::take(&mut self.loaded));
        drop(std::mem::take(&mut self.trampolines));
        stats::check_released()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(config: &[(&str, &str)]) -> KernelEnv {
        KernelEnv {
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..KernelEnv::default()
        }
    }

    #[test]
    fn syscall_tracepoints_need_a_syscall_workload() {
        assert_eq!(check_workload(Attach::RawTp, Workload::Getppid), Ok(()));
        assert_eq!(
            check_workload(Attach::Fentry, Workload::BpfNumaBatch),
            Ok(())
        );
        for a in [Attach::Tracepoint, Attach::RawTp, Attach::TpBtf] {
            let why = check_workload(a, Workload::BpfNumaBatch).unwrap_err().0;
            assert!(why.contains("fires no tracepoint"), "{why}");
            assert_eq!(check_workload(a, Workload::BpfKfuncBatch), Ok(()));
        }
        assert_eq!(check_workload(Attach::Usdt, Workload::Usdt), Ok(()));
        let why = check_workload(Attach::Usdt, Workload::UserNop)
            .unwrap_err()
            .0;
        assert!(why.contains("tracelab:site"), "{why}");
    }

    #[test]
    fn arm64_trampolines_need_direct_calls() {
        let mut e = env(&[
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_DEBUG_INFO_BTF", "y"),
            ("CONFIG_BPF_JIT", "y"),
            ("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "n"),
        ]);
        e.machine = "x86_64".into();
        assert_eq!(check_support(Attach::Fentry, &e, Workload::Getppid), Ok(()));
        e.machine = "aarch64".into();
        let why = check_support(Attach::Fexit, &e, Workload::Getppid)
            .unwrap_err()
            .0;
        assert!(
            why.starts_with("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is not set"),
            "{why}"
        );
    }

    #[test]
    fn fentry_multi_needs_single_direct_ops() {
        let mut config = vec![
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_DEBUG_INFO_BTF", "y"),
            ("CONFIG_BPF_JIT", "y"),
            ("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "y"),
        ];
        let why = check_support(Attach::FentryMulti, &env(&config), Workload::Getppid)
            .unwrap_err()
            .0;
        assert!(
            why.starts_with("CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS is not set"),
            "{why}"
        );
        config.push(("CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS", "y"));
        let link = link_type(Attach::FentryMulti).expect("a link type");
        let why = check_link_type(link, "ffff0000 t bpf_kprobe_multi_link_attach\n")
            .unwrap_err()
            .0;
        assert!(why.contains("no bpf_tracing_multi_attach"), "{why}");
        assert_eq!(
            check_link_type(link, "ffff0000 t bpf_tracing_multi_attach\n"),
            Ok(())
        );
        assert_eq!(
            check_support(Attach::FentryMulti, &env(&config), Workload::Getppid),
            Ok(())
        );
    }

    #[test]
    fn kprobe_multi_needs_fprobe() {
        let e = env(&[
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_BPF_EVENTS", "y"),
            ("CONFIG_KPROBES", "y"),
        ]);
        assert_eq!(check_support(Attach::Kprobe, &e, Workload::Getppid), Ok(()));
        assert_eq!(
            check_support(Attach::KprobeMulti, &e, Workload::Getppid),
            Err(Unsupported("CONFIG_FPROBE is not set".into()))
        );
        // Unknown config: nothing is ruled out before trying.
        assert_eq!(
            check_support(Attach::KretprobeMulti, &env(&[]), Workload::Getppid),
            Ok(())
        );
    }

    #[test]
    fn fmod_ret_on_the_kfunc_needs_no_error_injection() {
        let e = env(&[
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_DEBUG_INFO_BTF", "y"),
            ("CONFIG_BPF_JIT", "y"),
            ("CONFIG_FUNCTION_ERROR_INJECTION", "n"),
        ]);
        assert!(check_support(Attach::FmodRet, &e, Workload::Getppid).is_err());
        assert_eq!(
            check_support(Attach::FmodRet, &e, Workload::BpfKfuncBatch),
            Ok(())
        );
    }

    #[test]
    fn raw_tracepoint_programs_filter_only_a_shared_tracepoint() {
        let spec = |workload| BpfSpec {
            attach: Attach::RawTp,
            payload: Payload::Count,
            stack: 1,
            calls: 1,
            traced_per_op: 1,
            workload,
            every: None,
            alone: true,
        };
        assert_eq!(spec(Workload::Getppid).program(), "tracelab_rawtp_count");
        assert_eq!(
            spec(Workload::BpfKfuncBatch).program(),
            "tracelab_rawtpk_count"
        );
    }

    #[test]
    fn fmod_ret_needs_error_injection_by_any_alias() {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("list");
        std::fs::write(&list, "__x64_sys_getppid\tERRNO\n__x64_sys_getpid\tERRNO\n")
            .expect("write");
        let target = TargetFunction {
            symbol: tracelab_model::symbol::Symbol::new("__do_sys_getppid").expect("symbol"),
            aliases: vec!["__x64_sys_getppid".into()],
            address: None,
            end: None,
            user: None,
        };
        assert_eq!(check_error_injection(&target, &list), Ok(()));
        let alone = TargetFunction {
            aliases: vec![],
            ..target
        };
        let why = check_error_injection(&alone, &list).unwrap_err().0;
        assert!(why.contains("error injection"), "{why}");
        // An unreadable list leaves the decision to the kernel.
        assert_eq!(
            check_error_injection(&alone, &dir.path().join("missing")),
            Ok(())
        );
    }

    #[test]
    fn ringbuf_holds_a_loop_and_has_a_limit() {
        let spec = |payload, calls, stack| BpfSpec {
            attach: Attach::Fentry,
            payload,
            stack,
            calls,
            traced_per_op: 1,
            workload: Workload::Getppid,
            every: None,
            alone: true,
        };
        let page = page_size();
        assert_eq!(
            ringbuf_bytes(spec(Payload::Count, 1_000_000, 8)).ok(),
            Some(page)
        );
        let b = ringbuf_bytes(spec(Payload::Record, 20_000, 1)).expect("size");
        assert!(u64::from(b) >= 20_000 * 24 && b.is_power_of_two(), "{b}");
        let err = ringbuf_bytes(spec(Payload::Record, 10_000_000, 8)).unwrap_err();
        assert!(err.to_string().contains("--calls"), "{err}");
    }
}
