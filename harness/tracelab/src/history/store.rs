//! The history store: one directory per night, `<store>/night=<YYYY-MM-DD>-<id>/`, each
//! a dataset in the Hive layout (`arch=…/kernel=…/` results directories) plus
//! `night.json`, so the whole store reads as one Hive dataset (polars, DuckDB, Spark see
//! `night`, `arch` and `kernel` as partition columns). A night appears whole or not at
//! all: it is assembled in a hidden directory and renamed into place.

use crate::dataset;
use crate::results::RunMeta;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const NIGHT_PREFIX: &str = "night=";
pub const NIGHT_FILE: &str = "night.json";

/// What a night records about where and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightInfo {
    pub night: String,
    /// The machine that ran it (its hostname): part of a series' identity.
    pub host: String,
    /// RFC 3339 UTC.
    pub stored_at: String,
    pub tracelab_version: String,
    pub git_revision: Option<String>,
    pub command_line: Vec<String>,
}

/// Checks a night label: `YYYY-MM-DD-<id>` (id: letters, digits, `.`, `_`, `-`), so
/// nights sort by date as names.
pub fn check_night(label: &str) -> Result<()> {
    let ok = label.len() > 11
        && label.len() <= 80
        && label.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && label.as_bytes()[10] == b'-'
        && label[11..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "night `{}`: a night is YYYY-MM-DD-<id> (id of letters, digits, . _ -), e.g. 2026-12-02-a",
            label.chars().take(80).collect::<String>()
        );
    }
    Ok(())
}

/// The default label of a night run now: today's UTC date and the time of day.
pub fn default_night(now: std::time::SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = now.into();
    t.format("%Y-%m-%d-%H%M%S").to_string()
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Appends the results at `source` (a results directory or a matrix dataset) to `store`
/// as night `night`; returns the night's directory.
pub fn append(
    store: &Path,
    night: &str,
    source: &Path,
    command_line: &[String],
) -> Result<PathBuf> {
    check_night(night)?;
    fs::create_dir_all(store).with_context(|| format!("creating the store {}", store.display()))?;
    let dest = store.join(format!("{NIGHT_PREFIX}{night}"));
    if dest.exists() {
        bail!(
            "night {night} is already in {}: name another with --night",
            store.display()
        );
    }
    // The same dataset added twice would read as a night in which nothing changed.
    let ids = run_ids(source)?;
    if store.is_dir() && !ids.is_empty() {
        for (label, dir, _) in nights(store).unwrap_or_default() {
            if run_ids(&dir)? == ids {
                bail!(
                    "{} holds the same runs as night {label} of {}: a dataset is added once",
                    source.display(),
                    store.display()
                );
            }
        }
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{NIGHT_PREFIX}{night}.partial-"))
        .tempdir_in(store)
        .with_context(|| format!("creating a directory in {}", store.display()))?;
    if source.join(crate::results::store::META_FILE).is_file() {
        let meta: RunMeta = serde_json::from_slice(
            &fs::read(source.join(crate::results::store::META_FILE))
                .with_context(|| format!("reading {}", source.display()))?,
        )
        .with_context(|| format!("parsing {}/meta.json", source.display()))?;
        let part = dataset::partition_dir(&meta.arch, &meta.kernel);
        dataset::copy_tree(source, &staging.path().join(part))?;
    } else {
        dataset::copy_tree(source, staging.path())?;
    }
    let info = NightInfo {
        night: night.to_string(),
        host: hostname(),
        stored_at: crate::results::rfc3339_utc(std::time::SystemTime::now()),
        tracelab_version: tracelab_model::VERSION.to_string(),
        git_revision: tracelab_model::provenance::revision_label(),
        command_line: command_line.to_vec(),
    };
    crate::results::atomic::write(
        &staging.path().join(NIGHT_FILE),
        &serde_json::to_vec_pretty(&info)?,
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))?;
    }
    fs::rename(staging.path(), &dest)
        .with_context(|| format!("moving night {night} into {}", store.display()))?;
    let _ = staging.keep();
    Ok(dest)
}

/// The run ids of the results directories at or under `path` (from their `meta.json`).
fn run_ids(path: &Path) -> Result<std::collections::BTreeSet<String>> {
    #[derive(Deserialize)]
    struct Id {
        run_id: String,
    }
    dataset::results_dirs(path)?
        .into_iter()
        .map(|d| {
            let file = d.join(crate::results::store::META_FILE);
            let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let id: Id = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", file.display()))?;
            Ok(id.run_id)
        })
        .collect()
}

/// Every night of a store, oldest first: (label, directory, info). Anything else in the
/// store but hidden entries is refused, so a stray copy cannot pass for a night.
pub fn nights(store: &Path) -> Result<Vec<(String, PathBuf, Option<NightInfo>)>> {
    let entries = fs::read_dir(store)
        .with_context(|| format!("{} is not a store directory", store.display()))?;
    let dataset = store.join(crate::dataset::INDEX_FILE).is_file()
        || store.join(crate::results::store::META_FILE).is_file()
        || fs::read_dir(store)?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("arch="));
    if dataset {
        bail!(
            "{} is a dataset (or a results directory), not a store of nights: add it to a store with `tracelab add-night <store> {}`",
            store.display(),
            store.display()
        );
    }
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(label) = name.strip_prefix(NIGHT_PREFIX) else {
            bail!(
                "{} in the store is not a night (night=YYYY-MM-DD-<id>): move it out of {}",
                name,
                store.display()
            );
        };
        check_night(label).with_context(|| format!("{}", e.path().display()))?;
        if !e.file_type()?.is_dir() {
            bail!("{} is not a directory", e.path().display());
        }
        let info = fs::read(e.path().join(NIGHT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        out.push((label.to_string(), e.path(), info));
    }
    if out.is_empty() {
        bail!(
            "{} holds no nights yet: add one with `tracelab run --store {}` or `matrix --store`",
            store.display(),
            store.display()
        );
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn night_labels_sort_by_date_and_bad_ones_are_refused() {
        check_night("2026-12-02-a").expect("ok");
        check_night("2026-12-02-6.12.95_x86").expect("ok");
        for bad in [
            "2026-12-02",
            "2026-1-02-a",
            "x026-12-02-a",
            "2026-12-02-a/b",
            "2026-12-02-a b",
            "",
        ] {
            let err = format!("{:#}", check_night(bad).unwrap_err());
            assert!(err.contains("YYYY-MM-DD-<id>"), "{bad}: {err}");
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_633_600);
        assert_eq!(default_night(t), "2025-12-02-000000");
    }

    #[test]
    fn a_store_refuses_foreign_entries_and_nights_come_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = format!("{:#}", nights(dir.path()).unwrap_err());
        assert!(err.contains("no nights yet"), "{err}");
        fs::create_dir_all(dir.path().join("night=2026-12-02-b")).expect("mkdir");
        fs::create_dir_all(dir.path().join("night=2026-11-30-a")).expect("mkdir");
        fs::create_dir_all(dir.path().join(".night=2026-12-03-x.partial-1")).expect("mkdir");
        let found: Vec<String> = nights(dir.path())
            .expect("nights")
            .into_iter()
            .map(|n| n.0)
            .collect();
        assert_eq!(found, ["2026-11-30-a", "2026-12-02-b"]);
        fs::create_dir_all(dir.path().join("results")).expect("mkdir");
        let err = format!("{:#}", nights(dir.path()).unwrap_err());
        assert!(err.contains("results in the store is not a night"), "{err}");
    }
}
