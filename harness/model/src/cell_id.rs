//! A cell's identity: the axes that tell one cell of a run from another. Every output
//! names a cell through this one type (progress lines, file names, table rows, chart
//! series, compare keys), so a new axis is added here once.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::{self, Write};
use std::str::FromStr;

/// Mechanism, for BPF cells payload and stack, the number of functions traced at once and
/// the number of other ftrace users beside it.
/// Strings, as stored: results written by older labs (or naming mechanisms this build does
/// not know) still load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellId {
    pub mechanism: String,
    pub payload: Option<String>,
    pub stack: u32,
    /// Functions the mechanism traces at once (`--functions`; one for every cell before
    /// the axis existed).
    #[serde(default, skip_serializing_if = "Functions::is_one")]
    pub functions: Functions,
    /// Other ftrace users on the kernel while the cell runs, each tracing one function of
    /// its own (`--other-tracers`; 0 for every cell before the axis existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_tracers: u32,
}

/// How many functions a cell traces at once: the workload's own and N − 1 others the
/// agent chooses, or every function the kernel can trace (`--functions all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Functions {
    /// N functions, N ≥ 1.
    Count(u32),
    /// Every function the kernel lists (how many that was is in the cell's attach text).
    All,
}

impl Default for Functions {
    fn default() -> Functions {
        Functions::ONE
    }
}

impl Functions {
    /// The workload's function alone: every cell before the axis existed.
    pub const ONE: Functions = Functions::Count(1);

    pub fn is_one(&self) -> bool {
        *self == Functions::ONE
    }

    /// N, or None for every function.
    pub fn count(self) -> Option<u32> {
        match self {
            Functions::Count(n) => Some(n),
            Functions::All => None,
        }
    }

    /// The number in a numeric column (Parquet's `functions`), where `all` is 0.
    pub fn column(self) -> u32 {
        self.count().unwrap_or(0)
    }

    /// The inverse of [`Functions::column`].
    pub fn from_column(n: u32) -> Functions {
        match n {
            0 => Functions::All,
            n => Functions::Count(n),
        }
    }
}

impl fmt::Display for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Functions::Count(n) => write!(f, "{n}"),
            Functions::All => f.write_str("all"),
        }
    }
}

impl FromStr for Functions {
    type Err = String;
    /// `all`, or a number of functions from 1.
    fn from_str(s: &str) -> Result<Functions, String> {
        match s.trim() {
            "all" => Ok(Functions::All),
            n => match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Functions::Count(n)),
                _ => Err(format!(
                    "`{n}` is not a number of functions (1 or more, or all)"
                )),
            },
        }
    }
}

/// JSON: a number, or `"all"`.
impl Serialize for Functions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Functions::Count(n) => s.serialize_u32(*n),
            Functions::All => s.serialize_str("all"),
        }
    }
}

/// Reads a number, `"all"`, or the 0 that meant `all` in results written before this type.
impl<'de> Deserialize<'de> for Functions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Functions, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Functions::from_column(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
        if !self.functions.is_one() {
            let _ = write!(s, "{sep}n{}", self.functions);
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
            Functions::Count(1) => {}
            Functions::All => s.push_str(" on every function"),
            Functions::Count(n) => {
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
            functions: Functions::ONE,
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
        if !self.functions.is_one() {
            let _ = write!(s, " functions={}", self.functions);
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
            functions: Functions::ONE,
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
            functions: Functions::ONE,
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
            functions: Functions::Count(100),
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
            functions: Functions::All,
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
        let json = serde_json::to_string(&all).expect("json");
        assert!(json.contains(r#""functions":"all""#), "{json}");
        assert_eq!(serde_json::from_str::<CellId>(&json).expect("back"), all);
        // Results written before the type stored `all` as 0.
        let old = json.replace(r#""all""#, "0");
        assert_eq!(serde_json::from_str::<CellId>(&old).expect("old"), all);
        assert!(Functions::Count(1000) < Functions::All);
        assert_eq!("all".parse(), Ok(Functions::All));
        assert!("0".parse::<Functions>().is_err());
    }
}
