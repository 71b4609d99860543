//! The environment a measurement ran in: what changes tracing cost or makes figures noisy.
//! The agent captures it (in a guest or natively); every run stores it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts about the CPU, the kernel's boot and mitigations, and the host's noise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub cpu_model: Option<String>,
    pub microcode: Option<String>,
    pub online_cpus: Option<String>,
    pub smt: Option<String>,
    /// cpufreq governor per policy (`performance`, `powersave`, ...).
    pub governors: BTreeMap<String, String>,
    /// `boost` / `no_turbo` state where the driver exposes it.
    pub boost: Option<String>,
    pub isolated_cpus: Option<String>,
    pub kernel_cmdline: Option<String>,
    /// `/sys/devices/system/cpu/vulnerabilities/*`: mitigation per vulnerability.
    pub mitigations: BTreeMap<String, String>,
    /// 1-minute load average when captured.
    pub load_average: Option<f64>,
    /// Why the figures may be noisy here; empty when nothing was noticed.
    pub warnings: Vec<String>,
}
