//! A kernel the user built (`--kernel <image> --config <file>`), described like a fetched one.

use super::FetchedKernel;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tracelab_model::arch::Arch;

/// Describes a user-built kernel. Both files must exist; the config must look like a
/// kernel `.config`. The release is the version in the config's header comment
/// (`# Linux/x86 6.12.0 Kernel Configuration`) plus `CONFIG_LOCALVERSION` if set, or
/// `custom` when there is no header. A header naming another architecture is an error.
pub fn user_kernel(image: &Path, config: &Path, arch: Arch) -> Result<FetchedKernel> {
    let image = existing_file(image, "kernel image")?;
    check_image(&image, arch)?;
    let config = existing_file(config, "kernel config")?;
    let bytes = std::fs::read(&config)
        .with_context(|| format!("reading kernel config {}", config.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.lines().any(|l| {
        l.starts_with("CONFIG_") || (l.starts_with("# CONFIG_") && l.ends_with(" is not set"))
    }) {
        bail!(
            "{} does not look like a kernel .config (no CONFIG_ lines)",
            config.display()
        );
    }
    let release = match header(&text) {
        Some((config_arch, version)) => {
            if let Some(for_arch) = arch_of_header(config_arch) {
                if for_arch != arch {
                    bail!(
                        "{} is a config for {for_arch} (`Linux/{config_arch}`), not {arch}",
                        config.display()
                    );
                }
            }
            format!("{version}{}", local_version(&text))
        }
        None => "custom".to_string(),
    };
    Ok(FetchedKernel {
        version: "custom".to_string(),
        arch,
        release,
        image,
        config,
        packages: Vec::new(),
        suite: String::new(),
        mirror: String::new(),
        files_sha256: None,
    })
}

/// Refuses a file that is no kernel image QEMU's `-kernel` boots for `arch`, before a
/// guest is started on it: x86_64 wants a bzImage (`HdrS` at 0x202); arm64 an `Image`
/// (`ARM\x64` at 0x38), a gzip-compressed one (Debian's `vmlinuz`) or an EFI zboot image
/// (`zimg` at 4).
fn check_image(image: &Path, arch: Arch) -> Result<()> {
    let mut head = vec![0u8; 0x210];
    let n = std::fs::File::open(image)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .with_context(|| format!("reading kernel image {}", image.display()))?;
    head.truncate(n);
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let ok = match arch {
        Arch::X86_64 => at(0x202, b"HdrS"),
        Arch::Arm64 => at(0x38, b"ARM\x64") || at(0, &[0x1f, 0x8b]) || at(4, b"zimg"),
    };
    if !ok {
        bail!(
            "{} is not a kernel image for {arch} (want {}): pass the image your build made",
            image.display(),
            match arch {
                Arch::X86_64 => "a bzImage, arch/x86/boot/bzImage",
                Arch::Arm64 => "arch/arm64/boot/Image or Image.gz",
            }
        );
    }
    Ok(())
}

fn existing_file(path: &Path, what: &str) -> Result<std::path::PathBuf> {
    let abs = path
        .canonicalize()
        .with_context(|| format!("{what} {}", path.display()))?;
    if !abs.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    Ok(abs)
}

/// (`x86`, `6.12.0`) from `# Linux/x86 6.12.0 Kernel Configuration` in the first lines.
fn header(text: &str) -> Option<(&str, &str)> {
    text.lines().take(10).find_map(|line| {
        let rest = line.strip_prefix("# Linux/")?;
        let rest = rest.strip_suffix(" Kernel Configuration")?;
        let (arch, version) = rest.split_once(' ')?;
        let version = version.trim();
        (!version.is_empty() && !version.contains(' ')).then_some((arch, version))
    })
}

fn arch_of_header(config_arch: &str) -> Option<Arch> {
    match config_arch {
        "x86" | "x86_64" | "i386" => Some(Arch::X86_64),
        "arm64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// The unquoted `CONFIG_LOCALVERSION` value, or "".
fn local_version(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_LOCALVERSION="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const CONFIG: &str = "\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.12.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"
CONFIG_LOCALVERSION=\"-lab\"
# CONFIG_LOCALVERSION_AUTO is not set
CONFIG_KPROBES=y
";

    fn files(config: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("bzImage");
        let cfg = dir.path().join(".config");
        // Passes both arches' checks: gzip's magic first, a bzImage header at 0x202.
        let mut bytes = vec![0u8; 0x210];
        bytes[..2].copy_from_slice(&[0x1f, 0x8b]);
        bytes[0x202..0x206].copy_from_slice(b"HdrS");
        fs::write(&image, bytes).expect("write");
        fs::write(&cfg, config).expect("write");
        (dir, image, cfg)
    }

    #[test]
    fn release_from_header_and_localversion() {
        let (_dir, image, cfg) = files(CONFIG);
        let k = user_kernel(&image, &cfg, Arch::X86_64).expect("ok");
        assert_eq!(k.version, "custom");
        assert_eq!(k.release, "6.12.0-lab");
        assert!(k.image.is_absolute() && k.image.ends_with("bzImage"));
        assert!(k.packages.is_empty());

        let (_dir, image, cfg) = files(&CONFIG.replace("\"-lab\"", "\"\""));
        let k = user_kernel(&image, &cfg, Arch::X86_64).expect("ok");
        assert_eq!(k.release, "6.12.0");
    }

    #[test]
    fn no_header_means_custom() {
        let (_dir, image, cfg) = files("CONFIG_FTRACE=y\n");
        let k = user_kernel(&image, &cfg, Arch::Arm64).expect("ok");
        assert_eq!(k.release, "custom");
    }

    #[test]
    fn wrong_arch_missing_files_and_non_configs_are_errors() {
        let (dir, image, cfg) = files(CONFIG);
        let err = user_kernel(&image, &cfg, Arch::Arm64).expect_err("arch");
        assert!(err.to_string().contains("not arm64"), "{err}");

        let err = user_kernel(&dir.path().join("nope"), &cfg, Arch::X86_64).expect_err("missing");
        assert!(format!("{err:#}").contains("kernel image"), "{err:#}");
        let err = user_kernel(&image, &dir.path().join("nope"), Arch::X86_64).expect_err("missing");
        assert!(format!("{err:#}").contains("kernel config"), "{err:#}");
        let err = user_kernel(&image, dir.path(), Arch::X86_64).expect_err("dir");
        assert!(err.to_string().contains("not a regular file"), "{err}");

        let not_image = dir.path().join("notes.txt");
        fs::write(&not_image, "not a kernel").expect("write");
        for arch in [Arch::X86_64, Arch::Arm64] {
            let err = user_kernel(&not_image, &cfg, arch).expect_err("not an image");
            assert!(
                err.to_string().contains("is not a kernel image for"),
                "{err}"
            );
        }

        let (_dir, image, cfg) = files("hello\n");
        let err = user_kernel(&image, &cfg, Arch::X86_64).expect_err("not a config");
        assert!(err.to_string().contains("does not look like"), "{err}");
    }
}
