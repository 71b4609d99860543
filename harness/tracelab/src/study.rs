//! A study: one plan on one target, stored as it runs.

use crate::guest::console::Timeouts;
use crate::guest::qemu::Mode;
use crate::results::RunMeta;
use crate::target::TargetSpec;
use std::path::PathBuf;
use std::time::Duration;
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
}

impl Study {
    /// Timeouts that grow with the work per cell: generous, because a guest that hangs
    /// costs only this wait, while one cut short loses a cell.
    pub fn default_timeouts(plan: &AgentPlan) -> Timeouts {
        let loops = plan
            .calls
            .saturating_mul(u64::from(plan.repeats))
            .saturating_mul(3);
        Timeouts {
            boot: Duration::from_secs(300),
            record: Duration::from_secs(120 + loops / 5_000),
        }
    }

    /// Where results go when `--out` is not given.
    pub fn default_out(run_id: &str) -> PathBuf {
        PathBuf::from("results").join(run_id)
    }
}

/// What the CLI shows while a study runs.
pub trait Progress {
    /// A step before or between cells (fetching, booting).
    fn stage(&self, what: &str);
    /// A cell finished (stored already).
    fn cell(&self, cell: &Cell, done: usize, total: usize);
}

/// A finished (or partly finished) study.
pub struct Finished {
    pub dir: PathBuf,
    pub meta: RunMeta,
    pub cells: Vec<Cell>,
}

/// Runs a study on its target.
pub fn run(study: &Study, progress: &dyn Progress) -> anyhow::Result<Finished> {
    study.plan.validate()?;
    match &study.target {
        TargetSpec::Local => crate::target::local::run(study, progress),
        TargetSpec::Vm { arch, kernel } => crate::target::vm::run(study, *arch, *kernel, progress),
    }
}

/// The git revision of the source tree this binary was built from, if known.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The metadata every target records the same way: what ran, when, by which lab, with
/// which plan. Targets fill in where and how (`cpu`, `mode`, `clock`, ...) with struct
/// update syntax.
pub fn base_meta(
    study: &Study,
    plan: &AgentPlan,
    run_id: &str,
    arch: &str,
    kernel: &str,
) -> RunMeta {
    RunMeta {
        schema_version: tracelab_model::schema::SCHEMA_VERSION,
        run_id: run_id.to_string(),
        started_at: crate::results::rfc3339_utc(std::time::SystemTime::now()),
        tracelab_version: tracelab_model::VERSION.to_string(),
        git_revision: git_revision(),
        command_line: study.command_line.clone(),
        target: study.target.to_string(),
        arch: arch.to_string(),
        kernel: kernel.to_string(),
        kernel_release: None,
        kernel_package: None,
        kernel_config: plan.kernel_config.clone(),
        cpu: String::new(),
        qemu_version: None,
        mode: String::new(),
        accel: None,
        clock: String::new(),
        unit: plan.unit,
        workload: plan.workload.clone(),
        calls: plan.calls,
        repeats: plan.repeats,
        mechanisms: plan
            .mechanisms
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        extra: Default::default(),
    }
}
