//! QEMU guests: the initramfs the agent boots in, the QEMU command line, the console the
//! agent reports through, and the kept guests later runs restore instead of booting.

pub mod console;
pub mod initramfs;
pub mod qemu;
pub mod qmp;
pub mod snapshot;
pub mod userland;

/// Removes the files in `dir` whose names `pick` accepts and that were last used (modified)
/// more than `keep` ago, best effort: the caches of initramfs archives and kept guests.
pub fn prune_unused(dir: &std::path::Path, keep: std::time::Duration, pick: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > keep);
        if old && pick(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
