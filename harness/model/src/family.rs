//! The families a breakdown's symbols are grouped into (`--attribution`): the parts of
//! a traced call a kernel engineer names when arguing about its cost.
//!
//! A symbol's family comes from its name alone, by the rules in [`RULES`], first match
//! wins. The rules are a reading of the kernels the lab boots (6.1 to 7.3, x86_64 and
//! arm64), not a kernel API: a symbol no rule knows is `other kernel`, never dropped, and
//! the symbol rows beside the families always say exactly where each instruction went.

use serde::{Deserialize, Serialize};

/// Where a symbol's instructions belong.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Family {
    /// Getting into and out of the system call (and the traced syscall's own body).
    SyscallEntryExit,
    /// Exception entry: int3, #DB, BRK, single step (the traps of kprobes at an offset
    /// and of uprobes).
    Exceptions,
    /// The ftrace call site, its trampolines, ops lists and the function tracer.
    FtraceCore,
    /// Kprobes, kretprobes and rethook, and their trace events.
    Kprobes,
    /// fprobe and the function-graph return machinery it runs on.
    FprobeFgraph,
    /// Tracepoints and trace events.
    Tracepoints,
    /// What runs a BPF program: trampolines, `__bpf_prog_enter/exit`, the kprobe-multi
    /// and tracepoint dispatch.
    BpfDispatch,
    /// The JIT-compiled BPF program itself.
    BpfProgram,
    /// Helpers and maps the program calls.
    BpfHelpers,
    /// Walking the stack (stack-trace payloads).
    StackUnwind,
    /// The ftrace ring buffer, the BPF ring buffer, perf output.
    RingBuffer,
    /// perf events (besides their output).
    Perf,
    /// Uprobes' kernel side.
    Uprobes,
    /// RCU, SRCU, preemption, migration and IRQ-state bookkeeping.
    Bookkeeping,
    /// Clock reads: `sched_clock` and the trace clocks (ring-buffer timestamps, BPF
    /// statistics).
    Clock,
    /// Speculation mitigations: retpolines, return thunks, branch-history clearing.
    Mitigations,
    /// Kernel code made at run time that no symbol names.
    RuntimeCode,
    /// User space: the workload and its libc.
    User,
    /// Any other kernel symbol.
    #[default]
    OtherKernel,
}

impl Family {
    /// The family's name as a table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Family::SyscallEntryExit => "syscall entry/exit",
            Family::Exceptions => "exceptions (int3, BRK, debug)",
            Family::FtraceCore => "ftrace core",
            Family::Kprobes => "kprobes/rethook",
            Family::FprobeFgraph => "fprobe/fgraph",
            Family::Tracepoints => "tracepoints/trace events",
            Family::BpfDispatch => "BPF trampoline and dispatch",
            Family::BpfProgram => "BPF program",
            Family::BpfHelpers => "BPF helpers and maps",
            Family::StackUnwind => "stack unwinding",
            Family::RingBuffer => "ring buffer/output",
            Family::Perf => "perf events",
            Family::Uprobes => "uprobes",
            Family::Bookkeeping => "RCU/preempt/migrate/IRQ bookkeeping",
            Family::Clock => "clock reads",
            Family::Mitigations => "speculation mitigations",
            Family::RuntimeCode => "unnamed run-time code",
            Family::User => "user space",
            Family::OtherKernel => "other kernel",
        }
    }

    /// The family of a breakdown row's symbol (a kallsyms name, a run-time symbol as
    /// `name [module]`, or one of the bracketed rows the breakdown makes).
    pub fn of(symbol: &str) -> Family {
        if symbol == USER_ROW {
            return Family::User;
        }
        if symbol.starts_with(RUNTIME_ROW_PREFIX) {
            return Family::RuntimeCode;
        }
        if let Some((_, module)) = symbol.rsplit_once(" [") {
            return match module.trim_end_matches(']') {
                "bpf" if symbol.starts_with("bpf_prog_") => Family::BpfProgram,
                "bpf" => Family::BpfDispatch,
                "__builtin__kprobes" => Family::Kprobes,
                "__builtin__ftrace" => Family::FtraceCore,
                _ => Family::OtherKernel,
            };
        }
        // The compiler's clones (`.constprop.0`, `.isra.0`, `.part.0`) are their function.
        let base = symbol.split_once('.').map_or(symbol, |(b, _)| b);
        RULES
            .iter()
            .find(|(_, patterns)| patterns.iter().any(|p| matches(p, base)))
            .map_or(Family::OtherKernel, |(f, _)| *f)
    }
}

/// The breakdown's row for user-space blocks.
pub const USER_ROW: &str = "[user]";
/// How the breakdown's row for kernel code outside every symbol begins.
pub const RUNTIME_ROW_PREFIX: &str = "[kernel code outside the image";

/// `prefix*`, `*suffix`, `*infix*` or an exact name.
fn matches(pattern: &str, symbol: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') => symbol.contains(&rest[..rest.len() - 1]),
        (Some(suffix), None) => symbol.ends_with(suffix),
        (None, Some(prefix)) => symbol.starts_with(prefix),
        _ => symbol == pattern,
    }
}

/// The rules, in the order they are tried: the specific before the general (a BPF
/// dispatch function with `kprobe` in its name is dispatch; `ftrace_return_to_handler`
/// is fgraph, not ftrace core).
pub const RULES: &[(Family, &[&str])] = &[
    (
        Family::Exceptions,
        &[
            "asm_exc_*",
            "exc_int3",
            "exc_debug*",
            "do_int3*",
            "noist_exc_debug",
            "el1h_64_sync*",
            "el0t_64_sync*",
            "el1_dbg",
            "el0_dbg",
            "el1_brk64",
            "el0_brk64",
            "el1_softstp",
            "el0_softstp",
            "do_debug_exception",
            "do_el0_softstep",
            "do_el1_brk64",
            "do_el0_brk64",
            "call_break_hook",
            "call_step_hook",
            "brk_handler",
            "single_step_handler",
            "early_brk64",
            "*_brk_handler",
            "irqentry_*",
            "arm64_enter_el1_dbg",
            "arm64_exit_el1_dbg",
            "debug_exception_*",
            "enter_from_kernel_mode",
            "exit_to_kernel_mode",
            "error_entry",
            "error_return",
            "paranoid_entry",
            "paranoid_exit",
            "ct_nmi_*",
            "ct_irq_*",
            "restore_regs_and_return_to_kernel",
            "native_irq_return_iret",
            "poke_int3_handler",
            "exc_*",
            "vectors",
            "ret_to_kernel",
        ],
    ),
    (
        Family::BpfDispatch,
        &[
            "__bpf_prog_enter*",
            "__bpf_prog_exit*",
            "__bpf_tramp_*",
            "bpf_trampoline_*",
            "bpf_dispatcher*",
            "bpf_trace_run*",
            "__bpf_trace_*",
            "__bpf_trace_run",
            "trace_call_bpf",
            "kprobe_multi_link_*",
            "bpf_kprobe_multi_*",
            "bpf_prog_run*",
            "bpf_prog_inc_misses_counter*",
            "bpf_prog_start_time",
            "bpf_prog_update_prog_stats",
            "update_prog_stats",
            "bpf_fprobe_*",
            "*bpf_prog_test_run*",
            "perf_trace_run_bpf_submit",
        ],
    ),
    (
        Family::StackUnwind,
        &[
            "unwind_*",
            "__unwind_*",
            "arch_stack_walk*",
            "stack_trace_*",
            "get_perf_callchain",
            "perf_callchain_*",
            "__bpf_get_stack*",
            "bpf_get_stack*",
            "__bpf_get_stackid",
            "bpf_get_stackid*",
            "*kernel_text_address*",
            "is_bpf_text_address",
            "bpf_ksym_find",
            "orc_find",
            "__orc_find",
            "*orc_*",
            "is_ftrace_trampoline",
            "ftrace_graph_ret_addr",
            "in_entry_stack",
            "in_task_stack",
            "in_irq_stack",
            "get_stack_info*",
            "stack_access_ok",
            "deref_stack_reg",
            "kunwind_*",
            "do_kunwind",
            "*stack_trace_consume*",
            "__save_stack_trace",
            "save_stack_trace*",
            "core_kernel_text",
            "is_kernel_text",
            "__is_kernel*",
            "is_module_text_address",
            "__module_text_address",
            "__module_address",
            "bpf_prog_ksym_find",
            "search_bpf_extables",
            "*unwind*",
        ],
    ),
    (
        Family::RingBuffer,
        &[
            "ring_buffer_*",
            "rb_*",
            "__rb_*",
            "trace_buffer_*",
            "trace_event_buffer_*",
            "bpf_ringbuf_*",
            "__bpf_ringbuf_*",
            "perf_output_*",
            "__perf_output_*",
            "bpf_perf_event_output*",
            "__bpf_perf_event_output",
            "perf_event_output*",
            "__output_copy",
            "tracing_gen_ctx*",
            "__trace_stack",
            "__ftrace_trace_stack",
            "trace_buffer_lock_reserve",
            "__trace_buffer_lock_reserve",
            "__buffer_unlock_commit",
            "trace_event_buffer_commit",
        ],
    ),
    (
        Family::FprobeFgraph,
        &[
            "fprobe*",
            "__fprobe*",
            "*fgraph*",
            "function_graph_*",
            "ftrace_graph_*",
            "ftrace_return_to_handler",
            "return_to_handler",
            "prepare_ftrace_return",
            "ftrace_push_return_trace",
            "ftrace_pop_return_trace",
            "*ret_stack*",
            "graph_*",
            "trace_graph_*",
            "__trace_graph_*",
            "ftrace_graph_caller",
            "fentry_*",
            "fexit_*",
        ],
    ),
    (
        Family::Kprobes,
        &[
            "*kprobe*",
            "*kretprobe*",
            "*rethook*",
            "opt_pre_handler",
            "optimized_callback",
            "optprobe_*",
            "aggr_*",
            "arch_prepare_*",
            "setup_singlestep",
            "resume_singlestep",
            "skip_singlestep",
            "post_kprobe_handler",
            "reenter_kprobe",
            "simulate_*",
            "objpool_*",
            "setup_detour_execution",
            "arm_kprobe*",
            "trace_probe_*",
            "process_fetch_insn*",
            "store_trace_args",
            "__get_data_size",
        ],
    ),
    (
        Family::Uprobes,
        &[
            "*uprobe*",
            "handle_swbp",
            "uprobe_*",
            "xol_*",
            "arch_uretprobe_*",
            "handle_trampoline",
            "*uretprobe*",
        ],
    ),
    (
        Family::Tracepoints,
        &[
            "__traceiter_*",
            "trace_event_*",
            "trace_raw_output_*",
            "trace_event_raw_event_*",
            "perf_trace_*",
            "tracepoint_*",
            "__tracepoint_*",
            "trace_sys_enter",
            "trace_sys_exit",
            "ftrace_syscall_*",
            "perf_syscall_*",
            "do_trace_*",
            "event_triggers_*",
            "trace_event_ignore_this_pid",
        ],
    ),
    (
        Family::FtraceCore,
        &[
            "ftrace_*",
            "__ftrace_*",
            "arch_ftrace_*",
            "function_trace_call",
            "function_stack_trace_call",
            "trace_function",
            "tracing_is_on",
            "tracer_tracing_is_on",
            "trace_test_and_set_recursion",
            "trace_clear_recursion",
            "ftrace_test_recursion_*",
            "__trace_function",
            "tracing_record_*",
            "ftrace_caller",
            "ftrace_regs_caller",
            "ftrace_stub*",
            "ftrace_call",
            "ftrace_regs_call",
            "ftrace_common",
            "ftrace_ops_*",
            "arch_ftrace_ops_list_func",
            "ftrace_ops_list_func",
            "ftrace_ops_test",
            "ftrace_ops_no_ops",
            "ftrace_ops_assist_func",
            "ftrace_ops_get_list_func",
            "__ftrace_ops_list_func",
            "trace_function_*",
        ],
    ),
    (
        Family::BpfHelpers,
        &[
            "bpf_*",
            "__bpf_*",
            "htab_*",
            "__htab_*",
            "array_map_*",
            "percpu_array_*",
            "pcpu_*",
            "___bpf_*",
            "strncpy_from_*",
            "copy_from_kernel_nofault*",
            "jhash*",
            "lookup_elem_raw",
        ],
    ),
    (
        Family::Clock,
        &[
            "*sched_clock*",
            "trace_clock*",
            "ktime_get*",
            "arch_timer_read_*",
            "arch_counter_get_*",
            "bpf_ktime_get_*",
        ],
    ),
    (
        Family::Mitigations,
        &[
            "__x86_indirect_thunk_*",
            "__x86_indirect_call_thunk_*",
            "__x86_return_thunk",
            "srso_*",
            "retbleed_*",
            "entry_ibpb",
            "clear_bhb_loop",
            "__bhb_*",
            "spectre_*",
        ],
    ),
    (
        Family::Perf,
        &["perf_*", "__perf_*", "___perf_*", "is_sampling_event"],
    ),
    (
        Family::Bookkeeping,
        &[
            "rcu_*",
            "__rcu_*",
            "srcu_*",
            "__srcu_*",
            "migrate_disable",
            "migrate_enable",
            "preempt_*",
            "__preempt_*",
            "preempt_count_*",
            "trace_hardirqs_*",
            "lockdep_*",
            "__this_cpu_preempt_check",
            "debug_smp_processor_id",
            "check_preemption_disabled",
            "arch_local_*",
            "local_irq_*",
            "irq_enter*",
            "irq_exit*",
            "add_preempt_count",
            "sub_preempt_count",
            "in_lock_functions",
            "__local_bh_*",
            "local_bh_*",
            "_raw_spin_*",
            "__raw_spin_*",
        ],
    ),
    (
        Family::SyscallEntryExit,
        &[
            "entry_SYSCALL*",
            "entry_SYSENTER*",
            "do_syscall_*",
            "syscall_*",
            "__syscall_*",
            "x64_sys_call",
            "__x64_sys_*",
            "__ia32_sys_*",
            "__arm64_sys_*",
            "__do_sys_*",
            "__se_sys_*",
            "el0_svc*",
            "do_el0_svc*",
            "invoke_syscall*",
            "el0t_64_*",
            "ret_to_user",
            "arch_exit_to_user_mode*",
            "arch_enter_from_user_mode*",
            "ret_from_*",
            "exit_to_user_mode*",
            "enter_from_user_mode*",
            "__enter_from_user_mode",
            "__exit_to_user_mode*",
            "syscall_trace_*",
            "user_enter*",
            "user_exit*",
            "fpsimd_*",
            "do_notify_resume",
            "cortex_a76_erratum_*",
            "mte_*",
            "arm64_*",
            "el0_*",
            "restore_*",
            "fixup_*",
            "switch_fpu_*",
            "fpregs_*",
            "task_pid_vnr",
            "__task_pid_nr_ns",
            "pid_vnr",
            "pid_nr_ns",
            "task_tgid_*",
            "getppid",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_land_in_the_family_a_kernel_engineer_would_name() {
        let cases = [
            ("entry_SYSCALL_64", Family::SyscallEntryExit),
            ("__do_sys_getppid", Family::SyscallEntryExit),
            ("el0_svc", Family::SyscallEntryExit),
            ("asm_exc_int3", Family::Exceptions),
            ("el1h_64_sync", Family::Exceptions),
            ("kprobe_ftrace_handler", Family::Kprobes),
            ("kprobe_dispatcher", Family::Kprobes),
            ("arch_rethook_trampoline", Family::Kprobes),
            ("fprobe_handler", Family::FprobeFgraph),
            ("fprobe_fgraph_entry", Family::FprobeFgraph),
            ("function_graph_enter_regs", Family::FprobeFgraph),
            ("ftrace_return_to_handler", Family::FprobeFgraph),
            ("ftrace_ops_list_func", Family::FtraceCore),
            ("function_trace_call", Family::FtraceCore),
            ("__bpf_prog_enter_recur", Family::BpfDispatch),
            ("kprobe_multi_link_handler", Family::BpfDispatch),
            ("bpf_trace_run1", Family::BpfDispatch),
            ("trace_call_bpf", Family::BpfDispatch),
            ("bpf_get_stackid", Family::StackUnwind),
            ("unwind_next_frame", Family::StackUnwind),
            ("ring_buffer_lock_reserve", Family::RingBuffer),
            ("bpf_ringbuf_reserve", Family::RingBuffer),
            ("bpf_map_lookup_elem", Family::BpfHelpers),
            ("htab_map_update_elem", Family::BpfHelpers),
            ("migrate_disable", Family::Bookkeeping),
            ("__rcu_read_lock", Family::Bookkeeping),
            ("uprobe_notify_resume", Family::Uprobes),
            ("__traceiter_sys_enter", Family::Tracepoints),
            ("perf_trace_buf_alloc", Family::Tracepoints),
            ("perf_event_overflow", Family::Perf),
            (
                "bpf_prog_6deef7357e7b4530_tracelab_fentry [bpf]",
                Family::BpfProgram,
            ),
            ("bpf_trampoline_6442491932 [bpf]", Family::BpfDispatch),
            ("kprobe_insn_page [__builtin__kprobes]", Family::Kprobes),
            ("ftrace_trampoline [__builtin__ftrace]", Family::FtraceCore),
            (USER_ROW, Family::User),
            (
                "[kernel code outside the image: BPF, trampolines, probe slots]",
                Family::RuntimeCode,
            ),
            ("native_sched_clock", Family::Clock),
            ("trace_clock_local", Family::Clock),
            ("error_entry", Family::Exceptions),
            ("ct_nmi_enter", Family::Exceptions),
            ("objpool_push.isra.0", Family::Kprobes),
            ("rb_commit.part.0", Family::RingBuffer),
            (
                "arch_exit_to_user_mode_prepare.constprop.0",
                Family::SyscallEntryExit,
            ),
            ("__x86_indirect_thunk_rax", Family::Mitigations),
            ("schedule", Family::OtherKernel),
        ];
        for (symbol, family) in cases {
            assert_eq!(Family::of(symbol), family, "{symbol}");
        }
        assert_eq!(
            serde_json::to_string(&Family::FprobeFgraph).expect("json"),
            "\"fprobe-fgraph\""
        );
        let name: &str = Family::BpfDispatch.into();
        assert_eq!(name, "bpf-dispatch");
        assert_eq!("bpf-dispatch".parse::<Family>(), Ok(Family::BpfDispatch));
    }
}
