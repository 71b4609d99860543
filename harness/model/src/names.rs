//! Names of the lab's closed sets (arches, mechanisms, payloads, workloads): one way to
//! print them, parse them and say what the valid choices are when a name is wrong.

use strum::VariantArray;

/// A set whose members have fixed names (derived with strum's `IntoStaticStr`).
pub trait Named: Copy + PartialEq + VariantArray + Into<&'static str> + 'static {
    /// What a member is called in an error (`arch`, `mechanism`).
    const WHAT: &'static str;
    /// Extra words after the valid names (`or the sets all, default, bpf`).
    const MORE: &'static str = "";

    fn label(self) -> &'static str {
        self.into()
    }

    /// Other names a member is parsed from (`amd64` for `x86_64`).
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// Every valid name, comma separated.
    fn valid_names() -> String {
        let names: Vec<&str> = Self::VARIANTS.iter().map(|v| (*v).into()).collect();
        names.join(", ")
    }
}

/// A name that is not in its set; the message offers the nearest name, if one is near,
/// then lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}` ({}valid: {valid}{more})", .suggestion.map(|s| format!("did you mean {s}? ")).unwrap_or_default())]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub suggestion: Option<&'static str>,
    pub valid: String,
    pub more: &'static str,
}

impl UnknownName {
    pub fn of<T: Named>(given: &str) -> UnknownName {
        let names = T::VARIANTS.iter().map(|v| v.label());
        UnknownName {
            what: T::WHAT,
            given: given.to_string(),
            suggestion: nearest(given, names),
            valid: T::valid_names(),
            more: T::MORE,
        }
    }
}

/// The name nearest to `given`: one it begins or ends, or one within a third of its
/// length in edits (at least 1, at most 3); None when nothing is that near.
fn nearest(given: &str, names: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let given = given.trim().to_ascii_lowercase();
    if given.is_empty() {
        return None;
    }
    let limit = (given.chars().count() / 3).clamp(1, 3);
    names
        .map(|n| {
            let prefix = given.len() >= 3 && (n.starts_with(&given) || given.starts_with(n));
            let d = if prefix { 0 } else { edit_distance(&given, n) };
            (d, n)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, n)| (*d, n.len()))
        .map(|(_, n)| n)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Parses a member by its name or one of its aliases.
pub fn parse<T: Named>(s: &str) -> Result<T, UnknownName> {
    T::VARIANTS
        .iter()
        .copied()
        .find(|v| v.label() == s || v.aliases().contains(&s))
        .ok_or_else(|| UnknownName::of::<T>(s))
}

/// Parses a comma-separated list; `all` selects every member.
pub fn parse_list<T: Named>(s: &str) -> Result<Vec<T>, UnknownName> {
    if s.trim() == "all" {
        return Ok(T::VARIANTS.to_vec());
    }
    s.split(',').map(|p| parse(p.trim())).collect()
}

/// Makes an enum that derives strum's `IntoStaticStr` and `VariantArray` a [`Named`] set:
/// `FromStr` (erring with [`UnknownName`]), `Display` and serde, all by the member's name.
#[macro_export]
macro_rules! named {
    ($t:ty, $what:literal $(, more = $more:literal)? $(, aliases = $aliases:expr)?) => {
        impl $crate::names::Named for $t {
            const WHAT: &'static str = $what;
            $(const MORE: &'static str = $more;)?
            $(fn aliases(self) -> &'static [&'static str] { ($aliases)(self) })?
        }
        impl $t {
            /// The member's name (on the command line and in results).
            pub fn name(self) -> &'static str {
                self.into()
            }

            /// Every valid name, comma separated, for error messages.
            pub fn valid_names() -> String {
                <$t as $crate::names::Named>::valid_names()
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::names::parse(s)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::Named::label(*self))
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::label(*self))
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $crate::names::parse::<$t>(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::MechanismKind;

    #[test]
    fn a_near_miss_is_offered_before_the_list() {
        let err = "kprob".parse::<MechanismKind>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown mechanism `kprob` (did you mean kprobe? valid: baseline"),
            "{err}"
        );
        let names = || MechanismKind::VARIANTS.iter().map(|v| v.label());
        assert_eq!(nearest("fprobes", names()), Some("fprobe"));
        assert_eq!(nearest("functon-graph", names()), Some("function-graph"));
        assert_eq!(nearest("bpf-fentri", names()), Some("bpf-fentry"));
        assert_eq!(nearest("zzzzzz", names()), None);
        assert_eq!(nearest("", names()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
