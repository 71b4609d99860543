//! A cell's identity: the axes that tell one cell of a run from another. Every output
//! names a cell through this one type (progress lines, file names, table rows, chart
//! series, compare keys), so a new axis is added here once.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Mechanism, and for BPF cells payload and stack. Strings, as stored: results written by
/// older labs (or naming mechanisms this build does not know) still load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellId {
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
}

impl CellId {
    /// `bpf-fentry/count/k2`, or the mechanism alone where it has no payload.
    pub fn label(&self) -> String {
        match &self.payload {
            Some(p) => format!("{}/{p}/k{}", self.mechanism, self.stack),
            None => self.mechanism.clone(),
        }
    }

    /// The file-name stem of the cell (`bpf-fentry-count-k2`).
    pub fn file_stem(&self) -> String {
        match &self.payload {
            Some(p) => format!("{}-{p}-k{}", self.mechanism, self.stack),
            None => self.mechanism.clone(),
        }
    }

    /// The series in a figure: stack 1 is left unsaid (`bpf-fentry/count ×4`).
    pub fn series(&self) -> String {
        let mut s = self.mechanism.clone();
        if let Some(p) = &self.payload {
            s.push('/');
            s.push_str(p);
        }
        if self.stack != 1 {
            let _ = write!(s, " ×{}", self.stack);
        }
        s
    }

    /// The axes beyond the mechanism as `key=value` words (` payload=count stack=4`),
    /// each preceded by a space; empty for an unstacked cell without payload.
    pub fn qualifiers(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.payload {
            let _ = write!(s, " payload={p}");
        }
        if self.stack != 1 {
            let _ = write!(s, " stack={}", self.stack);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_identity_many_spellings() {
        let bpf = CellId {
            mechanism: "bpf-fentry".into(),
            payload: Some("count".into()),
            stack: 4,
        };
        assert_eq!(bpf.label(), "bpf-fentry/count/k4");
        assert_eq!(bpf.file_stem(), "bpf-fentry-count-k4");
        assert_eq!(bpf.series(), "bpf-fentry/count ×4");
        assert_eq!(bpf.qualifiers(), " payload=count stack=4");
        let plain = CellId {
            mechanism: "kprobe".into(),
            payload: None,
            stack: 1,
        };
        assert_eq!(
            (
                plain.label(),
                plain.file_stem(),
                plain.series(),
                plain.qualifiers()
            ),
            (
                "kprobe".into(),
                "kprobe".into(),
                "kprobe".into(),
                String::new()
            )
        );
    }
}
