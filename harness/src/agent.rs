//! The agent: runs a plan's cells on the kernel it is running on (in a guest, or natively)
//! and reports each finished cell at once.

use crate::cleanup;
use crate::measurement::clock::now_ns;
use crate::measurement::counters::Counters;
use crate::mechanism::{Installed, MechanismKind};
use crate::plan::{AgentPlan, CellSpec};
use crate::protocol::Record;
use crate::resolve::{self, TargetFunction};
use crate::schema::{Measured, Phase, Sample, Status};
use crate::tracefs::{KernelEnv, Tracefs};
use anyhow::{bail, Context, Result};
use tracelab_workloads::Workload;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every cell ran.
    Done,
    /// SIGINT or SIGTERM stopped it between loops; finished cells were reported.
    Interrupted,
}

/// Runs every cell of `plan`, handing each record to `emit` as soon as it exists.
pub fn run(plan: &AgentPlan, emit: &mut dyn FnMut(&Record)) -> Result<Completion> {
    plan.validate().context("invalid plan")?;
    let workload: Workload = plan.workload.parse()?;
    cleanup::catch_signals()?;
    let _lock = cleanup::RunLock::acquire()?;
    // In-kernel workloads need their BPF driver loaded for the whole run.
    let _driver = crate::mechanism::bpf::driver::install_for(workload)
        .context("setting up the in-kernel workload")?;
    let tracefs = Tracefs::open().ok();
    let env = KernelEnv::probe(tracefs.as_ref(), plan.kernel_config.clone());
    let mut leftovers = Vec::new();
    if let Some(t) = &tracefs {
        leftovers = cleanup::recover(t).context("restoring what an earlier run left")?;
        leftovers.extend(clear_leftovers(t).context("removing leftovers of an earlier run")?);
    }
    let target = resolve_target(plan, workload, &env);
    let cpu = pin_to_current_cpu();
    let mut counters = Counters::open();
    emit(&Record::Hello {
        kernel_release: env.release.clone(),
        machine: env.machine.clone(),
        agent_version: crate::VERSION.to_string(),
        function: target.as_ref().ok().map(|t| t.symbol.to_string()),
        cpu,
        counters_absent: counters.absent().clone(),
        leftovers_removed: leftovers,
        environment: Some(Box::new(crate::environment::capture())),
    });
    for spec in plan.cells() {
        let cell = run_cell(
            plan,
            workload,
            spec,
            &env,
            tracefs.as_ref(),
            &target,
            &mut counters,
        );
        emit(&Record::Cell(Box::new(cell)));
        // The cell a signal cut short is reported (failed, with the reason); none follows.
        if let Err(e) = cleanup::check_interrupted() {
            emit(&Record::Fatal {
                message: format!("{e:#}; finished cells are kept"),
            });
            return Ok(Completion::Interrupted);
        }
    }
    cleanup::forget();
    emit(&Record::Done);
    Ok(Completion::Done)
}

/// Pins the calling thread to the CPU it runs on, so every loop of a run sees the same
/// core (and its caches and counters). Returns that CPU.
fn pin_to_current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    let cpu = usize::try_from(cpu).ok()?;
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is a CPU number the kernel gave us.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` outlives the call.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    (rc == 0).then_some(cpu as u32)
}

fn resolve_target(plan: &AgentPlan, workload: Workload, env: &KernelEnv) -> Result<TargetFunction> {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    let filter_text = match Tracefs::open() {
        Ok(t) if t.exists("available_filter_functions") => {
            Some(t.read("available_filter_functions")?)
        }
        _ => None,
    };
    let filterable = filter_text.as_deref().map(resolve::filter_functions);
    let candidates: Vec<&str> = match &plan.function {
        Some(f) => vec![f.as_str()],
        None => workload.entry_symbols(&env.machine).to_vec(),
    };
    resolve::resolve(&candidates, &kallsyms, filterable.as_ref())
}

/// Removes probes of our group that a crashed run left behind; returns what it removed.
pub fn clear_leftovers(tracefs: &Tracefs) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let group = format!("{}/", tracelab_probes::GROUP);
    for file in ["kprobe_events", "dynamic_events"] {
        if !tracefs.exists(file) {
            continue;
        }
        for line in tracefs.read(file)?.lines() {
            let Some(name) = line
                .split_whitespace()
                .next()
                .and_then(|d| d.split_once(':'))
                .map(|(_, n)| n)
            else {
                continue;
            };
            let Some(event) = name.strip_prefix(&group) else {
                continue;
            };
            let _ = tracefs.write(&format!("events/{name}/enable"), "0");
            tracefs.append(file, &tracelab_probes::tracefs_probe::remove_line(event))?;
            removed.push(format!("probe {name}"));
        }
    }
    Ok(removed)
}

fn run_cell(
    plan: &AgentPlan,
    workload: Workload,
    spec: CellSpec,
    env: &KernelEnv,
    tracefs: Option<&Tracefs>,
    target: &Result<TargetFunction>,
    counters: &mut Counters,
) -> Measured {
    let kind = spec.mechanism;
    let fail = |status, reason: String| {
        let mut m =
            Measured::without_samples(kind.name(), workload.name(), plan.unit, status, reason);
        m.payload = spec.payload.map(|p| p.name().to_string());
        m.stack = spec.stack;
        m
    };
    if let Err(why) = kind.check_support(env) {
        return fail(Status::Unsupported, why.0);
    }
    let bpf = match crate::mechanism::bpf::cell_spec(spec, plan.calls) {
        Some(b) => match bpf_preflight(b, env, target, workload) {
            Ok(()) => Some(b),
            Err((status, why)) => return fail(status, why),
        },
        None => None,
    };
    let function = (kind != MechanismKind::Baseline)
        .then(|| target.as_ref().map(|t| t.symbol.to_string()).ok())
        .flatten();
    let install = || -> Result<Box<dyn Installed>> {
        if kind == MechanismKind::Baseline {
            return Ok(crate::mechanism::baseline());
        }
        let target = target.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        if let Some(b) = bpf {
            return crate::mechanism::bpf::install(b, target).map_err(|e| e.into_error());
        }
        let tracefs = tracefs.context("tracefs is not mounted")?;
        kind.install(tracefs, target)
            .with_context(|| format!("attaching {kind} to {}", target.symbol))
    };
    let mut measured = Measured {
        mechanism: kind.name().to_string(),
        payload: spec.payload.map(|p| p.name().to_string()),
        stack: spec.stack,
        workload: workload.name().to_string(),
        function,
        attach: None,
        status: Status::Ok,
        reason: None,
        unit: plan.unit,
        calls: plan.calls,
        events_per_call: None,
        fired: None,
        samples: Vec::new(),
        kernel_stats: Vec::new(),
    };
    if let Err(e) = measure(plan, workload, &install, counters, &mut measured) {
        measured.status = Status::Failed;
        measured.reason = Some(format!("{e:#}"));
    }
    measured
}

/// One timed loop of the workload, with the mechanism's event counter read around it.
fn timed_loop(
    plan: &AgentPlan,
    workload: Workload,
    installed: Option<&dyn Installed>,
    counters: &mut Counters,
    repeat: u32,
    phase: Phase,
) -> Result<Sample> {
    workload.run((plan.calls / 10).max(1));
    settle();
    let before = installed.map(|i| i.hits()).transpose()?.flatten();
    counters.start();
    let start = now_ns();
    workload.run(plan.calls);
    let elapsed = now_ns().saturating_sub(start);
    let counts = counters.stop();
    let after = installed.map(|i| i.hits()).transpose()?.flatten();
    let fired = match (before, after) {
        (Some(b), Some(a)) => Some(a.checked_sub(b).context("event counter went backwards")?),
        _ => None,
    };
    cleanup::check_interrupted()?;
    Ok(Sample {
        repeat,
        phase,
        calls: plan.calls,
        elapsed,
        fired,
        counters: counts,
    })
}

/// Interleaves baseline loops (nothing installed: merely defining some probes already
/// slows every call) with armed loops, verifying on every loop that the mechanism fired
/// exactly once per call (or per its events-per-call) while armed and never while
/// installed but disarmed.
fn measure(
    plan: &AgentPlan,
    workload: Workload,
    install: &dyn Fn() -> Result<Box<dyn Installed>>,
    counters: &mut Counters,
    out: &mut Measured,
) -> Result<()> {
    let mut total_fired = None;
    for repeat in 0..plan.repeats {
        let baseline = timed_loop(plan, workload, None, counters, repeat, Phase::Baseline)?;
        out.samples.push(baseline);

        let mut installed = install()?;
        out.attach.get_or_insert_with(|| installed.describe());
        let counted = installed.hits()?.is_some();
        let epc = installed.events_per_call();
        if counted {
            out.events_per_call = Some(epc);
            let idle = timed_loop(
                plan,
                workload,
                Some(installed.as_ref()),
                counters,
                repeat,
                Phase::Baseline,
            )?;
            check_fired(idle.fired.unwrap_or(0), 0, Phase::Baseline)?;
        }
        installed.arm()?;
        let armed = timed_loop(
            plan,
            workload,
            Some(installed.as_ref()),
            counters,
            repeat,
            Phase::Mechanism,
        )?;
        if let Some(f) = armed.fired {
            check_fired(f, plan.calls * epc, Phase::Mechanism)?;
            *total_fired.get_or_insert(0) += f;
        }
        // The kernel's own count and clock (BPF): an untimed-for-the-summary loop with
        // statistics on; for programs that count nothing themselves it is the proof.
        let mut stats_run = || -> Result<u64> {
            let start = now_ns();
            workload.run(plan.calls);
            Ok(now_ns().saturating_sub(start))
        };
        if let Some(k) = installed.stats_loop(&mut stats_run)? {
            if !counted {
                // The kernel's count is this mechanism's only proof: check it here too.
                let runs = k.run_cnt.saturating_sub(k.extra_runs);
                check_fired(runs, plan.calls * epc, Phase::Mechanism)?;
                out.events_per_call = Some(epc);
                *total_fired.get_or_insert(0) += runs;
            }
            out.kernel_stats.push(k);
        }
        if counted && repeat + 1 == plan.repeats {
            // Before disarming: switching the tracer off empties the trace buffer.
            installed.check_trace()?;
        }
        installed.disarm()?;
        installed.remove().context("detaching")?;
        out.samples.push(armed);
    }
    out.fired = total_fired;
    Ok(())
}

/// Loads, attaches and removes a BPF cell's programs once before measuring, so a kernel
/// that cannot run them gives `unsupported` with libbpf's and the verifier's words, and
/// any other failure gives `failed`.
fn bpf_preflight(
    spec: crate::mechanism::bpf::BpfSpec,
    env: &KernelEnv,
    target: &Result<TargetFunction>,
    workload: Workload,
) -> std::result::Result<(), (Status, String)> {
    let target = target
        .as_ref()
        .map_err(|e| (Status::Failed, format!("{e:#}")))?;
    crate::mechanism::bpf::check_workload(spec.attach, workload)
        .map_err(|u| (Status::Unsupported, u.0))?;
    crate::mechanism::bpf::check_support(spec.attach, env, Some(target))
        .map_err(|u| (Status::Unsupported, u.0))?;
    crate::mechanism::bpf::preflight(spec, target).map_err(|e| e.into_status())
}

/// Events beyond the workload's own calls are tolerated only in a tiny amount (another
/// process on a native host may call the function too); fewer is always an error.
fn check_fired(fired: u64, expected: u64, phase: Phase) -> Result<()> {
    let slack = if expected == 0 {
        0
    } else {
        expected / 1000 + 2
    };
    if fired < expected || fired > expected + slack {
        match phase {
            Phase::Baseline => bail!("fired {fired} times while disarmed (expected 0)"),
            Phase::Mechanism => bail!("fired {fired} times for an expected {expected}: the measurement would not be of this mechanism"),
        }
    }
    Ok(())
}

/// Lets deferred kernel work run before a timed loop. Under `-icount ... sleep=off` an
/// idle guest costs almost no host time, so this is nearly free there.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fired_must_match_calls() {
        assert!(check_fired(1000, 1000, Phase::Mechanism).is_ok());
        assert!(check_fired(1003, 1000, Phase::Mechanism).is_ok());
        assert!(check_fired(999, 1000, Phase::Mechanism).is_err());
        assert!(check_fired(0, 1000, Phase::Mechanism).is_err());
        assert!(check_fired(1004, 1000, Phase::Mechanism).is_err());
        assert!(check_fired(1, 0, Phase::Baseline)
            .unwrap_err()
            .to_string()
            .contains("disarmed"));
        assert!(check_fired(0, 0, Phase::Baseline).is_ok());
    }

    /// A mechanism that counts nothing itself (a BPF `empty` program): only the kernel's
    /// statistics loop proves it ran.
    struct StatsOnly {
        programs: u32,
        /// Runs the kernel reports per statistics loop, beyond calls × programs.
        runs_off_by: i64,
    }

    impl Installed for StatsOnly {
        fn describe(&self) -> String {
            "stats only".into()
        }
        fn arm(&mut self) -> Result<()> {
            Ok(())
        }
        fn disarm(&mut self) -> Result<()> {
            Ok(())
        }
        fn hits(&self) -> Result<Option<u64>> {
            Ok(None)
        }
        fn events_per_call(&self) -> u64 {
            u64::from(self.programs)
        }
        fn check_trace(&self) -> Result<()> {
            Ok(())
        }
        fn remove(self: Box<Self>) -> Result<()> {
            Ok(())
        }
        fn stats_loop(
            &mut self,
            run: &mut dyn FnMut() -> Result<u64>,
        ) -> Result<Option<crate::schema::KernelStatsLoop>> {
            let calls = 10u64;
            let elapsed = run()?;
            let runs = (calls * u64::from(self.programs)).saturating_add_signed(self.runs_off_by);
            Ok(Some(crate::schema::KernelStatsLoop {
                calls,
                elapsed,
                programs: self.programs,
                run_cnt: runs + 3,
                run_time_ns: 7 * runs,
                recursion_misses: 0,
                extra_runs: 3,
            }))
        }
    }

    fn stats_only_cell(runs_off_by: i64) -> (Result<()>, Measured) {
        let plan: AgentPlan = serde_json::from_value(serde_json::json!({
            "mechanisms": ["bpf-fentry"],
            "workload": "getppid",
            "function": null,
            "calls": 10,
            "repeats": 2,
            "unit": "ns",
            "kernel_config": {},
        }))
        .expect("plan");
        let mut out = Measured::without_samples(
            "bpf-fentry",
            "getppid",
            plan.unit,
            Status::Ok,
            String::new(),
        );
        let install = || -> Result<Box<dyn Installed>> {
            Ok(Box::new(StatsOnly {
                programs: 2,
                runs_off_by,
            }))
        };
        let mut counters = Counters::open();
        let result = measure(&plan, Workload::Getppid, &install, &mut counters, &mut out);
        (result, out)
    }

    #[test]
    fn kernel_statistics_prove_a_mechanism_that_counts_nothing() {
        let (result, out) = stats_only_cell(0);
        result.expect("measured");
        assert_eq!(out.events_per_call, Some(2));
        // 10 calls × 2 programs × 2 repeats, without the runs the kernel adds.
        assert_eq!(out.fired, Some(40));
        assert_eq!(out.kernel_stats.len(), 2);
        assert!(out.kernel_stats.iter().all(|k| k.run_time_ns == 140));
    }

    #[test]
    fn too_few_kernel_runs_fail_the_cell() {
        let (result, _) = stats_only_cell(-1);
        let err = format!("{:#}", result.expect_err("must fail"));
        assert!(err.contains("fired 19 times for an expected 20"), "{err}");
    }
}
