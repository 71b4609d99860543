//! The loop markers of `--attribution`: instructions the QEMU plugin recognises when it
//! translates them (`tracelab_model::attribution`), executed just outside a timed loop's
//! two clock reads. Each sits alone in a function that is never inlined, so it is a
//! translation block of its own and costs the same few instructions every time; the
//! plugin's count of a loop is its elapsed icount plus that constant.

use std::sync::atomic::{AtomicU64, Ordering};

/// Start markers executed by this agent (the plugin counts them the same way, per boot).
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Marks the start of a loop; returns its serial (from 1).
#[inline(never)]
pub(crate) fn start() -> u64 {
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed) + 1;
    start_instruction();
    serial
}

/// Marks the end of the loop last started.
#[inline(never)]
pub(crate) fn end() {
    end_instruction();
}

#[inline(never)]
fn start_instruction() {
    // SAFETY: a no-op instruction (see the model's `attribution` module): it reads and
    // writes no memory, no register and no flag.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!(
            ".byte 0x0f, 0x1f, 0x80, 0x01, 0x00, 0xce, 0x7a",
            options(nomem, nostack, preserves_flags)
        );
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!(".inst 0xd28f583f", options(nomem, nostack, preserves_flags));
    }
}

#[inline(never)]
fn end_instruction() {
    // SAFETY: as `start_instruction`.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!(
            ".byte 0x0f, 0x1f, 0x80, 0x02, 0x00, 0xce, 0x7a",
            options(nomem, nostack, preserves_flags)
        );
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!(".inst 0xd28f585f", options(nomem, nostack, preserves_flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::attribution;

    /// The bytes the functions execute are the model's markers (the plugin looks for
    /// those), and executing them does nothing.
    #[test]
    fn the_marker_functions_hold_the_models_instructions() {
        let code = |f: fn()| {
            // SAFETY: reads the first 32 bytes of a function's machine code; code pages
            // are readable and every function here is longer than its marker's offset.
            unsafe { std::slice::from_raw_parts(f as *const u8, 32) }.to_vec()
        };
        let (start, end) = if cfg!(target_arch = "x86_64") {
            (&attribution::START_X86_64[..], &attribution::END_X86_64[..])
        } else {
            (&attribution::START_ARM64[..], &attribution::END_ARM64[..])
        };
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(has(&code(start_instruction), start));
        assert!(has(&code(end_instruction), end));
        let a = super::start();
        super::end();
        assert_eq!(super::start(), a + 1);
    }
}
