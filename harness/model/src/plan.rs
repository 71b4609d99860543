//! What to measure: the plan handed to the agent (in a guest or in-process).

use crate::cell_id::{CellId, Functions};
use crate::mechanism::MechanismKind;
use crate::names::UnknownName;
use crate::payload::Payload;
use crate::schema::Unit;
use crate::symbol::{Symbol, SymbolError};
use crate::workload::Workload;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defaults of the study; small enough that an icount guest finishes in minutes.
pub const DEFAULT_CALLS: u64 = 20_000;
pub const DEFAULT_REPEATS: u32 = 3;
/// Pairs per cell in real time: enough for a bootstrap interval of the median.
pub const DEFAULT_REPEATS_REAL_TIME: u32 = 15;
/// The largest stack of programs on one function.
pub const MAX_STACK: u32 = 64;
/// The most functions one cell may trace at once (`--functions`): more than any kernel
/// the lab boots offers (about 50 000 on Debian's cloud kernels).
pub const MAX_FUNCTIONS: u32 = 100_000;
/// The most other ftrace users beside a cell (`--other-tracers`): each is a trace
/// instance with a ring buffer of its own, and 200 already take seconds to set up in a
/// guest.
pub const MAX_OTHER_TRACERS: u32 = 200;
/// Real time: the most pairs a cell adds while its interval is too wide.
pub const DEFAULT_MAX_REPEATS: u32 = 200;
/// Real time: seconds of measuring per cell after which no further pair starts.
pub const DEFAULT_BUDGET_SECS: u64 = 30;

/// Real time only: after `repeats` pairs, more pairs until the overhead's 95% CI is tight
/// enough ([`crate::summary::precision_goal`]), at most `max_repeats` of them or until
/// `budget_secs` of measuring have passed. Under icount every pair agrees, so it is None.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adaptive {
    pub max_repeats: u32,
    pub budget_secs: u64,
}

fn default_payloads() -> Vec<Payload> {
    vec![Payload::Count]
}

fn default_stacks() -> Vec<u32> {
    vec![1]
}

fn default_functions() -> Vec<Functions> {
    vec![Functions::ONE]
}

fn default_other_tracers() -> Vec<u32> {
    vec![0]
}

/// Everything the agent needs to run its cells, serialized into the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPlan {
    pub mechanisms: Vec<MechanismKind>,
    pub workload: String,
    /// Kernel function to trace; None picks the workload's entry point.
    pub function: Option<String>,
    /// Calls per timed loop.
    pub calls: u64,
    /// Interleaved (baseline, mechanism) pairs per cell.
    pub repeats: u32,
    /// What the clock counts in this target (instructions under icount, else ns).
    pub unit: Unit,
    /// The kernel's build configuration (`CONFIG_*` → value), when the host knows it; used
    /// to name the missing option when a mechanism is unsupported.
    pub kernel_config: BTreeMap<String, String>,
    /// What BPF programs do (one cell per payload); the tracefs mechanisms take the stack
    /// trace only (their other cells have no payload).
    #[serde(default = "default_payloads")]
    pub payloads: Vec<Payload>,
    /// Programs stacked on the function (one cell per value; BPF mechanisms only, the
    /// others run once, unstacked).
    #[serde(default = "default_stacks")]
    pub stacks: Vec<u32>,
    /// Functions each cell traces at once: the workload's own and N − 1 others the agent
    /// chooses (one cell per value; the baseline runs once).
    #[serde(default = "default_functions")]
    pub functions: Vec<Functions>,
    /// Other ftrace users on the kernel while a cell runs: M trace instances, each with
    /// the `function` tracer on one function of its own that the loops never call (one
    /// cell per value; the baseline runs once).
    #[serde(default = "default_other_tracers")]
    pub other_tracers: Vec<u32>,
    /// The agent runs alone on its kernel (a guest): nothing else can call the traced
    /// function, so a mechanism must fire exactly calls × events per call, with no slack.
    #[serde(default)]
    pub alone: bool,
    /// Fault injection for the clean-up tests: the agent signals itself right after it
    /// arms a mechanism (not the baseline) in the second repeat, so a test can interrupt
    /// or kill it at that exact point without polling (which would disturb its loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Real time: repeats that adapt to the interval (None: exactly `repeats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<Adaptive>,
    /// The CPU the workload's peer process runs on (`--vcpus 2`: CPU 1, the agent on
    /// CPU 0); None: the peer shares the agent's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_cpu: Option<u32>,
    /// Cells not to run: those a guest already reported, or failed, before the host
    /// restarted it for the rest (a cell that hung).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<CellId>,
    /// Mark every timed loop for the QEMU plugin (`--attribution`): a start and an end
    /// marker instruction around the timed span, outside the clock reads, each loop
    /// numbered so the plugin's record of it joins its sample.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attribution: bool,
}

/// What the agent does to itself once armed, or to its kernel (see [`AgentPlan::fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGINT: the run stops after the current loop and cleans up.
    InterruptWhenArmed,
    /// SIGKILL: nothing cleans up; the next run must.
    KillWhenArmed,
    /// SIGKILL halfway through defining a cell's probes on several functions
    /// (`--functions`): hundreds of probes left, the next run must remove them all.
    KillMidAttach,
    /// The agent stops forever halfway through defining a cell's probes on several
    /// functions, as an attach that never returns would: the host must fail that cell at
    /// its timeout and run the cells after it in a fresh guest.
    HangMidAttach,
    /// The kernel panics (sysrq `c`) this many milliseconds of guest time after the agent
    /// starts: what the host does with a guest that dies mid-run (`tracelab chaos`).
    PanicAfterMs(u64),
}

impl Fault {
    /// Whether it strikes in the second repeat (so the plan needs one).
    pub fn when_armed(self) -> bool {
        matches!(self, Fault::InterruptWhenArmed | Fault::KillWhenArmed)
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    /// `interrupt-when-armed`, `kill-when-armed` or `panic-after-ms=N`.
    fn from_str(s: &str) -> Result<Fault, String> {
        match s.split_once('=') {
            None if s == "interrupt-when-armed" => Ok(Fault::InterruptWhenArmed),
            None if s == "kill-when-armed" => Ok(Fault::KillWhenArmed),
            None if s == "kill-mid-attach" => Ok(Fault::KillMidAttach),
            None if s == "hang-mid-attach" => Ok(Fault::HangMidAttach),
            Some(("panic-after-ms", ms)) => ms
                .parse()
                .map(Fault::PanicAfterMs)
                .map_err(|_| format!("panic-after-ms needs a number of milliseconds, not `{ms}`")),
            _ => Err(format!(
                "unknown fault `{s}` (valid: interrupt-when-armed, kill-when-armed, kill-mid-attach, hang-mid-attach, panic-after-ms=N)"
            )),
        }
    }
}

/// One cell of a plan: a mechanism, for BPF its payload and stack, the number of
/// functions traced at once and of other tracers beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSpec {
    pub mechanism: MechanismKind,
    pub payload: Option<Payload>,
    pub stack: u32,
    pub functions: Functions,
    pub other_tracers: u32,
}

impl CellSpec {
    /// The cell's identity, as every output names it.
    pub fn id(&self) -> CellId {
        CellId {
            mechanism: self.mechanism.name().to_string(),
            payload: self.payload.map(|p| p.name().to_string()),
            stack: self.stack,
            functions: self.functions,
            other_tracers: self.other_tracers,
        }
    }
}

/// A plan that cannot run, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("calls must be at least 1")]
    NoCalls,
    #[error("repeats must be at least 1")]
    NoRepeats,
    #[error("no mechanisms selected (valid: {})", MechanismKind::valid_names())]
    NoMechanisms,
    #[error("mechanism `{0}` is listed twice")]
    Duplicate(String),
    #[error("no payloads selected (valid: {})", Payload::valid_names())]
    NoPayloads,
    #[error("payload `{0}` is listed twice")]
    DuplicatePayload(String),
    #[error("stack sizes must be 1 to {MAX_STACK} programs, each listed once (got {0:?})")]
    BadStacks(Vec<u32>),
    #[error("--functions takes numbers of functions from 1 to {MAX_FUNCTIONS} or `all`, each listed once, e.g. --functions 1,10,100,all (got {0:?})")]
    BadFunctions(Vec<Functions>),
    #[error("--functions above 1 traces kernel functions, and workload {0} traces one of the agent's own")]
    FunctionsOnUserWorkload(String),
    #[error("workload {0} calls one of the agent's own functions, and none of the mechanisms asked traces user space: every cell would be unsupported; add --mechanisms user (uprobe, uretprobe, bpf-uprobe, ...)")]
    NoUserMechanism(String),
    #[error("only user-space probes are asked, and workload {0} calls the kernel: every cell would be unsupported; use a user-space workload (user-nop, user-push, user-ret, user-nop5, usdt) or kernel mechanisms")]
    OnlyUserMechanisms(String),
    #[error("--other-tracers takes numbers of other ftrace users from 0 to {MAX_OTHER_TRACERS}, each listed once, e.g. --other-tracers 0,1,10,100 (got {0:?})")]
    BadOtherTracers(Vec<u32>),
    #[error("--other-tracers above 0 traces kernel functions beside the workload's, and workload {0} traces one of the agent's own")]
    OtherTracersOnUserWorkload(String),
    #[error(transparent)]
    Workload(#[from] UnknownName),
    /// Not a `#[from]`/source: the message already holds the symbol error, and a source
    /// would make an error chain print it twice.
    #[error("--function: {0}")]
    Function(SymbolError),
    #[error("--function names a kernel function, and workload {0} traces one of the agent's own ({1}); leave --function out")]
    FunctionOnUserWorkload(String, &'static str),
    #[error("adaptive repeats (--max-repeats, --budget) apply to real time only: --mode wall or --target local")]
    AdaptiveUnderIcount,
    #[error("a fault is injected in the second repeat: the plan needs at least 2 repeats")]
    FaultWithoutSecondRepeat,
    #[error("--vcpus 2 runs the workload's peer process on a second CPU, and workload {0} has no peer (valid: pipe)")]
    NoPeer(String),
    #[error("the peer's CPU must differ from the agent's CPU 0")]
    PeerOnAgentCpu,
    #[error("--max-repeats ({max}) is below --repeats ({min})")]
    MaxBelowMin { max: u32, min: u32 },
}

impl From<SymbolError> for PlanError {
    fn from(e: SymbolError) -> PlanError {
        PlanError::Function(e)
    }
}

impl AgentPlan {
    /// Checks the plan before anything runs.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.calls == 0 {
            return Err(PlanError::NoCalls);
        }
        if self.repeats == 0 {
            return Err(PlanError::NoRepeats);
        }
        if self.mechanisms.is_empty() {
            return Err(PlanError::NoMechanisms);
        }
        for (i, m) in self.mechanisms.iter().enumerate() {
            if self.mechanisms[..i].contains(m) {
                return Err(PlanError::Duplicate(m.name().to_string()));
            }
        }
        if self.payloads.is_empty() {
            return Err(PlanError::NoPayloads);
        }
        for (i, p) in self.payloads.iter().enumerate() {
            if self.payloads[..i].contains(p) {
                return Err(PlanError::DuplicatePayload(p.name().to_string()));
            }
        }
        if !distinct_within(&self.stacks, 1, MAX_STACK) {
            return Err(PlanError::BadStacks(self.stacks.clone()));
        }
        let in_range = |f: &Functions| f.count().is_none_or(|n| (1..=MAX_FUNCTIONS).contains(&n));
        if self.functions.is_empty()
            || !self.functions.iter().all(in_range)
            || (1..self.functions.len()).any(|i| self.functions[..i].contains(&self.functions[i]))
        {
            return Err(PlanError::BadFunctions(self.functions.clone()));
        }
        if !distinct_within(&self.other_tracers, 0, MAX_OTHER_TRACERS) {
            return Err(PlanError::BadOtherTracers(self.other_tracers.clone()));
        }
        let workload = self.workload.parse::<Workload>()?;
        // Caught before a guest boots: a plan whose every cell would be unsupported.
        let traced: Vec<MechanismKind> = self
            .mechanisms
            .iter()
            .copied()
            .filter(|m| *m != MechanismKind::Baseline)
            .collect();
        if workload.is_user() && !traced.is_empty() && !traced.iter().any(|m| m.traces_user_space())
        {
            return Err(PlanError::NoUserMechanism(workload.name().to_string()));
        }
        if !workload.is_user() && !traced.is_empty() && traced.iter().all(|m| m.traces_user_space())
        {
            return Err(PlanError::OnlyUserMechanisms(workload.name().to_string()));
        }
        if workload.is_user() && self.functions.iter().any(|n| !n.is_one()) {
            return Err(PlanError::FunctionsOnUserWorkload(
                workload.name().to_string(),
            ));
        }
        if workload.is_user() && self.max_other_tracers() > 0 {
            return Err(PlanError::OtherTracersOnUserWorkload(
                workload.name().to_string(),
            ));
        }
        if let Some(f) = &self.function {
            Symbol::new(f)?;
            if workload.is_user() {
                return Err(PlanError::FunctionOnUserWorkload(
                    workload.name().to_string(),
                    workload.entry_symbols("")[0],
                ));
            }
        }
        match self.peer_cpu {
            Some(_) if !workload.has_peer() => {
                return Err(PlanError::NoPeer(workload.name().to_string()))
            }
            Some(0) => return Err(PlanError::PeerOnAgentCpu),
            _ => {}
        }
        if self.fault.is_some_and(Fault::when_armed) && self.repeats < 2 {
            return Err(PlanError::FaultWithoutSecondRepeat);
        }
        if let Some(a) = self.adaptive {
            if self.unit == Unit::Insn {
                return Err(PlanError::AdaptiveUnderIcount);
            }
            if a.max_repeats < self.repeats {
                return Err(PlanError::MaxBelowMin {
                    max: a.max_repeats,
                    min: self.repeats,
                });
            }
        }
        Ok(())
    }

    /// The cells in run order: each mechanism in turn; a BPF mechanism once per
    /// (payload, stack, functions, other tracers), every other mechanism once per
    /// (stack-trace payload or none, functions, other tracers), the baseline once.
    pub fn cells(&self) -> Vec<CellSpec> {
        let mut cells = Vec::new();
        for &m in &self.mechanisms {
            let (functions, others): (&[Functions], &[u32]) = if m == MechanismKind::Baseline {
                (&[Functions::ONE], &[0])
            } else {
                (&self.functions, &self.other_tracers)
            };
            let variants: Vec<(Option<Payload>, u32)> = if m.is_bpf() {
                self.payloads
                    .iter()
                    .flat_map(|&p| self.stacks.iter().map(move |&k| (Some(p), k)))
                    .collect()
            } else {
                self.tracefs_payloads(m)
                    .into_iter()
                    .map(|p| (p, 1))
                    .collect()
            };
            for (payload, stack) in variants {
                for &n in functions {
                    for &o in others {
                        cells.push(CellSpec {
                            mechanism: m,
                            payload,
                            stack,
                            functions: n,
                            other_tracers: o,
                        });
                    }
                }
            }
        }
        cells
    }

    /// The payloads of a mechanism that is not BPF: the stack trace when the plan has it,
    /// and its event alone (no payload) when the plan has a payload that takes no stack
    /// (or no stack trace at all).
    fn tracefs_payloads(&self, m: MechanismKind) -> Vec<Option<Payload>> {
        let stack = self.payloads.contains(&Payload::Stacktrace);
        if m == MechanismKind::Baseline || !stack {
            return vec![None];
        }
        let plain = self.payloads.iter().any(|p| !p.takes_stack());
        let mut out = Vec::new();
        if plain {
            out.push(None);
        }
        out.push(Some(Payload::Stacktrace));
        out
    }

    /// The cells this run of the agent runs: [`AgentPlan::cells`] less `skip`.
    pub fn cells_to_run(&self) -> Vec<CellSpec> {
        self.cells()
            .into_iter()
            .filter(|c| !self.skip.contains(&c.id()))
            .collect()
    }

    /// The most functions any cell traces at once that the agent chooses (`all` takes
    /// the kernel's whole list, unchosen).
    pub fn max_functions(&self) -> u32 {
        self.functions
            .iter()
            .filter_map(|f| f.count())
            .max()
            .unwrap_or(1)
    }

    /// Whether some cell traces more than one function (N > 1 or `all`): those install
    /// from nothing in every repeat, and record attach and detach times.
    pub fn many_functions(&self) -> bool {
        self.functions.iter().any(|n| !n.is_one())
    }

    /// The most other tracers beside any cell.
    pub fn max_other_tracers(&self) -> u32 {
        self.other_tracers.iter().copied().max().unwrap_or(0)
    }
}

/// Whether `values` is non-empty, each from `min` to `max` and listed once.
fn distinct_within(values: &[u32], min: u32, max: u32) -> bool {
    !values.is_empty()
        && values
            .iter()
            .enumerate()
            .all(|(i, v)| (min..=max).contains(v) && !values[..i].contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AgentPlan {
        AgentPlan {
            mechanisms: MechanismKind::ALL.to_vec(),
            workload: "getppid".into(),
            function: None,
            calls: 10,
            repeats: 2,
            unit: Unit::Insn,
            kernel_config: BTreeMap::new(),
            alone: false,
            fault: None,
            payloads: vec![Payload::Count],
            stacks: vec![1],
            functions: vec![Functions::ONE],
            other_tracers: vec![0],
            adaptive: None,
            peer_cpu: None,
            skip: Vec::new(),
            attribution: false,
        }
    }

    #[test]
    fn adaptive_repeats_are_for_real_time() {
        let mut p = plan();
        p.adaptive = Some(Adaptive {
            max_repeats: 50,
            budget_secs: 5,
        });
        assert_eq!(p.validate(), Err(PlanError::AdaptiveUnderIcount));
        p.unit = Unit::Ns;
        assert_eq!(p.validate(), Ok(()));
        p.repeats = 60;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("below --repeats (60)"));
        let mut p = plan();
        p.fault = Some(Fault::KillWhenArmed);
        p.repeats = 1;
        assert_eq!(p.validate(), Err(PlanError::FaultWithoutSecondRepeat));
    }

    #[test]
    fn cells_cross_bpf_mechanisms_with_payloads_and_stacks() {
        let mut p = plan();
        p.mechanisms = vec![MechanismKind::Kprobe, MechanismKind::BpfFentry];
        p.payloads = vec![Payload::Empty, Payload::Record];
        p.stacks = vec![1, 4];
        p.validate().expect("valid");
        let labels: Vec<String> = p.cells().iter().map(|c| c.id().label()).collect();
        assert_eq!(
            labels,
            [
                "kprobe",
                "bpf-fentry/empty/k1",
                "bpf-fentry/empty/k4",
                "bpf-fentry/record/k1",
                "bpf-fentry/record/k4"
            ]
        );
        let mut p = plan();
        p.mechanisms = vec![MechanismKind::Baseline, MechanismKind::Kprobe];
        p.functions = vec![Functions::ONE, Functions::Count(10)];
        let labels: Vec<String> = p.cells().iter().map(|c| c.id().label()).collect();
        assert_eq!(labels, ["baseline", "kprobe", "kprobe/n10"]);
        assert_eq!(p.max_functions(), 10);
        p.functions = vec![Functions::ONE];
        p.other_tracers = vec![0, 100];
        p.validate().expect("valid");
        let labels: Vec<String> = p.cells().iter().map(|c| c.id().label()).collect();
        assert_eq!(labels, ["baseline", "kprobe", "kprobe/m100"]);
        p.other_tracers = vec![0, 201];
        let err = p.validate().unwrap_err().to_string();
        assert!(
            err.contains("from 0 to 200") && err.contains("0,1,10,100"),
            "{err}"
        );
        p.other_tracers = vec![1, 1];
        assert!(p.validate().is_err());
        p.other_tracers = vec![1];
        p.workload = "user-nop".into();
        p.mechanisms = vec![MechanismKind::Baseline, MechanismKind::Uprobe];
        assert_eq!(
            p.validate(),
            Err(PlanError::OtherTracersOnUserWorkload("user-nop".into()))
        );
        // The stack trace is the one payload a tracefs mechanism takes.
        let mut p = plan();
        p.mechanisms = vec![
            MechanismKind::Baseline,
            MechanismKind::Kprobe,
            MechanismKind::BpfKprobe,
        ];
        p.payloads = vec![Payload::Count, Payload::Stacktrace, Payload::Stackid];
        let labels: Vec<String> = p.cells().iter().map(|c| c.id().label()).collect();
        assert_eq!(
            labels,
            [
                "baseline",
                "kprobe",
                "kprobe/stacktrace/k1",
                "bpf-kprobe/count/k1",
                "bpf-kprobe/stacktrace/k1",
                "bpf-kprobe/stackid/k1"
            ]
        );
        p.payloads = vec![Payload::Stacktrace, Payload::Stackid];
        let labels: Vec<String> = p.cells().iter().map(|c| c.id().label()).collect();
        assert_eq!(
            labels,
            [
                "baseline",
                "kprobe/stacktrace/k1",
                "bpf-kprobe/stacktrace/k1",
                "bpf-kprobe/stackid/k1"
            ]
        );
    }

    #[test]
    fn rejects_bad_axes() {
        let mut p = plan();
        p.payloads = vec![];
        assert_eq!(p.validate(), Err(PlanError::NoPayloads));
        p.payloads = vec![Payload::Count, Payload::Count];
        assert_eq!(
            p.validate(),
            Err(PlanError::DuplicatePayload("count".into()))
        );
        for stacks in [vec![], vec![0], vec![2, 2], vec![MAX_STACK + 1]] {
            let mut p = plan();
            p.stacks = stacks.clone();
            assert_eq!(p.validate(), Err(PlanError::BadStacks(stacks)));
        }
        let n = Functions::Count;
        for functions in [
            vec![],
            vec![Functions::All, Functions::All],
            vec![n(10), n(10)],
            vec![n(MAX_FUNCTIONS + 1)],
            vec![n(0)],
        ] {
            let mut p = plan();
            p.functions = functions.clone();
            assert_eq!(p.validate(), Err(PlanError::BadFunctions(functions)));
        }
        let mut p = plan();
        p.functions = vec![n(1), Functions::All];
        assert_eq!(p.validate(), Ok(()));
        assert!(p.many_functions());
        assert_eq!(p.max_functions(), 1, "all chooses nothing");
        let mut p = plan();
        p.workload = "user-nop".into();
        p.mechanisms = vec![MechanismKind::Baseline, MechanismKind::Kprobe];
        assert_eq!(
            p.validate(),
            Err(PlanError::NoUserMechanism("user-nop".into()))
        );
        p.mechanisms = vec![MechanismKind::Uprobe];
        p.workload = "getppid".into();
        assert_eq!(
            p.validate(),
            Err(PlanError::OnlyUserMechanisms("getppid".into()))
        );
        p.workload = "user-nop".into();
        p.functions = vec![n(1), n(10)];
        assert_eq!(
            p.validate(),
            Err(PlanError::FunctionsOnUserWorkload("user-nop".into()))
        );
    }

    #[test]
    fn plans_without_axes_read_as_count_unstacked() {
        let mut json = serde_json::to_value(plan()).expect("json");
        let obj = json.as_object_mut().expect("object");
        obj.remove("payloads");
        obj.remove("stacks");
        obj.remove("functions");
        let p: AgentPlan = serde_json::from_value(json).expect("parse");
        assert_eq!(
            (p.payloads, p.stacks, p.functions),
            (vec![Payload::Count], vec![1], vec![Functions::ONE])
        );
    }

    #[test]
    fn default_plan_is_valid_and_round_trips() {
        let p = plan();
        p.validate().expect("valid");
        let json = serde_json::to_string(&p).expect("json");
        assert!(json.contains("\"function-graph\""), "{json}");
        assert_eq!(serde_json::from_str::<AgentPlan>(&json).expect("parse"), p);
    }

    #[test]
    fn rejects_bad_plans() {
        let mut p = plan();
        p.calls = 0;
        assert_eq!(p.validate(), Err(PlanError::NoCalls));
        let mut p = plan();
        p.mechanisms = vec![MechanismKind::Kprobe, MechanismKind::Kprobe];
        assert_eq!(p.validate(), Err(PlanError::Duplicate("kprobe".into())));
        let mut p = plan();
        p.function = Some("x\np:evil do_exit".into());
        assert!(matches!(p.validate(), Err(PlanError::Function(_))));
        let mut p = plan();
        p.workload = "forks".into();
        assert!(p.validate().unwrap_err().to_string().contains("getppid"));
        let mut p = plan();
        p.workload = "user-nop".into();
        p.function = Some("vfs_read".into());
        assert_eq!(
            p.validate(),
            Err(PlanError::FunctionOnUserWorkload(
                "user-nop".into(),
                "tracelab_user_nop"
            ))
        );
    }

    #[test]
    fn malformed_plan_json_is_an_error() {
        let err = serde_json::from_str::<AgentPlan>(r#"{"mechanisms":["kprobe-multi"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kprobe-multi"), "{err}");
    }
}
