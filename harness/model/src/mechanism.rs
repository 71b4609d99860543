//! The mechanisms' names, as used on the command line and in results. What each one
//! needs from the kernel and how it is installed is declared in the agent's registry.

use crate::names::UnknownName;
use strum::{IntoStaticStr, VariantArray};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum MechanismKind {
    /// Nothing attached: the cost of the call itself.
    Baseline,
    /// kprobe at the function entry (through ftrace where the kernel can).
    Kprobe,
    /// kprobe at an instruction inside the function: the breakpoint (int3/BRK) path.
    KprobeOffset,
    Kretprobe,
    /// fprobe entry event (`f:`).
    Fprobe,
    /// fprobe exit event (`f: ... %return`).
    FprobeExit,
    /// The ftrace `function` tracer filtered to the target.
    Function,
    /// The ftrace `function_graph` tracer filtered to the target (`set_ftrace_filter`).
    FunctionGraph,
    /// The `function_graph` tracer as `trace-cmd record -p function_graph -g F` and `perf
    /// ftrace -G F` run it: `set_graph_function` is the target, `set_ftrace_filter` stays
    /// empty, so every function is hooked and the target's call graph is recorded.
    FunctionGraphG,
    /// BPF program on a perf-event kprobe at the function entry.
    BpfKprobe,
    BpfKretprobe,
    /// BPF kprobe_multi link (built on fprobe).
    BpfKprobeMulti,
    BpfKretprobeMulti,
    /// BPF trampoline: fentry / fexit / fmod_ret (the last only where the function allows
    /// error injection).
    BpfFentry,
    /// One fentry program on a tracing_multi link (`BPF_TRACE_FENTRY_MULTI`, Linux 7.x):
    /// a trampoline per function, one program and one link over all of them.
    BpfFentryMulti,
    BpfFexit,
    BpfFmodRet,
    /// BPF program on the `syscalls/sys_enter_getppid` tracepoint.
    BpfTp,
    /// BPF program on the raw `sys_enter` tracepoint (every syscall, filtered in the
    /// program to getppid's number).
    BpfRawTp,
    /// BTF-typed `sys_enter` tracepoint (tp_btf), same filter.
    BpfTpBtf,
    /// tracefs uprobe (`uprobe_events`, `p:`) on the first instruction of one of the
    /// agent's own functions (the user-space workloads).
    Uprobe,
    /// tracefs uretprobe (`r:`): the function's return.
    Uretprobe,
    /// BPF program on a perf-event uprobe.
    BpfUprobe,
    BpfUretprobe,
    /// BPF uprobe_multi link (Linux 6.6+), one function.
    BpfUprobeMulti,
    BpfUretprobeMulti,
    /// BPF program on the agent's USDT probe (`tracelab:site`), attached through libbpf's
    /// USDT support.
    BpfUsdt,
}

crate::named!(
    MechanismKind,
    "mechanism",
    more = ", or the sets all, kernel, default, bpf, user"
);

impl MechanismKind {
    /// Every mechanism (`--mechanisms all`).
    pub const ALL: [MechanismKind; 27] = [
        MechanismKind::Baseline,
        MechanismKind::Kprobe,
        MechanismKind::KprobeOffset,
        MechanismKind::Kretprobe,
        MechanismKind::Fprobe,
        MechanismKind::FprobeExit,
        MechanismKind::Function,
        MechanismKind::FunctionGraph,
        MechanismKind::FunctionGraphG,
        MechanismKind::BpfKprobe,
        MechanismKind::BpfKretprobe,
        MechanismKind::BpfKprobeMulti,
        MechanismKind::BpfKretprobeMulti,
        MechanismKind::BpfFentry,
        MechanismKind::BpfFentryMulti,
        MechanismKind::BpfFexit,
        MechanismKind::BpfFmodRet,
        MechanismKind::BpfTp,
        MechanismKind::BpfRawTp,
        MechanismKind::BpfTpBtf,
        MechanismKind::Uprobe,
        MechanismKind::Uretprobe,
        MechanismKind::BpfUprobe,
        MechanismKind::BpfUretprobe,
        MechanismKind::BpfUprobeMulti,
        MechanismKind::BpfUretprobeMulti,
        MechanismKind::BpfUsdt,
    ];

    /// The default study (`--mechanisms default`): every tracefs mechanism and the three
    /// BPF attach paths the trampoline-versus-fprobe-versus-kprobe argument is about. It
    /// stays short (each cell is a few seconds of an icount guest); `all` adds the rest.
    pub const DEFAULT: [MechanismKind; 11] = [
        MechanismKind::Baseline,
        MechanismKind::Kprobe,
        MechanismKind::KprobeOffset,
        MechanismKind::Kretprobe,
        MechanismKind::Fprobe,
        MechanismKind::FprobeExit,
        MechanismKind::Function,
        MechanismKind::FunctionGraph,
        MechanismKind::BpfKprobe,
        MechanismKind::BpfKprobeMulti,
        MechanismKind::BpfFentry,
    ];

    /// Every BPF mechanism on kernel functions (`--mechanisms bpf`; the user-space ones
    /// are in `user`).
    pub const BPF: [MechanismKind; 11] = [
        MechanismKind::BpfKprobe,
        MechanismKind::BpfKretprobe,
        MechanismKind::BpfKprobeMulti,
        MechanismKind::BpfKretprobeMulti,
        MechanismKind::BpfFentry,
        MechanismKind::BpfFentryMulti,
        MechanismKind::BpfFexit,
        MechanismKind::BpfFmodRet,
        MechanismKind::BpfTp,
        MechanismKind::BpfRawTp,
        MechanismKind::BpfTpBtf,
    ];

    /// The BPF mechanisms on user-space code.
    pub const BPF_USER: [MechanismKind; 5] = [
        MechanismKind::BpfUprobe,
        MechanismKind::BpfUretprobe,
        MechanismKind::BpfUprobeMulti,
        MechanismKind::BpfUretprobeMulti,
        MechanismKind::BpfUsdt,
    ];

    /// The user-space probes and the baseline (`--mechanisms user`), for the workloads
    /// that call the agent's own functions.
    pub const USER: [MechanismKind; 8] = [
        MechanismKind::Baseline,
        MechanismKind::Uprobe,
        MechanismKind::Uretprobe,
        MechanismKind::BpfUprobe,
        MechanismKind::BpfUretprobe,
        MechanismKind::BpfUprobeMulti,
        MechanismKind::BpfUretprobeMulti,
        MechanismKind::BpfUsdt,
    ];

    /// Whether it probes user-space code (uprobes, USDT) rather than the kernel; the
    /// baseline is neither.
    pub fn traces_user_space(self) -> bool {
        self != MechanismKind::Baseline && Self::USER.contains(&self)
    }

    /// Whether it can trace every function at once (`--functions all`): the ftrace
    /// tracers, unfiltered, an fprobe on `*`, and one kprobe_multi link over every
    /// function.
    pub fn traces_everything(self) -> bool {
        matches!(
            self,
            MechanismKind::Function
                | MechanismKind::FunctionGraph
                | MechanismKind::Fprobe
                | MechanismKind::BpfKprobeMulti
        )
    }

    /// Whether it can trace many functions at once (the `--functions` axis): probes and
    /// tracers defined per function, and the BPF attach types that take any function.
    pub fn traces_many(self) -> bool {
        use MechanismKind::*;
        matches!(
            self,
            Kprobe
                | Kretprobe
                | Fprobe
                | FprobeExit
                | Function
                | FunctionGraph
                | BpfKprobe
                | BpfKretprobe
                | BpfKprobeMulti
                | BpfKretprobeMulti
                | BpfFentry
                | BpfFentryMulti
                | BpfFexit
        )
    }

    /// Whether the mechanism attaches BPF programs, so its cells take the payload and
    /// stack axes.
    pub fn is_bpf(self) -> bool {
        Self::BPF.contains(&self) || Self::BPF_USER.contains(&self)
    }

    /// Parses a comma-separated list; `all`, `kernel`, `default`, `bpf` and `user` name
    /// the sets above.
    pub fn parse_list(s: &str) -> Result<Vec<MechanismKind>, UnknownName> {
        match s.trim() {
            "all" => return Ok(Self::ALL.to_vec()),
            // Every mechanism on kernel functions and the baseline: all but the user-space
            // probes, which see nothing of a kernel workload.
            "kernel" => {
                return Ok(Self::ALL
                    .into_iter()
                    .filter(|m| !m.traces_user_space())
                    .collect())
            }
            "default" => return Ok(Self::DEFAULT.to_vec()),
            "bpf" => return Ok(Self::BPF.to_vec()),
            "user" => return Ok(Self::USER.to_vec()),
            _ => {}
        }
        s.split(',').map(|m| m.trim().parse()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for m in MechanismKind::ALL {
            assert_eq!(m.name().parse(), Ok(m));
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
    }

    #[test]
    fn parse_list_names_the_bad_entry_and_valid_ones() {
        assert_eq!(
            MechanismKind::parse_list("kprobe, fprobe"),
            Ok(vec![MechanismKind::Kprobe, MechanismKind::Fprobe])
        );
        assert_eq!(MechanismKind::parse_list("all").map(|v| v.len()), Ok(27));
        assert_eq!(MechanismKind::parse_list("bpf").map(|v| v.len()), Ok(11));
        assert_eq!(MechanismKind::parse_list("user").map(|v| v.len()), Ok(8));
        let kernel = MechanismKind::parse_list("kernel").expect("kernel");
        assert_eq!(
            kernel.len() + MechanismKind::USER.len() - 1,
            MechanismKind::ALL.len()
        );
        assert!(kernel.iter().all(|m| !m.traces_user_space()));
        assert!(MechanismKind::USER[1..]
            .iter()
            .all(|m| m.traces_user_space()));
        assert!(!MechanismKind::Baseline.traces_user_space());
        assert!(!MechanismKind::Kprobe.traces_user_space());
        assert_eq!(
            MechanismKind::parse_list("default").map(|v| v.len()),
            Ok(MechanismKind::DEFAULT.len())
        );
        assert_eq!(
            MechanismKind::parse_list("bpf-kprobe-multi,bpf-tp-btf"),
            Ok(vec![MechanismKind::BpfKprobeMulti, MechanismKind::BpfTpBtf])
        );
        for m in MechanismKind::BPF
            .into_iter()
            .chain(MechanismKind::BPF_USER)
        {
            assert!(m.is_bpf() && m.name().starts_with("bpf-"), "{m}");
        }
        let err = MechanismKind::parse_list("kprobe,uprobes")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`uprobes`") && err.contains("function-graph"),
            "{err}"
        );
    }
}
