//! The baseline: nothing attached.

use super::{CellError, CellSetup, Installed, Mechanism, Unsupported};
use crate::tracefs::KernelEnv;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::workload::Workload;

pub(super) struct Baseline;

impl Mechanism for Baseline {
    fn kind(&self) -> MechanismKind {
        MechanismKind::Baseline
    }
    fn requires(&self) -> &'static [&'static str] {
        &[]
    }
    fn check_support(&self, _: &KernelEnv, _: Workload) -> Result<(), Unsupported> {
        Ok(())
    }
    fn install(&self, _: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError> {
        Ok(Box::new(Nothing))
    }
}

/// What the baseline installs.
struct Nothing;

impl Installed for Nothing {
    fn describe(&self) -> String {
        "nothing".into()
    }
    fn arm(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn disarm(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn hits(&self) -> anyhow::Result<Option<u64>> {
        Ok(None)
    }
    fn events_per_call(&self) -> u64 {
        0
    }
    fn check_trace(&self, _: u64, _: u64) -> anyhow::Result<()> {
        Ok(())
    }
    fn remove(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}
