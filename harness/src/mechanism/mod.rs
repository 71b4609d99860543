//! Tracing mechanisms: one trait, one implementation per way of hooking a function.
//!
//! A mechanism is installed disarmed, armed around each timed loop and disarmed around
//! each baseline loop, and removed at the end. Its guard removes what it created on every
//! exit path. `hits()` is the proof of firing: events the kernel recorded for the target.

mod baseline;
pub mod bpf;
mod dynamic_probe;
mod ftrace_tracer;
mod kind;

pub use kind::{MechanismKind, UnknownMechanism};

use crate::resolve::TargetFunction;
use crate::tracefs::{KernelEnv, Tracefs};

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
    ) -> anyhow::Result<Option<crate::schema::KernelStatsLoop>> {
        Ok(None)
    }
}

/// The baseline: nothing installed.
pub fn baseline() -> Box<dyn Installed> {
    Box::new(baseline::Baseline)
}

/// Why a mechanism cannot run on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl MechanismKind {
    /// Checks the kernel offers this mechanism; the reason names what is missing.
    pub fn check_support(self, env: &KernelEnv) -> Result<(), Unsupported> {
        match self {
            MechanismKind::Baseline => Ok(()),
            MechanismKind::Kprobe | MechanismKind::KprobeOffset | MechanismKind::Kretprobe => {
                dynamic_probe::check_kprobe_support(env)
            }
            MechanismKind::Fprobe | MechanismKind::FprobeExit => {
                dynamic_probe::check_fprobe_support(env)
            }
            MechanismKind::Function => ftrace_tracer::check_support(env, "function"),
            MechanismKind::FunctionGraph => ftrace_tracer::check_support(env, "function_graph"),
            _ => match self.bpf_attach() {
                Some(attach) => bpf::check_support(attach, env, None),
                None => Err(Unsupported(format!("{self}: no support check"))),
            },
        }
    }

    /// Installs the mechanism on `target`, disarmed.
    pub fn install(
        self,
        tracefs: &Tracefs,
        target: &TargetFunction,
    ) -> anyhow::Result<Box<dyn Installed>> {
        use tracelab_probes::ProbeKind;
        match self {
            MechanismKind::Baseline => Ok(baseline()),
            MechanismKind::Kprobe => dynamic_probe::install(tracefs, target, ProbeKind::Kprobe),
            MechanismKind::KprobeOffset => dynamic_probe::install_at_offset(tracefs, target),
            MechanismKind::Kretprobe => {
                dynamic_probe::install(tracefs, target, ProbeKind::Kretprobe)
            }
            MechanismKind::Fprobe => dynamic_probe::install(tracefs, target, ProbeKind::Fprobe),
            MechanismKind::FprobeExit => {
                dynamic_probe::install(tracefs, target, ProbeKind::FprobeExit)
            }
            MechanismKind::Function => ftrace_tracer::install(tracefs, target, "function"),
            MechanismKind::FunctionGraph => {
                ftrace_tracer::install(tracefs, target, "function_graph")
            }
            // BPF mechanisms carry a payload and a stack: see `bpf::install`.
            _ => anyhow::bail!("{self} is installed through mechanism::bpf::install"),
        }
    }
}

/// Jump optimization of kprobes (x86 optprobes), switched off for the breakpoint path.
pub const KPROBES_OPTIMIZATION: &str = "/proc/sys/debug/kprobes-optimization";

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
