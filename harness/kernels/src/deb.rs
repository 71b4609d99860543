//! Taking files out of a `.deb` without dpkg: an `ar` archive whose `data.tar[.xz|.zst|.gz]`
//! member holds the package's files.

use super::cache::TempFile;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{}: {context}: {source}", deb.display())]
    Io {
        deb: PathBuf,
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{}: no data.tar member (members: {members})", deb.display())]
    NoData { deb: PathBuf, members: String },
    #[error("{}: unsupported compression `{member}`", deb.display())]
    Compression { deb: PathBuf, member: String },
    #[error("{}: `/{path}` is a link to `{target}`, not a file", deb.display())]
    Link {
        deb: PathBuf,
        path: String,
        target: String,
    },
    #[error("{}: {member} has no {}", deb.display(), quoted(missing))]
    Missing {
        deb: PathBuf,
        member: String,
        missing: Vec<String>,
    },
}

fn quoted(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("`/{p}`")).collect();
    quoted.join(", ")
}

/// A file to take out of a package: its path in the package (with or without leading
/// `/` or `./`) and where to write it.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub path: String,
    pub dest: PathBuf,
}

impl Wanted {
    pub fn new(path: &str, dest: &Path) -> Wanted {
        Wanted {
            path: normalize(path).to_string(),
            dest: dest.to_path_buf(),
        }
    }
}

fn normalize(path: &str) -> &str {
    let p = path.strip_prefix("./").unwrap_or(path);
    p.trim_start_matches('/')
}

/// Extracts every `wanted` file from `deb`, keeping its permission bits. The files appear
/// only if all of them were found (each is renamed into place at the end); otherwise
/// nothing is written and the error names what is missing.
pub fn extract(deb: &Path, wanted: &[Wanted]) -> Result<(), DebError> {
    with_data_tar(deb, |member, reader| {
        extract_from_tar(deb, member, reader, wanted)
    })
}

/// One entry of a package's `data.tar`, its path without the leading `./`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    /// Permission bits (and set-id bits), without the file type.
    pub mode: u32,
    pub kind: MemberKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A hard link to another member of the same package (its path, normalized).
    HardLink(String),
}

/// Every entry of `deb`'s `data.tar`, in archive order, contents included: for unpacking a
/// whole package without dpkg (the guests' Debian userland).
pub fn members(deb: &Path) -> Result<Vec<Member>, DebError> {
    with_data_tar(deb, |member, reader| {
        let io_err = |source| DebError::Io {
            deb: deb.to_path_buf(),
            context: format!("reading {member}"),
            source,
        };
        let mut out = Vec::new();
        let mut tar = tar::Archive::new(reader);
        for entry in tar.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let path = normalize(&entry.path().map_err(io_err)?.to_string_lossy())
                .trim_end_matches('/')
                .to_string();
            if path.is_empty() {
                continue;
            }
            let mode = entry.header().mode().map_err(io_err)? & 0o7777;
            let link = || {
                entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let kind = entry.header().entry_type();
            let kind = if kind.is_dir() {
                MemberKind::Dir
            } else if kind.is_symlink() {
                MemberKind::Symlink(link())
            } else if kind.is_hard_link() {
                MemberKind::HardLink(normalize(&link()).to_string())
            } else if kind.is_file() {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(io_err)?;
                MemberKind::File(bytes)
            } else {
                // Devices and fifos: Debian packages ship none the guests need.
                continue;
            };
            out.push(Member { path, mode, kind });
        }
        Ok(out)
    })
}

/// Opens the `data.tar` member of `deb`, decompressed, and hands it to `read`.
pub(crate) fn with_data_tar<T>(
    deb: &Path,
    read: impl FnOnce(&str, Box<dyn Read + '_>) -> Result<T, DebError>,
) -> Result<T, DebError> {
    let io_err = |context: &str| {
        let deb = deb.to_path_buf();
        let context = context.to_string();
        move |source| DebError::Io {
            deb,
            context,
            source,
        }
    };
    let file = File::open(deb).map_err(io_err("opening"))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut members = Vec::new();
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(io_err("reading the ar archive"))?;
        let member = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        if !member.starts_with("data.tar") {
            members.push(member);
            continue;
        }
        let reader: Box<dyn Read + '_> = match member.as_str() {
            "data.tar" => Box::new(entry),
            "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(entry)),
            "data.tar.zst" => {
                Box::new(zstd::stream::read::Decoder::new(entry).map_err(io_err("starting zstd"))?)
            }
            "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            _ => {
                return Err(DebError::Compression {
                    deb: deb.into(),
                    member,
                })
            }
        };
        return read(&member, reader);
    }
    Err(DebError::NoData {
        deb: deb.into(),
        members: members.join(", "),
    })
}

fn extract_from_tar(
    deb: &Path,
    member: &str,
    reader: impl Read,
    wanted: &[Wanted],
) -> Result<(), DebError> {
    let io_err = |context: String| {
        let deb = deb.to_path_buf();
        move |source| DebError::Io {
            deb,
            context,
            source,
        }
    };
    let mut found: Vec<Option<TempFile>> = wanted.iter().map(|_| None).collect();
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(io_err(format!("reading {member}")))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err(format!("reading {member}")))?;
        let path = entry
            .path()
            .map_err(io_err(format!("reading {member}")))?
            .to_string_lossy()
            .into_owned();
        let path = normalize(&path);
        let Some(i) = wanted.iter().position(|w| w.path == path) else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(DebError::Link {
                deb: deb.into(),
                path: path.to_string(),
                target,
            });
        }
        let dest = &wanted[i].dest;
        let context = || format!("writing /{path} to {}", dest.display());
        let mut out = TempFile::create(dest).map_err(io_err(context()))?;
        io::copy(&mut entry, &mut out).map_err(io_err(context()))?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        out.set_mode(mode).map_err(io_err(context()))?;
        found[i] = Some(out);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let missing: Vec<String> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(w, _)| w.path.clone())
        .collect();
    if !missing.is_empty() {
        return Err(DebError::Missing {
            deb: deb.into(),
            member: member.to_string(),
            missing,
        });
    }
    for (w, file) in wanted.iter().zip(found) {
        if let Some(file) = file {
            file.commit()
                .map_err(io_err(format!("writing {}", w.dest.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testdeb {
    //! Builds small `.deb` files for tests.

    use std::io::Write;

    pub(crate) enum Compression {
        None,
        Xz,
        Zstd,
        Gzip,
    }

    pub(crate) enum Item<'a> {
        File(&'a str, &'a [u8], u32),
        Symlink(&'a str, &'a str),
        Dir(&'a str),
    }

    pub(crate) fn build(items: &[Item<'_>], compression: Compression) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for item in items {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            match item {
                Item::File(path, bytes, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(bytes.len() as u64);
                    h.set_mode(*mode);
                    tar.append_data(&mut h, path, *bytes).expect("tar file");
                }
                Item::Symlink(path, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    h.set_mode(0o777);
                    tar.append_link(&mut h, path, target).expect("tar link");
                }
                Item::Dir(path) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    tar.append_data(&mut h, path, &[][..]).expect("tar dir");
                }
            }
        }
        let tar = tar.into_inner().expect("tar");
        let (name, data) = match compression {
            Compression::None => ("data.tar", tar),
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(&tar).expect("xz");
                ("data.tar.xz", e.finish().expect("xz"))
            }
            Compression::Zstd => ("data.tar.zst", zstd::encode_all(&tar[..], 1).expect("zstd")),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&tar).expect("gz");
                ("data.tar.gz", e.finish().expect("gz"))
            }
        };
        let mut ar = ar::Builder::new(Vec::new());
        let members: [(&str, &[u8]); 3] = [
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", b"not really"),
            (name, &data),
        ];
        for (member, bytes) in members {
            let header = ar::Header::new(member.as_bytes().to_vec(), bytes.len() as u64);
            ar.append(&header, bytes).expect("ar");
        }
        ar.into_inner().expect("ar")
    }
}

#[cfg(test)]
mod tests {
    use super::testdeb::{build, Compression, Item};
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn sample(compression: Compression) -> Vec<u8> {
        build(
            &[
                Item::Dir("./boot/"),
                Item::File("./boot/System.map-6.12.1-cloud-amd64", b"ffffffff", 0o644),
                Item::File("./boot/config-6.12.1-cloud-amd64", b"CONFIG_X=y\n", 0o644),
                Item::File("./boot/vmlinuz-6.12.1-cloud-amd64", b"MZ kernel", 0o644),
                Item::File("./bin/busybox", b"\x7fELF", 0o755),
                Item::Symlink("./vmlinuz", "boot/vmlinuz-6.12.1-cloud-amd64"),
            ],
            compression,
        )
    }

    #[test]
    fn extracts_from_every_compression() {
        for (i, c) in [
            Compression::None,
            Compression::Xz,
            Compression::Zstd,
            Compression::Gzip,
        ]
        .into_iter()
        .enumerate()
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let deb = dir.path().join("k.deb");
            fs::write(&deb, sample(c)).expect("write");
            let out = dir.path().join("out");
            extract(
                &deb,
                &[
                    Wanted::new("/boot/vmlinuz-6.12.1-cloud-amd64", &out.join("vmlinuz")),
                    Wanted::new("boot/config-6.12.1-cloud-amd64", &out.join("config")),
                    Wanted::new("./bin/busybox", &out.join("busybox")),
                ],
            )
            .unwrap_or_else(|e| panic!("compression #{i}: {e}"));
            assert_eq!(fs::read(out.join("vmlinuz")).expect("read"), b"MZ kernel");
            assert_eq!(fs::read(out.join("config")).expect("read"), b"CONFIG_X=y\n");
            let mode = fs::metadata(out.join("busybox"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn missing_file_writes_nothing_and_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deb = dir.path().join("k.deb");
        fs::write(&deb, sample(Compression::Xz)).expect("write");
        let out = dir.path().join("out");
        let err = extract(
            &deb,
            &[
                Wanted::new("/boot/config-6.12.1-cloud-amd64", &out.join("config")),
                Wanted::new("/usr/lib/modules/x/vmlinuz", &out.join("vmlinuz")),
            ],
        )
        .expect_err("missing");
        let msg = err.to_string();
        assert!(
            msg.contains("/usr/lib/modules/x/vmlinuz") && msg.contains("data.tar.xz"),
            "{msg}"
        );
        assert!(!out.join("config").exists());
        assert_eq!(fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0);
    }

    #[test]
    fn links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deb = dir.path().join("k.deb");
        fs::write(&deb, sample(Compression::Gzip)).expect("write");
        let err =
            extract(&deb, &[Wanted::new("/vmlinuz", &dir.path().join("v"))]).expect_err("link");
        assert!(err.to_string().contains("link to `boot/vmlinuz"), "{err}");
    }

    #[test]
    fn members_lists_every_entry_with_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deb = dir.path().join("k.deb");
        fs::write(&deb, sample(Compression::Zstd)).expect("write");
        let all = members(&deb).expect("members");
        let paths: Vec<&str> = all.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths[0], "boot");
        assert_eq!(all[0].kind, MemberKind::Dir);
        let busybox = all
            .iter()
            .find(|m| m.path == "bin/busybox")
            .expect("busybox");
        assert_eq!(
            (busybox.mode, &busybox.kind),
            (0o755, &MemberKind::File(b"\x7fELF".to_vec()))
        );
        let link = all.iter().find(|m| m.path == "vmlinuz").expect("link");
        assert_eq!(
            link.kind,
            MemberKind::Symlink("boot/vmlinuz-6.12.1-cloud-amd64".into())
        );
    }

    #[test]
    fn not_a_deb() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deb = dir.path().join("k.deb");
        fs::write(&deb, b"<html>404</html>").expect("write");
        let err = extract(&deb, &[Wanted::new("/x", &dir.path().join("x"))]).expect_err("bad");
        assert!(err.to_string().contains("k.deb"), "{err}");
    }
}
