//! Atomic file replacement for results (through [`tracelab_model::atomic`]), with the
//! path in every error.

use anyhow::{bail, Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tracelab_model::atomic::AtomicFile;

pub use tracelab_model::atomic::is_temp_name;

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    tracelab_model::atomic::write(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `path` atomically through `fill`, which gets a buffered writer on the temp file.
pub fn write_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<&mut AtomicFile>) -> Result<()>,
{
    let mut file = AtomicFile::create(path)
        .with_context(|| format!("creating a temp file for {}", path.display()))?;
    {
        let mut w = BufWriter::new(&mut file);
        fill(&mut w).with_context(|| format!("writing {}", path.display()))?;
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    file.commit()
        .with_context(|| format!("replacing {}", path.display()))
}

/// A hidden sibling of `path` (which must be absent or empty) to fill before
/// [`publish_dir`] renames it into place.
pub(crate) fn staging_dir(path: &Path) -> Result<tempfile::TempDir> {
    create_empty_dir(path)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} has no directory name", path.display()))?;
    tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", name.to_string_lossy()))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))
}

/// Renames a filled staging directory to `path` (replacing the empty directory there).
pub(crate) fn publish_dir(staging: tempfile::TempDir, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} readable", staging.path().display()))?;
    if let Err(e) = std::fs::rename(staging.path(), path) {
        if e.kind() == std::io::ErrorKind::DirectoryNotEmpty {
            bail!(
                "{} was filled by another run meanwhile; choose another --out",
                path.display()
            );
        }
        return Err(e).with_context(|| format!("moving the new directory into {}", path.display()));
    }
    let _ = staging.keep();
    Ok(())
}

/// Creates `path`, refusing one that exists with something in it.
pub(crate) fn create_empty_dir(path: &Path) -> Result<()> {
    if path.exists() {
        let mut entries = std::fs::read_dir(path)
            .with_context(|| format!("{} exists and is not a directory", path.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty; choose another --out",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.json");
        write(&p, b"old").expect("write");
        let err = write_with(&p, |w| {
            w.write_all(b"partial")?;
            anyhow::bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).expect("read"), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("read_dir").count(), 1);
    }
}
