//! The environment a measurement ran in: what changes tracing cost or makes figures noisy.
//! Captured by the agent (in a guest or natively) and stored with every run.

use std::collections::BTreeMap;
use std::fs;
pub use tracelab_model::environment::Environment;

/// A /proc or /sys file, trimmed; None when unreadable or empty.
pub(crate) fn read(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn cpuinfo_field(cpuinfo: &str, names: &[&str]) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        names.contains(&k.trim()).then(|| v.trim().to_string())
    })
}

/// Reads the environment of the running system.
pub fn capture() -> Environment {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut env = Environment {
        cpu_model: cpuinfo_field(&cpuinfo, &["model name", "CPU part"]),
        microcode: cpuinfo_field(&cpuinfo, &["microcode", "CPU revision"]),
        online_cpus: read("/sys/devices/system/cpu/online"),
        smt: read("/sys/devices/system/cpu/smt/control"),
        boost: read("/sys/devices/system/cpu/cpufreq/boost").or_else(|| {
            read("/sys/devices/system/cpu/intel_pstate/no_turbo").map(|v| format!("no_turbo={v}"))
        }),
        isolated_cpus: read("/sys/devices/system/cpu/isolated"),
        kernel_cmdline: read("/proc/cmdline"),
        load_average: read("/proc/loadavg").and_then(|l| l.split_whitespace().next()?.parse().ok()),
        ..Environment::default()
    };
    env.mitigations = read_dir_values("/sys/devices/system/cpu/vulnerabilities", "");
    env.governors = read_dir_values("/sys/devices/system/cpu/cpufreq", "scaling_governor");
    env.warnings = warnings(&env);
    env
}

/// Name → content of each entry of `dir` (of `entry/file` when `file` is given).
fn read_dir_values(dir: &str, file: &str) -> BTreeMap<String, String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let path = if file.is_empty() {
                e.path()
            } else {
                e.path().join(file)
            };
            Some((
                e.file_name().to_string_lossy().into_owned(),
                read(&path.to_string_lossy())?,
            ))
        })
        .collect()
}

/// What makes real-time figures noisy on this host.
pub fn warnings(env: &Environment) -> Vec<String> {
    let mut w = Vec::new();
    let slow: Vec<&String> = env
        .governors
        .iter()
        .filter(|(_, g)| *g != "performance")
        .map(|(p, _)| p)
        .collect();
    if !slow.is_empty() {
        w.push(format!(
            "cpufreq governor is not `performance` on {} policies",
            slow.len()
        ));
    }
    match env.boost.as_deref() {
        Some("1") => w.push("frequency boost is on".into()),
        Some("no_turbo=0") => w.push("turbo is on (intel_pstate no_turbo=0)".into()),
        _ => {}
    }
    if let Some(load) = env.load_average {
        if load > 0.5 {
            w.push(format!(
                "the host is busy (1-minute load average {load:.2})"
            ));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_governor_boost_and_load() {
        let mut env = Environment::default();
        assert!(warnings(&env).is_empty());
        env.governors.insert("policy0".into(), "powersave".into());
        env.boost = Some("1".into());
        env.load_average = Some(3.0);
        let w = warnings(&env).join("; ");
        assert!(
            w.contains("governor") && w.contains("boost") && w.contains("busy"),
            "{w}"
        );
    }

    #[test]
    fn captures_this_host_without_failing() {
        let env = capture();
        assert!(env.kernel_cmdline.is_some());
        assert!(
            !env.mitigations.is_empty()
                || !std::path::Path::new("/sys/devices/system/cpu/vulnerabilities").exists()
        );
    }

    #[test]
    fn reads_cpuinfo_fields() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 3GHz\nmicrocode\t: 0xf0\n";
        assert_eq!(
            cpuinfo_field(text, &["model name"]).as_deref(),
            Some("Some CPU @ 3GHz")
        );
        assert_eq!(
            cpuinfo_field(text, &["microcode", "CPU revision"]).as_deref(),
            Some("0xf0")
        );
    }
}
