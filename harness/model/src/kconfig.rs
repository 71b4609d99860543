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
