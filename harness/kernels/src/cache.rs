//! The download cache: where it lives, files that appear whole or not at all, and
//! checksum-verified downloads that replace a corrupt cached copy.
//!
//! Layout under the cache directory:
//! - `index/<suite>/binary-<debarch>/Packages.xz`: package indexes
//! - `debs/<basename>.deb`: downloaded packages, verified against the index
//! - `kernels/<arch>/<version>/{vmlinuz,config,kernel.json}`: extracted kernels
//! - `busybox/<arch>/{busybox,busybox.json}`: the guests' static busybox

use super::fetch::{Fetch, FetchError};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "TRACELAB_CACHE";

/// `$TRACELAB_CACHE` if set and non-empty, else `<user cache dir>/tracelab`.
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    resolve_cache_dir(std::env::var_os(CACHE_ENV), dirs::cache_dir())
}

fn resolve_cache_dir(
    env: Option<std::ffi::OsString>,
    user_cache: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    match env {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => user_cache
            .map(|d| d.join("tracelab"))
            .ok_or_else(|| anyhow::anyhow!("no user cache directory (no $HOME?): set {CACHE_ENV}")),
    }
}

pub use tracelab_model::atomic::AtomicFile as TempFile;

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    tracelab_model::atomic::write(dest, bytes)
}

/// Lower-case hex SHA256 of a file's contents.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// What a verified file must look like, from the package index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The cached file matched and was used as is.
    Reused,
    /// The file was downloaded (there was none, or the cached one was corrupt).
    Downloaded,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(
        "{url}: downloaded {actual_size} bytes with SHA256 {actual_sha256}, \
         but the index says {expected_size} bytes with SHA256 {expected_sha256}"
    )]
    Mismatch {
        url: String,
        expected_size: u64,
        expected_sha256: String,
        actual_size: u64,
        actual_sha256: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes `dest` hold the file at `url` with the expected size and SHA256.
///
/// A cached `dest` that matches is reused without touching the network; one that does not
/// (truncated, corrupt, a different build under the same name) is deleted and fetched
/// again. The download goes to a temp file that is renamed into place only once verified.
pub fn download_verified(
    fetcher: &dyn Fetch,
    url: &str,
    dest: &Path,
    expected: &Expected,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Outcome, DownloadError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    if let Ok(meta) = fs::metadata(dest) {
        let good = meta.len() == expected.size_bytes
            && sha256_file(dest).map_err(io_err(dest))? == expected.sha256;
        if good {
            return Ok(Outcome::Reused);
        }
        fs::remove_file(dest).map_err(io_err(dest))?;
    }

    let tmp = TempFile::create(dest).map_err(io_err(dest))?;
    let mut out = Hashing {
        inner: tmp,
        hasher: Sha256::new(),
    };
    let actual_size = fetcher.fetch(url, &mut out, progress)?;
    let actual_sha256 = format!("{:x}", out.hasher.finalize());
    if actual_size != expected.size_bytes || actual_sha256 != expected.sha256 {
        return Err(DownloadError::Mismatch {
            url: url.into(),
            expected_size: expected.size_bytes,
            expected_sha256: expected.sha256.clone(),
            actual_size,
            actual_sha256,
        });
    }
    out.inner.commit().map_err(io_err(dest))?;
    Ok(Outcome::Downloaded)
}

/// Downloads `url` to `dest` (atomically) without a checksum to check.
pub fn download(
    fetcher: &dyn Fetch,
    url: &str,
    dest: &Path,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<u64, DownloadError> {
    let mut tmp = TempFile::create(dest).map_err(|source| DownloadError::Io {
        path: dest.into(),
        source,
    })?;
    let n = fetcher.fetch(url, &mut tmp, progress)?;
    tmp.commit().map_err(|source| DownloadError::Io {
        path: dest.into(),
        source,
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::fetch::fake::FakeFetcher;
    use super::*;

    const URL: &str = "http://mirror.test/debian/pool/main/x/x_1_amd64.deb";

    fn expected(bytes: &[u8]) -> Expected {
        Expected {
            size_bytes: bytes.len() as u64,
            sha256: sha256_bytes(bytes),
        }
    }

    fn no_temp_files_left(dir: &Path) {
        let names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn cache_dir_comes_from_env_then_user_cache() {
        let d = resolve_cache_dir(Some("/x/y".into()), Some("/home/u/.cache".into()));
        assert_eq!(d.expect("env"), PathBuf::from("/x/y"));
        let d = resolve_cache_dir(Some("".into()), Some("/home/u/.cache".into()));
        assert_eq!(d.expect("user"), PathBuf::from("/home/u/.cache/tracelab"));
        let err = resolve_cache_dir(None, None).expect_err("none");
        assert!(err.to_string().contains(CACHE_ENV));
    }

    #[test]
    fn downloads_then_reuses_a_good_cached_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("x.deb");
        let body = b"a package".to_vec();
        let fetcher = FakeFetcher::default();
        fetcher.put(URL, body.clone());

        let got = download_verified(&fetcher, URL, &dest, &expected(&body), &|_, _| {});
        assert_eq!(got.expect("first"), Outcome::Downloaded);
        assert_eq!(fs::read(&dest).expect("read"), body);
        let got = download_verified(&fetcher, URL, &dest, &expected(&body), &|_, _| {});
        assert_eq!(got.expect("second"), Outcome::Reused);
        assert_eq!(fetcher.count(URL), 1);
        no_temp_files_left(dir.path());
    }

    #[test]
    fn corrupt_or_truncated_cached_file_is_fetched_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("x.deb");
        let body = b"the real package bytes".to_vec();
        let fetcher = FakeFetcher::default();
        fetcher.put(URL, body.clone());

        // Same length, one byte flipped.
        let mut corrupt = body.clone();
        corrupt[3] ^= 1;
        fs::write(&dest, &corrupt).expect("write");
        let got = download_verified(&fetcher, URL, &dest, &expected(&body), &|_, _| {});
        assert_eq!(got.expect("corrupt"), Outcome::Downloaded);
        assert_eq!(fs::read(&dest).expect("read"), body);

        // Truncated.
        fs::write(&dest, &body[..5]).expect("write");
        let got = download_verified(&fetcher, URL, &dest, &expected(&body), &|_, _| {});
        assert_eq!(got.expect("truncated"), Outcome::Downloaded);
        assert_eq!(fs::read(&dest).expect("read"), body);
        assert_eq!(fetcher.count(URL), 2);
    }

    #[test]
    fn a_bad_download_is_an_error_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("x.deb");
        let fetcher = FakeFetcher::default();
        fetcher.put(URL, b"something else".to_vec());
        let err = download_verified(&fetcher, URL, &dest, &expected(b"wanted"), &|_, _| {})
            .expect_err("mismatch");
        assert!(matches!(err, DownloadError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains(URL), "{err}");
        assert!(!dest.exists());
        no_temp_files_left(dir.path());

        fetcher.remove(URL);
        let err = download_verified(&fetcher, URL, &dest, &expected(b"wanted"), &|_, _| {})
            .expect_err("404");
        assert!(
            matches!(err, DownloadError::Fetch(FetchError::NotFound { .. })),
            "{err}"
        );
        no_temp_files_left(dir.path());
    }

    #[test]
    fn temp_file_vanishes_unless_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("f");
        {
            let mut t = TempFile::create(&dest).expect("create");
            t.write_all(b"half").expect("write");
        }
        assert!(!dest.exists());
        no_temp_files_left(dir.path());
        write_atomic(&dest, b"whole").expect("write_atomic");
        assert_eq!(fs::read(&dest).expect("read"), b"whole");
    }
}
