//! `tracelab doctor`: what this host (or a guest kernel) can measure, and why not.

use std::collections::BTreeMap;
use std::fmt::Write;
use tracelab_agent::mechanism::REGISTRY;
use tracelab_agent::tracefs::{KernelEnv, Tracefs};
use tracelab_model::arch::Arch;
use tracelab_model::kconfig;
use tracelab_model::workload::Workload;

/// One row of the capability table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub mechanism: String,
    pub supported: bool,
    pub reason: String,
}

/// Support per mechanism for a kernel environment.
pub fn capabilities(env: &KernelEnv) -> Vec<Capability> {
    REGISTRY
        .iter()
        // The default workload: the syscall tracepoints see it.
        .map(|m| match m.check_support(env, Workload::Getppid) {
            Ok(()) => Capability {
                mechanism: m.kind().name().into(),
                supported: true,
                reason: String::new(),
            },
            Err(why) => Capability {
                mechanism: m.kind().name().into(),
                supported: false,
                reason: why.0,
            },
        })
        .collect()
}

/// Whether a study can run on a kernel with these capabilities: at least one mechanism
/// besides the baseline.
pub fn can_run(caps: &[Capability]) -> bool {
    caps.iter()
        .any(|c| c.supported && c.mechanism != "baseline")
}

/// What a kernel of this config would offer in a guest of `arch`: tracefs mounted by the
/// lab, the tracers and probe files its options build. Judged from the config alone, never
/// from this host's tracefs.
pub fn guest_env(config: &BTreeMap<String, String>, release: &str, arch: Arch) -> KernelEnv {
    let on = |o: &str| kconfig::enabled(config, o) == Some(true);
    let mut tracers = vec!["nop".to_string()];
    if on("CONFIG_FUNCTION_TRACER") {
        tracers.push("function".into());
    }
    if on("CONFIG_FUNCTION_GRAPH_TRACER") {
        tracers.push("function_graph".into());
    }
    KernelEnv {
        release: release.to_string(),
        machine: match arch {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
        .to_string(),
        config: config.clone(),
        tracefs: on("CONFIG_TRACING"),
        tracers,
        kprobe_events: on("CONFIG_KPROBE_EVENTS"),
        dynamic_events: on("CONFIG_KPROBE_EVENTS") || on("CONFIG_FPROBE_EVENTS"),
        uprobe_events: on("CONFIG_UPROBE_EVENTS"),
        ftrace_filter: on("CONFIG_DYNAMIC_FTRACE"),
        readme: if on("CONFIG_FPROBE_EVENTS") {
            "f[:[<group>/][<event>]]".into()
        } else {
            String::new()
        },
    }
}

/// This host: the preflight's blockers, then per-mechanism support, counters, noise; and
/// whether the local target can run (no blocker).
pub fn local_report() -> (String, bool) {
    let mut out = String::new();
    let (release, machine) = tracelab_agent::tracefs::uname();
    let _ = writeln!(out, "host kernel {release} ({machine})");
    let problems = crate::target::local::preflight(false);
    if problems.is_empty() {
        let _ = writeln!(out, "preflight: ok (the local target can run)");
    } else {
        let _ = writeln!(out, "preflight: the local target cannot run here:");
        for p in &problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    for n in crate::target::local::notes() {
        let _ = writeln!(out, "note: {n}");
    }
    let tracefs = Tracefs::open().ok();
    let env = KernelEnv::probe(tracefs.as_ref(), crate::target::local::host_config());
    out.push_str(&table(&capabilities(&env)));
    let mut counters = tracelab_agent::counters::Counters::open();
    let _ = writeln!(out, "perf counters (user + kernel, this thread):");
    // Opening is not enough: a virtual PMU may accept an event and never count it.
    counters.start();
    std::hint::black_box((0..100_000u64).fold(0u64, |a, b| a ^ b.wrapping_mul(31)));
    let counted = counters.stop();
    for name in counters.available() {
        match counted.get(name) {
            Some(v) => {
                let _ = writeln!(out, "  {name:<24} counts ({v} over a 100k-iteration loop)");
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {name:<24} opens, but was never scheduled (no PMU counts it)"
                );
            }
        }
    }
    for (name, why) in counters.absent() {
        let _ = writeln!(out, "  {name:<24} absent ({why})");
    }
    for w in tracelab_agent::environment::capture().warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    (out, problems.is_empty())
}

/// The capability table as aligned text.
pub fn table(caps: &[Capability]) -> String {
    let mut out = format!("{:<22} {:<12} {}\n", "mechanism", "support", "reason");
    for c in caps {
        let status = if c.supported { "yes" } else { "unsupported" };
        let _ = writeln!(out, "{:<22} {:<12} {}", c.mechanism, status, c.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_6_12_like_config_has_no_fprobe() {
        let config = kconfig::parse(
            "CONFIG_TRACING=y\nCONFIG_FUNCTION_TRACER=y\nCONFIG_FUNCTION_GRAPH_TRACER=y\nCONFIG_DYNAMIC_FTRACE=y\nCONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\n# CONFIG_FPROBE is not set\n",
        );
        let caps = capabilities(&guest_env(&config, "6.12", Arch::Arm64));
        let get = |m: &str| caps.iter().find(|c| c.mechanism == m).cloned();
        assert!(get("kprobe").is_some_and(|c| c.supported));
        assert!(get("function-graph").is_some_and(|c| c.supported));
        let fprobe = get("fprobe").expect("fprobe row");
        assert!(
            !fprobe.supported && fprobe.reason.contains("CONFIG_FPROBE is not set"),
            "{fprobe:?}"
        );
        assert!(table(&caps).contains("unsupported"));
        assert!(can_run(&caps));
    }

    /// A guest is judged from its config: this host's tracefs (none, here) once made
    /// uprobes look unsupported on kernels that have them.
    #[test]
    fn a_guest_with_uprobe_events_supports_uprobes() {
        let config = kconfig::parse(
            "CONFIG_TRACING=y\nCONFIG_UPROBES=y\nCONFIG_UPROBE_EVENTS=y\nCONFIG_FUNCTION_TRACER=y\n",
        );
        let caps = capabilities(&guest_env(&config, "6.12", Arch::X86_64));
        let uprobe = caps
            .iter()
            .find(|c| c.mechanism == "uprobe")
            .expect("uprobe row");
        assert!(uprobe.supported, "{uprobe:?}");
        let none = capabilities(&guest_env(
            &kconfig::parse("# CONFIG_TRACING is not set\n"),
            "6.12",
            Arch::X86_64,
        ));
        assert!(!can_run(&none), "{}", table(&none));
    }
}
