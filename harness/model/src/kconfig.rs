//! Kernel build configuration (`.config` text): what the lab needs from it.

use std::collections::BTreeMap;

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

/// The `options` subset of a parsed config (the agent's registry declares which options
/// matter); absent options are recorded as `n`.
pub fn relevant(config: &BTreeMap<String, String>, options: &[&str]) -> BTreeMap<String, String> {
    options
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

/// Options that move figures without deciding whether a mechanism works: the tick rate,
/// the preemption model, lazy RCU, KFENCE's sampling and the per-syscall random kernel
/// stack offset. Recorded with every result and shown by `doctor`.
pub const FACT_OPTIONS: &[&str] = &[
    "CONFIG_HZ",
    "CONFIG_PREEMPT_NONE",
    "CONFIG_PREEMPT_VOLUNTARY",
    "CONFIG_PREEMPT",
    "CONFIG_PREEMPT_LAZY",
    "CONFIG_PREEMPT_RT",
    "CONFIG_PREEMPT_DYNAMIC",
    "CONFIG_RCU_LAZY",
    "CONFIG_KFENCE",
    "CONFIG_KFENCE_SAMPLE_INTERVAL",
    "CONFIG_RANDOMIZE_KSTACK_OFFSET",
    "CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT",
];

/// The facts of [`FACT_OPTIONS`] in words, one `name: value` each, for `doctor` and for
/// readers of `meta.json`: `HZ: 250`, `preemption: voluntary (PREEMPT_DYNAMIC: the boot
/// may choose another)`, `RCU_LAZY: off`, `KFENCE: on, every 100 ms`,
/// `RANDOMIZE_KSTACK_OFFSET: on by default`.
pub fn facts(config: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let on = |o: &str| enabled(config, o) == Some(true);
    let onoff = |o: &str| if on(o) { "on" } else { "off" }.to_string();
    let model = if on("CONFIG_PREEMPT_RT") {
        "full real-time (PREEMPT_RT)"
    } else if on("CONFIG_PREEMPT") {
        "full"
    } else if on("CONFIG_PREEMPT_LAZY") {
        "lazy"
    } else if on("CONFIG_PREEMPT_VOLUNTARY") {
        "voluntary"
    } else if on("CONFIG_PREEMPT_NONE") {
        "none"
    } else {
        "unknown"
    };
    let preemption = if on("CONFIG_PREEMPT_DYNAMIC") {
        format!("{model} (PREEMPT_DYNAMIC: preempt= on the command line may choose another)")
    } else {
        model.to_string()
    };
    let kfence = match (
        on("CONFIG_KFENCE"),
        config.get("CONFIG_KFENCE_SAMPLE_INTERVAL"),
    ) {
        (true, Some(ms)) if ms != "0" => format!("on, a sampled allocation every {ms} ms"),
        (true, _) => "built, sampling off by default".into(),
        (false, _) => "off".into(),
    };
    let kstack = match (
        on("CONFIG_RANDOMIZE_KSTACK_OFFSET"),
        on("CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT"),
    ) {
        (true, true) => "on by default (randomize_kstack_offset=off disables it)".into(),
        (true, false) => "built, off by default".into(),
        (false, _) => "off".into(),
    };
    vec![
        (
            "HZ",
            config
                .get("CONFIG_HZ")
                .cloned()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("preemption", preemption),
        ("RCU_LAZY", onoff("CONFIG_RCU_LAZY")),
        ("KFENCE", kfence),
        ("RANDOMIZE_KSTACK_OFFSET", kstack),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_read_the_options_that_move_figures() {
        let c = parse(
            "CONFIG_HZ=250\nCONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_PREEMPT_DYNAMIC=y\n# CONFIG_RCU_LAZY is not set\nCONFIG_KFENCE=y\nCONFIG_KFENCE_SAMPLE_INTERVAL=100\nCONFIG_RANDOMIZE_KSTACK_OFFSET=y\nCONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT=y\n",
        );
        let f: BTreeMap<&str, String> = facts(&c).into_iter().collect();
        assert_eq!(f["HZ"], "250");
        assert!(f["preemption"].starts_with("voluntary (PREEMPT_DYNAMIC"));
        assert_eq!(f["RCU_LAZY"], "off");
        assert_eq!(f["KFENCE"], "on, a sampled allocation every 100 ms");
        assert!(f["RANDOMIZE_KSTACK_OFFSET"].starts_with("on by default"));
        let rt: BTreeMap<&str, String> =
            facts(&parse("CONFIG_PREEMPT_RT=y\n")).into_iter().collect();
        assert_eq!(rt["preemption"], "full real-time (PREEMPT_RT)");
    }

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
        let r = relevant(&c, &["CONFIG_KPROBES", "CONFIG_FPROBE_EVENTS"]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("CONFIG_FPROBE_EVENTS").map(String::as_str), Some("n"));
    }

    proptest::proptest! {
        /// Any text parses; every `CONFIG_<name>=<value>` line among garbage is found.
        #[test]
        fn any_text_parses_and_options_are_found(
            noise in proptest::collection::vec("\\PC{0,60}", 0..20),
            name in "[A-Z0-9_]{1,30}",
            value in "[ym]|[0-9]{1,6}|\"[a-z ]{0,10}\"",
        ) {
            let planted = format!("CONFIG_{name}={value}");
            let set = format!("CONFIG_{name}=");
            let unset = format!("# CONFIG_{name} is not set");
            // Noise that sets the same option again would win: leave such lines out.
            let mut lines: Vec<String> = noise
                .into_iter()
                .filter(|l| !l.trim().starts_with(&set) && l.trim() != unset)
                .collect();
            lines.insert(lines.len() / 2, planted);
            let config = parse(&lines.join("\n"));
            proptest::prop_assert_eq!(config.get(&format!("CONFIG_{name}")), Some(&value));
        }
    }
}
