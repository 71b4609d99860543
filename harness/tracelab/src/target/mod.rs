//! Where the agent runs: on this host's kernel (`local`) or in a QEMU guest booted from a
//! Debian kernel (`vm:<arch>/<version>`).

pub mod local;
pub mod vm;

use crate::progress::Observer;
use crate::results::RunMeta;
use crate::study::{Finished, Study, TargetSpec};
use std::collections::BTreeMap;
use tracelab_model::plan::AgentPlan;

/// Runs a study on its target.
pub fn run(study: &Study, observer: &dyn Observer) -> anyhow::Result<Finished> {
    study.plan.validate()?;
    match &study.target {
        TargetSpec::Local => local::run(study, observer),
        TargetSpec::Vm {
            arch,
            kernel,
            release,
        } => vm::run(study, *arch, *kernel, release.as_deref(), observer),
    }
}

/// The metadata every target records the same way: what ran, when, by which lab, with
/// which plan. Targets fill in where and how (`cpu`, `mode`, `clock`, ...) with struct
/// update syntax.
fn base_meta(
    study: &Study,
    plan: &AgentPlan,
    run_id: &str,
    (arch, kernel): (&str, &str),
    mut extra: BTreeMap<String, serde_json::Value>,
) -> RunMeta {
    if let Some(a) = plan.adaptive.and_then(|a| serde_json::to_value(a).ok()) {
        extra.insert("adaptive".to_string(), a);
    }
    RunMeta {
        schema_version: tracelab_model::schema::SCHEMA_VERSION,
        run_id: run_id.to_string(),
        started_at: crate::results::rfc3339_utc(std::time::SystemTime::now()),
        tracelab_version: tracelab_model::VERSION.to_string(),
        git_revision: tracelab_model::provenance::revision_label(),
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
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real-time plan's adaptive rule reaches `meta.json` beside the target's own
    /// extras (it once was overwritten by them, so the table never said how repeats
    /// adapted).
    #[test]
    fn the_adaptive_rule_is_recorded_with_the_targets_extras() {
        let argv = ["tracelab", "run", "--mode", "wall"].map(String::from);
        let study = crate::cli::run::parse_study(&argv).expect("study");
        let extra = BTreeMap::from([("kernel_suite".to_string(), serde_json::json!("x"))]);
        let meta = base_meta(&study, &study.plan, "id", ("x86_64", "6.12"), extra);
        assert!(meta.extra.contains_key("kernel_suite"));
        assert_eq!(meta.extra["adaptive"]["max_repeats"], 200);
        let header =
            crate::results::render(&meta, &[], crate::render::Format::Table).expect("table");
        assert!(
            header.contains("repeats adapt: after 15 pairs")
                && header.contains("at most 200 pairs or 30 s per cell"),
            "{header}"
        );
    }
}
