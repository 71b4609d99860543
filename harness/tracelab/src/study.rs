//! A study: one plan on one target, stored as it runs.

use crate::guest::console::Timeouts;
use crate::guest::qemu::Mode;
use crate::results::RunMeta;
use anyhow::{bail, Result};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;
use tracelab_model::cell::Cell;
use tracelab_model::plan::AgentPlan;

/// Everything `tracelab run` was asked for, validated.
#[derive(Debug, Clone)]
pub struct Study {
    pub target: TargetSpec,
    /// The cells to run; the target fills in the unit and the kernel config.
    pub plan: AgentPlan,
    pub mode: Mode,
    /// Results directory; None picks `results/<run-id>`.
    pub out: Option<PathBuf>,
    /// A user-built kernel image and its config (`--kernel`, `--config`).
    pub custom_kernel: Option<(PathBuf, PathBuf)>,
    pub mirror: Option<String>,
    pub timeouts: Timeouts,
    pub command_line: Vec<String>,
    /// Run on a host whose tracer is already active (`--force`).
    pub force: bool,
    /// Where the static agents are: None looks them up (the `TRACELAB_AGENT_DIR` or beside the binary);
    /// a matrix points every guest at the copies it hashed at its start.
    pub agent_dir: Option<PathBuf>,
    /// Guest kernel arguments after the lab's own (`--kernel-args`), validated.
    pub kernel_args: Vec<String>,
    /// Whether icount guests are restored from a kept state (`--no-snapshot`: booted).
    pub snapshots: Snapshots,
}

/// How an icount guest starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Restored from the guest kept at the agent's `ready` for this kernel, agent and
    /// QEMU command line; booted and kept there the first time.
    Use,
    /// Booted every time; nothing restored or kept (`--no-snapshot`).
    Off,
}

impl Study {
    /// Timeouts that grow with the work per cell: generous, because a guest that hangs
    /// costs only this wait, while one cut short loses a cell.
    pub fn default_timeouts(plan: &AgentPlan) -> Timeouts {
        let loops = plan
            .calls
            .saturating_mul(u64::from(plan.repeats))
            .saturating_mul(3);
        // Real time: a cell may add pairs for its whole budget.
        let budget = plan.adaptive.map_or(0, |a| a.budget_secs.saturating_mul(2));
        // The functions axis: each repeat attaches and detaches every function afresh
        // (an fprobe on x86_64 7.3 takes about 10^8 guest instructions under TCG, a
        // second or two of host time each way).
        let attach = u64::from(plan.max_functions())
            .saturating_mul(u64::from(plan.repeats) + 1)
            .saturating_mul(2);
        Timeouts {
            boot: Duration::from_secs(300),
            record: Duration::from_secs(120 + loops / 5_000 + budget + attach),
        }
    }

    /// Where results go when `--out` is not given.
    pub fn default_out(run_id: &str) -> PathBuf {
        PathBuf::from("results").join(run_id)
    }
}

/// A finished (or partly finished) study.
pub struct Finished {
    pub dir: PathBuf,
    pub meta: RunMeta,
    pub cells: Vec<Cell>,
}

/// The choices, for error messages.
pub const VALID_TARGETS: &str = "local, vm:<arch>/<version> (arch: x86_64, arm64; version: 6.1, 6.12, 7.2, 7.3, a release of one such as 6.12.111 (`kernels list`), or custom with --kernel)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Local,
    /// A guest; `kernel` None means a user-built kernel (`--kernel`/`--config`).
    Vm {
        arch: Arch,
        kernel: Option<KernelVersion>,
        /// One release of the line (`6.12.111`); None: the line's newest.
        release: Option<String>,
    },
}

impl TargetSpec {
    /// The default study's target.
    pub fn default_vm() -> TargetSpec {
        TargetSpec::Vm {
            arch: Arch::X86_64,
            kernel: Some(KernelVersion::V6_12),
            release: None,
        }
    }

    /// The arch and kernel line of a `vm:<arch>/<version>` target: what the commands that
    /// boot a Debian userland beside the kernel (`command`) take.
    pub fn debian_guest(&self, command: &str) -> anyhow::Result<(Arch, KernelVersion)> {
        match self {
            TargetSpec::Vm {
                arch,
                kernel: Some(kernel),
                release: None,
            } => Ok((*arch, *kernel)),
            _ => anyhow::bail!(
                "{command} needs a Debian guest, vm:<arch>/<version> (arch x86_64|arm64, version 6.1|6.12|7.2|7.3), not {self}"
            ),
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Local => f.write_str("local"),
            TargetSpec::Vm {
                arch,
                release: Some(r),
                ..
            } => write!(f, "vm:{arch}/{r}"),
            TargetSpec::Vm {
                arch,
                kernel: Some(k),
                ..
            } => write!(f, "vm:{arch}/{}", k.name()),
            TargetSpec::Vm {
                arch, kernel: None, ..
            } => write!(f, "vm:{arch}/custom"),
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
        if version == "custom" {
            return Ok(TargetSpec::Vm {
                arch,
                kernel: None,
                release: None,
            });
        }
        if let Ok(kernel) = version.parse::<KernelVersion>() {
            return Ok(TargetSpec::Vm {
                arch,
                kernel: Some(kernel),
                release: None,
            });
        }
        // A release of a line: `6.12.111`, `6.1.0-50`, `6.1.176`.
        let line = KernelVersion::ALL.iter().copied().find(|k| {
            let rest = version.strip_prefix(k.name());
            rest.is_some_and(|r| {
                (r.starts_with('.') || r.starts_with('-'))
                    && r.len() > 1
                    && r[1..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~'))
            })
        });
        match line {
            Some(kernel) => Ok(TargetSpec::Vm {
                arch,
                kernel: Some(kernel),
                release: Some(version.to_string()),
            }),
            // Not a line nor one of its releases: the line's parse error names the valid ones.
            None => match version.parse::<KernelVersion>() {
                Err(e) => Err(e.into()),
                Ok(kernel) => Ok(TargetSpec::Vm {
                    arch,
                    kernel: Some(kernel),
                    release: None,
                }),
            },
        }
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
                kernel: Some(KernelVersion::V7_3),
                release: None,
            }
        );
        let r: TargetSpec = "vm:x86_64/6.12.111".parse().expect("a release");
        assert_eq!(
            r,
            TargetSpec::Vm {
                arch: Arch::X86_64,
                kernel: Some(KernelVersion::V6_12),
                release: Some("6.12.111".into()),
            }
        );
        assert_eq!(r.to_string(), "vm:x86_64/6.12.111");
        let r: TargetSpec = "vm:x86_64/6.1.0-50".parse().expect("a 6.1 ABI");
        assert!(matches!(
            r,
            TargetSpec::Vm {
                kernel: Some(KernelVersion::V6_1),
                ..
            }
        ));
        assert_eq!(t.to_string(), "vm:arm64/7.3");
        assert_eq!(TargetSpec::default_vm().to_string(), "vm:x86_64/6.12");
        for (bad, needle) in [
            ("kvm", "valid: local"),
            ("vm:x86_64", "names no kernel version"),
            ("vm:sparc/6.12", "valid: x86_64, arm64"),
            ("vm:x86_64/5.10", "6.12"),
            ("vm:x86_64/6.12.", "6.12"),
            ("vm:x86_64/6.12.1;x", "6.12"),
        ] {
            let err = bad.parse::<TargetSpec>().unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
