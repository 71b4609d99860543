//! The user-space workloads' functions: tiny functions of the agent itself, written in
//! assembly so that the probed first instruction is exactly the one the selftests' uprobe
//! bench names (nop, push, ret, x86's 5-byte nop), whatever the compiler would emit.
//!
//! `tracelab_user_usdt` carries the agent's USDT probe `tracelab:site`: a SystemTap SDT
//! note (`.note.stapsdt`, as `<sys/sdt.h>` writes it) for its `nop`, with no semaphore
//! and no arguments, so libbpf's USDT support finds and attaches to it.
//!
//! Every function has an `_end` label right after its last instruction: the agent checks
//! each traced event's address against [start, end).

use crate::Workload;

/// The SDT note of the probe at local label `990` (provider `tracelab`, name `site`, no
/// semaphore, no arguments), in the layout of `<sys/sdt.h>`: the probe's address, the
/// link-time address of `_.stapsdt.base` (libbpf corrects for prelinking with it) and the
/// semaphore's (0).
macro_rules! sdt_note {
    () => {
        concat!(
            ".pushsection .note.stapsdt, \"\", \"note\"\n",
            ".balign 4\n",
            ".4byte 992f-991f, 994f-993f, 3\n",
            "991: .asciz \"stapsdt\"\n",
            "992: .balign 4\n",
            "993: .8byte 990b\n",
            ".8byte _.stapsdt.base\n",
            ".8byte 0\n",
            ".asciz \"tracelab\"\n",
            ".asciz \"site\"\n",
            ".asciz \"\"\n",
            "994: .balign 4\n",
            ".popsection"
        )
    };
}

/// The `.stapsdt.base` section and symbol `<sys/sdt.h>` defines once per object.
macro_rules! sdt_base {
    () => {
        concat!(
            ".ifndef _.stapsdt.base\n",
            ".pushsection .stapsdt.base, \"aG\", \"progbits\", .stapsdt.base, comdat\n",
            ".weak _.stapsdt.base\n",
            ".hidden _.stapsdt.base\n",
            "_.stapsdt.base: .space 1\n",
            ".size _.stapsdt.base, 1\n",
            ".popsection\n",
            ".endif"
        )
    };
}

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.tracelab_user, \"ax\", @progbits",
    ".p2align 4",
    ".globl tracelab_user_nop",
    ".type tracelab_user_nop, @function",
    "tracelab_user_nop:",
    "nop",
    "ret",
    ".globl tracelab_user_nop_end",
    "tracelab_user_nop_end:",
    ".size tracelab_user_nop, tracelab_user_nop_end - tracelab_user_nop",
    ".p2align 4",
    ".globl tracelab_user_push",
    ".type tracelab_user_push, @function",
    "tracelab_user_push:",
    "push %rbp",
    "mov %rsp, %rbp",
    "pop %rbp",
    "ret",
    ".globl tracelab_user_push_end",
    "tracelab_user_push_end:",
    ".size tracelab_user_push, tracelab_user_push_end - tracelab_user_push",
    ".p2align 4",
    ".globl tracelab_user_ret",
    ".type tracelab_user_ret, @function",
    "tracelab_user_ret:",
    "ret",
    ".globl tracelab_user_ret_end",
    "tracelab_user_ret_end:",
    ".size tracelab_user_ret, tracelab_user_ret_end - tracelab_user_ret",
    ".p2align 4",
    ".globl tracelab_user_nop5",
    ".type tracelab_user_nop5, @function",
    "tracelab_user_nop5:",
    // nopl 0x0(%rax,%rax,1): the 5-byte nop the kernel's uprobe optimisation looks for.
    ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
    "ret",
    ".globl tracelab_user_nop5_end",
    "tracelab_user_nop5_end:",
    ".size tracelab_user_nop5, tracelab_user_nop5_end - tracelab_user_nop5",
    ".p2align 4",
    ".globl tracelab_user_usdt",
    ".type tracelab_user_usdt, @function",
    "tracelab_user_usdt:",
    "990: nop",
    sdt_note!(),
    "ret",
    ".globl tracelab_user_usdt_end",
    "tracelab_user_usdt_end:",
    ".size tracelab_user_usdt, tracelab_user_usdt_end - tracelab_user_usdt",
    ".popsection",
    sdt_base!(),
    options(att_syntax)
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".pushsection .text.tracelab_user, \"ax\", %progbits",
    ".p2align 4",
    ".globl tracelab_user_nop",
    ".type tracelab_user_nop, %function",
    "tracelab_user_nop:",
    "nop",
    "ret",
    ".globl tracelab_user_nop_end",
    "tracelab_user_nop_end:",
    ".size tracelab_user_nop, tracelab_user_nop_end - tracelab_user_nop",
    ".p2align 4",
    ".globl tracelab_user_push",
    ".type tracelab_user_push, %function",
    "tracelab_user_push:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".globl tracelab_user_push_end",
    "tracelab_user_push_end:",
    ".size tracelab_user_push, tracelab_user_push_end - tracelab_user_push",
    ".p2align 4",
    ".globl tracelab_user_ret",
    ".type tracelab_user_ret, %function",
    "tracelab_user_ret:",
    "ret",
    ".globl tracelab_user_ret_end",
    "tracelab_user_ret_end:",
    ".size tracelab_user_ret, tracelab_user_ret_end - tracelab_user_ret",
    ".p2align 4",
    ".globl tracelab_user_usdt",
    ".type tracelab_user_usdt, %function",
    "tracelab_user_usdt:",
    "990: nop",
    sdt_note!(),
    "ret",
    ".globl tracelab_user_usdt_end",
    "tracelab_user_usdt_end:",
    ".size tracelab_user_usdt, tracelab_user_usdt_end - tracelab_user_usdt",
    ".popsection",
    sdt_base!(),
);

extern "C" {
    fn tracelab_user_nop();
    fn tracelab_user_nop_end();
    fn tracelab_user_push();
    fn tracelab_user_push_end();
    fn tracelab_user_ret();
    fn tracelab_user_ret_end();
    #[cfg(target_arch = "x86_64")]
    fn tracelab_user_nop5();
    #[cfg(target_arch = "x86_64")]
    fn tracelab_user_nop5_end();
    fn tracelab_user_usdt();
    fn tracelab_user_usdt_end();
}

/// The USDT probe in `tracelab_user_usdt`: (provider, name).
pub const USDT_PROBE: (&str, &str) = ("tracelab", "site");

/// One of the agent's own functions, where it is in this process.
#[derive(Debug, Clone, Copy)]
pub struct UserFunction {
    pub name: &'static str,
    /// Its first instruction's address (the probed one) and the address right after its
    /// last.
    pub start: u64,
    pub end: u64,
    call: unsafe extern "C" fn(),
}

/// The function a user-space workload calls; None for other workloads and for
/// `user-nop5` off x86_64.
pub fn user_function(kind: Workload) -> Option<UserFunction> {
    let (call, end): (unsafe extern "C" fn(), unsafe extern "C" fn()) = match kind {
        Workload::UserNop => (tracelab_user_nop, tracelab_user_nop_end),
        Workload::UserPush => (tracelab_user_push, tracelab_user_push_end),
        Workload::UserRet => (tracelab_user_ret, tracelab_user_ret_end),
        #[cfg(target_arch = "x86_64")]
        Workload::UserNop5 => (tracelab_user_nop5, tracelab_user_nop5_end),
        Workload::Usdt => (tracelab_user_usdt, tracelab_user_usdt_end),
        _ => return None,
    };
    Some(UserFunction {
        name: kind.entry_symbols(std::env::consts::ARCH)[0],
        start: call as usize as u64,
        end: end as usize as u64,
        call,
    })
}

impl UserFunction {
    /// Calls it `calls` times.
    #[inline(never)]
    pub(crate) fn run(&self, calls: u64) {
        for _ in 0..calls {
            // SAFETY: every function above only saves and restores the frame pointer on
            // the stack (push) or does nothing, then returns; none takes arguments.
            unsafe { (self.call)() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_run_and_lie_in_their_ranges() {
        for w in Workload::ALL.into_iter().filter(|w| w.is_user()) {
            let Some(f) = user_function(w) else {
                assert_eq!(w, Workload::UserNop5);
                assert_ne!(std::env::consts::ARCH, "x86_64");
                continue;
            };
            assert!(f.start < f.end && f.end - f.start <= 16, "{w}: {f:?}");
            f.run(100);
        }
        assert!(user_function(Workload::Getppid).is_none());
    }

    #[test]
    fn the_probed_instruction_is_the_named_one() {
        let first = |w| {
            let f = user_function(w).expect("function");
            // SAFETY: the range is the function's own code, mapped readable.
            unsafe { std::slice::from_raw_parts(f.start as *const u8, (f.end - f.start) as usize) }
                .to_vec()
        };
        if cfg!(target_arch = "x86_64") {
            assert_eq!(first(Workload::UserNop), [0x90, 0xc3]);
            assert_eq!(first(Workload::UserPush)[0], 0x55);
            assert_eq!(first(Workload::UserRet), [0xc3]);
            assert_eq!(
                first(Workload::UserNop5),
                [0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]
            );
            assert_eq!(first(Workload::Usdt), [0x90, 0xc3]);
        } else {
            let nop = 0xd503201fu32.to_le_bytes();
            assert_eq!(first(Workload::UserNop)[..4], nop);
            assert_eq!(first(Workload::UserRet), 0xd65f03c0u32.to_le_bytes());
        }
    }
}
