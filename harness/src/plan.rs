//! What to measure: the plan handed to the agent (in a guest or in-process).

use crate::mechanism::MechanismKind;
use crate::schema::Unit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defaults of the study; small enough that an icount guest finishes in minutes.
pub const DEFAULT_CALLS: u64 = 20_000;
pub const DEFAULT_REPEATS: u32 = 3;

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
    #[error(transparent)]
    Workload(#[from] tracelab_workloads::UnknownWorkload),
    #[error("--function: {0}")]
    Function(#[from] tracelab_probes::SymbolError),
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
        self.workload.parse::<tracelab_workloads::Workload>()?;
        if let Some(f) = &self.function {
            tracelab_probes::Symbol::new(f)?;
        }
        Ok(())
    }
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
        }
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
        p.workload = "fork".into();
        assert!(p.validate().unwrap_err().to_string().contains("getppid"));
    }

    #[test]
    fn malformed_plan_json_is_an_error() {
        let err = serde_json::from_str::<AgentPlan>(r#"{"mechanisms":["kprobe-multi"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kprobe-multi"), "{err}");
    }
}
