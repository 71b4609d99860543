//! Just enough ELF to check that a guest binary suits the guest: 64-bit little-endian, the
//! right machine, and static (no `PT_INTERP`, so it runs in an initramfs with no libc).

use tracelab_model::arch::Arch;

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not a 64-bit little-endian ELF file")]
    NotElf64,
    #[error("ELF header or program headers truncated")]
    Truncated,
    #[error("built for ELF machine {found}, not {arch} ({expected})")]
    WrongMachine {
        found: u16,
        expected: u16,
        arch: Arch,
    },
    #[error("dynamically linked (has an interpreter); the guest needs a static binary")]
    Dynamic,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    let bytes = b.get(at..at + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    let bytes = b.get(at..at + 4).ok_or(ElfError::Truncated)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    Ok(u32::from_le_bytes(a))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    let bytes = b.get(at..at + 8).ok_or(ElfError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(a))
}

/// Checks that `bytes` is a 64-bit little-endian ELF file built for `arch`.
pub fn check_machine(bytes: &[u8], arch: Arch) -> Result<(), ElfError> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(ElfError::NotElf64);
    }
    let expected = match arch {
        Arch::X86_64 => EM_X86_64,
        Arch::Arm64 => EM_AARCH64,
    };
    let found = u16_at(bytes, 18)?;
    if found != expected {
        return Err(ElfError::WrongMachine {
            found,
            expected,
            arch,
        });
    }
    Ok(())
}

/// Checks that `bytes` is a static 64-bit ELF executable for `arch`.
pub fn check_static(bytes: &[u8], arch: Arch) -> Result<(), ElfError> {
    check_machine(bytes, arch)?;
    let phoff = usize::try_from(u64_at(bytes, 32)?).map_err(|_| ElfError::Truncated)?;
    let phentsize = usize::from(u16_at(bytes, 54)?);
    let phnum = usize::from(u16_at(bytes, 56)?);
    for i in 0..phnum {
        let at = phoff
            .checked_add(i.checked_mul(phentsize).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        if u32_at(bytes, at)? == PT_INTERP {
            return Err(ElfError::Dynamic);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn fake_elf(machine: u16, with_interp: bool) -> Vec<u8> {
    let mut b = vec![0u8; 64 + 2 * 56];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&2u16.to_le_bytes());
    b[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    let second = if with_interp { PT_INTERP } else { 1 };
    b[120..124].copy_from_slice(&second.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_binaries_of_the_right_machine_pass() {
        assert_eq!(check_static(&fake_elf(62, false), Arch::X86_64), Ok(()));
        assert_eq!(check_static(&fake_elf(183, false), Arch::Arm64), Ok(()));
        assert_eq!(check_machine(&fake_elf(62, true), Arch::X86_64), Ok(()));
        assert_eq!(
            check_static(&fake_elf(62, true), Arch::X86_64),
            Err(ElfError::Dynamic)
        );
        assert!(matches!(
            check_static(&fake_elf(62, false), Arch::Arm64),
            Err(ElfError::WrongMachine { found: 62, .. })
        ));
        assert_eq!(
            check_static(b"#!/bin/sh", Arch::X86_64),
            Err(ElfError::NotElf64)
        );
        let mut cut = fake_elf(62, false);
        cut.truncate(100);
        assert_eq!(check_static(&cut, Arch::X86_64), Err(ElfError::Truncated));
    }

    #[test]
    fn this_machines_own_busybox_if_any() {
        // /bin/busybox on a Debian host is usually dynamic; only check it parses.
        if let (Ok(bytes), Some(arch)) = (std::fs::read("/bin/busybox"), Arch::this()) {
            let r = check_static(&bytes, arch);
            assert!(matches!(r, Ok(()) | Err(ElfError::Dynamic)), "{r:?}");
        }
    }
}
