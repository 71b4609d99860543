//! The mechanisms' names, as used on the command line and in results.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismKind {
    /// Nothing attached: the cost of the call itself.
    Baseline,
    /// kprobe at the function entry (through ftrace where the kernel can).
    Kprobe,
    /// kprobe at an instruction inside the function: the breakpoint (int3/BRK) path.
    KprobeOffset,
    Kretprobe,
    /// fprobe entry event (`f:`).
    Fprobe,
    /// fprobe exit event (`f: ... %return`).
    FprobeExit,
    /// The ftrace `function` tracer filtered to the target.
    Function,
    /// The ftrace `function_graph` tracer filtered to the target.
    FunctionGraph,
}

impl MechanismKind {
    pub const ALL: [MechanismKind; 8] = [
        MechanismKind::Baseline,
        MechanismKind::Kprobe,
        MechanismKind::KprobeOffset,
        MechanismKind::Kretprobe,
        MechanismKind::Fprobe,
        MechanismKind::FprobeExit,
        MechanismKind::Function,
        MechanismKind::FunctionGraph,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MechanismKind::Baseline => "baseline",
            MechanismKind::Kprobe => "kprobe",
            MechanismKind::KprobeOffset => "kprobe-offset",
            MechanismKind::Kretprobe => "kretprobe",
            MechanismKind::Fprobe => "fprobe",
            MechanismKind::FprobeExit => "fprobe-exit",
            MechanismKind::Function => "function",
            MechanismKind::FunctionGraph => "function-graph",
        }
    }

    /// All valid names, comma separated, for error messages.
    pub fn valid_names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
        names.join(", ")
    }

    /// Parses a comma-separated list (`all` selects every mechanism).
    pub fn parse_list(s: &str) -> Result<Vec<MechanismKind>, UnknownMechanism> {
        if s.trim() == "all" {
            return Ok(Self::ALL.to_vec());
        }
        s.split(',').map(|m| m.trim().parse()).collect()
    }
}

impl fmt::Display for MechanismKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mechanism `{0}` (valid: {valid})", valid = MechanismKind::valid_names())]
pub struct UnknownMechanism(pub String);

impl FromStr for MechanismKind {
    type Err = UnknownMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMechanism(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for m in MechanismKind::ALL {
            assert_eq!(m.name().parse(), Ok(m));
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
    }

    #[test]
    fn parse_list_names_the_bad_entry_and_valid_ones() {
        assert_eq!(
            MechanismKind::parse_list("kprobe, fprobe"),
            Ok(vec![MechanismKind::Kprobe, MechanismKind::Fprobe])
        );
        assert_eq!(MechanismKind::parse_list("all").map(|v| v.len()), Ok(8));
        let err = MechanismKind::parse_list("kprobe,uprobe")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`uprobe`") && err.contains("function-graph"),
            "{err}"
        );
    }
}
