//! The clean-up guarantee, tested where tracing works: the agent runs natively inside a
//! real guest (there it is the local target), is interrupted mid-cell, and the guest
//! reports what the kernel still holds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tracelab::guest::console::{self, Timeouts};
use tracelab::guest::initramfs;
use tracelab::guest::qemu::{Accel, Mode, Setup};
use tracelab_kernels::{Catalog, KernelVersion};
use tracelab_model::arch::Arch;

/// Prints what tracelab could have left: probes, tracer, filter, optimization switch.
const REPORT_STATE: &str = r#"
report() {
  T=/sys/kernel/tracing
  echo "@@check $1 probes $(cat $T/kprobe_events $T/dynamic_events | grep -c tracelab)"
  echo "@@check $1 tracer $(cat $T/current_tracer)"
  echo "@@check $1 filter $(cat $T/set_ftrace_filter | grep -vc '^#')"
  echo "@@check $1 optimization $(cat /proc/sys/debug/kprobes-optimization)"
  echo "@@check $1 instances $(ls $T/instances | grep -c tracelab)"
}
"#;

const SCENARIO: &str = r#"
/bin/busybox mount -t proc proc /proc
# --install finds busybox through /proc/self/exe.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
# Background jobs need /dev/null.
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
T=/sys/kernel/tracing
# 1. SIGINT while function_graph is armed (the agent signals itself once armed: a
#    polling shell would disturb its loops): the agent stops after its loop, its guards
#    detach everything, finished cells were already reported.
/tracelab-agent --plan /plan.json > /tmp/int.out 2>&1
echo "@@check int exit $?"
echo "@@check int ok_cells $(grep -c '"status":"ok"' /tmp/int.out)"
echo "@@check int interrupted $(grep -c '"status":"failed","reason":"interrupted by a signal' /tmp/int.out)"
report int
# 2. SIGKILL mid-cell: nothing can clean up, so the next run must.
for plan in /kill1.json /kill2.json; do
  /tracelab-agent --plan $plan > /tmp/kill.out 2>&1
  report killed
  /tracelab-agent --plan /small.json > /tmp/rerun.out 2>&1
  echo "@@check rerun exit $?"
  echo "@@check rerun removed $(grep -o '"leftovers_removed":\[[^]]*\]' /tmp/rerun.out)"
  report rerun
done
# 3. SIGKILL while a BPF program is attached: its fds die with the process; the rerun's
#    BPF cell fails if any tracelab_* program is still loaded.
/tracelab-agent --plan /kill3.json > /tmp/kill.out 2>&1
/tracelab-agent --plan /bpf-small.json > /tmp/rerun.out 2>&1
echo "@@check bpf-rerun exit $?"
echo "@@check bpf-rerun ok $(grep -c '"status":"ok"' /tmp/rerun.out)"
reboot -f
"#;

fn plan(mechanisms: &[&str], calls: u64, repeats: u32, fault: Option<&str>) -> String {
    serde_json::json!({
        "mechanisms": mechanisms, "workload": "getppid", "function": null,
        "calls": calls, "repeats": repeats, "unit": "insn", "kernel_config": {},
        "alone": true, "fault": fault
    })
    .to_string()
}

fn agent() -> PathBuf {
    let dir = std::env::var_os("TRACELAB_AGENT_DIR")
        .expect("TRACELAB_AGENT_DIR is not set: run the tests with `./lab test`");
    Path::new(&dir).join("tracelab-agent-x86_64")
}

#[test]
fn interrupted_and_killed_runs_leave_nothing_behind() {
    let catalog = Catalog::new(None).expect("catalog");
    let kernel = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("kernel");
    let busybox = catalog.fetch_busybox(Arch::X86_64).expect("busybox");
    let init = format!("#!/bin/busybox sh\n{REPORT_STATE}{SCENARIO}");
    let mut archive = initramfs::build_with_init(
        &agent(),
        &busybox,
        &plan(
            &["baseline", "function-graph"],
            2_000,
            3,
            Some("interrupt-when-armed"),
        ),
        &init,
    )
    .expect("initramfs");
    // Extra plans: appended as a second cpio archive, which the kernel unpacks too.
    archive.extend(
        initramfs::extra_files(&[
            (
                "kill1.json".to_string(),
                plan(&["kprobe-offset"], 2_000, 3, Some("kill-when-armed")),
            ),
            (
                "kill2.json".to_string(),
                plan(&["function-graph"], 2_000, 3, Some("kill-when-armed")),
            ),
            ("small.json".to_string(), plan(&["baseline"], 100, 1, None)),
            (
                "kill3.json".to_string(),
                plan(&["bpf-fentry"], 2_000, 3, Some("kill-when-armed")),
            ),
            (
                "bpf-small.json".to_string(),
                plan(&["bpf-fentry"], 100, 1, None),
            ),
        ])
        .expect("extra files"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, archive).expect("write initrd");
    let setup = Setup::new(Arch::X86_64, Mode::Icount, Accel::Tcg);
    let cmd: Command = setup.command(&kernel.image, &initrd);
    let timeouts = Timeouts {
        boot: Duration::from_secs(600),
        record: Duration::from_secs(600),
    };
    let outcome = console::run(cmd, timeouts, &mut |_| Ok(())).expect("guest ran");
    let checks: Vec<String> = outcome
        .tail
        .iter()
        .filter_map(|l| l.split_once("@@check ").map(|(_, c)| c.trim().to_string()))
        .collect();
    let text = checks.join("\n");
    for expected in [
        "int exit 130",
        "int interrupted 1",
        "int probes 0",
        "int tracer nop",
        "int filter 0",
        "int optimization 1",
        "rerun exit 0",
        "rerun probes 0",
        "rerun tracer nop",
        "rerun filter 0",
        "rerun optimization 1",
        "bpf-rerun exit 0",
        "bpf-rerun ok 1",
    ] {
        assert!(
            checks.iter().any(|c| c == expected),
            "missing `{expected}` in:\n{text}"
        );
    }
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("int ok_cells ") && c != "int ok_cells 0"),
        "{text}"
    );
    // The kills really left something for the rerun to clean.
    // kprobe_events and dynamic_events both list a kprobe.
    assert!(checks.iter().any(|c| c == "killed probes 2"), "{text}");
    assert!(
        checks.iter().any(|c| c == "killed optimization 0"),
        "{text}"
    );
    assert!(
        checks.iter().any(|c| c == "killed tracer function_graph"),
        "{text}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.contains("probe tracelab/kprobe_offset")),
        "{text}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.contains("current_tracer function_graph → nop")),
        "{text}"
    );
}

/// SIGKILL halfway through defining 1000 kprobes (`--functions 1000`): about 500 probes
/// stay behind, and the next run removes every one of them. Then SIGKILL while 10 other
/// tracers (trace instances) are on: the next run removes them too.
const KILLED_MID_ATTACH: &str = r#"
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
/tracelab-agent --plan /plan.json > /tmp/kill.out 2>&1
echo "@@check killed exit $?"
report killed
/tracelab-agent --plan /small.json > /tmp/rerun.out 2>&1
echo "@@check rerun exit $?"
echo "@@check rerun removed $(grep -o 'probe tracelab/kprobe_[0-9_]*' /tmp/rerun.out | wc -l)"
report rerun
/tracelab-agent --plan /others.json > /tmp/kill.out 2>&1
echo "@@check others-killed exit $?"
report others-killed
/tracelab-agent --plan /small.json > /tmp/rerun.out 2>&1
echo "@@check others-rerun exit $?"
echo "@@check others-rerun removed $(grep -o 'trace instance instances/tracelab_other_[0-9]*' /tmp/rerun.out | wc -l)"
report others-rerun
reboot -f
"#;

#[test]
fn a_run_killed_while_attaching_1000_probes_leaves_nothing_behind() {
    let catalog = Catalog::new(None).expect("catalog");
    let kernel = catalog
        .fetch_kernel(KernelVersion::V6_12, Arch::X86_64, false)
        .expect("kernel");
    let busybox = catalog.fetch_busybox(Arch::X86_64).expect("busybox");
    let init = format!("#!/bin/busybox sh\n{REPORT_STATE}{KILLED_MID_ATTACH}");
    let mut kill: serde_json::Value =
        serde_json::from_str(&plan(&["kprobe"], 200, 1, Some("kill-mid-attach"))).expect("plan");
    kill["functions"] = serde_json::json!([1000]);
    let mut archive = initramfs::build_with_init(&agent(), &busybox, &kill.to_string(), &init)
        .expect("initramfs");
    let mut others: serde_json::Value =
        serde_json::from_str(&plan(&["function"], 200, 2, Some("kill-when-armed"))).expect("plan");
    others["other_tracers"] = serde_json::json!([10]);
    archive.extend(
        initramfs::extra_files(&[
            ("small.json".to_string(), plan(&["baseline"], 100, 1, None)),
            ("others.json".to_string(), others.to_string()),
        ])
        .expect("extra files"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, archive).expect("write initrd");
    let setup = Setup::new(Arch::X86_64, Mode::Icount, Accel::Tcg);
    let timeouts = Timeouts {
        boot: Duration::from_secs(600),
        record: Duration::from_secs(900),
    };
    let outcome = console::run(setup.command(&kernel.image, &initrd), timeouts, &mut |_| {
        Ok(())
    })
    .expect("guest ran");
    let checks: Vec<String> = outcome
        .tail
        .iter()
        .filter_map(|l| l.split_once("@@check ").map(|(_, c)| c.trim().to_string()))
        .collect();
    let text = checks.join("\n");
    // 137: killed by SIGKILL, with the target's probe and half the others defined.
    assert!(checks.iter().any(|c| c == "killed exit 137"), "{text}");
    let left: u32 = checks
        .iter()
        .find_map(|c| c.strip_prefix("killed probes "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((400..=1000).contains(&left), "{left} probes left: {text}");
    let removed: u32 = checks
        .iter()
        .find_map(|c| c.strip_prefix("rerun removed "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // kprobe_events lists each probe once (dynamic_events too: `left` counts both).
    assert_eq!(removed * 2, left, "{text}");
    for expected in [
        "rerun exit 0",
        "rerun probes 0",
        "rerun tracer nop",
        "rerun filter 0",
        "others-killed exit 137",
        "others-killed instances 10",
        "others-rerun exit 0",
        "others-rerun removed 10",
        "others-rerun instances 0",
        "others-rerun tracer nop",
    ] {
        assert!(
            checks.iter().any(|c| c == expected),
            "missing `{expected}` in:\n{text}"
        );
    }
}
