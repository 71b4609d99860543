//! A Debian userland for guests that run the host's own tools (`tracelab` itself, the
//! peers): the dependency closure of a few packages of one suite, unpacked without dpkg
//! into one newc archive the kernel takes as its initramfs.
//!
//! No maintainer script runs: the guests run as root from `/init`, with no users, services
//! or package database. The archive is byte-reproducible (sorted, owned by root, mtime 0,
//! inodes numbered in order), so two builds from the same packages are one file.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::deb::{Member, MemberKind};
use crate::debian_index::{compare_versions, IndexEntry};

/// The suite every userland comes from: its glibc (2.41) runs a `tracelab` built on
/// bookworm, and it has the bpftrace the peers need (bookworm's 0.17 lacks raw
/// tracepoints).
pub const SUITE: &str = "trixie";

/// A named set of packages to install (their dependencies come along).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub packages: &'static [&'static str],
}

/// What a native `tracelab` needs: a shell and tools (busybox), and the C and gcc
/// runtime libraries the host binary links (`libc`, `libm`, `libgcc_s`).
pub const BASE: Profile = Profile {
    name: "base",
    packages: &["busybox-static", "libc6", "libgcc-s1"],
};

/// [`BASE`] and bpftrace (with LLVM and clang's libraries: about 300 MiB of files), for
/// the peers that run beside the lab in the same guest.
pub const PEERS: Profile = Profile {
    name: "peers",
    packages: &["busybox-static", "libc6", "libgcc-s1", "bpftrace"],
};

/// Top-level directories that are links into `/usr` on a merged-/usr system. Files a
/// package ships under them are put under `/usr`, and the links are made once.
const MERGED: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Documentation nobody reads in a guest: left out to keep the archive small.
const LEFT_OUT: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
];

/// One dependency group's alternatives: package names, with version constraints and
/// architecture qualifiers dropped (one suite's index is consistent with itself).
fn groups(depends: &str) -> Vec<Vec<String>> {
    depends
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| {
                    let name = alt.trim().split([' ', '(', '[', '<']).next()?;
                    let name = name.split(':').next().unwrap_or(name);
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// The packages `roots` need, dependencies included, each once (its newest version in
/// `entries`), sorted by name. Of a group of alternatives the first one already chosen
/// wins, else the first real package, else the first package providing it.
pub fn closure<'a>(entries: &'a [IndexEntry], roots: &[&str]) -> Result<Vec<&'a IndexEntry>> {
    let mut real: BTreeMap<&str, &IndexEntry> = BTreeMap::new();
    let mut providers: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for e in entries {
        let newer = real
            .get(e.package.as_str())
            .is_none_or(|old| compare_versions(&e.version, &old.version).is_gt());
        if newer {
            real.insert(&e.package, e);
        }
        for virt in groups(&e.provides).into_iter().flatten() {
            providers.entry(virt).or_default().insert(&e.package);
        }
    }
    let mut chosen: BTreeMap<&str, &IndexEntry> = BTreeMap::new();
    let mut todo: Vec<(String, String)> = roots
        .iter()
        .map(|r| (r.to_string(), "the userland".to_string()))
        .collect();
    while let Some((name, wanted_by)) = todo.pop() {
        let Some(&entry) = real.get(name.as_str()) else {
            bail!("package `{name}` (wanted by {wanted_by}) is not in the {SUITE} index");
        };
        if chosen.insert(&entry.package, entry).is_some() {
            continue;
        }
        for group in groups(&entry.depends) {
            let pick = group
                .iter()
                .find(|alt| {
                    chosen.contains_key(alt.as_str())
                        || providers
                            .get(alt.as_str())
                            .is_some_and(|p| p.iter().any(|p| chosen.contains_key(p)))
                })
                .map(|_| None)
                .or_else(|| {
                    group.iter().find_map(|alt| {
                        if real.contains_key(alt.as_str()) {
                            Some(Some(alt.clone()))
                        } else {
                            providers
                                .get(alt.as_str())
                                .and_then(|p| p.iter().next())
                                .map(|p| Some(p.to_string()))
                        }
                    })
                });
            match pick {
                Some(Some(name)) => todo.push((name, entry.package.clone())),
                Some(None) => {}
                None => bail!(
                    "`{}` depends on `{}`, which no package of the {SUITE} index is or provides",
                    entry.package,
                    group.join(" | ")
                ),
            }
        }
    }
    Ok(chosen.into_values().collect())
}

/// A file tree to write as one newc archive.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Path (no leading `/`) → permission bits and what is there.
    nodes: BTreeMap<String, (u32, Node)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A character device (major, minor): `/dev/console`, which the kernel opens for init
    /// before anything can mount devtmpfs.
    CharDev(u32, u32),
}

impl Tree {
    /// Adds a directory and any missing parents.
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.nodes.entry(at.clone()).or_insert((0o755, Node::Dir));
        }
    }

    /// Adds (or replaces) a file with its permission bits, and its parents.
    pub fn file(&mut self, path: &str, mode: u32, bytes: Vec<u8>) {
        self.insert(path, mode, Node::File(bytes));
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(path, 0o777, Node::Symlink(target.to_string()));
    }

    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) {
        self.insert(path, 0o600, Node::CharDev(major, minor));
    }

    fn insert(&mut self, path: &str, mode: u32, kind: Node) {
        let path = path.trim_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.nodes.insert(path.to_string(), (mode, kind));
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path.trim_matches('/'))
    }

    /// Adds one package's members, its files under the merged-/usr layout and without
    /// documentation; hard links become copies of the file they name.
    pub fn add_package(&mut self, members: Vec<Member>) {
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for m in members {
            if MERGED.contains(&m.path.as_str()) {
                continue;
            }
            let path = merged(&m.path);
            if LEFT_OUT
                .iter()
                .any(|d| path == *d || path.starts_with(&format!("{d}/")))
            {
                continue;
            }
            match m.kind {
                MemberKind::Dir => {
                    self.dir(&path);
                    if let Some(node) = self.nodes.get_mut(&path) {
                        node.0 = m.mode;
                    }
                }
                MemberKind::File(bytes) => {
                    files.insert(path.clone(), bytes.clone());
                    self.file(&path, m.mode, bytes);
                }
                MemberKind::HardLink(target) => {
                    let bytes = files.get(&merged(&target)).cloned().unwrap_or_default();
                    self.file(&path, m.mode, bytes);
                }
                MemberKind::Symlink(target) => self.symlink(&path, &target),
            }
        }
    }

    /// Makes the merged-/usr links (`/bin` → `usr/bin`, …) for the directories that exist.
    pub fn merge_usr(&mut self) {
        for top in MERGED {
            if self.contains(&format!("usr/{top}")) {
                self.symlink(top, &format!("usr/{top}"));
            }
        }
    }

    /// Total bytes of file contents.
    pub fn file_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|(_, k)| match k {
                Node::File(b) => b.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// The tree as an uncompressed newc archive, in path order, owned by root, mtime 0.
    pub fn archive(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (ino, (path, (mode, kind))) in self.nodes.iter().enumerate() {
            let b = cpio::newc::Builder::new(path)
                .ino(ino as u32 + 1)
                .uid(0)
                .gid(0)
                .mtime(0)
                .dev_major(0)
                .dev_minor(0);
            let (b, data): (_, &[u8]) = match kind {
                Node::Dir => (b.mode(0o040000 | mode).nlink(2), &[]),
                Node::File(bytes) => (b.mode(0o100000 | mode).nlink(1), bytes),
                Node::Symlink(target) => (b.mode(0o120777).nlink(1), target.as_bytes()),
                Node::CharDev(major, minor) => (
                    b.mode(0o020000 | mode)
                        .nlink(1)
                        .rdev_major(*major)
                        .rdev_minor(*minor),
                    &[],
                ),
            };
            let mut w = b.write(&mut out, data.len() as u32);
            w.write_all(data)
                .with_context(|| format!("writing /{path} into the archive"))?;
            w.finish().context("finishing an archive entry")?;
        }
        cpio::newc::trailer(&mut out).context("writing the archive trailer")?;
        Ok(out)
    }
}

/// A path under the merged-/usr layout: `lib/x` is `usr/lib/x`.
fn merged(path: &str) -> String {
    match path.split_once('/') {
        Some((top, rest)) if MERGED.contains(&top) => format!("usr/{top}/{rest}"),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str, depends: &str, provides: &str) -> IndexEntry {
        IndexEntry {
            package: package.into(),
            version: version.into(),
            depends: depends.into(),
            provides: provides.into(),
            ..IndexEntry::default()
        }
    }

    #[test]
    fn closure_follows_dependencies_alternatives_and_provides() {
        let index = vec![
            entry("busybox-static", "1:1.37", "", ""),
            entry("libc6", "2.40-1", "", ""),
            entry("libc6", "2.41-12", "libgcc-s1", ""),
            entry(
                "libgcc-s1",
                "14.2",
                "gcc-14-base (= 14.2), libc6 (>= 2.35)",
                "",
            ),
            entry("gcc-14-base", "14.2", "", ""),
            entry("tool", "1", "libfoo | libbar, awk, libc6:any (>= 2.38)", ""),
            entry("libbar", "1", "", ""),
            entry("mawk", "1.3", "", "awk"),
            entry("unrelated", "1", "libc6", ""),
        ];
        let names = |c: Vec<&IndexEntry>| {
            c.iter()
                .map(|e| format!("{} {}", e.package, e.version))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(closure(&index, &["busybox-static", "libc6"]).expect("closure")),
            [
                "busybox-static 1:1.37",
                "gcc-14-base 14.2",
                "libc6 2.41-12",
                "libgcc-s1 14.2"
            ]
        );
        let tool = names(closure(&index, &["tool"]).expect("closure"));
        assert!(
            tool.contains(&"libbar 1".to_string()) && tool.contains(&"mawk 1.3".to_string()),
            "{tool:?}"
        );
        let err = closure(&index, &["nothing"]).expect_err("missing");
        assert!(err.to_string().contains("`nothing`"), "{err}");
        let broken = vec![entry("a", "1", "gone (>= 2) | alsogone", "")];
        let err = closure(&broken, &["a"]).expect_err("unsatisfiable");
        assert!(err.to_string().contains("gone | alsogone"), "{err}");
    }

    #[test]
    fn packages_unpack_into_a_merged_usr_tree_without_docs() {
        let m = |path: &str, kind: MemberKind| Member {
            path: path.into(),
            mode: 0o755,
            kind,
        };
        let mut tree = Tree::default();
        tree.add_package(vec![
            m("bin", MemberKind::Dir),
            m("bin/busybox", MemberKind::File(b"ELF".to_vec())),
            m("lib64", MemberKind::Symlink("usr/lib64".into())),
            m("usr/lib64/ld.so", MemberKind::File(b"LD".to_vec())),
            m("usr/bin/sh", MemberKind::HardLink("bin/busybox".into())),
            m(
                "usr/share/doc/busybox/copyright",
                MemberKind::File(b"c".to_vec()),
            ),
        ]);
        tree.merge_usr();
        assert!(tree.contains("usr/bin/busybox") && tree.contains("usr/lib64/ld.so"));
        assert!(!tree.contains("usr/share/doc/busybox/copyright"));
        assert_eq!(
            tree.nodes.get("usr/bin/sh").map(|n| &n.1),
            Some(&Node::File(b"ELF".to_vec()))
        );
        assert_eq!(
            tree.nodes.get("bin").map(|n| &n.1),
            Some(&Node::Symlink("usr/bin".into()))
        );
        assert_eq!(
            tree.nodes.get("lib64").map(|n| &n.1),
            Some(&Node::Symlink("usr/lib64".into()))
        );
        assert!(!tree.contains("sbin"));
        let one = tree.archive().expect("archive");
        assert_eq!(one, tree.clone().archive().expect("archive"));
        let text = String::from_utf8_lossy(&one);
        assert!(text.contains("usr/bin/busybox") && text.ends_with("TRAILER!!!\0\0\0\0"));
        assert_eq!(tree.file_bytes(), 8);
    }
}
