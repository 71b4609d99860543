//! Debian kernels for the guests, fetched without root or apt.
//!
//! The data goes through: [`catalog`] (which package holds each kernel version) →
//! [`mirror`] (which archive) → [`debian_index`] (the suite's `Packages.xz`, fetched by
//! [`fetch`] into [`cache`]) → the `.deb` files (checked against the index's SHA256) →
//! [`deb`] (the image and config taken out) → a [`FetchedKernel`] recorded beside them in
//! `kernel.json`. A kernel the user built enters through [`user_kernel`].
//!
//! Nothing here prints: downloads report progress through an optional callback.

pub mod cache;
pub mod catalog;
mod custom;
pub mod deb;
pub mod debian_index;
pub mod elf;
pub mod fetch;
pub mod mirror;
pub mod source;
pub mod userland;

pub use catalog::{catalog_table, CatalogEntry, KernelVersion, Layout, UnknownKernelVersion};
pub use custom::user_kernel;
pub use fetch::{Fetch, FetchError, HttpFetcher};
pub use mirror::{MirrorSource, DEFAULT_MIRROR, MIRROR_ENV};

use anyhow::{Context, Result};
use cache::{DownloadError, Expected};
use catalog::{KernelSpec, Picked};
use deb::Wanted;
use debian_index::IndexEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracelab_model::arch::Arch;

/// Progress of one download: (what, bytes done, total bytes if known). `what` is the file
/// name (`Packages.xz (sid/amd64)`, or the `.deb`'s name); a new `what` starts a new file.
pub type Progress<'a> = &'a dyn Fn(&str, u64, Option<u64>);

/// Suite and package of the guests' static busybox.
const BUSYBOX_SUITE: &str = "bookworm";
const BUSYBOX_PACKAGE: &str = "busybox-static";
const BUSYBOX_PATH: &str = "bin/busybox";

/// One `.deb` a kernel came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    /// Path under the mirror (`pool/main/...`).
    pub filename: String,
    pub sha256: String,
    pub size_bytes: u64,
}

impl From<&IndexEntry> for PackageRef {
    fn from(e: &IndexEntry) -> Self {
        PackageRef {
            name: e.package.clone(),
            version: e.version.clone(),
            filename: e.filename.clone(),
            sha256: e.sha256.clone(),
            size_bytes: e.size_bytes,
        }
    }
}

/// A kernel ready to boot: its image and config on disk and where they came from.
/// Stored as `kernel.json` beside the extracted files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchedKernel {
    /// `6.12`, … (a [`KernelVersion`] name), or `custom` for a user-built kernel.
    pub version: String,
    pub arch: Arch,
    /// What `uname -r` says in the guest, e.g. `6.12.95+deb12-cloud-amd64`.
    pub release: String,
    /// The `vmlinuz` to pass to QEMU's `-kernel`.
    pub image: PathBuf,
    /// The kernel's `.config` text.
    pub config: PathBuf,
    /// The `.deb` files used (image package first); empty for a user-built kernel.
    pub packages: Vec<PackageRef>,
    pub suite: String,
    pub mirror: String,
    /// SHA256 of `image` and `config` as extracted: a cached copy that no longer matches
    /// (truncated, edited) is extracted again from its verified `.deb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_sha256: Option<[String; 2]>,
}

/// Which packages a kernel would come from, read from the package index only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub version: KernelVersion,
    pub arch: Arch,
    pub release: String,
    pub suite: String,
    pub packages: Vec<PackageRef>,
}

/// A Debian userland ready to boot: its archive and what it holds.
#[derive(Debug, Clone)]
pub struct Userland {
    /// The uncompressed newc archive.
    pub archive: PathBuf,
    pub record: UserlandRecord,
}

/// What a cached userland was made of (`userland.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserlandRecord {
    pub arch: Arch,
    pub profile: String,
    pub suite: String,
    pub mirror: String,
    /// Every package unpacked, by name.
    pub packages: Vec<PackageRef>,
    /// Bytes of file contents in the tree (what it takes in the guest's memory).
    pub file_bytes: u64,
    pub archive_sha256: String,
}

/// What a cached busybox came from (`busybox.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct BusyboxRecord {
    arch: Arch,
    package: PackageRef,
    suite: String,
    mirror: String,
}

/// The kernel catalog bound to a mirror, a cache directory and a way to download.
pub struct Catalog {
    mirror: String,
    /// Where `*-security` suites are (Debian serves them from a separate archive).
    security_mirror: String,
    mirror_source: MirrorSource,
    cache_dir: PathBuf,
    fetcher: Arc<dyn Fetch>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("mirror", &self.mirror)
            .field("mirror_source", &self.mirror_source)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// The mirror is `mirror` (`--mirror`), else `$TRACELAB_MIRROR`, else the first Debian
    /// archive in the apt sources, else `deb.debian.org`; the cache is `$TRACELAB_CACHE`,
    /// else `<user cache dir>/tracelab`. Nothing is downloaded yet.
    pub fn new(mirror: Option<String>) -> Result<Catalog> {
        let env = std::env::var(MIRROR_ENV).ok();
        let (mirror, mirror_source) = mirror::resolve(mirror.as_deref(), env.as_deref(), || {
            mirror::from_apt_sources(Path::new("/"))
        })?;
        let cache_dir = cache::default_cache_dir()?;
        let security_mirror = std::env::var(SECURITY_MIRROR_ENV)
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| security_mirror_of(&mirror));
        Ok(Catalog {
            mirror,
            security_mirror,
            mirror_source,
            cache_dir,
            fetcher: Arc::new(HttpFetcher::new()),
        })
    }

    /// A catalog with everything given (tests, or a caller with its own downloader).
    pub fn with_fetcher(
        mirror: &str,
        cache_dir: impl Into<PathBuf>,
        fetcher: Arc<dyn Fetch>,
    ) -> Catalog {
        let mirror = mirror.trim_end_matches('/').to_string();
        Catalog {
            security_mirror: security_mirror_of(&mirror),
            mirror,
            mirror_source: MirrorSource::Explicit,
            cache_dir: cache_dir.into(),
            fetcher,
        }
    }

    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// The archive that serves `suite`.
    pub fn mirror_for(&self, suite: &str) -> &str {
        if suite.ends_with("-security") {
            &self.security_mirror
        } else {
            &self.mirror
        }
    }

    /// Where [`Catalog::mirror`] came from.
    pub fn mirror_source(&self) -> &MirrorSource {
        &self.mirror_source
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Where a kernel's files and `kernel.json` are kept.
    pub fn kernel_dir(&self, version: KernelVersion, arch: Arch) -> PathBuf {
        self.cache_dir
            .join("kernels")
            .join(arch.name())
            .join(version.name())
    }

    /// The packages [`Catalog::fetch_kernel`] would use, from the (cached unless `refresh`)
    /// index; no `.deb` is downloaded.
    pub fn resolve(&self, version: KernelVersion, arch: Arch, refresh: bool) -> Result<Resolved> {
        let spec = version.spec(arch);
        let (entries, suites) = self.line_entries(&spec, refresh, &|_, _, _| {})?;
        let picked = self.pick(version, arch, &entries)?;
        Ok(Resolved {
            version,
            arch,
            release: picked.release.clone(),
            suite: suites
                .get(&picked.image.filename)
                .cloned()
                .unwrap_or_else(|| spec.suite.to_string()),
            packages: package_refs(&picked),
        })
    }

    /// The newest Debian build of `version` for `arch`, downloading what is not cached.
    /// `refresh` downloads the package index again first (to see newer builds).
    pub fn fetch_kernel(
        &self,
        version: KernelVersion,
        arch: Arch,
        refresh: bool,
    ) -> Result<FetchedKernel> {
        self.fetch_kernel_with_progress(version, arch, refresh, &|_, _, _| {})
    }

    /// [`Catalog::fetch_kernel`], reporting download progress.
    pub fn fetch_kernel_with_progress(
        &self,
        version: KernelVersion,
        arch: Arch,
        refresh: bool,
        progress: Progress<'_>,
    ) -> Result<FetchedKernel> {
        self.fetch_release(version, arch, None, refresh, progress)
    }

    /// One release of `version` (`6.12.111`; None: the newest in any of its suites),
    /// downloading what is not cached. A named release is cached apart from the line's
    /// default, so nights that go through the releases do not extract again.
    pub fn fetch_release(
        &self,
        version: KernelVersion,
        arch: Arch,
        release: Option<&str>,
        refresh: bool,
        progress: Progress<'_>,
    ) -> Result<FetchedKernel> {
        let spec = version.spec(arch);
        let attempt =
            |entries: &[IndexEntry], suites: &BTreeMap<String, String>| -> Result<FetchedKernel> {
                let picked = self.pick_release(version, arch, entries, release)?;
                let suite = suites
                    .get(&picked.image.filename)
                    .cloned()
                    .unwrap_or_else(|| spec.suite.to_string());
                let packages = package_refs(&picked);
                let dir = self.release_dir(version, arch, release);
                if let Some(kernel) = self.cached_matching(&dir, version, arch, &packages) {
                    return Ok(kernel);
                }
                let image_deb = self.download_deb(&picked.image, &suite, progress)?;
                let config_deb = match &picked.config {
                    Some(base) => {
                        let s = suites
                            .get(&base.filename)
                            .cloned()
                            .unwrap_or_else(|| suite.clone());
                        self.download_deb(base, &s, progress)?
                    }
                    None => image_deb.clone(),
                };
                self.install_kernel(
                    &dir,
                    version,
                    arch,
                    &picked,
                    (&image_deb, &config_deb),
                    packages,
                    &suite,
                )
            };
        let (entries, suites) = self.line_entries(&spec, refresh, progress)?;
        match attempt(&entries, &suites) {
            // A cached index may name a .deb the archive has since dropped.
            Err(e) if !refresh && is_not_found(&e) => {
                let (entries, suites) = self.line_entries(&spec, true, progress)?;
                attempt(&entries, &suites).context("even after downloading the package index again")
            }
            other => other,
        }
    }

    /// Every release of `version` for `arch` the archive holds, newest first, with the
    /// suite that carries it.
    pub fn releases(
        &self,
        version: KernelVersion,
        arch: Arch,
        refresh: bool,
    ) -> Result<Vec<ReleaseInfo>> {
        let spec = version.spec(arch);
        let (entries, suites) = self.line_entries(&spec, refresh, &|_, _, _| {})?;
        let mut out: Vec<ReleaseInfo> = catalog::image_entries(&spec, &entries)
            .into_iter()
            .map(|(release, e)| ReleaseInfo {
                label: catalog::release_label(&release, &e.version),
                release,
                debian_version: e.version.clone(),
                package: e.package.clone(),
                suite: suites
                    .get(&e.filename)
                    .cloned()
                    .unwrap_or_else(|| spec.suite.to_string()),
            })
            .collect();
        out.dedup_by(|a, b| a.release == b.release && a.debian_version == b.debian_version);
        Ok(out)
    }

    /// The index entries of every suite of a line, and the suite of each `.deb` (by its
    /// pool path). The line's own suite must load; another that the archive does not
    /// have (404) is skipped.
    fn line_entries(
        &self,
        spec: &KernelSpec,
        refresh: bool,
        progress: Progress<'_>,
    ) -> Result<(Vec<IndexEntry>, BTreeMap<String, String>)> {
        let keep = |p: &str| spec.wants(p);
        let mut entries = self.load_index(spec.suite, spec.arch, refresh, &keep, progress)?;
        let mut suites: BTreeMap<String, String> = entries
            .iter()
            .map(|e| (e.filename.clone(), spec.suite.to_string()))
            .collect();
        for suite in spec.more_suites {
            // A suite the archive lacks is remembered, so that a cached line needs no
            // network; a refresh asks again.
            let absent = self.index_path(suite, spec.arch).with_file_name("ABSENT");
            if !refresh && absent.exists() {
                continue;
            }
            match self.load_index(suite, spec.arch, refresh, &keep, progress) {
                Ok(more) => {
                    let _ = fs::remove_file(&absent);
                    for e in more {
                        suites
                            .entry(e.filename.clone())
                            .or_insert_with(|| suite.to_string());
                        entries.push(e);
                    }
                }
                Err(e) if is_not_found(&e) => {
                    cache::write_atomic(&absent, b"404\n")
                        .with_context(|| format!("writing {}", absent.display()))?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((entries, suites))
    }

    /// Where a kernel of the line (release None) or of a named release is cached.
    fn release_dir(&self, version: KernelVersion, arch: Arch, release: Option<&str>) -> PathBuf {
        match release {
            None => self.kernel_dir(version, arch),
            Some(r) => self.kernel_dir(version, arch).join("releases").join(r),
        }
    }

    /// The kernel of `version`/`arch` already in the cache, if its files are all there.
    /// Never touches the network (so it may be older than the index's newest build).
    pub fn cached(&self, version: KernelVersion, arch: Arch) -> Option<FetchedKernel> {
        self.cached_in(&self.kernel_dir(version, arch), version, arch)
    }

    fn cached_in(&self, dir: &Path, version: KernelVersion, arch: Arch) -> Option<FetchedKernel> {
        let text = fs::read_to_string(dir.join("kernel.json")).ok()?;
        let mut kernel: FetchedKernel = serde_json::from_str(&text).ok()?;
        // The cache directory may have moved since: the files are where kernel.json is.
        kernel.image = dir.join("vmlinuz");
        kernel.config = dir.join("config");
        let complete = kernel.version == version.name()
            && kernel.arch == arch
            && non_empty_file(&kernel.image)
            && non_empty_file(&kernel.config)
            && kernel.files_sha256 == files_sha256(&kernel.image, &kernel.config);
        complete.then_some(kernel)
    }

    /// A static `busybox` for `arch` from Debian's `busybox-static` package (bookworm),
    /// cached under `busybox/<arch>/`.
    pub fn fetch_busybox(&self, arch: Arch) -> Result<PathBuf> {
        self.fetch_busybox_with_progress(arch, &|_, _, _| {})
    }

    /// [`Catalog::fetch_busybox`], reporting download progress.
    pub fn fetch_busybox_with_progress(
        &self,
        arch: Arch,
        progress: Progress<'_>,
    ) -> Result<PathBuf> {
        let dir = self.cache_dir.join("busybox").join(arch.name());
        let binary = dir.join("busybox");
        let record_path = dir.join("busybox.json");
        let keep = |p: &str| p == BUSYBOX_PACKAGE;
        self.with_index_retry(BUSYBOX_SUITE, arch, false, &keep, progress, |entries| {
            let entry = entries
                .iter()
                .max_by(|a, b| debian_index::compare_versions(&a.version, &b.version))
                .with_context(|| {
                    format!(
                        "no {BUSYBOX_PACKAGE} in {BUSYBOX_SUITE} for {} at {}",
                        arch.debian(),
                        self.mirror
                    )
                })?;
            let record = fs::read_to_string(&record_path)
                .ok()
                .and_then(|t| serde_json::from_str::<BusyboxRecord>(&t).ok());
            if record.is_some_and(|r| r.package.sha256 == entry.sha256) && non_empty_file(&binary) {
                return Ok(binary.clone());
            }
            let deb = self.download_deb(entry, BUSYBOX_SUITE, progress)?;
            let _ = fs::remove_file(&record_path);
            deb::extract(&deb, &[Wanted::new(BUSYBOX_PATH, &binary)])?;
            let bytes =
                fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
            elf::check_static(&bytes, arch).with_context(|| {
                format!("/{BUSYBOX_PATH} from {} ({})", entry.package, entry.version)
            })?;
            let record = BusyboxRecord {
                arch,
                package: entry.into(),
                suite: BUSYBOX_SUITE.to_string(),
                mirror: self.mirror.clone(),
            };
            write_json(&record_path, &record)?;
            Ok(binary.clone())
        })
    }

    /// A Debian userland (`profile`'s packages and their dependencies from
    /// [`userland::SUITE`]) as an initramfs archive, cached under
    /// `userland/<arch>/<suite>-<profile>/` with the packages it holds (`userland.json`).
    /// The source of a fetched Debian kernel: `linux-source-<X.Y>` of exactly its package
    /// version, from its suite, with [`source::SUBSET`] unpacked into
    /// `source/<version>/` (the 150 MB `.deb` is not kept once unpacked).
    pub fn fetch_source(
        &self,
        kernel: &FetchedKernel,
        progress: Progress<'_>,
    ) -> Result<source::KernelSource> {
        let image = kernel.packages.first().with_context(|| {
            format!(
                "kernel {} was built by its user: Debian has no source package for it",
                kernel.release
            )
        })?;
        let name = source::package_for(&image.version)?;
        let top = self.cache_dir.join("source").join(&image.version);
        let dir = top.join(&name);
        let record_path = top.join("source.json");
        let subset: Vec<String> = source::SUBSET.iter().map(|s| s.to_string()).collect();
        let cached = fs::read_to_string(&record_path)
            .ok()
            .and_then(|t| serde_json::from_str::<source::KernelSource>(&t).ok())
            .filter(|r| r.subset == subset && r.dir == dir && dir.is_dir());
        if let Some(record) = cached {
            return Ok(record);
        }
        let suite = kernel.suite.clone();
        let keep = |p: &str| p == name;
        self.with_index_retry(&suite, kernel.arch, false, &keep, progress, |entries| {
            let entry = entries
                .iter()
                .find(|e| e.version == image.version)
                .with_context(|| {
                    format!(
                        "no {name} {} in {suite} (versions there: {}): Debian ships no source for this kernel build",
                        image.version,
                        entries.iter().map(|e| e.version.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })?;
            let deb = self.download_deb(entry, &suite, progress)?;
            let _ = fs::remove_file(&record_path);
            let partial = top.join(format!("{name}.partial"));
            if partial.exists() {
                fs::remove_dir_all(&partial)
                    .with_context(|| format!("clearing {}", partial.display()))?;
            }
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
            }
            fs::create_dir_all(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            source::unpack(&deb, &name, &partial)?;
            fs::rename(&partial, &dir)
                .with_context(|| format!("moving the unpacked source to {}", dir.display()))?;
            let record = source::KernelSource {
                dir: dir.clone(),
                package: entry.into(),
                suite: suite.clone(),
                subset: subset.clone(),
            };
            write_json(&record_path, &record)?;
            let _ = fs::remove_file(&deb);
            Ok(record)
        })
    }

    /// A sysroot for cross-building against `arch`'s libraries: the newest version in
    /// bookworm (the host's release, whose cross compilers these match) of each named
    /// package, unpacked into `sysroot/<arch>/` (absolute links made to point inside).
    pub fn fetch_sysroot(&self, arch: Arch, packages: &[&str]) -> Result<PathBuf> {
        let suite = BUSYBOX_SUITE;
        let top = self.cache_dir.join("sysroot").join(arch.name());
        let dir = top.join("root");
        let record_path = top.join("sysroot.json");
        let keep = |p: &str| packages.contains(&p);
        self.with_index_retry(suite, arch, false, &keep, &|_, _, _| {}, |entries| {
            let newest = packages
                .iter()
                .map(|name| {
                    entries
                        .iter()
                        .filter(|e| e.package == *name)
                        .max_by(|a, b| debian_index::compare_versions(&a.version, &b.version))
                        .with_context(|| format!("no {name} in {suite} for {}", arch.debian()))
                })
                .collect::<Result<Vec<_>>>()?;
            let picked: Vec<PackageRef> = newest.iter().map(|e| PackageRef::from(*e)).collect();
            let cached = fs::read_to_string(&record_path)
                .ok()
                .and_then(|t| serde_json::from_str::<Vec<PackageRef>>(&t).ok());
            if cached.as_ref() == Some(&picked) && dir.is_dir() {
                return Ok(dir.clone());
            }
            let _ = fs::remove_file(&record_path);
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
            }
            for entry in newest {
                let deb = self.download_deb(entry, suite, &|_, _, _| {})?;
                source::write_members(&dir, deb::members(&deb)?).with_context(|| {
                    format!("unpacking {} into {}", entry.package, dir.display())
                })?;
            }
            write_json(&record_path, &picked)?;
            Ok(dir.clone())
        })
    }

    pub fn fetch_userland(
        &self,
        arch: Arch,
        profile: userland::Profile,
        progress: Progress<'_>,
    ) -> Result<Userland> {
        let suite = userland::SUITE;
        let dir = self
            .cache_dir
            .join("userland")
            .join(arch.name())
            .join(format!("{suite}-{}", profile.name));
        let archive = dir.join("userland.cpio");
        let record_path = dir.join("userland.json");
        self.with_index_retry(suite, arch, false, &|_| true, progress, |entries| {
            let picked = userland::closure(entries, profile.packages)
                .with_context(|| format!("resolving the {} userland", profile.name))?;
            let packages: Vec<PackageRef> = picked.iter().map(|e| PackageRef::from(*e)).collect();
            let cached = fs::read_to_string(&record_path)
                .ok()
                .and_then(|t| serde_json::from_str::<UserlandRecord>(&t).ok())
                .filter(|r| {
                    r.packages == packages
                        && cache::sha256_file(&archive).ok().as_ref() == Some(&r.archive_sha256)
                });
            if let Some(record) = cached {
                return Ok(Userland {
                    archive: archive.clone(),
                    record,
                });
            }
            let mut tree = userland::Tree::default();
            for entry in &picked {
                let deb = self.download_deb(entry, suite, progress)?;
                tree.add_package(deb::members(&deb)?);
            }
            tree.merge_usr();
            let bytes = tree.archive()?;
            let _ = fs::remove_file(&record_path);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            cache::write_atomic(&archive, &bytes)
                .with_context(|| format!("writing {}", archive.display()))?;
            let record = UserlandRecord {
                arch,
                profile: profile.name.to_string(),
                suite: suite.to_string(),
                mirror: self.mirror_for(suite).to_string(),
                packages,
                file_bytes: tree.file_bytes(),
                archive_sha256: cache::sha256_bytes(&bytes),
            };
            write_json(&record_path, &record)?;
            Ok(Userland {
                archive: archive.clone(),
                record,
            })
        })
    }

    fn index_path(&self, suite: &str, arch: Arch) -> PathBuf {
        self.cache_dir
            .join("index")
            .join(suite)
            .join(format!("binary-{}", arch.debian()))
            .join("Packages.xz")
    }

    /// The wanted stanzas of a suite's index: the cached copy unless `refresh` or missing
    /// (a cached copy that does not decode is downloaded again).
    fn load_index(
        &self,
        suite: &str,
        arch: Arch,
        refresh: bool,
        keep: &dyn Fn(&str) -> bool,
        progress: Progress<'_>,
    ) -> Result<Vec<IndexEntry>> {
        let url = debian_index::index_url(self.mirror_for(suite), suite, arch.debian());
        let path = self.index_path(suite, arch);
        let label = format!("Packages.xz ({suite}/{})", arch.debian());
        let download = || {
            cache::download(self.fetcher.as_ref(), &url, &path, &|d, t| {
                progress(&label, d, t)
            })
            .with_context(|| format!("downloading the package index of {suite}"))
        };
        let mut downloaded = false;
        if refresh || !path.exists() {
            download()?;
            downloaded = true;
        }
        let parse = || -> Result<Vec<IndexEntry>> {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let text = debian_index::decompress_xz(&bytes)?;
            Ok(debian_index::parse_packages(&text, keep)?)
        };
        match parse() {
            Ok(entries) => Ok(entries),
            Err(_) if !downloaded => {
                download()?;
                parse().with_context(|| format!("package index {url}"))
            }
            Err(e) => Err(e.context(format!("package index {url}"))),
        }
    }

    /// Runs `attempt` on the suite's index; if a `.deb` it names is gone from the mirror
    /// (the cached index is stale), downloads the index again and retries once.
    fn with_index_retry<T>(
        &self,
        suite: &str,
        arch: Arch,
        refresh: bool,
        keep: &dyn Fn(&str) -> bool,
        progress: Progress<'_>,
        attempt: impl Fn(&[IndexEntry]) -> Result<T>,
    ) -> Result<T> {
        let entries = self.load_index(suite, arch, refresh, keep, progress)?;
        match attempt(&entries) {
            Err(e) if !refresh && is_not_found(&e) => {
                let entries = self.load_index(suite, arch, true, keep, progress)?;
                attempt(&entries).context("even after downloading the package index again")
            }
            other => other,
        }
    }

    fn pick(&self, version: KernelVersion, arch: Arch, entries: &[IndexEntry]) -> Result<Picked> {
        self.pick_release(version, arch, entries, None)
    }

    fn pick_release(
        &self,
        version: KernelVersion,
        arch: Arch,
        entries: &[IndexEntry],
        release: Option<&str>,
    ) -> Result<Picked> {
        let spec = version.spec(arch);
        catalog::pick_release(&spec, entries, release).with_context(|| {
            let mut suites = vec![spec.suite];
            suites.extend(spec.more_suites);
            format!(
                "kernel {version} for {arch}: suite {} at {}",
                suites.join(", "),
                debian_index::index_url(&self.mirror, spec.suite, arch.debian())
            )
        })
    }

    /// Downloads (or reuses) one verified `.deb` into `debs/`.
    fn download_deb(
        &self,
        entry: &IndexEntry,
        suite: &str,
        progress: Progress<'_>,
    ) -> Result<PathBuf> {
        let url = format!("{}/{}", self.mirror_for(suite), entry.filename);
        let dest = self.cache_dir.join("debs").join(entry.basename());
        let expected = Expected {
            size_bytes: entry.size_bytes,
            sha256: entry.sha256.clone(),
        };
        let label = entry.basename();
        cache::download_verified(self.fetcher.as_ref(), &url, &dest, &expected, &|d, t| {
            progress(label, d, t)
        })
        .with_context(|| {
            format!(
                "downloading package {} {} (suite {suite})",
                entry.package, entry.version
            )
        })?;
        Ok(dest)
    }

    /// The cached kernel if it was extracted from exactly these packages.
    fn cached_matching(
        &self,
        dir: &Path,
        version: KernelVersion,
        arch: Arch,
        packages: &[PackageRef],
    ) -> Option<FetchedKernel> {
        let kernel = self.cached_in(dir, version, arch)?;
        let same = kernel.packages.len() == packages.len()
            && kernel
                .packages
                .iter()
                .zip(packages)
                .all(|(a, b)| a.name == b.name && a.sha256 == b.sha256);
        same.then_some(kernel)
    }

    #[allow(clippy::too_many_arguments)]
    fn install_kernel(
        &self,
        dir: &Path,
        version: KernelVersion,
        arch: Arch,
        picked: &Picked,
        (image_deb, config_deb): (&Path, &Path),
        packages: Vec<PackageRef>,
        suite: &str,
    ) -> Result<FetchedKernel> {
        let spec = version.spec(arch);
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // kernel.json goes first and comes back last: a crash in between leaves no record
        // pointing at files of another build.
        let record = dir.join("kernel.json");
        match fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", record.display()))
            }
            _ => {}
        }
        let image = dir.join("vmlinuz");
        let config = dir.join("config");
        let image_wanted = Wanted::new(&spec.layout.image_path(&picked.release), &image);
        let config_wanted = Wanted::new(&spec.layout.config_path(&picked.release), &config);
        if image_deb == config_deb {
            deb::extract(image_deb, &[image_wanted, config_wanted])?;
        } else {
            deb::extract(image_deb, &[image_wanted])?;
            deb::extract(config_deb, &[config_wanted])?;
        }
        let sums = files_sha256(&image, &config);
        let kernel = FetchedKernel {
            version: version.name().to_string(),
            arch,
            release: picked.release.clone(),
            image,
            config,
            files_sha256: sums,
            packages,
            suite: suite.to_string(),
            mirror: self.mirror_for(suite).to_string(),
        };
        write_json(&record, &kernel)?;
        Ok(kernel)
    }
}

fn package_refs(picked: &Picked) -> Vec<PackageRef> {
    std::iter::once(&picked.image)
        .chain(picked.config.as_ref())
        .map(PackageRef::from)
        .collect()
}

fn is_not_found(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<DownloadError>(),
        Some(DownloadError::Fetch(FetchError::NotFound { .. }))
    )
}

/// The checksums [`FetchedKernel::files_sha256`] records (None if a file cannot be read).
fn files_sha256(image: &Path, config: &Path) -> Option<[String; 2]> {
    Some([
        cache::sha256_file(image).ok()?,
        cache::sha256_file(config).ok()?,
    ])
}

/// The security archive beside a Debian mirror: `…/debian` → `…/debian-security`;
/// another layout gets Debian's own (override with `$TRACELAB_SECURITY_MIRROR`).
fn security_mirror_of(mirror: &str) -> String {
    match mirror.strip_suffix("/debian") {
        Some(base) => format!("{base}/debian-security"),
        None => "http://deb.debian.org/debian-security".to_string(),
    }
}

/// Environment variable naming the security archive.
pub const SECURITY_MIRROR_ENV: &str = "TRACELAB_SECURITY_MIRROR";

/// One release of a kernel line in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseInfo {
    /// What a target names: `6.12.111`, or `6.1.0-50 (6.1.176)`.
    pub label: String,
    /// `uname -r` of the kernel: `6.12.111+deb12-cloud-amd64`.
    pub release: String,
    pub debian_version: String,
    pub package: String,
    pub suite: String,
}

fn non_empty_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    cache::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests;
