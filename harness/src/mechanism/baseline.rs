//! The baseline: nothing attached.

use super::Installed;

pub struct Baseline;

impl Installed for Baseline {
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
    fn check_trace(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn remove(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}
