//! Kernel build configuration (`.config` text): what the lab needs from it.

use std::collections::BTreeMap;

/// Options that decide whether, and how, each mechanism works. They are recorded with
/// every result and named when a mechanism is unsupported.
pub const RELEVANT: &[&str] = &[
    "CONFIG_FTRACE",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_FUNCTION_GRAPH_TRACER",
    "CONFIG_DYNAMIC_FTRACE",
    "CONFIG_DYNAMIC_FTRACE_WITH_REGS",
    "CONFIG_DYNAMIC_FTRACE_WITH_ARGS",
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    "CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS",
    "CONFIG_KPROBES",
    "CONFIG_KPROBES_ON_FTRACE",
    "CONFIG_OPTPROBES",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_KRETPROBES",
    "CONFIG_KRETPROBE_ON_RETHOOK",
    "CONFIG_FPROBE",
    "CONFIG_FPROBE_EVENTS",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_BPF_JIT",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_BPF_EVENTS",
    "CONFIG_FTRACE_SYSCALLS",
    "CONFIG_FUNCTION_ERROR_INJECTION",
    "CONFIG_BPF_KPROBE_OVERRIDE",
    "CONFIG_X86_KERNEL_IBT",
    "CONFIG_MITIGATION_RETPOLINE",
    "CONFIG_RETPOLINE",
    "CONFIG_CALL_DEPTH_TRACKING",
    "CONFIG_MITIGATION_CALL_DEPTH_TRACKING",
    "CONFIG_ARM64_PTR_AUTH_KERNEL",
    "CONFIG_ARM64_BTI_KERNEL",
];

/// Parses `.config` text into option → value (`y`, `m`, numbers, strings). Options
/// written as `# CONFIG_X is not set` are recorded as `n`.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                if name.starts_with("CONFIG_") {
                    map.insert(name.to_string(), "n".to_string());
                }
            }
        } else if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("CONFIG_") {
                map.insert(k.to_string(), v.to_string());
            }
        }
    }
    map
}

/// The [`RELEVANT`] subset of a parsed config; absent options are recorded as `n`.
pub fn relevant(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    RELEVANT
        .iter()
        .map(|k| {
            (
                k.to_string(),
                config.get(*k).cloned().unwrap_or_else(|| "n".into()),
            )
        })
        .collect()
}

/// Whether an option is enabled (`y` or `m`); None when the config is unknown.
pub fn enabled(config: &BTreeMap<String, String>, option: &str) -> Option<bool> {
    if config.is_empty() {
        return None;
    }
    Some(matches!(
        config.get(option).map(String::as_str),
        Some("y" | "m")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_unset_and_values() {
        let c = parse("CONFIG_KPROBES=y\n# CONFIG_FPROBE is not set\nCONFIG_HZ=250\n# comment\n");
        assert_eq!(c.get("CONFIG_KPROBES").map(String::as_str), Some("y"));
        assert_eq!(c.get("CONFIG_FPROBE").map(String::as_str), Some("n"));
        assert_eq!(c.get("CONFIG_HZ").map(String::as_str), Some("250"));
        assert_eq!(enabled(&c, "CONFIG_KPROBES"), Some(true));
        assert_eq!(enabled(&c, "CONFIG_FPROBE"), Some(false));
        assert_eq!(enabled(&c, "CONFIG_MISSING"), Some(false));
        assert_eq!(enabled(&BTreeMap::new(), "CONFIG_KPROBES"), None);
        let r = relevant(&c);
        assert_eq!(r.len(), RELEVANT.len());
        assert_eq!(r.get("CONFIG_FPROBE_EVENTS").map(String::as_str), Some("n"));
    }
}
