/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The errno values libbpf's usdt.bpf.h returns, so the build needs no kernel headers
 * from the build machine (asm-generic values, the same on x86_64 and arm64).
 */
#ifndef TRACELAB_LINUX_ERRNO_H
#define TRACELAB_LINUX_ERRNO_H
#define ENOENT 2
#define ESRCH 3
#define E2BIG 7
#define EINVAL 22
#endif
