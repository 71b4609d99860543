//! A cell's identity: the axes that tell one cell of a run from another. Every output
//! names a cell through this one type (progress lines, file names, table rows, chart
//! series, compare keys), so a new axis is added here once.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Mechanism, for BPF cells payload and stack, the number of functions traced at once and
/// the number of other ftrace users beside it.
/// Strings, as stored: results written by older labs (or naming mechanisms this build does
/// not know) still load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellId {
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    /// Functions the mechanism traces at once: the workload's own and `functions − 1`
    /// others (`--functions`; 1 for every cell before the axis existed), or
    /// [`ALL_FUNCTIONS`]: every function the kernel can trace.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub functions: u32,
    /// Other ftrace users on the kernel while the cell runs, each tracing one function of
    /// its own (`--other-tracers`; 0 for every cell before the axis existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_tracers: u32,
}

/// `functions` of a cell that traces every function (`--functions all`).
pub const ALL_FUNCTIONS: u32 = 0;

/// A number of functions as it is written: `all` for [`ALL_FUNCTIONS`].
pub fn functions_word(n: u32) -> String {
    if n == ALL_FUNCTIONS {
        "all".into()
    } else {
        n.to_string()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl CellId {
    /// `bpf-fentry/count/k2`, or the mechanism alone where it has no payload; `/n100`
    /// follows for a cell tracing 100 functions, `/m10` for one beside 10 other tracers.
    pub fn label(&self) -> String {
        self.joined('/')
    }

    /// The file-name stem of the cell (`bpf-fentry-count-k2`, `kprobe-n100`).
    pub fn file_stem(&self) -> String {
        self.joined('-')
    }

    fn joined(&self, sep: char) -> String {
        let mut s = match &self.payload {
            Some(p) => format!("{}{sep}{p}{sep}k{}", self.mechanism, self.stack),
            None => self.mechanism.clone(),
        };
        if self.functions != 1 {
            let _ = write!(s, "{sep}n{}", functions_word(self.functions));
        }
        if self.other_tracers != 0 {
            let _ = write!(s, "{sep}m{}", self.other_tracers);
        }
        s
    }

    /// The series in a figure: stack 1 and one function are left unsaid
    /// (`bpf-fentry/count ×4`, `kprobe on 100 functions`).
    pub fn series(&self) -> String {
        let mut s = self.mechanism.clone();
        if let Some(p) = &self.payload {
            s.push('/');
            s.push_str(p);
        }
        if self.stack != 1 {
            let _ = write!(s, " ×{}", self.stack);
        }
        match self.functions {
            1 => {}
            ALL_FUNCTIONS => s.push_str(" on every function"),
            n => {
                let _ = write!(s, " on {n} functions");
            }
        }
        if self.other_tracers != 0 {
            let _ = write!(s, " beside {} other tracers", self.other_tracers);
        }
        s
    }

    /// The series of the cell across the functions axis (the series with the number of
    /// functions left out): what a figure of a figure against N draws as one line.
    pub fn across_functions(&self) -> String {
        CellId {
            functions: 1,
            ..self.clone()
        }
        .series()
    }

    /// The series of the cell across the other-tracers axis (that number left out).
    pub fn across_other_tracers(&self) -> String {
        CellId {
            other_tracers: 0,
            ..self.clone()
        }
        .series()
    }

    /// The axes beyond the mechanism as `key=value` words (` payload=count stack=4`),
    /// each preceded by a space; empty for an unstacked cell without payload on one
    /// function.
    pub fn qualifiers(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.payload {
            let _ = write!(s, " payload={p}");
        }
        if self.stack != 1 {
            let _ = write!(s, " stack={}", self.stack);
        }
        if self.functions != 1 {
            let _ = write!(s, " functions={}", functions_word(self.functions));
        }
        if self.other_tracers != 0 {
            let _ = write!(s, " other_tracers={}", self.other_tracers);
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
            functions: 1,
            other_tracers: 0,
        };
        assert_eq!(bpf.label(), "bpf-fentry/count/k4");
        assert_eq!(bpf.file_stem(), "bpf-fentry-count-k4");
        assert_eq!(bpf.series(), "bpf-fentry/count ×4");
        assert_eq!(bpf.qualifiers(), " payload=count stack=4");
        let plain = CellId {
            mechanism: "kprobe".into(),
            payload: None,
            stack: 1,
            functions: 1,
            other_tracers: 0,
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
        let wide = CellId {
            functions: 100,
            ..plain
        };
        assert_eq!(
            (
                wide.label(),
                wide.file_stem(),
                wide.series(),
                wide.qualifiers(),
                wide.across_functions()
            ),
            (
                "kprobe/n100".into(),
                "kprobe-n100".into(),
                "kprobe on 100 functions".into(),
                " functions=100".into(),
                "kprobe".into()
            )
        );
        let beside = CellId {
            other_tracers: 10,
            ..wide
        };
        assert_eq!(
            (
                beside.label(),
                beside.file_stem(),
                beside.series(),
                beside.qualifiers(),
                beside.across_other_tracers()
            ),
            (
                "kprobe/n100/m10".into(),
                "kprobe-n100-m10".into(),
                "kprobe on 100 functions beside 10 other tracers".into(),
                " functions=100 other_tracers=10".into(),
                "kprobe on 100 functions".into()
            )
        );
        let all = CellId {
            mechanism: "function".into(),
            payload: None,
            stack: 1,
            functions: ALL_FUNCTIONS,
            other_tracers: 0,
        };
        assert_eq!(
            (all.label(), all.series(), all.qualifiers()),
            (
                "function/nall".into(),
                "function on every function".into(),
                " functions=all".into()
            )
        );
        let json = serde_json::to_string(&bpf).expect("json");
        assert!(
            !json.contains("functions") && !json.contains("other"),
            "{json}"
        );
    }
}
