//! Kept guests: every guest of one kernel and agent build boots the same way to the same
//! point, the agent's `ready` (it waits for its plan on the console). The first run keeps
//! the guest's whole state there (QEMU migrated to a file), and later runs restore it in
//! a fraction of a second instead of booting for about ten.
//!
//! The file's name holds a key of everything that shapes the guest (QEMU's version, its
//! whole command line, with the kernel, the initramfs and the plugin by their SHA256) and
//! the SHA256 of the file itself, checked at every restore while QEMU loads it: a stale
//! state is never found, a damaged one is never used (it is removed and the guest booted
//! and kept again). Unused files are pruned after a day, like the initramfs cache.

use super::qemu::Setup;
use super::qmp::Qmp;
use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracelab_kernels::cache::sha256_bytes;

/// How long an unused kept guest stays in the cache.
const KEEP: Duration = Duration::from_secs(24 * 3600);

/// Bumped when what a kept guest holds changes meaning (the agent's protocol at `ready`).
const FORMAT: u32 = 1;

/// How long QEMU may take to write or load a guest's state (about 90 MB; 0.6 s and
/// 0.15 s on a 2-core build machine).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// The kept state of one guest configuration.
pub struct Snapshot {
    dir: PathBuf,
    key: String,
}

impl Snapshot {
    /// The snapshot of the guest `setup` makes from `kernel` and `initrd` under
    /// `qemu_version`, kept under `cache`.
    pub fn of(
        cache: &Path,
        qemu_version: &str,
        setup: &Setup,
        kernel: &Path,
        initrd: &Path,
    ) -> Result<Snapshot> {
        let file_sha = |p: &Path| -> Result<String> {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            Ok(sha256_bytes(&bytes))
        };
        let mut shaped = setup.clone();
        if let Some((plugin, _)) = &setup.plugin {
            // Where the plugin writes is not part of the guest.
            shaped.plugin = Some((
                PathBuf::from(format!("sha256:{}", file_sha(plugin)?)),
                PathBuf::from("-"),
            ));
        }
        let args = shaped.args(
            Path::new(&format!("sha256:{}", file_sha(kernel)?)),
            Path::new(&format!("sha256:{}", file_sha(initrd)?)),
        );
        let identity = json!({ "format": FORMAT, "qemu": qemu_version, "args": args });
        Ok(Snapshot {
            dir: cache.join("snapshots"),
            key: sha256_bytes(identity.to_string().as_bytes())[..24].to_string(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The kept file and the SHA256 its name holds, if one exists.
    pub fn find(&self) -> Option<(PathBuf, String)> {
        let prefix = format!("{}.", self.key);
        let mut found: Vec<(std::time::SystemTime, PathBuf, String)> = std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let sha = name
                    .strip_prefix(&prefix)?
                    .strip_suffix(".mig")?
                    .to_string();
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, e.path(), sha))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, p, sha)| (p, sha))
    }

    /// Removes every kept file of this key (one failed to restore).
    pub fn discard(&self) {
        while let Some((path, _)) = self.find() {
            if std::fs::remove_file(&path).is_err() {
                break;
            }
        }
    }

    /// Keeps the state of the guest behind `qmp`, which the agent has just said `ready`
    /// in: stops it, has QEMU write its state to a temporary file, names the file by its
    /// SHA256 and lets the guest go on. Stopped, the guest's clock does not move, so the
    /// run that keeps it measures what a run without would.
    pub fn save(&self, qmp: &mut Qmp) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        // Kept guests, and the partial files of crashed runs.
        super::prune_unused(&self.dir, KEEP, |name| {
            name.ends_with(".mig") || name.ends_with(".partial")
        });
        // And at most MOST of them: every agent build is a new key (its revision is in
        // it), and a day of CI runs kept 98 guests, 8.3 GB, on a 252 GB disk left 1.6 GB.
        keep_newest(&self.dir, MOST - 1);
        // Unique per process and call: two guests of one key may be kept at once.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = self
            .dir
            .join(format!(".{}.{}-{n}.partial", self.key, std::process::id()));
        qmp.execute("stop", None)?;
        let written = (|| -> Result<()> {
            qmp.execute(
                "migrate",
                Some(json!({ "uri": format!("file:{}", temp.display()) })),
            )?;
            qmp.wait_for("writing the guest's state", TRANSFER_TIMEOUT, |q| {
                let r = q.execute("query-migrate", None)?;
                match r.get("status").and_then(|s| s.as_str()) {
                    Some("completed") => Ok(Some(())),
                    Some("failed") | Some("cancelled") => bail!(
                        "QEMU could not write the guest's state: {}",
                        r.get("error-desc")
                            .and_then(|s| s.as_str())
                            .unwrap_or("no reason")
                    ),
                    _ => Ok(None),
                }
            })
        })();
        // The guest goes on whether or not its state was kept.
        let resumed = qmp.execute("cont", None);
        let kept = written.and_then(|()| {
            let sha = file_sha256(&temp)?;
            let path = self.dir.join(format!("{}.{sha}.mig", self.key));
            std::fs::rename(&temp, &path)
                .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
        });
        if kept.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        resumed?;
        kept
    }

    /// Loads `path` into the QEMU behind `qmp` (started with `-incoming defer`), checks
    /// the file against `sha` while QEMU reads it, and lets the guest go on.
    pub fn restore(&self, qmp: &mut Qmp, path: &Path, sha: &str) -> Result<()> {
        qmp.execute(
            "migrate-incoming",
            Some(json!({ "uri": format!("file:{}", path.display()) })),
        )?;
        let actual = file_sha256(path)?;
        if actual != sha {
            bail!(
                "kept guest {} is damaged (SHA256 {actual}, its name says {sha})",
                path.display()
            );
        }
        qmp.wait_for("loading the guest's state", TRANSFER_TIMEOUT, |q| {
            match q.status()?.as_str() {
                "inmigrate" => Ok(None),
                "paused" | "postmigrate" => Ok(Some(())),
                other => bail!(
                    "QEMU did not load the kept guest {} (state {other})",
                    path.display()
                ),
            }
        })?;
        qmp.execute("cont", None)?;
        // In use again: fresh for the pruning.
        let _ = std::fs::File::options()
            .append(true)
            .open(path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Ok(())
    }
}

/// How many kept guests the cache holds at most (about 90 MB each): the most recently
/// used ones.
const MOST: usize = 16;

/// Removes all but the `n` most recently used kept guests (best effort). A guest being
/// restored from a removed file keeps reading it (QEMU has it open); one that had not yet
/// opened it boots and is kept again.
fn keep_newest(dir: &Path, n: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".mig"))
        .filter_map(|e| Some((e.metadata().and_then(|m| m.modified()).ok()?, e.path())))
        .collect();
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, path) in kept.into_iter().skip(n) {
        let _ = std::fs::remove_file(path);
    }
}

/// QEMU's options for a guest that waits for its state (`migrate-incoming`).
pub const INCOMING: [&str; 2] = ["-incoming", "defer"];

fn file_sha256(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::qemu::{Accel, Mode};
    use tracelab_model::arch::Arch;

    #[test]
    fn the_key_follows_what_shapes_the_guest_and_a_file_is_found_by_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (k, i, p) = (
            dir.path().join("vmlinuz"),
            dir.path().join("initrd"),
            dir.path().join("plugin.so"),
        );
        for f in [&k, &i, &p] {
            std::fs::write(f, f.display().to_string()).expect("write");
        }
        let setup = Setup::new(Arch::X86_64, Mode::Icount, Accel::Tcg);
        let key = |s: &Setup| {
            Snapshot::of(dir.path(), "QEMU 10.0.2", s, &k, &i)
                .expect("key")
                .key
        };
        let base = key(&setup);
        assert_eq!(base, key(&setup.clone()));
        let mut args = setup.clone();
        args.kernel_args = vec!["mitigations=off".into()];
        let mut cpus = setup.clone();
        cpus.vcpus = 2;
        let mut plugged = setup.clone();
        plugged.plugin = Some((p.clone(), dir.path().join("boot-1.txt")));
        let mut elsewhere = plugged.clone();
        elsewhere.plugin = Some((p.clone(), dir.path().join("boot-2.txt")));
        assert_eq!(
            key(&plugged),
            key(&elsewhere),
            "where the plugin writes is no part"
        );
        for other in [&args, &cpus, &plugged] {
            assert_ne!(base, key(other));
        }
        let other_qemu = Snapshot::of(dir.path(), "QEMU 10.1.0", &setup, &k, &i).expect("key");
        assert_ne!(base, other_qemu.key);
        std::fs::write(&i, "another agent").expect("write");
        assert_ne!(base, key(&setup), "the initramfs is part of the key");

        let snap = Snapshot::of(dir.path(), "QEMU 10.0.2", &setup, &k, &i).expect("key");
        assert!(snap.find().is_none());
        std::fs::create_dir_all(&snap.dir).expect("mkdir");
        let file = snap.dir.join(format!("{}.{}.mig", snap.key, "ab12"));
        std::fs::write(&file, b"state").expect("write");
        std::fs::write(
            snap.dir.join(format!("{}x.cd34.mig", snap.key)),
            b"other key",
        )
        .expect("write");
        assert_eq!(snap.find(), Some((file.clone(), "ab12".into())));
        snap.discard();
        assert!(snap.find().is_none() && !file.exists());
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used_guests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = std::time::SystemTime::now();
        for i in 0..5u64 {
            let f = dir.path().join(format!("k{i}.s.mig"));
            std::fs::write(&f, b"state").expect("write");
            std::fs::File::options()
                .append(true)
                .open(&f)
                .and_then(|h| h.set_modified(now - Duration::from_secs(100 * (5 - i))))
                .expect("mtime");
        }
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        keep_newest(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["k3.s.mig", "k4.s.mig", "notes.txt"]);
    }
}
