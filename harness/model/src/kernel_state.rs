//! What the lab can leave in a kernel: its tracefs probes, the tracer, the filters, the
//! global knobs, its BPF objects. The agent captures it (`tracelab-agent --state`); the
//! chaos test compares a capture after each kill and rerun with the one taken at boot.

use serde::{Deserialize, Serialize};

/// A snapshot of the tracing state the lab touches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelState {
    /// Lines of `kprobe_events` and `dynamic_events` that name the lab's group.
    pub probes: Vec<String>,
    pub current_tracer: String,
    /// Non-comment lines of `set_ftrace_filter`.
    pub ftrace_filter: Vec<String>,
    /// Non-comment lines of `set_graph_function`.
    pub graph_function: Vec<String>,
    pub tracing_on: String,
    pub buffer_size_kb: String,
    pub kprobes_optimization: String,
    /// Lines of `trace_options` (`stacktrace`, `nofunc_stack_trace`, ...).
    #[serde(default)]
    pub trace_options: Vec<String>,
    /// The lab's trace instances (`instances/tracelab_*`: the screening's, the other
    /// tracers').
    #[serde(default)]
    pub instances: Vec<String>,
    /// Loaded BPF programs, maps and links of the lab (`tracelab_*` names; a link by the
    /// program it runs), each as `name (id N)`.
    pub bpf_programs: Vec<String>,
    pub bpf_maps: Vec<String>,
    pub bpf_links: Vec<String>,
}

impl KernelState {
    /// How this state differs from `before` (the state the lab found), one line per
    /// leftover; empty when the lab left the kernel as it found it.
    pub fn leftovers(&self, before: &KernelState) -> Vec<String> {
        let mut out = Vec::new();
        let owned = [
            ("probe", &self.probes),
            ("set_ftrace_filter entry", &self.ftrace_filter),
            ("set_graph_function entry", &self.graph_function),
            ("BPF program", &self.bpf_programs),
            ("BPF map", &self.bpf_maps),
            ("BPF link", &self.bpf_links),
            ("trace instance", &self.instances),
        ];
        let found = [
            &before.probes,
            &before.ftrace_filter,
            &before.graph_function,
            &before.bpf_programs,
            &before.bpf_maps,
            &before.bpf_links,
            &before.instances,
        ];
        for ((what, now), then) in owned.iter().zip(found) {
            out.extend(
                now.iter()
                    .filter(|x| !then.contains(x))
                    .map(|x| format!("{what} {x}")),
            );
        }
        let knobs = [
            (
                "current_tracer",
                &self.current_tracer,
                &before.current_tracer,
            ),
            ("tracing_on", &self.tracing_on, &before.tracing_on),
            (
                "kprobes-optimization",
                &self.kprobes_optimization,
                &before.kprobes_optimization,
            ),
        ];
        for (what, now, then) in knobs {
            if now != then {
                out.push(format!("{what} {now} (was {then})"));
            }
        }
        out.extend(
            self.trace_options
                .iter()
                .filter(|o| !before.trace_options.contains(o))
                .map(|o| format!("trace option {o}")),
        );
        if !same_buffer_size(&self.buffer_size_kb, &before.buffer_size_kb) {
            out.push(format!(
                "buffer_size_kb {} (was {})",
                self.buffer_size_kb, before.buffer_size_kb
            ));
        }
        out
    }
}

/// The ring buffer's size in KB: after boot `buffer_size_kb` reads `7 (expanded: 1408)`,
/// the size it takes on first use.
fn buffer_kb(text: &str) -> Option<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
}

/// Whether two `buffer_size_kb` readings are one size. The first use of tracing expands
/// the boot buffer to its configured size, rounded to whole pages per CPU (`7 (expanded:
/// 1408)` reads 1410 afterwards on x86_64 6.12): the kernel's own doing, within a page.
fn same_buffer_size(now: &str, then: &str) -> bool {
    match (buffer_kb(now), buffer_kb(then)) {
        (Some(a), Some(b)) => a.abs_diff(b) <= 4,
        _ => now == then,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> KernelState {
        KernelState {
            current_tracer: "nop".into(),
            tracing_on: "0".into(),
            buffer_size_kb: "1408".into(),
            kprobes_optimization: "1".into(),
            ..KernelState::default()
        }
    }

    #[test]
    fn the_same_state_has_no_leftovers() {
        assert!(boot().leftovers(&boot()).is_empty());
    }

    #[test]
    fn every_kind_of_leftover_is_named() {
        let mut now = boot();
        now.probes = vec!["p:tracelab/kprobe __x64_sys_getppid".into()];
        now.current_tracer = "function_graph".into();
        now.tracing_on = "1".into();
        now.kprobes_optimization = "0".into();
        now.bpf_links = vec!["tracelab_fentry_count (id 7)".into()];
        now.trace_options = vec!["stacktrace".into()];
        now.instances = vec!["tracelab_other_3".into()];
        let mut then = boot();
        then.trace_options = vec!["nostacktrace".into()];
        let left = now.leftovers(&then);
        assert_eq!(
            left,
            [
                "probe p:tracelab/kprobe __x64_sys_getppid",
                "BPF link tracelab_fentry_count (id 7)",
                "trace instance tracelab_other_3",
                "current_tracer function_graph (was nop)",
                "tracing_on 1 (was 0)",
                "kprobes-optimization 0 (was 1)",
                "trace option stacktrace",
            ]
        );
    }

    #[test]
    fn the_kernels_own_buffer_expansion_is_not_a_change() {
        let mut before = boot();
        before.buffer_size_kb = "7 (expanded: 1408)".into();
        let mut now = before.clone();
        now.buffer_size_kb = "1410".into();
        assert!(now.leftovers(&before).is_empty());
        now.buffer_size_kb = "4096".into();
        assert_eq!(
            now.leftovers(&before),
            ["buffer_size_kb 4096 (was 7 (expanded: 1408))"]
        );
    }

    #[test]
    fn what_was_there_before_is_not_the_labs() {
        let mut before = boot();
        before.ftrace_filter = vec!["vfs_read".into()];
        let mut now = before.clone();
        now.ftrace_filter.push("__x64_sys_getppid".into());
        assert_eq!(
            now.leftovers(&before),
            ["set_ftrace_filter entry __x64_sys_getppid"]
        );
    }
}
