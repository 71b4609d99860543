//! Guest and host architectures.

use strum::{IntoStaticStr, VariantArray};

/// An architecture the lab builds agents for and boots guests of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, IntoStaticStr, VariantArray)]
pub enum Arch {
    #[strum(serialize = "x86_64")]
    X86_64,
    #[strum(serialize = "arm64")]
    Arm64,
}

crate::named!(
    Arch,
    "arch",
    aliases = |a| match a {
        Arch::X86_64 => &["amd64"][..],
        Arch::Arm64 => &["aarch64"][..],
    }
);

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The Rust target the static agent is built for (`scripts/build-agents` builds
    /// these; a test keeps the script in step).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The architecture this binary was built for, if the lab knows it.
    pub fn this() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_script_builds_every_arch_for_its_target() {
        let script = include_str!("../../../scripts/build-agents");
        for a in Arch::ALL {
            let pair = format!("{}:{}", a.name(), a.rust_target());
            assert!(script.contains(&pair), "scripts/build-agents lacks {pair}");
        }
    }

    #[test]
    fn parses_aliases_and_rejects_others() {
        assert_eq!("amd64".parse(), Ok(Arch::X86_64));
        assert_eq!("aarch64".parse(), Ok(Arch::Arm64));
        let err = "riscv64".parse::<Arch>().unwrap_err().to_string();
        assert!(
            err.contains("riscv64") && err.contains("x86_64, arm64"),
            "{err}"
        );
    }
}
