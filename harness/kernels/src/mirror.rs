//! Which Debian mirror to download from: an explicit choice, else the one the machine's
//! apt sources name (so local mirrors and caching proxies are respected), else
//! `deb.debian.org`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Used when nothing else names a mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Environment variable naming the mirror (the `--mirror` flag wins over it).
pub const MIRROR_ENV: &str = "TRACELAB_MIRROR";

/// Where the mirror in use came from; shown by the CLI and recorded nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorSource {
    Explicit,
    Environment,
    AptSources(PathBuf),
    Default,
}

impl fmt::Display for MirrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorSource::Explicit => f.write_str("--mirror"),
            MirrorSource::Environment => write!(f, "${MIRROR_ENV}"),
            MirrorSource::AptSources(path) => write!(f, "apt sources ({})", path.display()),
            MirrorSource::Default => f.write_str("default"),
        }
    }
}

fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mirror `{0}` is not an http://, https:// or file:// URL")]
pub struct BadMirror(pub String);

/// Chooses the mirror: `explicit`, else `env`, else what `apt` finds, else the default.
/// Empty values count as unset; a trailing `/` is dropped.
pub fn resolve(
    explicit: Option<&str>,
    env: Option<&str>,
    apt: impl FnOnce() -> Option<(String, PathBuf)>,
) -> Result<(String, MirrorSource), BadMirror> {
    let (uri, source) = if let Some(uri) = given(explicit) {
        (uri.to_string(), MirrorSource::Explicit)
    } else if let Some(uri) = given(env) {
        (uri.to_string(), MirrorSource::Environment)
    } else if let Some((uri, path)) = apt() {
        (uri, MirrorSource::AptSources(path))
    } else {
        (DEFAULT_MIRROR.to_string(), MirrorSource::Default)
    };
    if scheme_ok(&uri) {
        Ok((uri.trim_end_matches('/').to_string(), source))
    } else {
        Err(BadMirror(uri))
    }
}

fn scheme_ok(uri: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|s| uri.starts_with(s) && uri.len() > s.len())
}

/// Whether an apt URI looks like a Debian main archive: a URL we can fetch whose path ends
/// in `/debian`, not a security archive.
pub fn is_debian_archive(uri: &str) -> bool {
    if !scheme_ok(uri) || uri.to_ascii_lowercase().contains("security") {
        return false;
    }
    let without_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = without_scheme
        .find('/')
        .map_or("", |i| &without_scheme[i..])
        .trim_end_matches('/');
    path.ends_with("/debian")
}

/// URIs of `deb` entries in deb822 `.sources` text (stanzas with `Types:` including `deb`
/// and not `Enabled: no`), in order.
pub fn deb822_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stanza: Vec<(String, String)> = Vec::new();
    let flush = |stanza: &mut Vec<(String, String)>, out: &mut Vec<String>| {
        let get = |name: &str| {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let is_deb = get("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let enabled = get("Enabled").is_none_or(|e| !e.trim().eq_ignore_ascii_case("no"));
        if is_deb && enabled {
            if let Some(uris) = get("URIs") {
                out.extend(uris.split_whitespace().map(str::to_string));
            }
        }
        stanza.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut stanza, &mut out);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = stanza.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            stanza.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    flush(&mut stanza, &mut out);
    out
}

/// URIs of `deb` lines in one-line-style `sources.list` text
/// (`deb [options] uri suite [components]`), in order.
pub fn one_line_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut word = words.next();
        if word.is_some_and(|w| w.starts_with('[')) {
            // Options: skip up to the word that closes the bracket.
            while let Some(w) = word {
                word = words.next();
                if w.ends_with(']') {
                    break;
                }
            }
        }
        if let Some(uri) = word {
            out.push(uri.to_string());
        }
    }
    out
}

/// The first Debian archive URI in the apt sources under `root` (normally `/`): the
/// `sources.list`, then `sources.list.d/*.list` and `*.sources` in name order, as apt reads
/// them. Returns the URI and the file it came from.
pub fn from_apt_sources(root: &Path) -> Option<(String, PathBuf)> {
    let apt = root.join("etc/apt");
    let mut files = vec![apt.join("sources.list")];
    if let Ok(dir) = std::fs::read_dir(apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let uris = if file.extension().is_some_and(|x| x == "sources") {
            deb822_uris(&text)
        } else {
            one_line_uris(&text)
        };
        if let Some(uri) = uris.into_iter().find(|u| is_debian_archive(u)) {
            return Some((uri.trim_end_matches('/').to_string(), file));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb deb-src
URIs: https://deb.nodesource.com/node_20.x
 http://local-mirror.lan:3142/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    const ONE_LINE: &str = "\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://ftp.de.debian.org/debian/ bookworm main
deb http://second.example/debian bookworm main
";

    #[test]
    fn deb822_entries() {
        assert_eq!(
            deb822_uris(DEB822),
            [
                "http://deb.debian.org/debian-security",
                "https://deb.nodesource.com/node_20.x",
                "http://local-mirror.lan:3142/debian/",
            ]
        );
    }

    #[test]
    fn one_line_entries() {
        assert_eq!(
            one_line_uris(ONE_LINE),
            [
                "https://packages.cloud.google.com/apt",
                "http://security.debian.org/debian-security",
                "http://ftp.de.debian.org/debian/",
                "http://second.example/debian",
            ]
        );
    }

    #[test]
    fn only_debian_archives_are_accepted() {
        assert!(is_debian_archive("http://deb.debian.org/debian"));
        assert!(is_debian_archive("http://deb.debian.org/debian/"));
        assert!(is_debian_archive("https://mirror.lan:3142/ftp/debian"));
        assert!(is_debian_archive("file:///srv/mirror/debian"));
        assert!(!is_debian_archive("http://deb.debian.org/debian-security"));
        assert!(!is_debian_archive("http://security.debian.org/debian"));
        assert!(!is_debian_archive("https://deb.nodesource.com/node_20.x"));
        assert!(!is_debian_archive("https://packages.cloud.google.com/apt"));
        assert!(!is_debian_archive("http://debian"));
        assert!(!is_debian_archive("mirror+file:/etc/apt/mirrors/debian"));
        assert!(!is_debian_archive("cdrom:[Debian]/debian"));
    }

    #[test]
    fn apt_sources_are_read_in_apt_order() {
        let root = tempfile::tempdir().expect("tempdir");
        let d = root.path().join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&d).expect("mkdir");
        assert_eq!(from_apt_sources(root.path()), None);

        std::fs::write(d.join("b.sources"), DEB822).expect("write");
        std::fs::write(
            d.join("a.list.disabled"),
            "deb http://nope.example/debian x main",
        )
        .expect("write");
        let (uri, file) = from_apt_sources(root.path()).expect("found");
        assert_eq!(uri, "http://local-mirror.lan:3142/debian");
        assert_eq!(file, d.join("b.sources"));

        std::fs::write(d.join("a.list"), ONE_LINE).expect("write");
        let (uri, _) = from_apt_sources(root.path()).expect("found");
        assert_eq!(uri, "http://ftp.de.debian.org/debian");

        std::fs::write(
            root.path().join("etc/apt/sources.list"),
            "deb http://first.example/debian bookworm main\n",
        )
        .expect("write");
        let (uri, file) = from_apt_sources(root.path()).expect("found");
        assert_eq!(uri, "http://first.example/debian");
        assert_eq!(file, root.path().join("etc/apt/sources.list"));
    }

    #[test]
    fn resolution_order() {
        let apt = || Some(("http://apt.example/debian".to_string(), PathBuf::from("/x")));
        let r = resolve(
            Some("http://cli.example/debian/"),
            Some("http://env/debian"),
            apt,
        );
        assert_eq!(
            r,
            Ok((
                "http://cli.example/debian".to_string(),
                MirrorSource::Explicit
            ))
        );
        let r = resolve(Some(""), Some("http://env.example/debian"), apt).expect("env");
        assert_eq!(r.1, MirrorSource::Environment);
        let r = resolve(None, Some(" "), apt).expect("apt");
        assert_eq!(r.0, "http://apt.example/debian");
        assert_eq!(r.1, MirrorSource::AptSources(PathBuf::from("/x")));
        let r = resolve(None, None, || None).expect("default");
        assert_eq!(r, (DEFAULT_MIRROR.to_string(), MirrorSource::Default));
        let err = resolve(Some("ftp.debian.org/debian"), None, apt).expect_err("bad");
        assert!(err.to_string().contains("ftp.debian.org/debian"));
    }
}
