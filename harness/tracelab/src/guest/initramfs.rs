//! A byte-reproducible initramfs: busybox, the static agent and an `/init`. The plan is
//! not in it: the agent reads it from the console, so that one guest state serves every
//! plan (snapshots).
//!
//! Fixed order, timestamps, owners and inode numbers: figures from icount guests differed
//! between runs when the initramfs differed only in timestamps.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use tracelab_kernels::userland::Tree;

/// An `/init` that mounts what the agent needs, runs it with `$plan` (where its plan comes
/// from), and powers off (QEMU runs with `-no-reboot`, so a reboot ends it). The console
/// is the agent's report channel.
macro_rules! init_script {
    ($plan:literal) => {
        concat!(
            "#!/bin/busybox sh\n",
            "/bin/busybox mount -t proc proc /proc\n",
            "/bin/busybox mount -t sysfs sysfs /sys\n",
            "/bin/busybox mount -t devtmpfs devtmpfs /dev\n",
            "/bin/busybox mount -t tracefs tracefs /sys/kernel/tracing\n",
            "/bin/busybox mount -t debugfs debugfs /sys/kernel/debug\n",
            "/tracelab-agent ",
            $plan,
            "\n/bin/busybox reboot -f\n"
        )
    };
}

/// `/init` of every guest: the console also brings the plan.
pub const INIT_SCRIPT: &str = init_script!("--plan-on-stdin");

/// `/init` for an archive that holds the plan (`/plan.json`).
pub const INIT_SCRIPT_PLAN_FILE: &str = init_script!("--plan /plan.json");

/// Builds the archive (uncompressed newc cpio; the kernel takes it as is).
pub fn build(agent: &Path, busybox: &Path) -> Result<Vec<u8>> {
    archive(agent, busybox, None, INIT_SCRIPT)
}

/// The archive with the plan in it, for guests whose plan must not arrive on the console
/// (two vCPUs).
pub fn build_with_plan(agent: &Path, busybox: &Path, plan_json: &str) -> Result<Vec<u8>> {
    archive(agent, busybox, Some(plan_json), INIT_SCRIPT_PLAN_FILE)
}

/// An archive with another `/init` and a plan in `/plan.json` (tests drive the agent
/// through scenarios).
pub fn build_with_init(
    agent: &Path,
    busybox: &Path,
    plan_json: &str,
    init: &str,
) -> Result<Vec<u8>> {
    archive(agent, busybox, Some(plan_json), init)
}

fn archive(agent: &Path, busybox: &Path, plan_json: Option<&str>, init: &str) -> Result<Vec<u8>> {
    let agent =
        std::fs::read(agent).with_context(|| format!("reading agent {}", agent.display()))?;
    let busybox =
        std::fs::read(busybox).with_context(|| format!("reading busybox {}", busybox.display()))?;
    let mut tree = Tree::default();
    for dir in ["proc", "sys", "tmp"] {
        tree.dir(dir);
    }
    tree.file("bin/busybox", 0o755, busybox);
    // The kernel opens /dev/console for init before anything can mount devtmpfs.
    tree.char_device("dev/console", 5, 1);
    tree.file("init", 0o755, init.as_bytes().to_vec());
    if let Some(plan) = plan_json {
        tree.file("plan.json", 0o644, plan.as_bytes().to_vec());
    }
    tree.file("tracelab-agent", 0o755, agent);
    tree.archive()
}

/// A newc archive of plain files, to append to an initramfs (the kernel unpacks every
/// archive it is given, in order): a test's extra plans.
pub fn extra_files(files: &[(String, String)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, text) in files {
        let b = cpio::newc::Builder::new(name)
            .mode(0o100644)
            .nlink(1)
            .uid(0)
            .gid(0)
            .mtime(0);
        let mut w = b.write(&mut out, text.len() as u32);
        w.write_all(text.as_bytes())
            .context("writing initramfs entry")?;
        w.finish().context("finishing initramfs entry")?;
    }
    cpio::newc::trailer(&mut out).context("writing initramfs trailer")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_byte_reproducible_and_holds_every_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("agent"), dir.path().join("busybox"));
        std::fs::write(&a, b"AGENT").expect("write");
        std::fs::write(&b, b"BUSYBOX").expect("write");
        let one = build(&a, &b).expect("build");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(&a, b"AGENT").expect("rewrite with a new mtime");
        let two = build(&a, &b).expect("build");
        assert_eq!(one, two);
        let text = String::from_utf8_lossy(&one);
        for name in [
            "bin/busybox",
            "dev/console",
            "init",
            "tracelab-agent",
            "TRAILER!!!",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(text.contains("AGENT") && !text.contains("plan.json"));
        assert!(text.contains("--plan-on-stdin"));
        let with_plan = build_with_plan(&a, &b, "{\"plan\":1}").expect("build");
        let text = String::from_utf8_lossy(&with_plan);
        assert!(text.contains("plan.json") && text.contains("{\"plan\":1}"));
        // The bytes of the archive every guest booted before plans came on the console.
        assert_eq!(
            tracelab_kernels::cache::sha256_bytes(&with_plan),
            "3df3ea76d36e3dbd64fd098536ae5ca19be45528d99823b87670ab4bbeedd2d4"
        );
        // The bytes every guest boots: the figures of an icount guest depend on them.
        assert_eq!(
            tracelab_kernels::cache::sha256_bytes(&one),
            "c8aeec984a495848a4a2f38d8c8bfba144f189140cbd832f9f902e56778473e0"
        );
    }
}
