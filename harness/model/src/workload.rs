//! The workloads a plan can name: the code that calls into the traced kernel function
//! (run by `tracelab-workloads`).

use strum::{IntoStaticStr, VariantArray};

/// A workload the lab knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, VariantArray)]
pub enum Workload {
    /// `getppid(2)` in a tight loop: the cheapest syscall that reaches a traceable
    /// kernel function and returns without side effects.
    #[strum(serialize = "getppid")]
    Getppid,
    /// In-kernel calls of `bpf_get_numa_node_id`, made by a BPF driver program run with
    /// `BPF_PROG_TEST_RUN` (up to 100 calls per run, as the BPF selftests' trigger bench
    /// does): the traced call costs no syscall of its own.
    #[strum(serialize = "bpf-numa-batch")]
    BpfNumaBatch,
    /// In-kernel calls of the kfunc `bpf_modify_return_test_tp` (Linux 6.10+), made by a
    /// BPF driver program as the selftests' `trigger_driver_kfunc` does. The kfunc is in
    /// the kernel's registered fmod_ret set (no error injection needed) and fires the
    /// `bpf_test_run:bpf_trigger_tp` tracepoint, so fmod_ret, `tp`, `raw_tp` and `tp_btf`
    /// are measured in-kernel on it.
    #[strum(serialize = "bpf-kfunc-batch")]
    BpfKfuncBatch,
    /// Pipe ping-pong between the agent and a child process: one byte each way per
    /// operation, so each operation is two writes and two reads (one of each per side)
    /// and two context switches on one CPU. Traced: `pipe_write`, which both sides call
    /// strictly inside the loop (the peer's next `pipe_read` starts whenever the scheduler
    /// lets it, so a loop's count of `pipe_read` would be off by one at its end).
    #[strum(serialize = "pipe")]
    Pipe,
    /// `pread` of 64 bytes of a small tmpfs file (a memfd). Traced: `shmem_file_read_iter`,
    /// which only the workload reaches (the agent's own reads of /proc go through
    /// `vfs_read` too, so tracing `vfs_read` would count them).
    #[strum(serialize = "file-read")]
    FileRead,
    /// Loopback TCP ping-pong: one byte from one socket to its peer and back per
    /// operation (two sends, two receives, in one process). Traced: `tcp_sendmsg`.
    #[strum(serialize = "tcp")]
    Tcp,
    /// `fork` + `_exit` + `waitpid`. Traced: `kernel_clone`.
    #[strum(serialize = "fork")]
    Fork,
    /// `open` + `close` of `/dev/null`. Traced: `chrdev_open`, the character-device step
    /// of that open, which only the workload reaches: the agent counts events by reading
    /// tracefs files, and every such read opens one, so `do_sys_openat2` would count the
    /// agent's own opens (give `--function do_sys_openat2` with a BPF mechanism, which
    /// counts through maps, to trace it).
    #[strum(serialize = "open-close")]
    OpenClose,
    /// Calls of one of the agent's own functions, `tracelab_user_nop`: a `nop` then `ret`.
    /// The user-space probes go on its first instruction, as in the selftests'
    /// `uprobe-nop` bench (x86 emulates the nop; arm64 steps it out of line).
    #[strum(serialize = "user-nop")]
    UserNop,
    /// `tracelab_user_push`: the probed first instruction saves the frame pointer (x86
    /// `push %rbp`, emulated; arm64 `stp x29, x30, [sp, #-16]!`), as `uprobe-push`.
    #[strum(serialize = "user-push")]
    UserPush,
    /// `tracelab_user_ret`: the probed first instruction is `ret`, as `uprobe-ret`.
    #[strum(serialize = "user-ret")]
    UserRet,
    /// `tracelab_user_nop5` (x86_64 only): a 5-byte `nopl 0x0(%rax,%rax,1)`, the
    /// instruction newer kernels optimise a uprobe on into a call (no trap).
    #[strum(serialize = "user-nop5")]
    UserNop5,
    /// `tracelab_user_usdt`: a `nop` that is the agent's USDT probe `tracelab:site` (a
    /// SystemTap SDT note without semaphore or arguments), then `ret`. BPF attaches
    /// through libbpf's USDT support, the other user-space probes at the same address.
    #[strum(serialize = "usdt")]
    Usdt,
}

crate::named!(Workload, "workload");

impl Workload {
    pub const ALL: [Workload; 13] = [
        Workload::Getppid,
        Workload::BpfNumaBatch,
        Workload::BpfKfuncBatch,
        Workload::Pipe,
        Workload::FileRead,
        Workload::Tcp,
        Workload::Fork,
        Workload::OpenClose,
        Workload::UserNop,
        Workload::UserPush,
        Workload::UserRet,
        Workload::UserNop5,
        Workload::Usdt,
    ];

    /// Operations per timed loop by default: a loop of any workload stays near ten
    /// million guest instructions (a fork costs a hundred getppid calls).
    pub fn default_calls(self) -> u64 {
        match self {
            Workload::Getppid | Workload::BpfNumaBatch | Workload::BpfKfuncBatch => 20_000,
            Workload::UserNop
            | Workload::UserPush
            | Workload::UserRet
            | Workload::UserNop5
            | Workload::Usdt => 20_000,
            Workload::FileRead | Workload::OpenClose => 5_000,
            Workload::Pipe => 2_000,
            Workload::Tcp => 1_000,
            Workload::Fork => 200,
        }
    }

    /// Calls of the workload's own traced function per operation, as designed; the agent
    /// counts them in the first armed loop and fails the cell if the count differs (a
    /// function given with `--function` has no expectation: the count decides).
    pub fn traced_per_op(self) -> u64 {
        match self {
            Workload::Pipe | Workload::Tcp => 2,
            _ => 1,
        }
    }

    /// Whether an operation switches tasks by design: the pipe's peer is woken and runs
    /// (preempting the writer), a forked child runs, exits and is reaped (waking the
    /// kernel's RCU threads). The agent cannot tell those switches from a foreign task's
    /// by counting them, so its loops are not rerun on switches: the spread of the pairs
    /// shows the scheduler's share, and the exact count of the traced function still
    /// catches a foreign caller (a kernel thread forking a worker mid-loop).
    pub fn blocks(self) -> bool {
        matches!(self, Workload::Pipe | Workload::Fork)
    }

    /// Whether an operation queues RCU callbacks of its own (an exited task is freed
    /// after a grace period; on 6.1 a closed file is too), so RCU softirqs inside its
    /// loops are part of its cost, not foreign work.
    pub fn defers_rcu_work(self) -> bool {
        matches!(self, Workload::Fork | Workload::OpenClose)
    }

    /// The softirqs an operation raises by design, as named in `/proc/softirqs`: TCP over
    /// loopback delivers every segment in `NET_RX`. In its loops they are its cost, not
    /// foreign work.
    pub fn own_softirqs(self) -> &'static [&'static str] {
        match self {
            Workload::Tcp => &["NET_RX", "NET_TX"],
            _ => &[],
        }
    }

    /// Whether it is one of the workloads people run (pipe, file, TCP, fork, open),
    /// whose figure per operation covers several kernel functions: its results also
    /// give the overhead per traced call and the slowdown.
    pub fn is_macro(self) -> bool {
        matches!(
            self,
            Workload::Pipe
                | Workload::FileRead
                | Workload::Tcp
                | Workload::Fork
                | Workload::OpenClose
        )
    }

    /// Whether its operations have a second side in a process of its own (the pipe's
    /// peer), which `--vcpus 2` puts on a CPU of its own.
    pub fn has_peer(self) -> bool {
        self == Workload::Pipe
    }

    /// Whether its traced function is one of the agent's own (user-space probes), not a
    /// kernel function.
    pub fn is_user(self) -> bool {
        matches!(
            self,
            Workload::UserNop
                | Workload::UserPush
                | Workload::UserRet
                | Workload::UserNop5
                | Workload::Usdt
        )
    }

    /// Why it cannot run on `arch` (`uname -m` style), if it cannot.
    pub fn arch_limit(self, arch: &str) -> Option<String> {
        (self == Workload::UserNop5 && arch != "x86_64").then(|| {
            format!("workload {self} is x86_64 only (its 5-byte nop is an x86 instruction; this is {arch})")
        })
    }

    /// Whether the calls are made inside the kernel by a driver (no syscall per call).
    pub fn in_kernel(self) -> bool {
        matches!(self, Workload::BpfNumaBatch | Workload::BpfKfuncBatch)
    }

    /// The tracepoint each call fires, as (category, name), for the BPF `tp`, `raw_tp`
    /// and `tp_btf` mechanisms; None where the calls fire none of their own.
    pub fn tracepoint(self) -> Option<Tracepoint> {
        match self {
            Workload::Getppid => Some(Tracepoint {
                category: "syscalls",
                name: "sys_enter_getppid",
                raw: "sys_enter",
                raw_is_shared: true,
            }),
            Workload::BpfKfuncBatch => Some(Tracepoint {
                category: "bpf_test_run",
                name: "bpf_trigger_tp",
                raw: "bpf_trigger_tp",
                raw_is_shared: false,
            }),
            _ => None,
        }
    }

    /// Symbols this workload enters once per call (kernel ones; the agent's own for the
    /// user-space workloads), best first, for a given
    /// `uname -m` style architecture (`x86_64` or `aarch64`/`arm64`).
    ///
    /// Several of these may be aliases of one address (on x86_64 6.12,
    /// `__x64_sys_getppid` and `__do_sys_getppid` share one); the agent resolves aliases
    /// against the kernel's own symbol table and filter list.
    pub fn entry_symbols(self, arch: &str) -> &'static [&'static str] {
        match (self, arch) {
            (Workload::Getppid, "x86_64") => &["__x64_sys_getppid", "__do_sys_getppid"],
            (Workload::Getppid, "aarch64" | "arm64") => {
                &["__arm64_sys_getppid", "__do_sys_getppid"]
            }
            (Workload::Getppid, _) => &["__do_sys_getppid"],
            (Workload::BpfNumaBatch, _) => &["bpf_get_numa_node_id"],
            (Workload::BpfKfuncBatch, _) => &["bpf_modify_return_test_tp"],
            (Workload::Pipe, _) => &["pipe_write", "anon_pipe_write"],
            (Workload::FileRead, _) => &["shmem_file_read_iter"],
            (Workload::Tcp, _) => &["tcp_sendmsg"],
            (Workload::Fork, _) => &["kernel_clone", "_do_fork"],
            (Workload::OpenClose, _) => &["chrdev_open"],
            // The agent's own functions (workloads/src/user_ops.rs).
            (Workload::UserNop, _) => &["tracelab_user_nop"],
            (Workload::UserPush, _) => &["tracelab_user_push"],
            (Workload::UserRet, _) => &["tracelab_user_ret"],
            (Workload::UserNop5, _) => &["tracelab_user_nop5"],
            (Workload::Usdt, _) => &["tracelab_user_usdt"],
        }
    }
}

/// The tracepoints one call of a workload fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracepoint {
    /// The perf-event tracepoint (`tracepoint` programs): `events/<category>/<name>`.
    pub category: &'static str,
    pub name: &'static str,
    /// The raw tracepoint (`raw_tp`, `tp_btf`).
    pub raw: &'static str,
    /// Whether the raw tracepoint fires for other calls too (`sys_enter`: every syscall),
    /// so the programs on it filter the workload's calls themselves.
    pub raw_is_shared: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
        }
    }

    #[test]
    fn unknown_workload_lists_valid_ones() {
        let err = "forks".parse::<Workload>().unwrap_err().to_string();
        assert!(err.contains("forks") && err.contains("getppid"), "{err}");
    }

    #[test]
    fn user_workloads_are_their_own_kind() {
        for w in Workload::ALL {
            assert!(!(w.is_user() && (w.is_macro() || w.in_kernel())), "{w}");
            if w.is_user() {
                assert!(w.entry_symbols("x86_64")[0].starts_with("tracelab_user_"));
                assert_eq!(w.tracepoint(), None);
            }
        }
        assert!(Workload::UserNop5.arch_limit("aarch64").is_some());
        assert_eq!(Workload::UserNop5.arch_limit("x86_64"), None);
        assert_eq!(Workload::UserNop.arch_limit("aarch64"), None);
    }

    #[test]
    fn entry_symbols_are_arch_specific() {
        assert_eq!(
            Workload::Getppid.entry_symbols("x86_64")[0],
            "__x64_sys_getppid"
        );
        assert_eq!(
            Workload::Getppid.entry_symbols("aarch64")[0],
            "__arm64_sys_getppid"
        );
    }
}
