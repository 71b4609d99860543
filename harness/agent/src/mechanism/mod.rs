//! Tracing mechanisms: one trait, one registry.
//!
//! Every mechanism is a row of [`REGISTRY`], in the spirit of the BPF selftests' bench
//! table: it declares its name, the kernel options it needs, its support check and its
//! install. The baseline, tracefs probes, ftrace tracers and BPF programs all go through
//! it; `doctor`, the config options recorded with results and the local preflight are
//! derived from the declarations.
//!
//! An installed mechanism is armed around each timed loop and disarmed around each
//! baseline loop, then removed. Its guard removes what it created on every exit path.
//! `hits()` is the proof of firing: events the kernel recorded for the target.

mod baseline;
pub mod bpf;
mod dynamic_probe;
mod ftrace_tracer;

use crate::resolve::TargetFunction;
use crate::ring_buffer::{self, EventSpec, Role, Tally};
use crate::tracefs::{KernelEnv, Tracefs};
use tracelab_model::kconfig;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::payload::Payload;
use tracelab_model::schema::{KernelStatsLoop, StackTraces, Status};
use tracelab_model::workload::Workload;
use tracelab_probes::bpf::Attach;
use tracelab_probes::{ProbeKind, Symbol};

/// A way of hooking a kernel function, as the registry declares it.
pub trait Mechanism: Sync {
    fn kind(&self) -> MechanismKind;

    /// Kernel options without which it cannot work (all of them must be set).
    fn requires(&self) -> &'static [&'static str];

    /// Checks the running kernel offers it (beyond the config: tracefs files, tracers)
    /// and that it can see `workload`'s calls; the reason names what is missing.
    fn check_support(&self, env: &KernelEnv, workload: Workload) -> Result<(), Unsupported>;

    /// Installs it on the cell's target, disarmed.
    fn install(&self, cell: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError>;

    /// Sets what the cell's installs share, once per cell (a global knob); the guard
    /// undoes it when dropped, after the cell.
    fn prepare(&self, _cell: &CellSetup<'_>) -> Result<Option<Box<dyn std::any::Any>>, CellError> {
        Ok(None)
    }

    /// Installs and arms it once before anything is measured, so that what the kernel
    /// refuses becomes `unsupported` or `failed` with the kernel's words; hands back what
    /// it installed, disarmed, when the measurement may keep it (inert when disarmed).
    /// Only BPF needs it (the verifier and the attach can refuse); the others fail on
    /// install.
    fn preflight(&self, _cell: &CellSetup<'_>) -> Result<Option<Box<dyn Installed>>, CellError> {
        Ok(None)
    }
}

/// What a cell's install needs to know.
pub struct CellSetup<'a> {
    pub workload: Workload,
    /// The workload's helper processes (the pipe's peer): their events are its own.
    pub peers: Vec<u32>,
    pub tracefs: Option<&'a Tracefs>,
    /// The resolved function, or why it could not be resolved.
    pub target: &'a anyhow::Result<TargetFunction>,
    /// BPF cells: what the program does, and how many are stacked.
    pub payload: Option<Payload>,
    pub stack: u32,
    /// Calls of the traced function per timed loop, at most (sizes ring buffers).
    pub calls: u64,
    /// Traced calls per operation of the workload that `calls` counts (the design, or
    /// the most allowed for a function chosen with `--function`).
    pub traced_per_op: u64,
    /// The functions traced beside the target (`--functions N`: N − 1 of them), none of
    /// which the workload calls.
    pub others: &'a [Symbol],
    /// The clean-up and timeout tests' fault: SIGKILL ([`Fault::KillMidAttach`]) or a
    /// hang ([`Fault::HangMidAttach`]) halfway through defining the others' probes.
    pub mid_attach: Option<tracelab_model::plan::Fault>,
    /// Every function is traced (`--functions all`): the tracers run unfiltered.
    pub every_function: bool,
    /// The agent runs alone (a guest): no event beyond the calls' is allowed
    /// ([`crate::firing`]).
    pub alone: bool,
}

impl CellSetup<'_> {
    fn target(&self) -> Result<&TargetFunction, CellError> {
        self.target
            .as_ref()
            .map_err(|e| CellError::Failed(anyhow::anyhow!("{e:#}")))
    }

    /// Refuses a cell on several functions for a mechanism that traces one only.
    fn one_function(&self, kind: MechanismKind, why: &str) -> Result<(), CellError> {
        if self.others.is_empty() {
            return Ok(());
        }
        Err(CellError::Unsupported(format!(
            "{kind} on {} functions: {why}; the functions axis covers {}",
            self.others.len() + 1,
            MechanismKind::ALL
                .iter()
                .filter(|k| k.traces_many())
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Whether the cell's payload is the stack trace (the one a tracefs mechanism takes).
    fn takes_stack(&self) -> bool {
        self.payload == Some(Payload::Stacktrace)
    }

    fn tracefs(&self) -> Result<&Tracefs, CellError> {
        self.tracefs
            .ok_or_else(|| CellError::Failed(anyhow::anyhow!("tracefs is not mounted")))
    }
}

/// A mechanism set up in the kernel. Dropping it removes what it created.
pub trait Installed {
    /// What was written to set it up (for the results).
    fn describe(&self) -> String;
    fn arm(&mut self) -> anyhow::Result<()>;
    fn disarm(&mut self) -> anyhow::Result<()>;
    /// Events recorded so far (monotonic while installed); None for the baseline.
    fn hits(&self) -> anyhow::Result<Option<u64>>;
    /// Events per call of the target function.
    fn events_per_call(&self) -> u64;
    /// Empties what the mechanism recorded (the trace buffer) before a timed loop, so the
    /// buffer holds exactly that loop's events.
    fn before_loop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called as the loop starts, after the wait for a quiet kernel: what tracing every
    /// function paused in `before_loop` records again.
    fn loop_starts(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Checks what the mechanism recorded in the last loop: `expected` events (up to
    /// `slack` more), every one of them of the target function.
    fn check_trace(&self, expected: u64, slack: u64) -> anyhow::Result<()>;
    /// The stack traces taken since it was installed (stack-trace payloads; None for
    /// the others), read outside any timed loop.
    fn stack_traces(&self) -> anyhow::Result<Option<StackTraces>> {
        Ok(None)
    }
    /// Removes everything and checks the kernel is clean again.
    fn remove(self: Box<Self>) -> anyhow::Result<()>;
    /// Whether, disarmed, it leaves nothing on any call path, so it may stay installed
    /// through baseline loops (BPF programs without links) instead of being installed
    /// again for every repeat. Probes are not: a defined kprobe slows calls even disabled.
    fn inert_when_disarmed(&self) -> bool {
        false
    }
    /// Runs `run` (one loop of the workload; returns its elapsed time) with the kernel's
    /// own statistics of the mechanism switched on, verifies them and returns them. None
    /// for mechanisms the kernel keeps no statistics for (everything but BPF).
    /// `ops` is the operations `run` makes.
    fn stats_loop(
        &mut self,
        _ops: u64,
        _run: &mut dyn FnMut() -> anyhow::Result<u64>,
    ) -> anyhow::Result<Option<KernelStatsLoop>> {
        Ok(None)
    }
}

/// Why a mechanism cannot run on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Why a cell has no figures: the kernel lacks the mechanism, or something went wrong.
/// Classified once, where the kernel's answer comes in (libbpf, tracefs).
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<Unsupported> for CellError {
    fn from(u: Unsupported) -> CellError {
        CellError::Unsupported(u.0)
    }
}

impl CellError {
    /// The cell's status and reason.
    pub fn status(&self) -> (Status, String) {
        match self {
            CellError::Unsupported(why) => (Status::Unsupported, why.clone()),
            CellError::Failed(e) => (Status::Failed, format!("{e:#}")),
        }
    }
}

/// Names the first of `options` the config is known to lack.
fn require(env: &KernelEnv, options: &[&str]) -> Result<(), Unsupported> {
    for o in options {
        if kconfig::enabled(&env.config, o) == Some(false) {
            return Err(Unsupported(format!("{o} is not set")));
        }
    }
    Ok(())
}

use baseline::Baseline;
use bpf::Bpf;
use dynamic_probe::{Placement, TracefsProbe};
use ftrace_tracer::{Setup, Tracer};

/// Every mechanism, in `MechanismKind::ALL` order (a test keeps them in step).
pub static REGISTRY: [&dyn Mechanism; 27] = [
    &Baseline,
    &TracefsProbe::new(MechanismKind::Kprobe, Placement::Entry(ProbeKind::Kprobe)),
    &TracefsProbe::new(MechanismKind::KprobeOffset, Placement::Offset),
    &TracefsProbe::new(
        MechanismKind::Kretprobe,
        Placement::Entry(ProbeKind::Kretprobe),
    ),
    &TracefsProbe::new(MechanismKind::Fprobe, Placement::Entry(ProbeKind::Fprobe)),
    &TracefsProbe::new(
        MechanismKind::FprobeExit,
        Placement::Entry(ProbeKind::FprobeExit),
    ),
    &Tracer::new(MechanismKind::Function, "function", Setup::Filter),
    &Tracer::new(
        MechanismKind::FunctionGraph,
        "function_graph",
        Setup::Filter,
    ),
    &Tracer::new(
        MechanismKind::FunctionGraphG,
        "function_graph",
        Setup::GraphFunction,
    ),
    &Bpf::new(MechanismKind::BpfKprobe, Attach::Kprobe),
    &Bpf::new(MechanismKind::BpfKretprobe, Attach::Kretprobe),
    &Bpf::new(MechanismKind::BpfKprobeMulti, Attach::KprobeMulti),
    &Bpf::new(MechanismKind::BpfKretprobeMulti, Attach::KretprobeMulti),
    &Bpf::new(MechanismKind::BpfFentry, Attach::Fentry),
    &Bpf::new(MechanismKind::BpfFentryMulti, Attach::FentryMulti),
    &Bpf::new(MechanismKind::BpfFexit, Attach::Fexit),
    &Bpf::new(MechanismKind::BpfFmodRet, Attach::FmodRet),
    &Bpf::new(MechanismKind::BpfTp, Attach::Tracepoint),
    &Bpf::new(MechanismKind::BpfRawTp, Attach::RawTp),
    &Bpf::new(MechanismKind::BpfTpBtf, Attach::TpBtf),
    &TracefsProbe::new(MechanismKind::Uprobe, Placement::Entry(ProbeKind::Uprobe)),
    &TracefsProbe::new(
        MechanismKind::Uretprobe,
        Placement::Entry(ProbeKind::Uretprobe),
    ),
    &Bpf::new(MechanismKind::BpfUprobe, Attach::Uprobe),
    &Bpf::new(MechanismKind::BpfUretprobe, Attach::Uretprobe),
    &Bpf::new(MechanismKind::BpfUprobeMulti, Attach::UprobeMulti),
    &Bpf::new(MechanismKind::BpfUretprobeMulti, Attach::UretprobeMulti),
    &Bpf::new(MechanismKind::BpfUsdt, Attach::Usdt),
];

/// The registry's row of `kind`.
pub fn get(kind: MechanismKind) -> &'static dyn Mechanism {
    let i = MechanismKind::ALL
        .iter()
        .position(|&k| k == kind)
        .unwrap_or_default();
    REGISTRY[i]
}

/// Options that do not belong to one mechanism but change every figure (ftrace's own
/// machinery, BPF's JIT, mitigations on calls and returns).
const COMMON_OPTIONS: &[&str] = &[
    "CONFIG_FTRACE",
    "CONFIG_DYNAMIC_FTRACE",
    "CONFIG_DYNAMIC_FTRACE_WITH_REGS",
    "CONFIG_DYNAMIC_FTRACE_WITH_ARGS",
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    "CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS",
    "CONFIG_KPROBES_ON_FTRACE",
    "CONFIG_OPTPROBES",
    "CONFIG_KRETPROBES",
    "CONFIG_KRETPROBE_ON_RETHOOK",
    "CONFIG_BPF_KPROBE_OVERRIDE",
    "CONFIG_X86_KERNEL_IBT",
    "CONFIG_MITIGATION_RETPOLINE",
    "CONFIG_RETPOLINE",
    "CONFIG_CALL_DEPTH_TRACKING",
    "CONFIG_MITIGATION_CALL_DEPTH_TRACKING",
    "CONFIG_ARM64_PTR_AUTH_KERNEL",
    "CONFIG_ARM64_BTI_KERNEL",
];

/// The kernel options recorded with every result: every option a mechanism requires,
/// then the common ones and the facts that move figures (`kconfig::FACT_OPTIONS`), each
/// once, sorted.
pub fn relevant_options() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = REGISTRY
        .iter()
        .flat_map(|m| m.requires().iter().copied())
        .chain(COMMON_OPTIONS.iter().copied())
        .chain(tracelab_model::kconfig::FACT_OPTIONS.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Mechanisms a config leaves out, by option: `CONFIG_FPROBE is not set (no fprobe,
/// fprobe-exit, ...)`, one line per missing option, in the order of first need.
pub fn missing_options(config: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut missing: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in REGISTRY.iter() {
        for o in m.requires() {
            if kconfig::enabled(config, o) != Some(false) {
                continue;
            }
            match missing.iter_mut().find(|(opt, _)| opt == o) {
                Some((_, names)) => names.push(m.kind().name()),
                None => missing.push((o, vec![m.kind().name()])),
            }
        }
    }
    missing
        .into_iter()
        .map(|(o, names)| format!("{o} is not set (no {})", names.join(", ")))
        .collect()
}

/// Bytes one trace event may take in the ring buffer (header, common fields, the probe's
/// or tracer's own; function_graph's return event is the largest, about 48).
const EVENT_BYTES: u64 = 64;

/// Bytes a kernel stack entry may take after an event (its header, the frame count and
/// up to 60 frames; a getppid call's stack has about 10).
const STACK_EVENT_BYTES: u64 = 512;

/// The ftrace knobs a tracefs mechanism's cell needs, set once per cell and restored when
/// dropped (the state file covers a killed run):
/// - the ring buffer grown to hold a whole timed loop's events: a buffer that wraps inside
///   the loop makes the figure depend on `--calls` and the buffer size (the overwrite path);
/// - `tracing_on` 1, without which nothing is recorded (a host may have it off);
/// - for the stack-trace payload, the trace option that takes a stack at every event.
struct TraceKnobs {
    tracefs: Tracefs,
    buffer_size_kb: Option<String>,
    tracing_on: Option<String>,
    /// The option set and the value to put back.
    option: Option<(&'static str, String)>,
}

impl TraceKnobs {
    fn set(
        tracefs: &Tracefs,
        calls: u64,
        events_per_call: u64,
        stack_option: Option<&'static str>,
    ) -> anyhow::Result<TraceKnobs> {
        let mut knobs = TraceKnobs {
            tracefs: tracefs.clone(),
            buffer_size_kb: None,
            tracing_on: None,
            option: None,
        };
        let event_bytes = if stack_option.is_some() {
            EVENT_BYTES + STACK_EVENT_BYTES
        } else {
            EVENT_BYTES
        };
        let old = tracefs.read("buffer_size_kb")?;
        // Right after boot it reads `7 (expanded: 1408)`: the size it will have.
        let current: u64 = old
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        let need = (calls
            .saturating_mul(events_per_call)
            .saturating_mul(event_bytes)
            / 1024)
            .saturating_add(256);
        if need > current {
            let old = current.to_string();
            crate::cleanup::record(|s| s.buffer_size_kb = Some(old.clone()))?;
            tracefs.write("buffer_size_kb", &need.to_string())?;
            knobs.buffer_size_kb = Some(old);
        }
        let on = tracefs.read("tracing_on")?.trim().to_string();
        if on != "1" {
            crate::cleanup::record(|s| s.tracing_on = Some(on.clone()))?;
            tracefs.write("tracing_on", "1")?;
            knobs.tracing_on = Some(on);
        }
        if let Some(name) = stack_option {
            let file = format!("options/{name}");
            let old = tracefs.read(&file)?.trim().to_string();
            crate::cleanup::record(|s| {
                s.options.insert(name.to_string(), old.clone());
            })?;
            tracefs.write(&file, "1")?;
            knobs.option = Some((name, old));
        }
        Ok(knobs)
    }
}

impl Drop for TraceKnobs {
    fn drop(&mut self) {
        if let Some(old) = &self.buffer_size_kb {
            if self.tracefs.write("buffer_size_kb", old).is_ok() {
                let _ = crate::cleanup::record(|s| s.buffer_size_kb = None);
            }
        }
        if let Some(old) = &self.tracing_on {
            if self.tracefs.write("tracing_on", old).is_ok() {
                let _ = crate::cleanup::record(|s| s.tracing_on = None);
            }
        }
        if let Some((name, old)) = &self.option {
            if self.tracefs.write(&format!("options/{name}"), old).is_ok() {
                let _ = crate::cleanup::record(|s| {
                    s.options.remove(*name);
                });
            }
        }
    }
}

/// Sets the ftrace knobs of a tracefs mechanism's cell (see [`TraceKnobs`]);
/// `stack_option` is the trace option that takes the stack-trace payload's stacks.
fn trace_knobs(
    cell: &CellSetup<'_>,
    events_per_call: u64,
    stack_option: &'static str,
) -> Result<Option<Box<dyn std::any::Any>>, CellError> {
    let Some(tracefs) = cell.tracefs else {
        return Ok(None);
    };
    let option = cell.takes_stack().then_some(stack_option);
    if let Some(o) = option {
        if !tracefs.exists(&format!("options/{o}")) {
            return Err(CellError::Unsupported(format!(
                "this kernel has no trace option {o} (options/{o})"
            )));
        }
    }
    Ok(Some(Box::new(TraceKnobs::set(
        tracefs,
        cell.calls,
        events_per_call,
        option,
    )?)))
}

/// Events per call of the workload's function the ring buffer is sized for when every
/// function is traced: a getppid call runs about 20 traced functions, the workloads
/// people run more. A loop that still overflows it fails, naming the buffer.
pub(super) const EVERY_EVENTS_PER_CALL: u64 = 64;

/// Events per call of the target a tracefs mechanism's buffer must hold: one, or, with
/// every function traced, the loop's calls of every function on its path. A stack trace
/// of every function is refused: each event's stack must be checked to belong to it,
/// which the lab does for the target's events only.
fn buffer_events_per_call(cell: &CellSetup<'_>) -> Result<u64, CellError> {
    match (cell.every_function, cell.takes_stack()) {
        (false, _) => Ok(1),
        (true, false) => Ok(EVERY_EVENTS_PER_CALL),
        (true, true) => Err(CellError::Unsupported(
            "a stack trace of every function: each event's stack must be checked to belong to it, which the lab does for the target's events only".into(),
        )),
    }
}

/// What tracing every function through the ring buffer (the ftrace tracers unfiltered,
/// an fprobe on `*`) keeps between loops: the target's events, counted apart from the
/// rest by draining the buffer.
#[derive(Default)]
struct Every {
    /// The target's events drained so far (the counter the loops read).
    target_events: std::cell::Cell<u64>,
    /// The last drain.
    last: std::cell::Cell<Tally>,
    /// `tracing_on`, opened once: recording is off from [`Every::pause`] (before the
    /// wait for a quiet kernel) to [`Every::resume`] (as the loop starts). Every
    /// function the idle wait runs would fill the buffer otherwise, and a write through
    /// an open file queues no work of its own.
    switch: std::cell::OnceCell<std::fs::File>,
    paused: std::cell::Cell<bool>,
}

impl Every {
    /// Empties the buffer with recording off (what reading it calls would be traced too,
    /// and a buffer read while it fills never ends), counts the target's events, and
    /// returns the total so far.
    fn drain(
        &self,
        tracefs: &Tracefs,
        events: &[EventSpec],
        target: &TargetFunction,
    ) -> anyhow::Result<u64> {
        use anyhow::Context as _;
        let range = target.range().with_context(|| {
            format!(
                "tracing every function is checked in the raw ring buffer, and kallsyms gives no range for {}",
                target.symbol
            )
        })?;
        // A kill before recording is back on leaves it off: the next run puts back what
        // was there (1 here, unless the cell's knobs already recorded another value).
        let paused = self.paused.get();
        if !paused {
            self.set_recording(tracefs, false)?;
        }
        let drained = ring_buffer::drain_and_count(tracefs, events, range);
        if !paused {
            self.set_recording(tracefs, true)?;
        }
        let t = drained.context(
            "tracing every function: the ring buffer could not hold a loop's events (fewer --calls fit)",
        )?;
        self.last.set(t);
        self.target_events
            .set(self.target_events.get() + t.events());
        Ok(self.target_events.get())
    }

    /// What the last drain held.
    fn last(&self) -> Tally {
        self.last.get()
    }

    /// Stops recording until [`Every::resume`] (before a loop's wait).
    fn pause(&self, tracefs: &Tracefs) -> anyhow::Result<()> {
        self.set_recording(tracefs, false)?;
        self.paused.set(true);
        Ok(())
    }

    /// Records again (as a loop starts, and at removal).
    fn resume(&self, tracefs: &Tracefs) -> anyhow::Result<()> {
        if self.paused.replace(false) {
            self.set_recording(tracefs, true)?;
        }
        Ok(())
    }

    fn set_recording(&self, tracefs: &Tracefs, on: bool) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use std::io::Write as _;
        // A kill while recording is off leaves it off: the next run puts back what was
        // there (1 here, unless the cell's knobs already recorded another value).
        if !on {
            crate::cleanup::record(|s| {
                s.tracing_on.get_or_insert_with(|| "1".into());
            })?;
        }
        let path = tracefs.root().join("tracing_on");
        let file = match self.switch.get() {
            Some(f) => f,
            None => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                self.switch.get_or_init(|| f)
            }
        };
        (&*file)
            .write_all(if on { b"1" } else { b"0" })
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Functions the kernel can trace (`available_filter_functions`), for a description of
/// a cell on every function.
fn traceable_functions(tracefs: &Tracefs) -> String {
    tracefs
        .read("available_filter_functions")
        .map(|t| t.lines().count().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The kernel stack entry ftrace writes after an event with a stack trace option on.
fn stack_event(tracefs: &Tracefs) -> anyhow::Result<EventSpec> {
    EventSpec::read(tracefs, "events/ftrace/kernel_stack", "size", Role::Stack)
}

/// What one line of the `trace` file says, for the formats the lab's mechanisms write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceLine<'a> {
    /// An event of function `name` (function tracer, kprobe, fprobe; for return probes
    /// the probed function, after `<-`).
    Event(&'a str),
    /// function_graph: entry of `name` (`name() {`), a leaf (`name();`, entry and return
    /// merged) or a return (`}`).
    GraphEntry(&'a str),
    GraphLeaf(&'a str),
    GraphReturn,
    /// A comment, marker or blank line.
    Other,
}

/// The symbol of `sym+0x4/0x30`.
fn symbol_of(s: &str) -> &str {
    s.split(['+', '/', ' ']).next().unwrap_or(s)
}

pub(crate) fn parse_trace_line(line: &str) -> TraceLine<'_> {
    let t = line.trim();
    if t.is_empty()
        || t.starts_with('#')
        || t.starts_with("------")
        || t.starts_with("CPU:")
        || t.contains("=>")
        || (t.contains("LOST") && t.contains("EVENTS"))
    {
        return TraceLine::Other;
    }
    // function_graph: ` 0)   0.512 us    |  __do_sys_getppid();`
    if let Some((_, body)) = t.split_once('|') {
        let body = body.trim();
        if body.starts_with('}') {
            return TraceLine::GraphReturn;
        }
        if let Some(name) = body.strip_suffix("();") {
            return TraceLine::GraphLeaf(name.trim());
        }
        if let Some(name) = body.strip_suffix("() {") {
            return TraceLine::GraphEntry(name.trim());
        }
        return TraceLine::Other;
    }
    // `agent-60 [000] ..... 12.345678: <rest>`: the rest follows the timestamp's `: `.
    let Some((_, rest)) = t.split_once(": ") else {
        return TraceLine::Other;
    };
    let rest = rest.trim();
    // A probe event: `kprobe_60: (__do_sys_getppid+0x4/0x30)`.
    if let Some((_event, args)) = rest.split_once(": (") {
        let args = args.trim_end_matches(')');
        // Return probes (kretprobe, fprobe exit) print `(return address <- function)`.
        let name = match args.split_once(" <- ") {
            Some((_, function)) => symbol_of(function),
            None => symbol_of(args),
        };
        return TraceLine::Event(name);
    }
    // The function tracer: `__do_sys_getppid <-do_syscall_64`.
    match rest.split_whitespace().next() {
        Some(name) => TraceLine::Event(name),
        None => TraceLine::Other,
    }
}

/// Checks the whole trace buffer: exactly `expected` events (up to `slack` more), each of
/// the target function, and for function_graph as many returns as entries. Where kallsyms
/// gives the function's addresses, the buffer is read raw: each event by its type id and
/// the address it recorded ([`ring_buffer`]); otherwise the text trace, by exact name.
///
/// With the stack-trace payload (`stacks`), every event must be followed by its stack
/// (read raw only), and the stacks are added to `stacks`.
fn check_trace_exact(
    tracefs: &Tracefs,
    target: &TargetFunction,
    events: &[EventSpec],
    expected: u64,
    slack: u64,
    stacks: Option<&std::cell::Cell<StackTraces>>,
) -> anyhow::Result<()> {
    let tally = match target.range() {
        Some(range) if !events.is_empty() => ring_buffer::drain_and_check(tracefs, events, range)?,
        _ if stacks.is_some() => anyhow::bail!(
            "the stack traces of {} can only be checked in the raw ring buffer, and kallsyms gives no range for it",
            target.symbol
        ),
        _ => check_trace_text(tracefs, target)?,
    };
    let traced = tally.calls + tally.entries;
    if stacks.is_some() && tally.stacks != traced {
        anyhow::bail!(
            "the trace holds {} stack traces for {traced} events of {}",
            tally.stacks,
            target.symbol
        );
    }
    if tally.entries != tally.returns {
        anyhow::bail!(
            "function_graph recorded {} entries of {} but {} returns",
            tally.entries,
            target.symbol,
            tally.returns
        );
    }
    let events = tally.events();
    if events < expected || events > expected + slack {
        anyhow::bail!(
            "the trace holds {events} events of {} for an expected {expected}",
            target.symbol
        );
    }
    // Only a loop that passed counts.
    if let Some(total) = stacks {
        total.set(total.get().plus(StackTraces {
            traces: tally.stacks,
            frames: tally.frames,
        }));
    }
    Ok(())
}

/// The text trace, every line of it, each event by the exact name of its function.
fn check_trace_text(tracefs: &Tracefs, target: &TargetFunction) -> anyhow::Result<Tally> {
    let text = tracefs.read("trace")?;
    let mut tally = Tally::default();
    let is_target = |name: &str| target.names().any(|n| n == name);
    for line in text.lines() {
        let name = match parse_trace_line(line) {
            TraceLine::Other => continue,
            TraceLine::GraphReturn => {
                tally.returns += 1;
                continue;
            }
            TraceLine::Event(n) => {
                tally.calls += 1;
                n
            }
            TraceLine::GraphEntry(n) => {
                tally.entries += 1;
                n
            }
            TraceLine::GraphLeaf(n) => {
                tally.entries += 1;
                tally.returns += 1;
                n
            }
        };
        if !is_target(name) {
            anyhow::bail!(
                "the trace holds an event of {name}, not of {}: {:?}",
                target.symbol,
                line.trim()
            );
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn trace_lines_name_their_function_exactly() {
        use TraceLine::*;
        for (line, want) in [
            ("  tracelab-agent-60  [000] .....  12.345678: __do_sys_getppid <-do_syscall_64", Event("__do_sys_getppid")),
            ("  tracelab-agent-60  [000] .....  12.3: foo <-__do_sys_getppid", Event("foo")),
            ("  agent-1 [000] d.... 1.2: kprobe_60: (__do_sys_getppid+0x4/0x30)", Event("__do_sys_getppid")),
            ("  agent-1 [000] d.... 1.2: kretprobe_60: (el0_svc_common+0x48/0x100 <- __arm64_sys_getppid)", Event("__arm64_sys_getppid")),
            ("  agent-1 [000] ...1. 31.8: fprobe_exit_125: (do_syscall_64+0x87/0x180 <- __do_sys_getppid)", Event("__do_sys_getppid")),
            (" 0)   0.512 us    |  __do_sys_getppid();", GraphLeaf("__do_sys_getppid")),
            (" 0)               |  __do_sys_getppid() {", GraphEntry("__do_sys_getppid")),
            (" 0)   1.000 us    |  }", GraphReturn),
            ("# tracer: nop", Other),
            (" ------------------------------------------", Other),
        ] {
            assert_eq!(parse_trace_line(line), want, "{line}");
        }
    }

    proptest::proptest! {
        /// Any trace line is classified, never a panic (the text check's fallback).
        #[test]
        fn any_trace_line_is_classified(line in "\\PC{0,200}") {
            let _ = parse_trace_line(&line);
        }
    }

    #[test]
    fn registry_has_every_kind_in_order() {
        let kinds: Vec<MechanismKind> = REGISTRY.iter().map(|m| m.kind()).collect();
        assert_eq!(kinds, MechanismKind::ALL.to_vec());
        for k in MechanismKind::ALL {
            assert_eq!(get(k).kind(), k);
        }
    }

    #[test]
    fn options_come_from_the_declarations() {
        let all = relevant_options();
        for o in [
            "CONFIG_KPROBES",
            "CONFIG_FPROBE",
            "CONFIG_FUNCTION_GRAPH_TRACER",
        ] {
            assert!(all.contains(&o), "{o}");
        }
        let config: BTreeMap<String, String> = [
            ("CONFIG_KPROBES", "y"),
            ("CONFIG_FPROBE", "n"),
            ("CONFIG_FUNCTION_GRAPH_TRACER", "n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let missing = missing_options(&config);
        assert!(
            missing.iter().any(|l| l
                .starts_with("CONFIG_FPROBE is not set (no fprobe, fprobe-exit, bpf-kprobe-multi")),
            "{missing:?}"
        );
        assert!(missing.iter().any(|l| l
            == "CONFIG_FUNCTION_GRAPH_TRACER is not set (no function-graph, function-graph-g)"));
    }
}
