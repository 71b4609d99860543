//! The paired measurement protocol: timed loops of the workload, baseline and armed
//! interleaved, each armed loop checked against its proof of firing before it counts.

use crate::clock::now_ns;
use crate::counters::Counters;
use crate::mechanism::Installed;
use anyhow::{bail, Context, Result};
use tracelab_model::plan::AgentPlan;
use tracelab_model::schema::{Measured, Phase, Sample};
use tracelab_workloads::Runner;

/// One timed loop of the workload, with the mechanism's event counter read around it.
fn timed_loop(
    plan: &AgentPlan,
    workload: &mut Runner,
    installed: Option<&dyn Installed>,
    counters: &mut Counters,
    repeat: u32,
    phase: Phase,
) -> Result<Sample> {
    run_workload(workload, (plan.calls / 10).max(1))?;
    settle();
    let before = installed.map(|i| i.hits()).transpose()?.flatten();
    counters.start();
    let start = now_ns();
    let ran = workload.run(plan.calls);
    let elapsed = now_ns().saturating_sub(start);
    let counts = counters.stop();
    ran.map_err(anyhow::Error::msg)?;
    let after = installed.map(|i| i.hits()).transpose()?.flatten();
    let fired = match (before, after) {
        (Some(b), Some(a)) => Some(a.checked_sub(b).context("event counter went backwards")?),
        _ => None,
    };
    crate::cleanup::check_interrupted()?;
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
pub(crate) fn measure(
    plan: &AgentPlan,
    workload: &mut Runner,
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
            let ran = workload.run(plan.calls);
            let elapsed = now_ns().saturating_sub(start);
            ran.map_err(anyhow::Error::msg)?;
            Ok(elapsed)
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

/// Runs the workload outside the timing (warmup).
fn run_workload(workload: &mut Runner, calls: u64) -> Result<()> {
    workload.run(calls).map_err(anyhow::Error::msg)
}

/// Lets deferred kernel work run before a timed loop. Under `-icount ... sleep=off` an
/// idle guest costs almost no host time, so this is nearly free there.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::schema::Status;

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
        ) -> Result<Option<tracelab_model::schema::KernelStatsLoop>> {
            let calls = 10u64;
            let elapsed = run()?;
            let runs = (calls * u64::from(self.programs)).saturating_add_signed(self.runs_off_by);
            Ok(Some(tracelab_model::schema::KernelStatsLoop {
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
        let mut workload = Runner::syscalls(tracelab_model::workload::Workload::Getppid)
            .expect("getppid needs no driver");
        let result = measure(&plan, &mut workload, &install, &mut counters, &mut out);
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
