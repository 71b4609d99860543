//! bpftrace as a peer: the same attach points as the lab's BPF cells, each program
//! counting its hits, attached while the lab's native baseline loop makes the calls
//! (bpftrace cannot drive calls itself).

use crate::guest::userland::{quote, Step, RESULTS, TRACELAB};

/// One bpftrace probe and the lab cell it stands beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The selftests bench's name for the attach type (`trig-<name>`).
    pub name: &'static str,
    /// The lab's workload that makes the calls, and its cell of the same attach type.
    pub workload: &'static str,
    pub twin: &'static str,
    /// The bpftrace program; None when bpftrace has no such probe (then `missing` says why).
    pub program: Option<&'static str>,
    pub missing: &'static str,
    /// What most likely makes bpftrace's figure differ from the lab's beyond the
    /// tolerance.
    pub likely: &'static str,
}

/// The difference every probe has: the bodies are not the same program.
const BODY: &str = "a different program body (bpftrace's `count()` updates a map; the lab's `count` payload increments one per-CPU slot)";

const fn probe(
    name: &'static str,
    workload: &'static str,
    twin: &'static str,
    program: &'static str,
) -> Probe {
    Probe {
        name,
        workload,
        twin,
        program: Some(program),
        missing: "",
        likely: BODY,
    }
}

pub(super) const NUMA: &str = "bpf-numa-batch";
pub(super) const KFUNC: &str = "bpf-kfunc-batch";

/// The attach types of the selftests' trig-* benches, on the functions the benches use
/// (`bpf_get_numa_node_id`, and the `bpf_trigger_tp` tracepoint of `bpf-kfunc-batch`).
/// A wildcard makes bpftrace attach a kprobe_multi link (it uses one for any pattern the
/// kernel supports multi-links for).
pub const PROBES: &[Probe] = &[
    probe(
        "kprobe",
        NUMA,
        "bpf-kprobe",
        "kprobe:bpf_get_numa_node_id { @c = count(); }",
    ),
    probe(
        "kretprobe",
        NUMA,
        "bpf-kretprobe",
        "kretprobe:bpf_get_numa_node_id { @c = count(); }",
    ),
    probe(
        "kprobe-multi",
        NUMA,
        "bpf-kprobe-multi",
        "kprobe:bpf_get_numa_node_i* { @c = count(); }",
    ),
    probe(
        "kretprobe-multi",
        NUMA,
        "bpf-kretprobe-multi",
        "kretprobe:bpf_get_numa_node_i* { @c = count(); }",
    ),
    probe(
        "fentry",
        NUMA,
        "bpf-fentry",
        "fentry:bpf_get_numa_node_id { @c = count(); }",
    ),
    probe(
        "fexit",
        NUMA,
        "bpf-fexit",
        "fexit:bpf_get_numa_node_id { @c = count(); }",
    ),
    Probe {
        likely: "a different program body: bpftrace's tracepoint programs return 1 (bpftrace PR #1857, so that perf keeps the event), and the kernel then writes every event into the perf buffer as well (perf_trace_run_bpf_submit → perf_tp_event); the lab's program returns 0",
        ..probe(
            "tp",
            KFUNC,
            "bpf-tp",
            "tracepoint:bpf_test_run:bpf_trigger_tp { @c = count(); }",
        )
    },
    probe(
        "rawtp",
        KFUNC,
        "bpf-raw-tp",
        "rawtracepoint:bpf_trigger_tp { @c = count(); }",
    ),
    Probe {
        name: "fmodret",
        workload: KFUNC,
        twin: "bpf-fmod-ret",
        program: None,
        missing: "bpftrace has no fmod_ret probe type",
        likely: "",
    },
];

/// The lab's own mechanisms on `workload`, beside the peers.
pub(super) fn twins(workload: &str) -> String {
    let mut m = vec!["baseline"];
    m.extend(
        PROBES
            .iter()
            .filter(|p| p.workload == workload)
            .map(|p| p.twin),
    );
    m.join(",")
}

/// Where a native run of the lab on `workload` writes its results in the guest.
pub(super) fn lab_dir(workload: &str) -> String {
    format!("{RESULTS}/lab-{workload}")
}

pub(super) fn probe_dir(p: &Probe) -> String {
    format!("{RESULTS}/bpftrace-{}", p.name)
}

/// A native run of the lab in the guest: `mechanisms` on `workload`, the BPF ones with
/// `payloads`.
fn lab_run(workload: &str, mechanisms: &str, payloads: &str, calls: u64, out: &str) -> String {
    let args: Vec<String> = [
        "run",
        "--payloads",
        payloads,
        "--target",
        "local",
        "--workload",
        workload,
        "--mechanisms",
        mechanisms,
        "--calls",
        &calls.to_string(),
        "--repeats",
        "3",
        "--out",
        out,
    ]
    .iter()
    .map(|a| quote(a))
    .collect();
    format!("{TRACELAB} {} 2>&1", args.join(" "))
}

/// The guest's steps: bpftrace's version, the lab's cells on both workloads, then per
/// probe bpftrace attached (up to 20 guest minutes to compile and attach) while the lab's
/// baseline loop runs, and its count when it ends.
pub(super) fn steps(calls: u64) -> Vec<Step> {
    let mut steps = vec![Step {
        name: "bpftrace-version".into(),
        script: "bpftrace --version 2>&1".into(),
    }];
    for workload in [NUMA, KFUNC] {
        steps.push(Step {
            name: format!("lab-{workload}"),
            // `count` as bpftrace's programs count; `empty` beside the selftests bench,
            // whose figure holds no program body.
            script: lab_run(
                workload,
                &twins(workload),
                "count,empty",
                calls,
                &lab_dir(workload),
            ),
        });
    }
    for p in PROBES {
        let Some(program) = p.program else { continue };
        let log = format!("/tmp/bpftrace-{}.log", p.name);
        steps.push(Step {
            name: format!("bpftrace-{}", p.name),
            script: format!(
                "bpftrace -e {program} > {log} 2>&1 &
pid=$!
i=0
while ! grep -q '^Attaching' {log} && kill -0 $pid 2>/dev/null && [ $i -lt 1200 ]; do sleep 1; i=$((i+1)); done
sleep 5
if kill -0 $pid 2>/dev/null; then
{run}
rc=$?
else
echo 'bpftrace ended before the loop'; rc=1
fi
kill -INT $pid 2>/dev/null; wait $pid
cat {log}
[ $rc -eq 0 ]",
                program = quote(program),
                run = lab_run(p.workload, "baseline", "count", calls, &probe_dir(p)),
            ),
        });
    }
    steps
}

/// The count bpftrace printed at exit (`@c: N`), the proof its probe fired.
pub(super) fn count(output: &str) -> Option<u64> {
    output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("@c:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trig_bench_has_a_probe_or_a_reason() {
        let names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "kprobe",
                "kretprobe",
                "kprobe-multi",
                "kretprobe-multi",
                "fentry",
                "fexit",
                "tp",
                "rawtp",
                "fmodret"
            ]
        );
        assert_eq!(twins(KFUNC), "baseline,bpf-tp,bpf-raw-tp,bpf-fmod-ret");
        let steps = steps(2000);
        assert_eq!(steps.len(), 1 + 2 + 8);
        let fentry = steps
            .iter()
            .find(|s| s.name == "bpftrace-fentry")
            .expect("fentry");
        assert!(
            fentry
                .script
                .starts_with("bpftrace -e 'fentry:bpf_get_numa_node_id { @c = count(); }' >"),
            "{}",
            fentry.script
        );
        assert!(fentry.script.contains("'--mechanisms' 'baseline'"));
        assert_eq!(count("Attaching 1 probe...\n\n@c: 120000\n"), Some(120_000));
        assert_eq!(count("Attaching 1 probe...\n"), None);
    }
}
