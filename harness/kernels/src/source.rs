//! A guest kernel's own source, for the tools built from it (the BPF selftests' `bench`):
//! Debian's `linux-source-<X.Y>` package of exactly the kernel's package version, from the
//! kernel's suite, with only the parts of the tree those tools need unpacked. And the
//! kernel's BTF, taken out of the cached image, so the tools build against the guest's
//! kernel and not the host's.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What of the tree the selftests' `bench` build reads: the tools and their build system,
/// the headers, the BPF verifier's disassembler (bpftool), and both arches' headers.
pub const SUBSET: &[&str] = &[
    "Makefile",
    "tools/",
    "scripts/",
    "include/",
    "kernel/bpf/",
    "arch/x86/",
    "arch/arm64/",
];

/// The `linux-source` package that matches a kernel package version, e.g.
/// `linux-source-6.12` for `6.12.118-1~deb12u1`.
pub fn package_for(version: &str) -> Result<String> {
    let mut parts = version.split(['.', '-', '+', '~']);
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor))
            if major.chars().all(|c| c.is_ascii_digit())
                && minor.chars().all(|c| c.is_ascii_digit())
                && !major.is_empty()
                && !minor.is_empty() =>
        {
            Ok(format!("linux-source-{major}.{minor}"))
        }
        _ => bail!("kernel package version {version:?} does not start with <major>.<minor>"),
    }
}

/// A kernel source tree unpacked in the cache (`source.json` beside it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelSource {
    /// The tree's top (holds `Makefile`, `tools/`, …).
    pub dir: PathBuf,
    pub package: crate::PackageRef,
    pub suite: String,
    /// The parts of the tree unpacked ([`SUBSET`]).
    pub subset: Vec<String>,
}

/// Unpacks the [`SUBSET`] of the tarball inside a `linux-source` `.deb` into `dest`
/// (the tarball's top directory stripped).
pub(crate) fn unpack(deb: &Path, package: &str, dest: &Path) -> Result<()> {
    let tarball = format!("usr/src/{package}.tar.xz");
    crate::deb::with_data_tar(deb, |_, reader| {
        let mut outer = tar::Archive::new(reader);
        for entry in outer.entries().map_err(|e| io(deb, "reading", e))? {
            let entry = entry.map_err(|e| io(deb, "reading", e))?;
            let path = entry.path().map_err(|e| io(deb, "reading", e))?;
            if path.to_string_lossy().trim_start_matches("./") != tarball {
                continue;
            }
            return unpack_subset(entry, dest).map_err(|e| crate::deb::DebError::Io {
                deb: deb.into(),
                context: format!("unpacking {tarball}"),
                source: std::io::Error::other(format!("{e:#}")),
            });
        }
        Err(crate::deb::DebError::Io {
            deb: deb.into(),
            context: format!("finding {tarball}"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the package"),
        })
    })?;
    Ok(())
}

fn io(deb: &Path, context: &str, source: std::io::Error) -> crate::deb::DebError {
    crate::deb::DebError::Io {
        deb: deb.into(),
        context: context.into(),
        source,
    }
}

fn unpack_subset(xz: impl Read, dest: &Path) -> Result<()> {
    let mut inner = tar::Archive::new(liblzma::read::XzDecoder::new_multi_decoder(xz));
    let mut found = 0usize;
    for entry in inner.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // linux-source-X.Y/<rest>
        let rest: PathBuf = path.components().skip(1).collect();
        let text = rest.to_string_lossy();
        let wanted = SUBSET.iter().any(|s| match s.strip_suffix('/') {
            Some(dir) => text == dir || text.starts_with(s),
            None => text == *s,
        });
        if !wanted || text.is_empty() {
            continue;
        }
        let target = dest.join(&rest);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("unpacking {}", rest.display()))?;
        found += 1;
    }
    if !dest.join("tools/testing/selftests/bpf/Makefile").exists() {
        bail!("the tarball held no tools/testing/selftests/bpf ({found} files unpacked)");
    }
    Ok(())
}

/// Writes a package's members under `root` as dpkg would, except that a link to an
/// absolute path points inside `root` (the tree is a sysroot, not the host's `/`).
pub(crate) fn write_members(root: &Path, members: Vec<crate::deb::Member>) -> Result<()> {
    use crate::deb::MemberKind;
    use std::os::unix::fs::PermissionsExt;
    for m in members {
        let path = root.join(&m.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match m.kind {
            MemberKind::Dir => std::fs::create_dir_all(&path)?,
            MemberKind::File(bytes) => {
                std::fs::write(&path, bytes)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.mode & 0o7777))?;
            }
            MemberKind::HardLink(target) => {
                std::fs::copy(root.join(&target), &path)?;
            }
            MemberKind::Symlink(target) => {
                let target = match target.strip_prefix('/') {
                    Some(inside) => root.join(inside),
                    None => PathBuf::from(target),
                };
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(target, &path)?;
            }
        }
    }
    Ok(())
}

/// The kernel's BTF (`.BTF` of vmlinux) out of a boot image: an x86 bzImage (its payload
/// compressed with zstd, xz or gzip), an arm64 `Image`, or either gzip-compressed. Raw
/// BTF is what `bpftool btf dump file` and the selftests' `VMLINUX_BTF` take.
pub fn vmlinux_btf(image: &[u8]) -> Result<Vec<u8>> {
    let plain = if image.starts_with(&[0x1f, 0x8b]) {
        decompress(image)?
    } else if image.len() > 0x250 && &image[0x202..0x206] == b"HdrS" {
        let setup_sects = match image[0x1f1] {
            0 => 4,
            n => n as usize,
        };
        let offset = u32::from_le_bytes(image[0x248..0x24c].try_into()?) as usize;
        let length = u32::from_le_bytes(image[0x24c..0x250].try_into()?) as usize;
        let start = (setup_sects + 1) * 512 + offset;
        let payload = image
            .get(start..start + length)
            .context("the bzImage's payload lies outside the file")?;
        decompress(payload)?
    } else {
        image.to_vec()
    };
    find_btf(&plain).context("the kernel image holds no BTF (is CONFIG_DEBUG_INFO_BTF set?)")
}

fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // The kernel compresses with zstd's largest windows (`--ultra -22`), beyond the
        // decoder's default limit. The payload ends with the uncompressed size; the
        // decoder stops at the frame's end and ignores it.
        let mut decoder = zstd::stream::read::Decoder::new(data)?.single_frame();
        decoder.window_log_max(31)?;
        decoder.read_to_end(&mut out)?;
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        liblzma::read::XzDecoder::new(data).read_to_end(&mut out)?;
    } else if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    } else {
        bail!(
            "the kernel image is compressed with something other than zstd, xz or gzip (magic {:02x?})",
            &data[..data.len().min(4)]
        );
    }
    Ok(out)
}

/// The first well-formed BTF blob: magic 0xeb9f, version 1, a 24-byte header, and type
/// and string sections that end inside the data.
fn find_btf(data: &[u8]) -> Option<Vec<u8>> {
    const HEAD: [u8; 8] = [0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00];
    let word = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let mut from = 0;
    while let Some(at) = data[from..]
        .windows(HEAD.len())
        .position(|w| w == HEAD)
        .map(|p| p + from)
    {
        from = at + 1;
        let (Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (word(at + 8), word(at + 12), word(at + 16), word(at + 20))
        else {
            return None;
        };
        let end = 24 + str_off + str_len;
        if type_off == 0 && str_off == type_len && type_len > 0 && str_len > 0 {
            if let Some(blob) = data.get(at..at + end) {
                return Some(blob.to_vec());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_the_line() {
        assert_eq!(
            package_for("6.12.118-1~deb12u1").unwrap(),
            "linux-source-6.12"
        );
        assert_eq!(package_for("7.3.4-1~bpo13+1").unwrap(), "linux-source-7.3");
        assert!(package_for("custom").is_err());
    }

    fn btf_blob() -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 0x01, 0x00, 24, 0, 0, 0];
        for w in [0u32, 4, 4, 3] {
            b.extend(w.to_le_bytes());
        }
        b.extend([1, 2, 3, 4, 0, b'a', 0]);
        b
    }

    #[test]
    fn finds_btf_in_a_raw_image_and_in_a_bzimage() {
        let mut raw = vec![0u8; 100];
        // A false start: the magic with sections that do not add up.
        raw.extend([0x9f, 0xeb, 0x01, 0x00, 24, 0, 0, 0, 9, 9, 9, 9]);
        raw.extend(btf_blob());
        raw.extend([7u8; 50]);
        assert_eq!(vmlinux_btf(&raw).unwrap(), btf_blob());

        let payload = zstd::encode_all(&raw[..], 1).unwrap();
        let mut bz = vec![0u8; 1024];
        bz[0x1f1] = 1; // one setup sector: the payload starts at 1024 + offset
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x248..0x24c].copy_from_slice(&8u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bz.extend([0u8; 8]);
        bz.extend(&payload);
        assert_eq!(vmlinux_btf(&bz).unwrap(), btf_blob());

        assert!(vmlinux_btf(&[0u8; 4096]).is_err());
    }
}
