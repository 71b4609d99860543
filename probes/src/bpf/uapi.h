/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel UAPI types and constants the programs use, so the build needs no
 * kernel or libc headers from the build machine (whose kernel is not the guests').
 * The values are fixed by the kernel's stable BPF ABI (include/uapi/linux/bpf.h).
 */
#ifndef TRACELAB_UAPI_H
#define TRACELAB_UAPI_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;

typedef _Bool bool;
#define true 1
#define false 0

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_STACK_TRACE = 7,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_ringbuf_submit() flags. */
enum {
	BPF_RB_NO_WAKEUP = 1,
};

/* bpf_get_stackid() flags (include/uapi/linux/bpf.h). */
enum {
	BPF_F_REUSE_STACKID = 1ULL << 10,
};

/*
 * The user-space register layouts libbpf's bpf_tracing.h reads through (usdt.bpf.h's
 * argument helpers, which the lab's USDT programs never call; the layout is the UAPI's
 * all the same: arch/x86/include/uapi/asm/ptrace.h, arch/arm64/include/uapi/asm/ptrace.h).
 */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif

#endif
