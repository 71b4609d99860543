//! Captures the tracing state the lab touches ([`KernelState`]), for `tracelab-agent
//! --state`: what a test compares after a kill and a rerun with what it saw at boot.

use crate::tracefs::{Tracefs, KPROBES_OPTIMIZATION};
use tracelab_model::kernel_state::KernelState;
use tracelab_probes::bpf::PROG_PREFIX;

/// Reads the state once the kernel has freed what was released. A program, its maps and
/// links are freed after an RCU grace period once their last fd closes, so an object of
/// ours still listed is looked at again for up to 2 s before it counts.
pub fn capture() -> KernelState {
    let mut state = capture_now();
    for _ in 0..100 {
        let bpf = [&state.bpf_programs, &state.bpf_maps, &state.bpf_links];
        if bpf.iter().all(|v| v.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        state = capture_now();
    }
    state
}

/// Reads the state; a file this kernel lacks reads as empty (so a mechanism it cannot
/// run shows nothing rather than failing the capture).
fn capture_now() -> KernelState {
    let tracefs = Tracefs::open().ok();
    let read = |rel: &str| {
        tracefs
            .as_ref()
            .and_then(|t| t.read(rel).ok())
            .unwrap_or_default()
    };
    let entries = |rel: &str| -> Vec<String> {
        read(rel)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let group = format!("{}/", tracelab_probes::GROUP);
    let mut probes: Vec<String> = ["kprobe_events", "dynamic_events"]
        .iter()
        .flat_map(|f| entries(f))
        .filter(|l| l.contains(&group))
        .collect();
    // dynamic_events lists the kprobes of kprobe_events too.
    probes.sort();
    probes.dedup();
    let programs: Vec<(u32, String)> = libbpf_rs::query::ProgInfoIter::default()
        .map(|p| (p.id, p.name.to_string_lossy().into_owned()))
        .collect();
    let ours = |name: &str| name.starts_with(PROG_PREFIX);
    KernelState {
        probes,
        current_tracer: read("current_tracer").trim().to_string(),
        ftrace_filter: entries("set_ftrace_filter"),
        graph_function: entries("set_graph_function"),
        tracing_on: read("tracing_on").trim().to_string(),
        buffer_size_kb: read("buffer_size_kb").trim().to_string(),
        kprobes_optimization: std::fs::read_to_string(KPROBES_OPTIMIZATION)
            .unwrap_or_default()
            .trim()
            .to_string(),
        trace_options: entries("trace_options"),
        instances: tracefs
            .as_ref()
            .map(crate::other_tracers::lab_instances)
            .unwrap_or_default(),
        bpf_programs: programs
            .iter()
            .filter(|(_, n)| ours(n))
            .map(|(id, n)| format!("{n} (id {id})"))
            .collect(),
        // libbpf names a map by its C name, and an object's internal maps (.bss, .rodata)
        // `tracelab.<section>`.
        bpf_maps: libbpf_rs::query::MapInfoIter::default()
            .map(|m| (m.id, m.name.to_string_lossy().into_owned()))
            .filter(|(_, n)| n.starts_with("tracelab"))
            .map(|(id, n)| format!("{n} (id {id})"))
            .collect(),
        bpf_links: libbpf_rs::query::LinkInfoIter::default()
            .filter_map(|l| {
                let (_, prog) = programs.iter().find(|(id, _)| *id == l.prog_id)?;
                ours(prog).then(|| format!("{prog} (id {})", l.id))
            })
            .collect(),
    }
}
