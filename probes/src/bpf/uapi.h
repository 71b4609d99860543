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

enum {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_ringbuf_submit() flags. */
enum {
	BPF_RB_NO_WAKEUP = 1,
};

#endif
