//! Run metadata (`meta.json`): what ran, where, and how time was measured. Filled by the
//! run orchestration; this module only defines it and the time formats.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use tracelab_model::schema::Unit;

/// Everything a reader needs to interpret the cells of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// `tracelab_model::schema::SCHEMA_VERSION` of the writer.
    pub schema_version: u32,
    pub run_id: String,
    /// RFC 3339, UTC (`2026-11-21T21:04:55Z`).
    pub started_at: String,
    pub tracelab_version: String,
    pub git_revision: Option<String>,
    pub command_line: Vec<String>,
    /// `local` or `vm:<arch>/<version>`.
    pub target: String,
    pub arch: String,
    /// The kernel's label (`6.12`, or `local`).
    pub kernel: String,
    /// `uname -r` inside the target, once known.
    pub kernel_release: Option<String>,
    /// Debian package and version the kernel came from.
    pub kernel_package: Option<String>,
    /// Relevant config options as found (`CONFIG_FPROBE_EVENTS` → `y` / `is not set`).
    #[serde(default)]
    pub kernel_config: BTreeMap<String, String>,
    /// QEMU `-cpu` model and flags, or the host CPU.
    pub cpu: String,
    pub qemu_version: Option<String>,
    /// `icount`, `wall` or `native`.
    pub mode: String,
    /// `tcg` or `kvm` under QEMU.
    pub accel: Option<String>,
    /// Which clock was read and what one tick means.
    pub clock: String,
    pub unit: Unit,
    pub workload: String,
    /// Calls per timed loop.
    pub calls: u64,
    pub repeats: u32,
    pub mechanisms: Vec<String>,
    /// Room for later additions without a schema bump.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl RunMeta {
    /// The guest's CPUs (`--vcpus`; recorded only when not 1).
    pub fn vcpus(&self) -> u32 {
        self.extra
            .get("vcpus")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1)
    }

    /// What the run's chart says about it in its title lines.
    pub fn heading(&self) -> crate::plot::run_chart::Heading<'_> {
        crate::plot::run_chart::Heading {
            arch: &self.arch,
            kernel: self.kernel_release.as_deref().unwrap_or(&self.kernel),
            workload: &self.workload,
            calls: self.calls,
            repeats: self.repeats,
            mode: &self.mode,
        }
    }
}

/// Formats `t` as RFC 3339 in UTC with whole seconds, e.g. `2026-11-21T21:04:55Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    utc(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A run id that sorts by start time: `20261121T210455Z-<suffix>` (e.g. suffix
/// `x86_64-6.12`). Characters unsafe in a path component become `_`.
pub fn new_run_id(suffix: &str) -> String {
    run_id_at(SystemTime::now(), suffix)
}

fn run_id_at(t: SystemTime, suffix: &str) -> String {
    let stamp = utc(t).format("%Y%m%dT%H%M%SZ").to_string();
    let suffix: String = suffix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if suffix.is_empty() {
        stamp
    } else {
        format!("{stamp}-{suffix}")
    }
}

/// `t` in UTC, to the second. Times before 1970 clamp to the epoch: a clock that far off
/// is not worth an error in a file name.
fn utc(t: SystemTime) -> chrono::DateTime<chrono::Utc> {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339_utc(at(0)), "1970-01-01T00:00:00Z");
        // 2000-02-29 is a leap day in a century year divisible by 400.
        assert_eq!(rfc3339_utc(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(at(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(at(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn run_id_shape() {
        assert_eq!(
            run_id_at(at(1_700_000_000), "x86_64-6.12"),
            "20231114T221320Z-x86_64-6.12"
        );
        assert_eq!(
            run_id_at(at(0), "vm:arm64/6.1"),
            "19700101T000000Z-vm_arm64_6.1"
        );
        assert_eq!(run_id_at(at(0), ""), "19700101T000000Z");
        assert!(new_run_id("x").ends_with("Z-x"));
    }
}
