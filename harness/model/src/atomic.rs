//! Atomic file replacement, the one helper every crate writes through: a reader (or a run
//! interrupted half-way) sees the old file or the new one, never a torn write.
//!
//! The temp file (from `tempfile`) lives in the destination's directory, since `rename`
//! is atomic only within one filesystem, and is named `.<name>.<random>.tmp`, so loaders
//! and `.gitignore` skip one a crash left behind. Dropped uncommitted, it is removed.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written that replaces `dest` only when committed.
pub struct AtomicFile {
    file: BufWriter<tempfile::NamedTempFile>,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A temp file is private (0600) by default; results and caches are for reading
        // by others too (a run made with sudo, read by the user): 0644 less the umask.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            file: BufWriter::new(tmp),
            dest: dest.to_path_buf(),
        })
    }

    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.file.get_ref().path(), fs::Permissions::from_mode(mode))
    }

    /// Flushes, syncs (data on disk before the rename makes it visible) and renames the
    /// file to its destination.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.file.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.dest).map_err(|e| e.error)?;
        sync_dir(&self.dest);
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Makes the rename itself durable. Failure is ignored: some filesystems refuse to fsync
/// a directory, and the data is already safe in the file.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit()
}

/// True for the names [`AtomicFile`] gives its temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.json");
        write(&p, b"one").expect("write");
        write(&p, b"two").expect("rewrite");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(names(dir.path()), vec!["a.json"]);
    }

    #[test]
    fn files_are_readable_by_others_as_plain_writes_are() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, b"x").expect("write");
        fs::write(&b, b"x").expect("plain write");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        // fs::write creates 0666 less the umask; ours is 0644 less the umask.
        assert_eq!(mode(&a), mode(&b) & 0o644);
    }

    #[test]
    fn uncommitted_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.json");
        write(&p, b"old").expect("write");
        {
            let mut f = AtomicFile::create(&p).expect("create");
            f.write_all(b"partial").expect("write");
            let tmp = names(dir.path());
            assert!(tmp.iter().any(|n| is_temp_name(n)), "{tmp:?}");
        }
        assert_eq!(fs::read(&p).expect("read"), b"old");
        assert_eq!(names(dir.path()), vec!["a.json"]);
    }
}
