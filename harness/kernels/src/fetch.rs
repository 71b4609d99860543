//! Getting bytes from a URL: the one network seam of the kernel catalog.
//!
//! Everything above this file talks to a [`Fetch`]; tests plug in a fake one so the
//! catalog, the caches and the stale-index retry run without a network.

use std::fs::File;
use std::io::{self, Read, Write};
use std::time::Duration;

/// How long to wait for a connection, and for each read, before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CHUNK_BYTES: usize = 64 * 1024;

/// Why a download failed. `NotFound` is told apart because a missing pool file means the
/// cached package index is stale (the catalog then refreshes the index once).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: io::Error,
    },
}

/// Something that can copy the body of a URL into a writer.
pub trait Fetch: Send + Sync {
    /// Writes the body of `url` to `out` and returns its length in bytes. `progress` is
    /// called with (bytes so far, total if known) as data arrives.
    fn fetch(
        &self,
        url: &str,
        out: &mut dyn Write,
        progress: &dyn Fn(u64, Option<u64>),
    ) -> Result<u64, FetchError>;
}

/// The real fetcher: HTTP(S) through `ureq` (which honours `http_proxy`/`https_proxy`/
/// `no_proxy` from the environment), and `file://` URLs for a mirror on local disk.
pub struct HttpFetcher {
    agent: ureq::Agent,
}

impl HttpFetcher {
    pub fn new() -> HttpFetcher {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(format!("tracelab/{}", tracelab_model::VERSION))
            .build();
        HttpFetcher {
            agent: config.into(),
        }
    }
}

impl Default for HttpFetcher {
    fn default() -> Self {
        HttpFetcher::new()
    }
}

impl Fetch for HttpFetcher {
    fn fetch(
        &self,
        url: &str,
        out: &mut dyn Write,
        progress: &dyn Fn(u64, Option<u64>),
    ) -> Result<u64, FetchError> {
        if let Some(path) = url.strip_prefix("file://") {
            let file = File::open(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => FetchError::NotFound { url: url.into() },
                _ => FetchError::Io {
                    url: url.into(),
                    source: e,
                },
            })?;
            let total = file.metadata().ok().map(|m| m.len());
            return copy_with_progress(file, out, total, progress, url);
        }
        let response = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::StatusCode(404) => FetchError::NotFound { url: url.into() },
            ureq::Error::StatusCode(status) => FetchError::Status {
                url: url.into(),
                status,
            },
            other => FetchError::Transport {
                url: url.into(),
                message: other.to_string(),
            },
        })?;
        let total = response.body().content_length();
        let reader = response.into_body().into_reader();
        copy_with_progress(reader, out, total, progress, url)
    }
}

/// Copies `reader` to `out` in chunks, reporting progress after each one.
pub(crate) fn copy_with_progress(
    mut reader: impl Read,
    out: &mut dyn Write,
    total: Option<u64>,
    progress: &dyn Fn(u64, Option<u64>),
    url: &str,
) -> Result<u64, FetchError> {
    let io_err = |source| FetchError::Io {
        url: url.into(),
        source,
    };
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut done = 0u64;
    progress(0, total);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        out.write_all(&buf[..n]).map_err(io_err)?;
        done += n as u64;
        progress(done, total);
    }
    out.flush().map_err(io_err)?;
    Ok(done)
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory fetcher that records every URL asked for.

    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    pub(crate) struct FakeFetcher {
        files: Mutex<HashMap<String, Vec<u8>>>,
        log: Mutex<Vec<String>>,
    }

    impl FakeFetcher {
        pub(crate) fn put(&self, url: &str, bytes: Vec<u8>) {
            self.files
                .lock()
                .expect("fake fetcher lock")
                .insert(url.to_string(), bytes);
        }

        pub(crate) fn remove(&self, url: &str) {
            self.files.lock().expect("fake fetcher lock").remove(url);
        }

        /// URLs requested so far, in order.
        pub(crate) fn log(&self) -> Vec<String> {
            self.log.lock().expect("fake fetcher lock").clone()
        }

        pub(crate) fn count(&self, url: &str) -> usize {
            self.log().iter().filter(|u| *u == url).count()
        }

        pub(crate) fn clear_log(&self) {
            self.log.lock().expect("fake fetcher lock").clear();
        }
    }

    impl Fetch for FakeFetcher {
        fn fetch(
            &self,
            url: &str,
            out: &mut dyn Write,
            progress: &dyn Fn(u64, Option<u64>),
        ) -> Result<u64, FetchError> {
            self.log
                .lock()
                .expect("fake fetcher lock")
                .push(url.to_string());
            let bytes = self
                .files
                .lock()
                .expect("fake fetcher lock")
                .get(url)
                .cloned()
                .ok_or_else(|| FetchError::NotFound { url: url.into() })?;
            let total = Some(bytes.len() as u64);
            copy_with_progress(&bytes[..], out, total, progress, url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn file_urls_are_read_and_missing_ones_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x");
        std::fs::write(&path, vec![7u8; 200_000]).expect("write");
        let fetcher = HttpFetcher::new();
        let mut out = Vec::new();
        let calls = Cell::new(0);
        let last = Cell::new((0, None));
        let n = fetcher
            .fetch(
                &format!("file://{}", path.display()),
                &mut out,
                &|done, total| {
                    calls.set(calls.get() + 1);
                    last.set((done, total));
                },
            )
            .expect("fetch");
        assert_eq!(n, 200_000);
        assert_eq!(out.len(), 200_000);
        assert_eq!(last.get(), (200_000, Some(200_000)));
        assert!(calls.get() >= 2);

        let missing = format!("file://{}", dir.path().join("nope").display());
        let err = fetcher
            .fetch(&missing, &mut Vec::new(), &|_, _| {})
            .expect_err("missing file");
        assert!(matches!(err, FetchError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("nope"));
    }
}
