//! Atomic file replacement for results (through [`tracelab_model::atomic`]), with the
//! path in every error.

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;
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
