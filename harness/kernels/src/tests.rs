//! The catalog end to end against a fake mirror, plus network tests (ignored by default).

use super::deb::testdeb::{build, Compression, Item};
use super::fetch::fake::FakeFetcher;
use super::*;
use std::io::Write;
use std::sync::Mutex;

const MIRROR: &str = "http://mirror.test/debian";

struct Pkg {
    name: String,
    version: String,
    deb: Vec<u8>,
}

impl Pkg {
    fn new(name: &str, version: &str, deb: Vec<u8>) -> Pkg {
        Pkg {
            name: name.into(),
            version: version.into(),
            deb,
        }
    }

    fn filename(&self) -> String {
        format!("pool/main/l/linux/{}_{}_amd64.deb", self.name, self.version)
    }

    fn url(&self) -> String {
        format!("{MIRROR}/{}", self.filename())
    }

    fn stanza(&self) -> String {
        format!(
            "Package: {}\nVersion: {}\nDescription: test\n more\nFilename: {}\nSize: {}\nSHA256: {}\n\n",
            self.name,
            self.version,
            self.filename(),
            self.deb.len(),
            cache::sha256_bytes(&self.deb)
        )
    }
}

fn xz(text: &str) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(text.as_bytes()).expect("xz");
    e.finish().expect("xz")
}

fn index_url(suite: &str) -> String {
    debian_index::index_url(MIRROR, suite, "amd64")
}

/// Publishes `pkgs` as the whole content of `suite` on the fake mirror.
fn publish(fetcher: &FakeFetcher, suite: &str, pkgs: &[&Pkg]) {
    let text: String = pkgs.iter().map(|p| p.stanza()).collect();
    fetcher.put(&index_url(suite), xz(&text));
    for p in pkgs {
        fetcher.put(&p.url(), p.deb.clone());
    }
}

fn image_612(x: u32, payload: &[u8]) -> Pkg {
    let release = format!("6.12.{x}+deb12-cloud-amd64");
    let deb = build(
        &[
            Item::File(&format!("./boot/System.map-{release}"), b"map", 0o644),
            Item::File(
                &format!("./boot/config-{release}"),
                b"CONFIG_KPROBES=y\n",
                0o644,
            ),
            Item::File(&format!("./boot/vmlinuz-{release}"), payload, 0o644),
        ],
        Compression::Xz,
    );
    Pkg::new(
        &format!("linux-image-{release}-unsigned"),
        &format!("6.12.{x}-1~bpo12+1"),
        deb,
    )
}

fn pair_73(x: u32) -> (Pkg, Pkg) {
    let release = format!("7.3.{x}+deb13-cloud-amd64");
    let version = format!("7.3.{x}-1~bpo13+1");
    let binary = build(
        &[Item::File(
            &format!("./usr/lib/modules/{release}/vmlinuz"),
            b"bzImage 7.3",
            0o644,
        )],
        Compression::Zstd,
    );
    let base = build(
        &[
            Item::File(
                &format!("./usr/lib/modules/{release}/System.map"),
                b"m",
                0o644,
            ),
            Item::File(
                &format!("./usr/lib/modules/{release}/config"),
                b"CONFIG_FPROBE=y\n",
                0o644,
            ),
        ],
        Compression::Xz,
    );
    (
        Pkg::new(&format!("linux-binary-{release}"), &version, binary),
        Pkg::new(&format!("linux-base-{release}"), &version, base),
    )
}

fn setup() -> (tempfile::TempDir, Arc<FakeFetcher>, Catalog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(FakeFetcher::default());
    let catalog = Catalog::with_fetcher(&format!("{MIRROR}/"), dir.path(), fetcher.clone());
    (dir, fetcher, catalog)
}

#[test]
fn fetches_a_boot_layout_kernel_then_reuses_it_offline() {
    let (dir, fetcher, catalog) = setup();
    assert_eq!(catalog.mirror(), MIRROR);
    assert_eq!(catalog.cache_dir(), dir.path());
    let old = image_612(90, b"old kernel");
    let new = image_612(95, b"new kernel");
    publish(&fetcher, "bookworm-backports", &[&old, &new]);

    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("fetch");
    assert_eq!(k.version, "6.12");
    assert_eq!(k.release, "6.12.95+deb12-cloud-amd64");
    assert_eq!(k.suite, "bookworm-backports");
    assert_eq!(k.mirror, MIRROR);
    assert_eq!(fs::read(&k.image).expect("image"), b"new kernel");
    assert_eq!(fs::read(&k.config).expect("config"), b"CONFIG_KPROBES=y\n");
    assert_eq!(k.packages.len(), 1);
    assert_eq!(k.packages[0].name, new.name);
    assert_eq!(k.packages[0].sha256, cache::sha256_bytes(&new.deb));
    assert_eq!(
        k.image,
        dir.path().join("kernels/x86_64/6.12/vmlinuz"),
        "cache layout"
    );
    assert!(dir.path().join("kernels/x86_64/6.12/kernel.json").is_file());
    assert!(dir
        .path()
        .join("debs")
        .join(new.filename().rsplit('/').next().expect("name"))
        .is_file());
    assert_eq!(fetcher.count(&old.url()), 0);

    // Again: cached index, cached kernel: no network at all.
    fetcher.clear_log();
    let again = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("again");
    assert_eq!(again, k);
    assert!(fetcher.log().is_empty(), "{:?}", fetcher.log());
    assert_eq!(
        catalog.cached(KernelVersion::V6_12, Arch::X86_64),
        Some(k.clone())
    );
    assert_eq!(catalog.cached(KernelVersion::V6_1, Arch::X86_64), None);
    assert_eq!(catalog.cached(KernelVersion::V6_12, Arch::Arm64), None);

    // A missing extracted file means "not cached".
    fs::remove_file(&k.config).expect("rm");
    assert_eq!(catalog.cached(KernelVersion::V6_12, Arch::X86_64), None);
}

#[test]
fn fetches_a_modules_layout_kernel_from_two_packages() {
    let (_dir, fetcher, catalog) = setup();
    let (binary, base) = pair_73(4);
    let (older, older_base) = pair_73(2);
    publish(
        &fetcher,
        "trixie-backports",
        &[&older, &binary, &base, &older_base],
    );

    let k = catalog
        .fetch_kernel(KernelVersion::V7_3, Arch::X86_64, false)
        .expect("fetch");
    assert_eq!(k.release, "7.3.4+deb13-cloud-amd64");
    assert_eq!(fs::read(&k.image).expect("image"), b"bzImage 7.3");
    assert_eq!(fs::read(&k.config).expect("config"), b"CONFIG_FPROBE=y\n");
    let names: Vec<&str> = k.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, [binary.name.as_str(), base.name.as_str()]);

    let resolved = catalog
        .resolve(KernelVersion::V7_3, Arch::X86_64, false)
        .expect("resolve");
    assert_eq!(resolved.release, k.release);
    assert_eq!(resolved.packages, k.packages);
}

#[test]
fn refresh_sees_a_newer_build_and_replaces_the_cached_kernel() {
    let (_dir, fetcher, catalog) = setup();
    let first = image_612(95, b"first");
    publish(&fetcher, "bookworm-backports", &[&first]);
    let k1 = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("first");

    let second = image_612(96, b"second");
    publish(&fetcher, "bookworm-backports", &[&first, &second]);
    // Without refresh the cached index still says 95.
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("cached");
    assert_eq!(k, k1);
    let k2 = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, true)
        .expect("refresh");
    assert_eq!(k2.release, "6.12.96+deb12-cloud-amd64");
    assert_eq!(fs::read(&k2.image).expect("image"), b"second");
    assert_eq!(catalog.cached(KernelVersion::V6_12, Arch::X86_64), Some(k2));
}

#[test]
fn a_vanished_pool_file_refreshes_the_stale_index_once() {
    let (_dir, fetcher, catalog) = setup();
    let gone = image_612(95, b"gone");
    publish(&fetcher, "bookworm-backports", &[&gone]);
    catalog
        .resolve(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("caches the index");

    // The archive moved on: 95 left the pool, 97 arrived.
    fetcher.remove(&gone.url());
    let next = image_612(97, b"next");
    publish(&fetcher, "bookworm-backports", &[&next]);
    fetcher.clear_log();
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("retry after refresh");
    assert_eq!(k.release, "6.12.97+deb12-cloud-amd64");
    // The refresh asks the security archive again too (it had no such suite).
    assert_eq!(
        fetcher.log(),
        [
            gone.url(),
            index_url("bookworm-backports"),
            debian_index::index_url(
                "http://mirror.test/debian-security",
                "bookworm-security",
                "amd64"
            ),
            next.url()
        ]
    );

    // Gone even from a fresh index: an error naming the package and the URL.
    fetcher.remove(&next.url());
    fs::remove_dir_all(catalog.kernel_dir(KernelVersion::V6_12, Arch::X86_64)).expect("rm");
    fs::remove_dir_all(catalog.cache_dir().join("debs")).expect("rm");
    let err = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect_err("404 twice");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&next.name) && msg.contains(&next.url()) && msg.contains("bookworm-backports"),
        "{msg}"
    );
}

#[test]
fn a_corrupt_cached_deb_is_downloaded_again() {
    let (_dir, fetcher, catalog) = setup();
    let pkg = image_612(95, b"kernel bytes");
    publish(&fetcher, "bookworm-backports", &[&pkg]);
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("fetch");
    let deb = catalog
        .cache_dir()
        .join("debs")
        .join(pkg.filename().rsplit('/').next().expect("name"));

    // Truncate the cached .deb and lose the extracted kernel.
    let bytes = fs::read(&deb).expect("read");
    fs::write(&deb, &bytes[..bytes.len() / 2]).expect("truncate");
    fs::remove_dir_all(catalog.kernel_dir(KernelVersion::V6_12, Arch::X86_64)).expect("rm");
    let again = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("refetch");
    assert_eq!(again, k);
    assert_eq!(fs::read(&deb).expect("read"), bytes);
    assert_eq!(fetcher.count(&pkg.url()), 2);
}

#[test]
fn a_truncated_cached_kernel_is_extracted_again_from_its_deb() {
    let (_dir, fetcher, catalog) = setup();
    let pkg = image_612(95, b"kernel bytes");
    publish(&fetcher, "bookworm-backports", &[&pkg]);
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("fetch");
    fs::write(&k.image, b"kern").expect("truncate the extracted image");
    assert!(catalog.cached(KernelVersion::V6_12, Arch::X86_64).is_none());
    let again = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("refetch");
    assert_eq!(fs::read(&again.image).expect("image"), b"kernel bytes");
    // From the cached, verified .deb: no second download.
    assert_eq!(fetcher.count(&pkg.url()), 1);
}

#[test]
fn a_rebuilt_package_with_another_checksum_is_extracted_again() {
    let (_dir, fetcher, catalog) = setup();
    let a = image_612(95, b"build a");
    publish(&fetcher, "bookworm-backports", &[&a]);
    catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("a");
    // Same name and version, different bytes (a binNMU-like rebuild).
    let b = image_612(95, b"build b");
    publish(&fetcher, "bookworm-backports", &[&b]);
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, true)
        .expect("b");
    assert_eq!(fs::read(&k.image).expect("image"), b"build b");
    assert_eq!(k.packages[0].sha256, cache::sha256_bytes(&b.deb));
}

#[test]
fn errors_name_the_suite_pattern_and_url() {
    let (_dir, fetcher, catalog) = setup();
    let err = catalog
        .fetch_kernel(KernelVersion::V7_2, Arch::X86_64, false)
        .expect_err("no index");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&index_url("sid")) && msg.contains("not found"),
        "{msg}"
    );

    publish(&fetcher, "sid", &[&image_612(95, b"x")]);
    let err = catalog
        .fetch_kernel(KernelVersion::V7_2, Arch::X86_64, false)
        .expect_err("no match");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("linux-binary-7.2.<X>+deb14-cloud-amd64")
            && msg.contains("suite sid")
            && msg.contains(&index_url("sid")),
        "{msg}"
    );

    // A corrupt cached index is downloaded again.
    fs::write(catalog.index_path("sid", Arch::X86_64), b"garbage").expect("write");
    let err = catalog
        .resolve(KernelVersion::V7_2, Arch::X86_64, false)
        .expect_err("still no 7.2");
    assert!(
        format!("{err:#}").contains("no package matching"),
        "{err:#}"
    );
    assert_eq!(fetcher.count(&index_url("sid")), 3);
}

#[test]
fn progress_reports_each_file() {
    let (_dir, fetcher, catalog) = setup();
    let (binary, base) = pair_73(4);
    publish(&fetcher, "trixie-backports", &[&binary, &base]);
    let seen: Mutex<Vec<(String, u64, Option<u64>)>> = Mutex::new(Vec::new());
    catalog
        .fetch_kernel_with_progress(KernelVersion::V7_3, Arch::X86_64, false, &|what, d, t| {
            seen.lock().expect("lock").push((what.to_string(), d, t));
        })
        .expect("fetch");
    let seen = seen.into_inner().expect("lock");
    let mut labels: Vec<&str> = seen.iter().map(|(w, _, _)| w.as_str()).collect();
    labels.dedup();
    assert_eq!(
        labels,
        [
            "Packages.xz (trixie-backports/amd64)",
            &format!("{}_{}_amd64.deb", binary.name, binary.version),
            &format!("{}_{}_amd64.deb", base.name, base.version),
        ]
    );
    let last = seen.last().expect("some");
    assert_eq!(last.1, base.deb.len() as u64);
    assert_eq!(last.2, Some(base.deb.len() as u64));
}

fn busybox_pkg(elf: &[u8], version: &str) -> Pkg {
    let deb = build(
        &[
            Item::Dir("./bin/"),
            Item::File("./bin/busybox", elf, 0o755),
            Item::File(
                "./usr/share/initramfs-tools/hooks/zz-busybox",
                b"#!/bin/sh",
                0o755,
            ),
        ],
        Compression::Xz,
    );
    Pkg::new("busybox-static", version, deb)
}

#[test]
fn busybox_is_fetched_checked_and_cached() {
    let (dir, fetcher, catalog) = setup();
    let good = busybox_pkg(&elf::fake_elf(62, false), "1:1.35.0-4+deb12u1+b1");
    let older = busybox_pkg(&elf::fake_elf(62, true), "1:1.35.0-4");
    publish(&fetcher, "bookworm", &[&older, &good]);

    let path = catalog.fetch_busybox(Arch::X86_64).expect("busybox");
    assert_eq!(path, dir.path().join("busybox/x86_64/busybox"));
    assert_eq!(fs::read(&path).expect("read"), elf::fake_elf(62, false));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "executable");
    }
    fetcher.clear_log();
    assert_eq!(catalog.fetch_busybox(Arch::X86_64).expect("again"), path);
    assert!(fetcher.log().is_empty());

    // A dynamic or wrong-machine busybox is refused.
    let dynamic = busybox_pkg(&elf::fake_elf(62, true), "1:1.36");
    publish(&fetcher, "bookworm", &[&dynamic]);
    fs::remove_file(catalog.index_path("bookworm", Arch::X86_64)).expect("rm index");
    let err = catalog.fetch_busybox(Arch::X86_64).expect_err("dynamic");
    assert!(format!("{err:#}").contains("dynamically linked"), "{err:#}");
}

#[test]
fn fetched_kernel_json_shape() {
    let k = FetchedKernel {
        version: "6.12".into(),
        arch: Arch::Arm64,
        release: "6.12.95+deb12-cloud-arm64".into(),
        image: "/c/vmlinuz".into(),
        config: "/c/config".into(),
        packages: vec![PackageRef {
            name: "linux-image-6.12.95+deb12-cloud-arm64-unsigned".into(),
            version: "6.12.95-1~bpo12+1".into(),
            filename: "pool/main/l/linux/x.deb".into(),
            sha256: "ab".repeat(32),
            size_bytes: 3,
        }],
        suite: "bookworm-backports".into(),
        mirror: MIRROR.into(),
        files_sha256: None,
    };
    let v = serde_json::to_value(&k).expect("json");
    assert_eq!(v["arch"], "arm64");
    assert_eq!(v["packages"][0]["size_bytes"], 3);
    let back: FetchedKernel = serde_json::from_value(v).expect("back");
    assert_eq!(back, k);
}

/// Real archive, real downloads (tens of MB). `cargo test -p tracelab --lib kernels -- --ignored --nocapture`
mod network {
    use super::*;

    fn report(k: &FetchedKernel) {
        let size = fs::metadata(&k.image).map(|m| m.len()).unwrap_or(0);
        let config = fs::read_to_string(&k.config).unwrap_or_default();
        println!(
            "{} {}: release {} image {} bytes ({}), config {} lines, packages {:?}",
            k.version,
            k.arch,
            k.release,
            size,
            k.image.display(),
            config.lines().count(),
            k.packages
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect::<Vec<_>>()
        );
        assert!(size > 1_000_000, "image too small");
        assert!(config.contains("CONFIG_FTRACE=y"));
    }

    #[test]
    #[ignore = "downloads ~35 MB from the Debian archive"]
    fn fetch_6_12_amd64_from_debian() {
        let catalog = Catalog::new(None).expect("catalog");
        println!("mirror {} ({})", catalog.mirror(), catalog.mirror_source());
        let k = catalog
            .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
            .expect("fetch");
        assert!(k.release.starts_with("6.12.") && k.release.ends_with("+deb12-cloud-amd64"));
        report(&k);
        assert_eq!(catalog.cached(KernelVersion::V6_12, Arch::X86_64), Some(k));
    }

    #[test]
    #[ignore = "downloads ~150 MB from the Debian archive"]
    fn fetch_the_other_kernels_and_busybox_from_debian() {
        let catalog = Catalog::new(None).expect("catalog");
        for (version, arch) in [
            (KernelVersion::V6_12, Arch::Arm64),
            (KernelVersion::V7_3, Arch::Arm64),
            (KernelVersion::V7_2, Arch::X86_64),
            (KernelVersion::V6_1, Arch::Arm64),
        ] {
            let k = catalog.fetch_kernel(version, arch, false).expect("fetch");
            report(&k);
        }
        for arch in Arch::ALL {
            let path = catalog.fetch_busybox(arch).expect("busybox");
            println!("busybox {arch}: {}", path.display());
        }
    }
}

/// Publishes `pkgs` in the security archive beside the fake mirror.
fn publish_security(fetcher: &FakeFetcher, suite: &str, pkgs: &[&Pkg]) {
    let security = "http://mirror.test/debian-security";
    let text: String = pkgs.iter().map(|p| p.stanza()).collect();
    fetcher.put(
        &debian_index::index_url(security, suite, "amd64"),
        xz(&text),
    );
    for p in pkgs {
        fetcher.put(&format!("{security}/{}", p.filename()), p.deb.clone());
    }
}

#[test]
fn every_release_of_a_line_is_listed_and_the_newest_in_any_suite_is_the_default() {
    let (_dir, fetcher, catalog) = setup();
    let (a, b, c) = (
        image_612(95, b"k95"),
        image_612(111, b"k111"),
        image_612(117, b"k117"),
    );
    publish(&fetcher, "bookworm-backports", &[&a]);
    publish_security(&fetcher, "bookworm-security", &[&b, &c]);
    let releases = catalog
        .releases(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("releases");
    let labels: Vec<(&str, &str)> = releases
        .iter()
        .map(|r| (r.label.as_str(), r.suite.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("6.12.117", "bookworm-security"),
            ("6.12.111", "bookworm-security"),
            ("6.12.95", "bookworm-backports")
        ]
    );
    // The default is the newest of all suites, from the security archive.
    let k = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("default");
    assert_eq!(fs::read(&k.image).expect("image"), b"k117");
    assert_eq!(k.suite, "bookworm-security");
    assert_eq!(k.mirror, "http://mirror.test/debian-security");
    // A named release, cached apart from the default.
    let old = catalog
        .fetch_release(
            KernelVersion::V6_12,
            Arch::X86_64,
            Some("6.12.95"),
            false,
            &|_, _, _| {},
        )
        .expect("6.12.95");
    assert_eq!(fs::read(&old.image).expect("image"), b"k95");
    assert_ne!(old.image, k.image);
    assert_eq!(fs::read(&k.image).expect("image"), b"k117");
    let err = format!(
        "{:#}",
        catalog
            .fetch_release(
                KernelVersion::V6_12,
                Arch::X86_64,
                Some("6.12.200"),
                false,
                &|_, _, _| {}
            )
            .unwrap_err()
    );
    assert!(
        err.contains("no release `6.12.200`") && err.contains("6.12.117, 6.12.111, 6.12.95"),
        "{err}"
    );
}

#[test]
fn release_labels_and_names() {
    use catalog::{names_release, release_label};
    assert_eq!(
        release_label("6.12.111+deb12-cloud-amd64", "6.12.111-1"),
        "6.12.111"
    );
    assert_eq!(
        release_label("6.1.0-50-cloud-amd64", "6.1.176-1"),
        "6.1.0-50 (6.1.176)"
    );
    assert!(names_release(
        "6.1.0-50-cloud-amd64",
        "6.1.176-1",
        "6.1.176"
    ));
    assert!(names_release(
        "6.1.0-50-cloud-amd64",
        "6.1.176-1",
        "6.1.0-50"
    ));
    assert!(!names_release(
        "6.1.0-50-cloud-amd64",
        "6.1.176-1",
        "6.1.0-5"
    ));
    assert!(names_release(
        "6.12.111+deb12-cloud-amd64",
        "6.12.111-1",
        "6.12.111"
    ));
    assert!(!names_release(
        "6.12.111+deb12-cloud-amd64",
        "6.12.111-1",
        "6.12.11"
    ));
}
