//! The agent: runs a plan's cells on the kernel it is running on (in a guest, or natively)
//! and reports each finished cell at once.

use crate::measurement::clock::now_ns;
use crate::mechanism::{Installed, MechanismKind};
use crate::plan::AgentPlan;
use crate::protocol::Record;
use crate::resolve::{self, TargetFunction};
use crate::schema::{Measured, Phase, Sample, Status};
use crate::tracefs::{KernelEnv, Tracefs};
use anyhow::{bail, Context, Result};
use tracelab_workloads::Workload;

/// Runs every cell of `plan`, handing each record to `emit` as soon as it exists.
pub fn run(plan: &AgentPlan, emit: &mut dyn FnMut(&Record)) -> Result<()> {
    plan.validate().context("invalid plan")?;
    let workload: Workload = plan.workload.parse()?;
    let tracefs = Tracefs::open().ok();
    let env = KernelEnv::probe(tracefs.as_ref(), plan.kernel_config.clone());
    if let Some(t) = &tracefs {
        clear_leftovers(t).context("removing leftovers of an earlier run")?;
    }
    let target = resolve_target(plan, workload, &env);
    emit(&Record::Hello {
        kernel_release: env.release.clone(),
        machine: env.machine.clone(),
        agent_version: crate::VERSION.to_string(),
        function: target.as_ref().ok().map(|t| t.symbol.to_string()),
    });
    for &kind in &plan.mechanisms {
        let cell = run_cell(plan, workload, kind, &env, tracefs.as_ref(), &target);
        emit(&Record::Cell(cell));
    }
    emit(&Record::Done);
    Ok(())
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

/// Removes probes of our group that a crashed run left behind.
pub fn clear_leftovers(tracefs: &Tracefs) -> Result<()> {
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
        }
    }
    Ok(())
}

fn run_cell(
    plan: &AgentPlan,
    workload: Workload,
    kind: MechanismKind,
    env: &KernelEnv,
    tracefs: Option<&Tracefs>,
    target: &Result<TargetFunction>,
) -> Measured {
    let fail = |status, reason: String| {
        Measured::without_samples(kind.name(), workload.name(), plan.unit, status, reason)
    };
    if let Err(why) = kind.check_support(env) {
        return fail(Status::Unsupported, why.0);
    }
    let function = (kind != MechanismKind::Baseline)
        .then(|| target.as_ref().map(|t| t.symbol.to_string()).ok())
        .flatten();
    let install = || -> Result<Box<dyn Installed>> {
        if kind == MechanismKind::Baseline {
            return Ok(crate::mechanism::baseline());
        }
        let tracefs = tracefs.context("tracefs is not mounted")?;
        let target = target.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        kind.install(tracefs, target)
            .with_context(|| format!("attaching {kind} to {}", target.symbol))
    };
    let mut measured = Measured {
        mechanism: kind.name().to_string(),
        payload: None,
        stack: 1,
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
    };
    if let Err(e) = measure(plan, workload, &install, &mut measured) {
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
) -> Result<(u64, Option<u64>)> {
    workload.run((plan.calls / 10).max(1));
    settle();
    let before = installed.map(|i| i.hits()).transpose()?.flatten();
    let start = now_ns();
    workload.run(plan.calls);
    let elapsed = now_ns().saturating_sub(start);
    let after = installed.map(|i| i.hits()).transpose()?.flatten();
    let fired = match (before, after) {
        (Some(b), Some(a)) => Some(a.checked_sub(b).context("event counter went backwards")?),
        _ => None,
    };
    Ok((elapsed, fired))
}

/// Interleaves baseline loops (nothing installed: merely defining some probes already
/// slows every call) with armed loops, verifying on every loop that the mechanism fired
/// exactly once per call (or per its events-per-call) while armed and never while
/// installed but disarmed.
fn measure(
    plan: &AgentPlan,
    workload: Workload,
    install: &dyn Fn() -> Result<Box<dyn Installed>>,
    out: &mut Measured,
) -> Result<()> {
    let mut total_fired = None;
    for repeat in 0..plan.repeats {
        let (elapsed, _) = timed_loop(plan, workload, None)?;
        out.samples.push(Sample {
            repeat,
            phase: Phase::Baseline,
            calls: plan.calls,
            elapsed,
            fired: None,
            counters: Default::default(),
        });

        let mut installed = install()?;
        out.attach.get_or_insert_with(|| installed.describe());
        let counted = installed.hits()?.is_some();
        let epc = installed.events_per_call();
        if counted {
            out.events_per_call = Some(epc);
            let (_, idle) = timed_loop(plan, workload, Some(installed.as_ref()))?;
            check_fired(idle.unwrap_or(0), 0, Phase::Baseline)?;
        }
        installed.arm()?;
        let (elapsed, fired) = timed_loop(plan, workload, Some(installed.as_ref()))?;
        if let Some(f) = fired {
            check_fired(f, plan.calls * epc, Phase::Mechanism)?;
            *total_fired.get_or_insert(0) += f;
        }
        if counted && repeat + 1 == plan.repeats {
            // Before disarming: switching the tracer off empties the trace buffer.
            installed.check_trace()?;
        }
        installed.disarm()?;
        installed.remove().context("detaching")?;
        out.samples.push(Sample {
            repeat,
            phase: Phase::Mechanism,
            calls: plan.calls,
            elapsed,
            fired,
            counters: Default::default(),
        });
    }
    out.fired = total_fired;
    Ok(())
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
}
