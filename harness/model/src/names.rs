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

/// A name that is not in its set; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}` (valid: {valid}{more})")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub valid: String,
    pub more: &'static str,
}

impl UnknownName {
    pub fn of<T: Named>(given: &str) -> UnknownName {
        UnknownName {
            what: T::WHAT,
            given: given.to_string(),
            valid: T::valid_names(),
            more: T::MORE,
        }
    }
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
