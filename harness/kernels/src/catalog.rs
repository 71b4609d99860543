//! Which Debian package holds each kernel the lab boots, and how to pick the newest one
//! from a package index.
//!
//! Checked against the live archive on 2026-11-21 (amd64 and arm64):
//! - 6.1: `bookworm`, `linux-image-6.1.0-50-cloud-*-unsigned` (6.1.176-1), `/boot` layout
//! - 6.12: `bookworm-backports`, `linux-image-6.12.95+deb12-cloud-*-unsigned`, `/boot` layout
//! - 7.2: `sid`, `linux-binary-7.2.13+deb14-cloud-*` + `linux-base-...`, modules layout
//! - 7.3: `trixie-backports`, `linux-binary-7.3.4+deb13-cloud-*` + `linux-base-...`

use super::debian_index::{compare_versions, IndexEntry};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use tracelab_model::arch::Arch;

/// A kernel version the lab knows where to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KernelVersion {
    #[serde(rename = "6.1")]
    V6_1,
    #[serde(rename = "6.12")]
    V6_12,
    #[serde(rename = "7.2")]
    V7_2,
    #[serde(rename = "7.3")]
    V7_3,
}

impl KernelVersion {
    pub const ALL: [KernelVersion; 4] = [
        KernelVersion::V6_1,
        KernelVersion::V6_12,
        KernelVersion::V7_2,
        KernelVersion::V7_3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KernelVersion::V6_1 => "6.1",
            KernelVersion::V6_12 => "6.12",
            KernelVersion::V7_2 => "7.2",
            KernelVersion::V7_3 => "7.3",
        }
    }

    /// Where this version is found for `arch`.
    pub fn spec(self, arch: Arch) -> KernelSpec {
        let d = arch.debian();
        let (suite, layout, prefix, placeholder, suffix) = match self {
            KernelVersion::V6_1 => (
                "bookworm",
                Layout::Boot,
                "linux-image-6.1.0-".to_string(),
                "<N>",
                format!("-cloud-{d}-unsigned"),
            ),
            KernelVersion::V6_12 => (
                "bookworm-backports",
                Layout::Boot,
                "linux-image-6.12.".to_string(),
                "<X>",
                format!("+deb12-cloud-{d}-unsigned"),
            ),
            KernelVersion::V7_2 => (
                "sid",
                Layout::Modules,
                "linux-binary-7.2.".to_string(),
                "<X>",
                format!("+deb14-cloud-{d}"),
            ),
            KernelVersion::V7_3 => (
                "trixie-backports",
                Layout::Modules,
                "linux-binary-7.3.".to_string(),
                "<X>",
                format!("+deb13-cloud-{d}"),
            ),
        };
        let more_suites: &'static [&'static str] = match self {
            KernelVersion::V6_1 | KernelVersion::V6_12 => &["bookworm-security"],
            KernelVersion::V7_2 | KernelVersion::V7_3 => &[],
        };
        KernelSpec {
            version: self,
            arch,
            suite,
            more_suites,
            layout,
            image_package: PackagePattern {
                prefix,
                placeholder,
                suffix,
            },
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel version `{0}` (valid: 6.1, 6.12, 7.2, 7.3)")]
pub struct UnknownKernelVersion(pub String);

impl FromStr for KernelVersion {
    type Err = UnknownKernelVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KernelVersion::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownKernelVersion(s.to_string()))
    }
}

/// Where the image and the config sit in Debian's packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One `linux-image-<release>[-unsigned]` package with `/boot/vmlinuz-<release>` and
    /// `/boot/config-<release>` (Debian 12/13 kernels).
    Boot,
    /// `linux-binary-<release>` with `/usr/lib/modules/<release>/vmlinuz`; the config is in
    /// `linux-base-<release>` at `/usr/lib/modules/<release>/config` (Debian 14 packaging,
    /// also used by trixie-backports).
    Modules,
}

impl Layout {
    /// Path of the kernel image inside the data archive (no leading `/`).
    pub fn image_path(self, release: &str) -> String {
        match self {
            Layout::Boot => format!("boot/vmlinuz-{release}"),
            Layout::Modules => format!("usr/lib/modules/{release}/vmlinuz"),
        }
    }

    /// Path of the kernel config inside the data archive (no leading `/`).
    pub fn config_path(self, release: &str) -> String {
        match self {
            Layout::Boot => format!("boot/config-{release}"),
            Layout::Modules => format!("usr/lib/modules/{release}/config"),
        }
    }

    /// The package holding the config, if not the image package itself.
    pub fn config_package(self, release: &str) -> Option<String> {
        match self {
            Layout::Boot => None,
            Layout::Modules => Some(format!("linux-base-{release}")),
        }
    }

    /// The kernel release (`uname -r`) encoded in an image package name.
    fn release_of(self, package: &str) -> Option<String> {
        let release = match self {
            Layout::Boot => package
                .strip_prefix("linux-image-")?
                .strip_suffix("-unsigned")
                .or_else(|| package.strip_prefix("linux-image-"))?,
            Layout::Modules => package.strip_prefix("linux-binary-")?,
        };
        Some(release.to_string())
    }
}

/// A package name with one numeric field: `prefix` + digits + `suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePattern {
    pub prefix: String,
    /// How the numeric field is shown (`<N>`, `<X>`).
    pub placeholder: &'static str,
    pub suffix: String,
}

impl PackagePattern {
    pub fn matches(&self, name: &str) -> bool {
        name.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(&self.suffix))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl fmt::Display for PackagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.prefix, self.placeholder, self.suffix)
    }
}

/// Where one kernel version is found for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    pub version: KernelVersion,
    pub arch: Arch,
    /// Where the line is published; more releases may be in `more_suites`.
    pub suite: &'static str,
    /// Other suites that carry releases of the line (the security archive's updates):
    /// their releases are listed, can be named, and the newest of all is the default.
    pub more_suites: &'static [&'static str],
    pub layout: Layout,
    pub image_package: PackagePattern,
}

impl KernelSpec {
    /// The package holding the config, as a pattern for display.
    pub fn config_package_pattern(&self) -> String {
        match self.layout {
            Layout::Boot => self.image_package.to_string(),
            Layout::Modules => {
                let p = &self.image_package;
                let prefix = p.prefix.replacen("linux-binary-", "linux-base-", 1);
                format!("{prefix}{}{}", p.placeholder, p.suffix)
            }
        }
    }

    /// Whether the index parser should keep a stanza of this name.
    pub fn wants(&self, package: &str) -> bool {
        self.image_package.matches(package)
            || (self.layout == Layout::Modules && package.starts_with("linux-base-"))
    }
}

/// The packages chosen for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub release: String,
    pub image: IndexEntry,
    /// The package holding the config; `None` when it is the image package.
    pub config: Option<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("no package matching `{pattern}` in the index")]
    NoMatch { pattern: String },
    #[error(
        "`{image}` matches but its config package `{config}` is not in the index \
         (nor for any older match)"
    )]
    NoConfigPackage { image: String, config: String },
    #[error("no release `{wanted}` in the archive (available: {available})")]
    NoRelease { wanted: String, available: String },
}

/// Numbers in a package name, in order (`linux-image-6.12.95+deb12-...` → 6, 12, 95, 12, …).
fn numbers(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Newest first: by the numbers in the package name, then by Debian version.
fn newest_first(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    numbers(&b.package)
        .cmp(&numbers(&a.package))
        .then_with(|| compare_versions(&b.version, &a.version))
}

/// Picks the newest image package matching `spec` and, for the modules layout, the
/// `linux-base` package of the same release (same Debian version if there is one, else
/// the newest). An image whose base package is missing is passed over for an older one.
pub fn pick(spec: &KernelSpec, entries: &[IndexEntry]) -> Result<Picked, PickError> {
    pick_release(spec, entries, None)
}

/// The image packages of a line with their releases, newest first.
pub fn image_entries<'a>(
    spec: &KernelSpec,
    entries: &'a [IndexEntry],
) -> Vec<(String, &'a IndexEntry)> {
    let mut v: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| spec.image_package.matches(&e.package))
        .collect();
    v.sort_by(|a, b| newest_first(a, b));
    v.into_iter()
        .filter_map(|e| Some((spec.layout.release_of(&e.package)?, e)))
        .collect()
}

/// Whether an image package of `release` (`6.12.111+deb12-cloud-amd64`, or
/// `6.1.0-50-cloud-amd64` at Debian version `6.1.176-1`) is the release a user named:
/// `6.12.111`, `6.1.0-50` or `6.1.176`, or the whole release string.
pub fn names_release(release: &str, debian_version: &str, wanted: &str) -> bool {
    release == wanted
        || release.starts_with(&format!("{wanted}+"))
        || release.starts_with(&format!("{wanted}-"))
        || debian_version.starts_with(&format!("{wanted}-"))
}

/// How a release is named to a user: `6.12.111` (the part before `+deb12`), or for 6.1's
/// ABI-numbered packages `6.1.0-50 (6.1.176)` with the upstream version from Debian's.
pub fn release_label(release: &str, debian_version: &str) -> String {
    if let Some((upstream, _)) = release.split_once('+') {
        return upstream.to_string();
    }
    let abi = release.split("-cloud").next().unwrap_or(release);
    let upstream = debian_version.split('-').next().unwrap_or(debian_version);
    if upstream == abi {
        abi.to_string()
    } else {
        format!("{abi} ({upstream})")
    }
}

/// [`pick`], of the named release only when `release` is given.
pub fn pick_release(
    spec: &KernelSpec,
    entries: &[IndexEntry],
    release: Option<&str>,
) -> Result<Picked, PickError> {
    let mut candidates: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| spec.image_package.matches(&e.package))
        .collect();
    if let Some(wanted) = release {
        let all: Vec<String> = {
            let mut v: Vec<&IndexEntry> = candidates.clone();
            v.sort_by(|a, b| newest_first(a, b));
            v.iter()
                .filter_map(|e| {
                    Some(release_label(
                        &spec.layout.release_of(&e.package)?,
                        &e.version,
                    ))
                })
                .collect()
        };
        candidates.retain(|e| {
            spec.layout
                .release_of(&e.package)
                .is_some_and(|r| names_release(&r, &e.version, wanted))
        });
        if candidates.is_empty() {
            let mut all = all;
            all.dedup();
            return Err(PickError::NoRelease {
                wanted: wanted.to_string(),
                available: all.join(", "),
            });
        }
    }
    candidates.sort_by(|a, b| newest_first(a, b));
    let Some(first) = candidates.first() else {
        return Err(PickError::NoMatch {
            pattern: spec.image_package.to_string(),
        });
    };
    for image in &candidates {
        let Some(release) = spec.layout.release_of(&image.package) else {
            continue;
        };
        let Some(config_name) = spec.layout.config_package(&release) else {
            return Ok(Picked {
                release,
                image: (*image).clone(),
                config: None,
            });
        };
        let mut bases: Vec<&IndexEntry> = entries
            .iter()
            .filter(|e| e.package == config_name)
            .collect();
        bases.sort_by(|a, b| {
            (b.version == image.version)
                .cmp(&(a.version == image.version))
                .then_with(|| compare_versions(&b.version, &a.version))
        });
        if let Some(base) = bases.first() {
            return Ok(Picked {
                release,
                image: (*image).clone(),
                config: Some((*base).clone()),
            });
        }
    }
    let release = spec.layout.release_of(&first.package).unwrap_or_default();
    Err(PickError::NoConfigPackage {
        image: first.package.clone(),
        config: spec.layout.config_package(&release).unwrap_or_default(),
    })
}

/// One row of `tracelab kernels list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    pub version: KernelVersion,
    pub arch: Arch,
    pub suite: String,
    pub layout: Layout,
    /// e.g. `linux-image-6.12.<X>+deb12-cloud-amd64-unsigned`
    pub package: String,
    /// Package holding the config (the same as `package` for the boot layout).
    pub config_package: String,
    /// Paths inside the package, with `<release>` standing for `uname -r`.
    pub image_path: String,
    pub config_path: String,
}

/// Every (version, arch) the lab can fetch, with where it comes from. No network.
pub fn catalog_table() -> Vec<CatalogEntry> {
    let mut rows = Vec::new();
    for version in KernelVersion::ALL {
        for arch in Arch::ALL {
            let spec = version.spec(arch);
            rows.push(CatalogEntry {
                version,
                arch,
                suite: spec.suite.to_string(),
                layout: spec.layout,
                package: spec.image_package.to_string(),
                config_package: spec.config_package_pattern(),
                image_path: format!("/{}", spec.layout.image_path("<release>")),
                config_path: format!("/{}", spec.layout.config_path("<release>")),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str) -> IndexEntry {
        IndexEntry {
            package: package.into(),
            version: version.into(),
            filename: format!("pool/main/l/linux/{package}_{version}_amd64.deb"),
            size_bytes: 1,
            sha256: "0".repeat(64),
            ..IndexEntry::default()
        }
    }

    #[test]
    fn version_names_roundtrip_and_errors_list_choices() {
        for v in KernelVersion::ALL {
            assert_eq!(v.name().parse::<KernelVersion>(), Ok(v));
            assert_eq!(v.to_string(), v.name());
            let json = serde_json::to_string(&v).expect("json");
            assert_eq!(json, format!("\"{}\"", v.name()));
        }
        let err = "5.10".parse::<KernelVersion>().expect_err("5.10");
        assert_eq!(
            err.to_string(),
            "unknown kernel version `5.10` (valid: 6.1, 6.12, 7.2, 7.3)"
        );
    }

    #[test]
    fn patterns_match_only_their_packages() {
        let s = KernelVersion::V6_12.spec(Arch::X86_64);
        assert_eq!(
            s.image_package.to_string(),
            "linux-image-6.12.<X>+deb12-cloud-amd64-unsigned"
        );
        assert!(s
            .image_package
            .matches("linux-image-6.12.95+deb12-cloud-amd64-unsigned"));
        assert!(!s
            .image_package
            .matches("linux-image-6.12.95+deb12-cloud-amd64"));
        assert!(!s
            .image_package
            .matches("linux-image-6.12.95+deb12-amd64-unsigned"));
        assert!(!s
            .image_package
            .matches("linux-image-6.12.95+deb12-cloud-arm64-unsigned"));
        assert!(!s
            .image_package
            .matches("linux-image-6.12.+deb12-cloud-amd64-unsigned"));

        let s = KernelVersion::V7_3.spec(Arch::Arm64);
        assert!(s
            .image_package
            .matches("linux-binary-7.3.4+deb13-cloud-arm64"));
        assert!(!s
            .image_package
            .matches("linux-binary-unsigned-7.3.4+deb13-cloud-arm64"));
        assert!(!s
            .image_package
            .matches("linux-binary-7.3.4+deb13-cloud-arm64-dbg"));
        assert_eq!(
            s.config_package_pattern(),
            "linux-base-7.3.<X>+deb13-cloud-arm64"
        );
        let s = KernelVersion::V6_1.spec(Arch::X86_64);
        assert!(s
            .image_package
            .matches("linux-image-6.1.0-50-cloud-amd64-unsigned"));
        assert!(!s
            .image_package
            .matches("linux-image-6.12.0-50-cloud-amd64-unsigned"));
    }

    #[test]
    fn picks_numerically_newest_and_derives_release() {
        let spec = KernelVersion::V6_1.spec(Arch::X86_64);
        let entries = [
            entry("linux-image-6.1.0-9-cloud-amd64-unsigned", "6.1.27-1"),
            entry("linux-image-6.1.0-50-cloud-amd64-unsigned", "6.1.176-1"),
            entry("linux-image-6.1.0-47-cloud-amd64-unsigned", "6.1.170-3"),
            entry("linux-image-6.1.0-50-cloud-amd64", "6.1.176-1"),
            entry("linux-image-6.12.0-99-cloud-amd64-unsigned", "6.12.1-1"),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(
            picked.image.package,
            "linux-image-6.1.0-50-cloud-amd64-unsigned"
        );
        assert_eq!(picked.release, "6.1.0-50-cloud-amd64");
        assert_eq!(picked.config, None);

        let spec = KernelVersion::V6_12.spec(Arch::Arm64);
        let entries = [
            entry(
                "linux-image-6.12.9+deb12-cloud-arm64-unsigned",
                "6.12.9-1~bpo12+1",
            ),
            entry(
                "linux-image-6.12.100+deb12-cloud-arm64-unsigned",
                "6.12.100-1~bpo12+1",
            ),
            entry(
                "linux-image-6.12.95+deb12-cloud-arm64-unsigned",
                "6.12.95-1~bpo12+1",
            ),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(picked.release, "6.12.100+deb12-cloud-arm64");
    }

    #[test]
    fn same_name_ties_break_on_debian_version() {
        let spec = KernelVersion::V6_12.spec(Arch::X86_64);
        let name = "linux-image-6.12.95+deb12-cloud-amd64-unsigned";
        let entries = [
            entry(name, "6.12.95-1~bpo12+1"),
            entry(name, "6.12.95-2~bpo12+1"),
            entry(name, "6.12.95-1"),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(picked.image.version, "6.12.95-2~bpo12+1");
    }

    #[test]
    fn modules_layout_pairs_image_with_its_base_package() {
        let spec = KernelVersion::V7_3.spec(Arch::X86_64);
        let entries = [
            entry("linux-binary-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1"),
            entry("linux-base-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1"),
            entry("linux-base-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
            entry("linux-binary-7.2.12+deb13-cloud-amd64", "7.2.12-1~bpo13+1"),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(picked.release, "7.3.4+deb13-cloud-amd64");
        let base = picked.config.expect("base");
        assert_eq!(base.package, "linux-base-7.3.4+deb13-cloud-amd64");
        assert_eq!(
            spec.layout.image_path(&picked.release),
            "usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz"
        );
    }

    #[test]
    fn base_of_the_same_version_is_preferred() {
        let spec = KernelVersion::V7_2.spec(Arch::X86_64);
        let entries = [
            entry("linux-base-7.2.13+deb14-cloud-amd64", "7.2.13-2"),
            entry("linux-binary-7.2.13+deb14-cloud-amd64", "7.2.13-1"),
            entry("linux-base-7.2.13+deb14-cloud-amd64", "7.2.13-1"),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(picked.config.expect("base").version, "7.2.13-1");
    }

    #[test]
    fn image_without_base_falls_back_to_an_older_complete_pair() {
        let spec = KernelVersion::V7_3.spec(Arch::Arm64);
        let entries = [
            entry("linux-binary-7.3.5+deb13-cloud-arm64", "7.3.5-1~bpo13+1"),
            entry("linux-binary-7.3.4+deb13-cloud-arm64", "7.3.4-1~bpo13+1"),
            entry("linux-base-7.3.4+deb13-cloud-arm64", "7.3.4-1~bpo13+1"),
        ];
        let picked = pick(&spec, &entries).expect("pick");
        assert_eq!(picked.release, "7.3.4+deb13-cloud-arm64");

        let err = pick(&spec, &entries[..1]).expect_err("no base at all");
        assert!(
            err.to_string()
                .contains("linux-base-7.3.5+deb13-cloud-arm64"),
            "{err}"
        );
    }

    #[test]
    fn no_match_names_the_pattern() {
        let spec = KernelVersion::V7_2.spec(Arch::Arm64);
        let err =
            pick(&spec, &[entry("linux-binary-7.3.4+deb13-cloud-arm64", "1")]).expect_err("none");
        assert_eq!(
            err.to_string(),
            "no package matching `linux-binary-7.2.<X>+deb14-cloud-arm64` in the index"
        );
    }

    #[test]
    fn table_covers_every_version_and_arch() {
        let rows = catalog_table();
        assert_eq!(rows.len(), KernelVersion::ALL.len() * Arch::ALL.len());
        let row = rows
            .iter()
            .find(|r| r.version == KernelVersion::V7_2 && r.arch == Arch::Arm64)
            .expect("7.2 arm64");
        assert_eq!(row.suite, "sid");
        assert_eq!(row.package, "linux-binary-7.2.<X>+deb14-cloud-arm64");
        assert_eq!(row.config_package, "linux-base-7.2.<X>+deb14-cloud-arm64");
        assert_eq!(row.image_path, "/usr/lib/modules/<release>/vmlinuz");
        let row = &rows[0];
        assert_eq!(row.suite, "bookworm");
        assert_eq!(row.image_path, "/boot/vmlinuz-<release>");
    }
}
