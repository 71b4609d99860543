//! Debian `Packages` indexes: where they are, how to read their stanzas, and how Debian
//! orders version strings.

use std::cmp::Ordering;
use std::io::Read;

/// One package of a `Packages` index: the fields the lab needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexEntry {
    pub package: String,
    pub version: String,
    /// Path relative to the mirror root, e.g. `pool/main/l/linux/linux-image-..._amd64.deb`.
    pub filename: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// `Pre-Depends` and `Depends`, as written (comma-separated groups of `|` alternatives).
    pub depends: String,
    /// `Provides`, as written: the virtual packages this one stands for.
    pub provides: String,
}

impl IndexEntry {
    /// The file name of the `.deb` (last component of `Filename`).
    pub fn basename(&self) -> &str {
        self.filename.rsplit('/').next().unwrap_or(&self.filename)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("stanza of package `{package}` lacks field {field}")]
    MissingField {
        package: String,
        field: &'static str,
    },
    #[error("package `{package}`: bad {field} `{value}`")]
    BadField {
        package: String,
        field: &'static str,
        value: String,
    },
    /// The io error is in the message, not a source, so a chain prints it once.
    #[error("not a valid xz-compressed index: {0}")]
    Xz(std::io::Error),
}

/// URL of the `main` component's compressed index for one suite and Debian architecture.
pub fn index_url(mirror: &str, suite: &str, debian_arch: &str) -> String {
    format!("{mirror}/dists/{suite}/main/binary-{debian_arch}/Packages.xz")
}

/// Decompresses `Packages.xz` bytes to text.
pub fn decompress_xz(bytes: &[u8]) -> Result<String, IndexError> {
    let mut text = String::new();
    liblzma::read::XzDecoder::new_multi_decoder(bytes)
        .read_to_string(&mut text)
        .map_err(IndexError::Xz)?;
    Ok(text)
}

/// Parses the stanzas of a `Packages` index whose package name satisfies `keep`. Stanzas
/// are separated by blank lines; a line starting with white space continues the field
/// before it (only `Description` uses that in these indexes, and the lab ignores it).
pub fn parse_packages(
    text: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<IndexEntry>, IndexError> {
    let mut entries = Vec::new();
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !fields.is_empty() {
                if let Some(entry) = stanza(&fields, &keep)? {
                    entries.push(entry);
                }
                fields.clear();
            }
            continue;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim(), value.trim()));
        }
    }
    Ok(entries)
}

fn stanza(
    fields: &[(&str, &str)],
    keep: &impl Fn(&str) -> bool,
) -> Result<Option<IndexEntry>, IndexError> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let Some(package) = get("Package") else {
        return Ok(None);
    };
    if !keep(package) {
        return Ok(None);
    }
    let need = |field: &'static str| {
        get(field).ok_or_else(|| IndexError::MissingField {
            package: package.to_string(),
            field,
        })
    };
    let size = need("Size")?;
    let size_bytes = size.parse().map_err(|_| IndexError::BadField {
        package: package.into(),
        field: "Size",
        value: size.into(),
    })?;
    let sha256 = need("SHA256")?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IndexError::BadField {
            package: package.into(),
            field: "SHA256",
            value: sha256,
        });
    }
    Ok(Some(IndexEntry {
        package: package.to_string(),
        version: need("Version")?.to_string(),
        filename: need("Filename")?.to_string(),
        size_bytes,
        sha256,
        depends: [get("Pre-Depends"), get("Depends")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        provides: get("Provides").unwrap_or_default().to_string(),
    }))
}

/// Compares two Debian version strings (`[epoch:]upstream[-revision]`) the way dpkg does
/// (Debian Policy §5.6.12): epochs numerically, then upstream and revision by alternating
/// non-digit runs (letters before non-letters, `~` before everything, even the end) and
/// digit runs compared as numbers.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_version(a);
    let (eb, ub, rb) = split_version(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split_version(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight of one byte in a non-digit run; 0 stands for "end of run".
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit runs, byte by byte.
        let na = a.iter().take_while(|c| !c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| !c.is_ascii_digit()).count();
        for i in 0..na.max(nb) {
            let ca = (i < na).then(|| a[i]);
            let cb = (i < nb).then(|| b[i]);
            match order(ca).cmp(&order(cb)) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        a = &a[na..];
        b = &b[nb..];
        // Digit runs, as numbers (leading zeros do not count).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let (sa, sb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
        match sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb)) {
            Ordering::Equal => {}
            other => return other,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Package: busybox-static
Source: busybox (1:1.35.0-4+deb12u1)
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 1998
Description: Standalone rescue shell with tons of builtin utilities
 BusyBox combines tiny versions of many common UNIX utilities into a single
 small executable.
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb
Size: 928188
MD5sum: 0123456789abcdef0123456789abcdef
SHA256: 0E41F1C34C16583462F029E81944A85EBCDB78098C258DEDFA1CFDD680A27F80

Package: linux-image-6.12.95+deb12-cloud-amd64-unsigned
Source: linux
Version: 6.12.95-1~bpo12+1
Filename: pool/main/l/linux/linux-image-6.12.95+deb12-cloud-amd64-unsigned_6.12.95-1~bpo12+1_amd64.deb
Size: 33923316
SHA256: 03e41f1c34c16583462f029e81944a85ebcdb78098c258dedfa1cfdd680a27f8

Package: unrelated
Version: 1
";

    #[test]
    fn parses_wanted_stanzas_only() {
        let entries = parse_packages(SAMPLE, |p| p != "unrelated").expect("parse");
        assert_eq!(entries.len(), 2);
        let bb = &entries[0];
        assert_eq!(bb.package, "busybox-static");
        assert_eq!(bb.version, "1:1.35.0-4+deb12u1+b1");
        assert_eq!(bb.size_bytes, 928_188);
        assert_eq!(
            bb.sha256,
            "0e41f1c34c16583462f029e81944a85ebcdb78098c258dedfa1cfdd680a27f80"
        );
        assert_eq!(
            bb.basename(),
            "busybox-static_1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert_eq!(
            entries[1].package,
            "linux-image-6.12.95+deb12-cloud-amd64-unsigned"
        );
        assert_eq!(entries[1].version, "6.12.95-1~bpo12+1");
    }

    #[test]
    fn crlf_and_extra_blank_lines_are_fine() {
        let text = SAMPLE.replace('\n', "\r\n");
        let entries =
            parse_packages(&format!("\n\n{text}\n\n"), |p| p != "unrelated").expect("parse");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].size_bytes, 33_923_316);
    }

    #[test]
    fn a_wanted_stanza_missing_a_field_is_an_error() {
        let err = parse_packages(SAMPLE, |_| true).expect_err("unrelated lacks Size");
        let msg = err.to_string();
        assert!(msg.contains("unrelated") && msg.contains("Size"), "{msg}");
    }

    #[test]
    fn xz_roundtrip() {
        use std::io::Write;
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(SAMPLE.as_bytes()).expect("xz");
        let xz = enc.finish().expect("xz");
        assert_eq!(decompress_xz(&xz).expect("decode"), SAMPLE);
        assert!(decompress_xz(&xz[..xz.len() / 2]).is_err());
        assert!(decompress_xz(b"not xz").is_err());
    }

    #[test]
    fn index_url_shape() {
        assert_eq!(
            index_url(
                "http://deb.debian.org/debian",
                "bookworm-backports",
                "arm64"
            ),
            "http://deb.debian.org/debian/dists/bookworm-backports/main/binary-arm64/Packages.xz"
        );
    }

    #[test]
    fn debian_version_order() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1:1.0", "2.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0+", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("6.12.95-1~bpo12+1", "6.12.95-1", Less),
            ("6.12.95-1~bpo12+1", "6.12.94-1", Greater),
            ("7.0.12-2~bpo13+1", "7.0.12-1~bpo13+1", Greater),
            ("6.1.176-1", "6.1.170-3", Greater),
            ("1:1.35.0-4+deb12u1+b1", "1:1.35.0-4+deb12u1", Greater),
            ("01.0", "1.0", Equal),
            ("1.0-1", "1.0", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    proptest::proptest! {
        /// A mirror's index of any shape (truncated, garbage, half stanzas) gives
        /// entries or an error, never a panic.
        #[test]
        fn any_index_text_parses_or_is_refused(
            lines in proptest::collection::vec("(Package|Version|Filename|SHA256|Size|Architecture): \\PC{0,40}|\\PC{0,60}|", 0..40),
        ) {
            let _ = parse_packages(&lines.join("\n"), |_| true);
        }
    }
}
