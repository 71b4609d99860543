// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tracelab's BPF programs: one per (attach type, payload). The agent loads one program
 * per object (the others stay unloaded), chooses the attach target at run time, and
 * loads the object K times to stack K programs on one function.
 *
 * No program reads a kernel struct field, so no vmlinux.h is needed: kprobe and tracing
 * contexts are opaque here, and the raw syscall tracepoints read only their second
 * argument (the syscall number) from the u64 context array.
 *
 * Payloads:
 *   empty  - returns at once: the mechanism's floor. The agent proves it ran from the
 *            kernel's own run_cnt (BPF_ENABLE_STATS), in an untimed loop.
 *   count  - increments a per-CPU counter.
 *   record - reserves, fills and submits an event to a BPF ring buffer without wakeup
 *            (BPF_RB_NO_WAKEUP: the agent drains it after each loop, so no irq_work is
 *            queued per event); a failed reservation is counted, never ignored.
 *   stacktrace - copies the kernel stack into a per-CPU buffer with bpf_get_stack and
 *            counts it and its frames; a failed copy is counted, never ignored.
 *   stackid - hashes the kernel stack into a stack map with bpf_get_stackid (the
 *            profilers' way) and counts it; a failure is counted. The agent reads the
 *            map's stacks for their depth.
 */
#include "uapi.h"
#include <bpf/bpf_helpers.h>
/* USDT programs need libbpf's spec maps (the agent's probe takes no arguments). */
#include <bpf/usdt.bpf.h>

/* The syscall the getppid workload makes, for the programs on the generic sys_enter
 * tracepoint (which fires on every syscall). */
#if defined(__TARGET_ARCH_x86)
#define TRACELAB_NR_GETPPID 110
#elif defined(__TARGET_ARCH_arm64)
#define TRACELAB_NR_GETPPID 173
#else
#error "tracelab: unsupported __TARGET_ARCH"
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* One event of the `record` payload; user space reads it through the skeleton's type. */
struct tracelab_event {
	__u64 time_ns;
	__u32 tgid;
	__u32 cpu;
};

/* Keeps the event type in BTF so the generated skeleton carries it. */
struct tracelab_event tracelab_event_layout = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} tracelab_counts SEC(".maps");

/* Slots of tracelab_counts: events, failures (a full ring buffer, a stack not taken),
 * the frames of the stacks taken, and the calls of every other function (kprobe_multi
 * over every function). */
#define SLOT_HITS 0
#define SLOT_DROPS 1
#define SLOT_FRAMES 2
#define SLOT_ELSEWHERE 3

/* The target function's addresses, [start, end), written by the agent before it attaches
 * the program over every function (created only for it). */
struct tracelab_range {
	__u64 start;
	__u64 end;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tracelab_range);
} tracelab_target SEC(".maps");

/* The kernel's default perf_event_max_stack: the deepest stack a helper returns. */
#define STACK_FRAMES 127

/* Where bpf_get_stack copies (created only for the stacktrace payload). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, STACK_FRAMES * sizeof(__u64));
} tracelab_stack_buf SEC(".maps");

/* The stackid payload's stack map (created only for it). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__uint(value_size, STACK_FRAMES * sizeof(__u64));
} tracelab_stacks SEC(".maps");

/* Sized by the agent before load (it must hold one timed loop's events). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tracelab_events SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&tracelab_counts, &slot);

	if (c)
		*c += n;
}

static __always_inline void bump(__u32 slot)
{
	add(slot, 1);
}

static __always_inline int payload_empty(void *ctx)
{
	return 0;
}

static __always_inline int payload_count(void *ctx)
{
	bump(SLOT_HITS);
	return 0;
}

static __always_inline int payload_stacktrace(void *ctx)
{
	__u32 zero = 0;
	__u64 *buf = bpf_map_lookup_elem(&tracelab_stack_buf, &zero);
	long n;

	if (!buf) {
		bump(SLOT_DROPS);
		return 0;
	}
	n = bpf_get_stack(ctx, buf, STACK_FRAMES * sizeof(__u64), 0);
	if (n < 0) {
		bump(SLOT_DROPS);
		return 0;
	}
	bump(SLOT_HITS);
	add(SLOT_FRAMES, n / sizeof(__u64));
	return 0;
}

static __always_inline int payload_stackid(void *ctx)
{
	/*
	 * BPF_F_REUSE_STACKID: a different stack hashing to a bucket already taken replaces
	 * it. With flags 0 the first collision makes every later call fail with -EEXIST
	 * (seen on arm64 7.3 fexit), a failure that says nothing about what a stack costs.
	 */
	if (bpf_get_stackid(ctx, &tracelab_stacks, BPF_F_REUSE_STACKID) < 0) {
		bump(SLOT_DROPS);
		return 0;
	}
	bump(SLOT_HITS);
	return 0;
}

static __always_inline int payload_record(void *ctx)
{
	struct tracelab_event *e;

	e = bpf_ringbuf_reserve(&tracelab_events, sizeof(*e), 0);
	if (!e) {
		bump(SLOT_DROPS);
		return 0;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* Program names: tracelab_<attach>_<payload>. The kernel keeps 15 characters of a name;
 * the `tracelab_` prefix survives, which is what the agent's leftover check looks for. */
#define TRACELAB_PROG(sec, attach, payload) \
	SEC(sec) int tracelab_##attach##_##payload(void *ctx) { return payload_##payload(ctx); }

#define TRACELAB_PROGS(sec, attach)             \
	TRACELAB_PROG(sec, attach, empty)       \
	TRACELAB_PROG(sec, attach, count)       \
	TRACELAB_PROG(sec, attach, record)      \
	TRACELAB_PROG(sec, attach, stacktrace)  \
	TRACELAB_PROG(sec, attach, stackid)

/* The sys_enter tracepoint fires for every syscall: only getppid runs the payload. */
#define TRACELAB_SYS_ENTER_PROG(sec, attach, payload)                        \
	SEC(sec) int tracelab_##attach##_##payload(__u64 *ctx)               \
	{                                                                    \
		if (ctx[1] != TRACELAB_NR_GETPPID)                            \
			return 0;                                            \
		return payload_##payload(ctx);                               \
	}

#define TRACELAB_SYS_ENTER_PROGS(sec, attach)            \
	TRACELAB_SYS_ENTER_PROG(sec, attach, empty)      \
	TRACELAB_SYS_ENTER_PROG(sec, attach, count)      \
	TRACELAB_SYS_ENTER_PROG(sec, attach, record)     \
	TRACELAB_SYS_ENTER_PROG(sec, attach, stacktrace) \
	TRACELAB_SYS_ENTER_PROG(sec, attach, stackid)

/* kprobe_multi over every function (--functions all, as the selftests' kprobe-multi-all):
 * the count payload, the target's calls apart from every other function's. */
SEC("kprobe.multi")
int tracelab_kmultiall_count(void *ctx)
{
	__u32 zero = 0;
	struct tracelab_range *r = bpf_map_lookup_elem(&tracelab_target, &zero);
	__u64 ip = bpf_get_func_ip(ctx);

	if (r && ip >= r->start && ip < r->end)
		bump(SLOT_HITS);
	else
		bump(SLOT_ELSEWHERE);
	return 0;
}

/* Attach targets are set at run time; the section names only pick the program type. */
TRACELAB_PROGS("kprobe", kprobe)
TRACELAB_PROGS("kretprobe", kretprobe)
TRACELAB_PROGS("kprobe.multi", kmulti)
TRACELAB_PROGS("kretprobe.multi", kretmulti)
TRACELAB_PROGS("fentry", fentry)
TRACELAB_PROGS("fexit", fexit)
/* fentry on a tracing_multi link (BPF_TRACE_FENTRY_MULTI): libbpf 1.7 has no section for
 * it, so the agent loads these as tracing programs of that attach type itself; the
 * section only lets libbpf open them without an attach target. */
TRACELAB_PROGS("?raw_tp", fmulti)
/* Returning 0 leaves the traced function's return value alone. */
TRACELAB_PROGS("fmod_ret", fmodret)
TRACELAB_PROGS("tracepoint", tp)
TRACELAB_SYS_ENTER_PROGS("raw_tp", rawtp)
TRACELAB_SYS_ENTER_PROGS("tp_btf/sys_enter", tpbtf)
/* The same on a tracepoint only the workload fires (bpf_test_run:bpf_trigger_tp): no
 * filter. The tp_btf target is set at run time. */
TRACELAB_PROGS("raw_tp", rawtpk)
TRACELAB_PROGS("tp_btf", tpbtfk)
/* User-space probes on the agent's own functions; targets are set at attach time. */
TRACELAB_PROGS("uprobe", uprobe)
TRACELAB_PROGS("uretprobe", uretprobe)
TRACELAB_PROGS("uprobe.multi", umulti)
TRACELAB_PROGS("uretprobe.multi", uretmulti)
TRACELAB_PROGS("usdt", usdt)

/*
 * The in-kernel workload (as the BPF selftests' trigger bench): run with
 * BPF_PROG_TEST_RUN, it calls the traceable helper bpf_get_numa_node_id() ctx[0] times
 * (at most TRACELAB_BATCH), so a traced call costs no syscall of its own. The name
 * lacks the `tracelab_` prefix on purpose: the driver stays loaded for the whole run and
 * is not a leftover of any cell.
 */
#define TRACELAB_BATCH 100

/* A driver: run with BPF_PROG_TEST_RUN, it makes ctx[0] calls (at most TRACELAB_BATCH). */
#define TRACELAB_DRIVER(name, call)                                            \
	SEC("?raw_tp")                                                         \
	int name(__u64 *ctx)                                                   \
	{                                                                      \
		__u64 n = ctx[0];                                              \
		int i;                                                         \
                                                                               \
		for (i = 0; i < TRACELAB_BATCH; i++) {                         \
			if (i >= n)                                            \
				break;                                         \
			(void)call;                                            \
		}                                                              \
		return 0;                                                      \
	}

TRACELAB_DRIVER(tlab_numa_driver, bpf_get_numa_node_id())

/*
 * The second in-kernel workload (the selftests' trigger_driver_kfunc): calls the kfunc
 * bpf_modify_return_test_tp(). Weak, so the object still opens on kernels without it
 * (before 6.10); the agent checks kallsyms before loading this program.
 */
extern int bpf_modify_return_test_tp(int nonce) __ksym __weak;

TRACELAB_DRIVER(tlab_kfunc_driver, bpf_modify_return_test_tp(0))
