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
use crate::tracefs::{KernelEnv, Tracefs};
use tracelab_model::kconfig;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::payload::Payload;
use tracelab_model::schema::{KernelStatsLoop, Status};
use tracelab_model::workload::Workload;
use tracelab_probes::bpf::Attach;
use tracelab_probes::ProbeKind;

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

    /// Installs, arms and removes it once before anything is measured, so that what the
    /// kernel refuses becomes `unsupported` or `failed` with the kernel's words. Only BPF
    /// needs it (the verifier and the attach can refuse); the others fail on install.
    fn preflight(&self, _cell: &CellSetup<'_>) -> Result<(), CellError> {
        Ok(())
    }
}

/// What a cell's install needs to know.
pub struct CellSetup<'a> {
    pub tracefs: Option<&'a Tracefs>,
    /// The resolved function, or why it could not be resolved.
    pub target: &'a anyhow::Result<TargetFunction>,
    /// BPF cells: what the program does, and how many are stacked.
    pub payload: Option<Payload>,
    pub stack: u32,
    /// Calls per timed loop (sizes ring buffers).
    pub calls: u64,
}

impl CellSetup<'_> {
    fn target(&self) -> Result<&TargetFunction, CellError> {
        self.target
            .as_ref()
            .map_err(|e| CellError::Failed(anyhow::anyhow!("{e:#}")))
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
    /// Checks that recorded events name only the target function.
    fn check_trace(&self) -> anyhow::Result<()>;
    /// Removes everything and checks the kernel is clean again.
    fn remove(self: Box<Self>) -> anyhow::Result<()>;
    /// Runs `run` (one loop of the workload; returns its elapsed time) with the kernel's
    /// own statistics of the mechanism switched on, verifies them and returns them. None
    /// for mechanisms the kernel keeps no statistics for (everything but BPF).
    fn stats_loop(
        &mut self,
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
use ftrace_tracer::Tracer;

/// Every mechanism, in `MechanismKind::ALL` order (a test keeps them in step).
pub static REGISTRY: [&dyn Mechanism; 18] = [
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
    &Tracer::new(MechanismKind::Function, "function"),
    &Tracer::new(MechanismKind::FunctionGraph, "function_graph"),
    &Bpf::new(MechanismKind::BpfKprobe, Attach::Kprobe),
    &Bpf::new(MechanismKind::BpfKretprobe, Attach::Kretprobe),
    &Bpf::new(MechanismKind::BpfKprobeMulti, Attach::KprobeMulti),
    &Bpf::new(MechanismKind::BpfKretprobeMulti, Attach::KretprobeMulti),
    &Bpf::new(MechanismKind::BpfFentry, Attach::Fentry),
    &Bpf::new(MechanismKind::BpfFexit, Attach::Fexit),
    &Bpf::new(MechanismKind::BpfFmodRet, Attach::FmodRet),
    &Bpf::new(MechanismKind::BpfTp, Attach::Tracepoint),
    &Bpf::new(MechanismKind::BpfRawTp, Attach::RawTp),
    &Bpf::new(MechanismKind::BpfTpBtf, Attach::TpBtf),
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
/// then the common ones, each once, sorted.
pub fn relevant_options() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = REGISTRY
        .iter()
        .flat_map(|m| m.requires().iter().copied())
        .chain(COMMON_OPTIONS.iter().copied())
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

/// How much of the trace buffer `check_trace` reads: enough for hundreds of events.
const TRACE_CHECK_BYTES: u64 = 64 * 1024;

/// Checks the trace buffer holds events and that each names the target function.
fn check_trace_names(tracefs: &Tracefs, target: &TargetFunction) -> anyhow::Result<()> {
    let text = tracefs.read_head("trace", TRACE_CHECK_BYTES)?;
    let mut events = 0usize;
    // The last line may be cut by the byte limit.
    let complete = text.rsplit_once('\n').map_or("", |(head, _)| head);
    for line in complete.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || is_trace_marker(line) {
            continue;
        }
        if !target.names().any(|n| line.contains(n)) {
            anyhow::bail!(
                "the trace holds an event for another function than {}: {line:?}",
                target.symbol
            );
        }
        events += 1;
    }
    if events == 0 {
        anyhow::bail!("the trace buffer holds no event for {}", target.symbol);
    }
    Ok(())
}

/// Lines the function_graph tracer prints that are not events (CPU switches, overruns).
fn is_trace_marker(line: &str) -> bool {
    line.starts_with("------")
        || line.contains("=>")
        || line.starts_with("CPU:")
        || line.contains("LOST") && line.contains("EVENTS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
        assert!(missing
            .iter()
            .any(|l| l == "CONFIG_FUNCTION_GRAPH_TRACER is not set (no function-graph)"));
    }
}
