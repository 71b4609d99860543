//! Where the agent runs: on this host's kernel (`local`) or in a QEMU guest booted from a
//! Debian kernel (`vm:<arch>/<version>`).

pub mod local;
pub mod vm;

use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;

/// The choices, for error messages.
pub const VALID_TARGETS: &str = "local, vm:<arch>/<version> (arch: x86_64, arm64; version: 6.1, 6.12, 7.2, 7.3, or custom with --kernel)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Local,
    /// A guest; `kernel` None means a user-built kernel (`--kernel`/`--config`).
    Vm {
        arch: Arch,
        kernel: Option<KernelVersion>,
    },
}

impl TargetSpec {
    /// The default study's target.
    pub fn default_vm() -> TargetSpec {
        TargetSpec::Vm {
            arch: Arch::X86_64,
            kernel: Some(KernelVersion::V6_12),
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Local => f.write_str("local"),
            TargetSpec::Vm {
                arch,
                kernel: Some(k),
            } => write!(f, "vm:{arch}/{}", k.name()),
            TargetSpec::Vm { arch, kernel: None } => write!(f, "vm:{arch}/custom"),
        }
    }
}

impl FromStr for TargetSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "local" {
            return Ok(TargetSpec::Local);
        }
        let Some(rest) = s.strip_prefix("vm:") else {
            bail!("unknown target `{s}` (valid: {VALID_TARGETS})");
        };
        let Some((arch, version)) = rest.split_once('/') else {
            bail!("target `{s}` names no kernel version (valid: {VALID_TARGETS})");
        };
        let arch: Arch = arch.parse()?;
        let kernel = if version == "custom" {
            None
        } else {
            Some(version.parse::<KernelVersion>()?)
        };
        Ok(TargetSpec::Vm { arch, kernel })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_names_valid_choices() {
        assert_eq!("local".parse::<TargetSpec>().ok(), Some(TargetSpec::Local));
        let t: TargetSpec = "vm:arm64/7.3".parse().expect("valid");
        assert_eq!(
            t,
            TargetSpec::Vm {
                arch: Arch::Arm64,
                kernel: Some(KernelVersion::V7_3)
            }
        );
        assert_eq!(t.to_string(), "vm:arm64/7.3");
        assert_eq!(TargetSpec::default_vm().to_string(), "vm:x86_64/6.12");
        for (bad, needle) in [
            ("kvm", "valid: local"),
            ("vm:x86_64", "names no kernel version"),
            ("vm:sparc/6.12", "valid: x86_64, arm64"),
            ("vm:x86_64/5.10", "6.12"),
        ] {
            let err = bad.parse::<TargetSpec>().unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
