//! The paired measurement protocol: timed loops of the workload, baseline and armed
//! interleaved, each armed loop checked against its proof of firing before it counts.
//!
//! Every timed loop starts after the kernel has gone quiet ([`crate::quiesce`]), so no
//! deferred work of an install, arm, disarm or remove lands in it; a loop in which the
//! measuring thread was switched out anyway is contaminated, thrown away and run again
//! (a bounded number of times; then the cell fails). Pairs alternate their order (baseline
//! first in even repeats, armed first in odd ones), so whatever an install or a teardown
//! leaves behind cannot fall on one side of every pair.

use crate::clock::{align_to_tick, loop_clock, now_ns, thread_switches, thread_time_ns};
use crate::counters::Counters;
use crate::interrupts::Interrupts;
use crate::mechanism::Installed;
use crate::other_tracers::OtherTracers;
use crate::quiesce::{Monitor, Policy};
use anyhow::{bail, Context, Result};
use tracelab_model::plan::{Adaptive, AgentPlan, Fault};
use tracelab_model::schema::{
    AttachTime, Cleanliness, Measured, Phase, Precision, Sample, Span, StackTraces, Stopped, Unit,
};
use tracelab_model::summary::{half_width, precision_goal, summarize};
use tracelab_workloads::Runner;

/// A contaminated loop is run again at most this many times; each try waits longer for
/// a quiet kernel (idle guest time is nearly free under icount).
const MAX_RERUNS: u32 = 8;

/// What every loop of a cell shares.
struct Loops<'a> {
    /// Calls per timed loop: the plan's, or in a guest what fits between two ticks
    /// ([`crate::loop_size`]).
    calls: u64,
    /// Whether `calls` was sized so that no loop holds a tick.
    tick_free: bool,
    plan: &'a AgentPlan,
    workload: &'a mut Runner,
    counters: &'a mut Counters,
    policy: Policy,
    monitor: Monitor,
    clean: Cleanliness,
    /// The other tracers beside the cell, whose functions must not run in a loop.
    beside: Option<&'a OtherTracers>,
    /// `/proc/interrupts` and `/proc/softirqs`, read around every loop in a guest.
    interrupts: Option<Interrupts>,
    /// Which of their functions ran in the last loop.
    beside_ran: Vec<String>,
}

impl Loops<'_> {
    /// One timed loop of the workload, with the mechanism's event counter read around it,
    /// started once the kernel is quiet.
    fn once(
        &mut self,
        mut installed: Option<&mut (dyn Installed + 'static)>,
        repeat: u32,
        phase: Phase,
        // The try number of a timed loop; None for an untimed one (only its events
        // count), which needs no quiet kernel.
        attempt: Option<u32>,
    ) -> Result<Sample> {
        let calls = self.calls;
        run_workload(self.workload, (calls / 10).max(1))?;
        if let Some(i) = installed.as_mut() {
            i.before_loop()?;
        }
        let installed = installed.as_deref();
        // Read before the wait: reading tracefs files queues work of its own (dentries
        // freed later), which the wait must outlast.
        let before = installed.map(|i| i.hits()).transpose()?.flatten();
        if let Some(b) = self.beside {
            b.clear()?;
        }
        if let Some(attempt) = attempt {
            let waited = self.monitor.wait(self.policy.longer(attempt));
            self.clean.quiesce_time += waited.time;
            if !waited.quiet {
                self.clean.unquiet_starts += 1;
            }
            if !self.monitor.start(self.policy.start) {
                self.clean.unsettled_starts += 1;
            }
        }
        // Alone on one CPU, every RCU softirq in the loop ran inside it.
        let (rcu0, interrupts0) = if self.plan.alone {
            (
                self.monitor.rcu_softirqs(),
                self.interrupts.as_mut().and_then(Interrupts::read),
            )
        } else {
            (None, None)
        };
        if let Some(i) = installed {
            i.loop_starts()?;
        }
        self.counters.start();
        let switches0 = thread_switches();
        let thread0 = thread_time_ns();
        // The plugin's markers sit just outside the clock reads (`--attribution`).
        let loop_serial = self.plan.attribution.then(crate::marker::start);
        let start = loop_clock();
        let ran = self.workload.run(calls);
        let elapsed = loop_clock().saturating_sub(start);
        if loop_serial.is_some() {
            crate::marker::end();
        }
        let thread_time = thread_time_ns().saturating_sub(thread0);
        let switches = thread_switches().saturating_sub(switches0);
        let counts = self.counters.stop();
        let rcu_softirqs = rcu0.and_then(|a| Some(self.monitor.rcu_softirqs()?.saturating_sub(a)));
        let interrupts = interrupts0
            .and_then(|a| Some(self.interrupts.as_mut()?.read()?.since(&a)))
            .unwrap_or_default();
        ran.map_err(anyhow::Error::msg)?;
        let after = installed.map(|i| i.hits()).transpose()?.flatten();
        self.beside_ran = match self.beside {
            Some(b) => b.ran()?,
            None => Vec::new(),
        };
        let fired = match (before, after) {
            (Some(b), Some(a)) => Some(a.checked_sub(b).context("event counter went backwards")?),
            _ => None,
        };
        crate::cleanup::check_interrupted()?;
        Ok(Sample {
            repeat,
            phase,
            calls,
            elapsed,
            fired,
            counters: counts,
            thread_time: Some(thread_time),
            switches: Some(switches),
            rcu_softirqs,
            interrupts,
            loop_serial,
        })
    }

    /// [`Loops::once`] until a loop runs with the measuring thread never switched out, no
    /// RCU softirq, no interrupt or softirq but the tick's inside it
    /// ([`crate::interrupts::foreign`]) and no function of the other tracers called.
    fn clean(
        &mut self,
        mut installed: Option<&mut (dyn Installed + 'static)>,
        repeat: u32,
        phase: Phase,
    ) -> Result<Sample> {
        let mut last = (0, 0, Vec::new());
        for attempt in 0..=MAX_RERUNS {
            let s = self.once(installed.as_deref_mut(), repeat, phase, Some(attempt))?;
            // A workload that switches tasks by design (the pipe's peer, forked children)
            // or queues RCU callbacks itself (an exited task, a closed file on 6.1) does
            // so in every loop: that is its own cost, not proof of foreign work.
            let kind = self.workload.kind();
            let switched = s.switches != Some(0) && !kind.blocks();
            let rcu = s.rcu_softirqs.unwrap_or(0) != 0 && !kind.defers_rcu_work();
            let foreign = crate::interrupts::foreign(&s.interrupts, kind, self.tick_free);
            if !switched && !rcu && foreign.is_empty() && self.beside_ran.is_empty() {
                self.clean.reruns += attempt;
                return Ok(s);
            }
            last = (
                s.switches.unwrap_or_default(),
                s.rcu_softirqs.unwrap_or_default(),
                foreign,
            );
        }
        self.clean.reruns += MAX_RERUNS;
        let beside = match self.beside_ran.as_slice() {
            [] => String::new(),
            ran => format!(", and the other tracers' {} ran", ran.join(", ")),
        };
        let interrupts = match last.2.as_slice() {
            [] => String::new(),
            rows => format!(", other interrupts and softirqs: {}", rows.join(", ")),
        };
        bail!(
            "every one of {} tries of a {} loop was interrupted by other work ({} context switches and {} RCU softirqs in the last{interrupts}{beside}): no clean figure",
            MAX_RERUNS + 1,
            match phase {
                Phase::Baseline => "baseline",
                Phase::Mechanism => "armed",
            },
            last.0,
            last.1,
        )
    }
}

/// Interleaves baseline loops (nothing on the call path: merely defining some probes
/// already slows every call, so probes are removed; BPF programs stay loaded without
/// links) with armed loops, verifying on every loop that the mechanism fired exactly once
/// per call (or per its events-per-call) while armed, and once per cell that it never
/// fires while installed but disarmed.
/// Where a cell's installations come from.
pub(crate) struct Installs<'a> {
    /// What the preflight installed and left disarmed, used first (BPF).
    pub first: Option<Box<dyn Installed>>,
    /// Installs the mechanism afresh.
    pub again: &'a dyn Fn() -> Result<Box<dyn Installed>>,
}

/// One loop run exactly as a cell's armed loops are (warm-up, the trace emptied, the
/// counter read, the quiet wait, the loop, the counter read, the trace checked), with
/// `installed` armed: what the choice of other functions screens
/// ([`crate::function_set`]). The check's verdict is not the point and is dropped.
pub(crate) fn rehearse(
    plan: &AgentPlan,
    workload: &mut Runner,
    counters: &mut Counters,
    mut installed: Option<&mut (dyn Installed + 'static)>,
) -> Result<()> {
    let mut loops = Loops {
        calls: plan.calls,
        tick_free: false,
        plan,
        workload,
        counters,
        policy: if plan.unit == Unit::Insn {
            Policy::GUEST
        } else {
            Policy::NATIVE
        },
        monitor: Monitor::open(plan.peer_cpu),
        interrupts: Interrupts::open(),
        clean: Cleanliness::default(),
        beside: None,
        beside_ran: Vec::new(),
    };
    let s = loops.once(installed.as_deref_mut(), 0, Phase::Mechanism, Some(0))?;
    if let (Some(i), Some(f)) = (installed, s.fired) {
        let _ = i.check_trace(f, 0);
    }
    Ok(())
}

/// Runs `step` and times it on both clocks (elapsed in the cell's unit, the thread's CPU
/// time).
fn timed<T>(step: impl FnOnce() -> Result<T>) -> Result<(T, Span)> {
    let (e0, t0) = (now_ns(), thread_time_ns());
    let out = step()?;
    let span = Span {
        elapsed: now_ns().saturating_sub(e0),
        thread: thread_time_ns().saturating_sub(t0),
    };
    Ok((out, span))
}

pub(crate) fn measure(
    plan: &AgentPlan,
    workload: &mut Runner,
    installs: Installs<'_>,
    counters: &mut Counters,
    beside: Option<&OtherTracers>,
    out: &mut Measured,
) -> Result<()> {
    let policy = if plan.unit == Unit::Insn {
        Policy::GUEST
    } else {
        Policy::NATIVE
    };
    let mut loops = Loops {
        calls: plan.calls,
        tick_free: false,
        plan,
        workload,
        counters,
        policy,
        monitor: Monitor::open(plan.peer_cpu),
        interrupts: Interrupts::open(),
        clean: Cleanliness::default(),
        beside,
        beside_ran: Vec::new(),
    };
    let result = pairs(&mut loops, installs, out);
    if let Some(p) = out.precision.filter(|p| p.stopped != Stopped::Precise) {
        out.reason = Some(imprecise(&p, plan));
    }
    // The slack an armed loop was allowed (0 in a guest; none without events).
    loops.clean.firing_slack = out
        .events_per_call
        .map_or(0, |epc| crate::firing::slack(plan.alone, out.calls * epc));
    out.cleanliness = Some(loops.clean);
    result
}

fn pairs(loops: &mut Loops<'_>, installs: Installs<'_>, out: &mut Measured) -> Result<()> {
    let plan = loops.plan;
    let mut total_fired = None;
    // Traced calls per operation: the workload's design for its own function, else
    // counted in the first armed loop.
    let mut per_op = PerOp {
        design: plan
            .function
            .is_none()
            .then(|| loops.workload.kind().traced_per_op()),
        counted: None,
    };
    // A mechanism inert when disarmed (BPF programs without links) is loaded once (by
    // the preflight) and kept through the cell's baseline loops; everything else is
    // installed per repeat.
    let install = installs.again;
    // On the functions axis every repeat installs afresh, so that every cell's attach
    // time runs from nothing (loading BPF programs included) and the curve against N
    // compares like with like.
    let fresh = plan.many_functions();
    let mut kept = if fresh {
        if let Some(i) = installs.first {
            i.remove().context("detaching the preflight's programs")?;
        }
        None
    } else {
        installs.first
    };
    // In a guest, the calls that fit between two ticks ([`crate::loop_size`]), sized on
    // an armed run of the settling install (or of the kept one). Not for a workload that
    // blocks (it sleeps through ticks by design) nor on the functions axis (no install
    // may come before the first measured one there): those keep the plan's calls.
    let period = crate::clock::tick_period_ns()
        .filter(|_| plan.unit == Unit::Insn && !fresh && !loops.workload.kind().blocks());
    let mut cost = None;
    // One install armed and removed before the first measured one, for a mechanism
    // installed per repeat: the first registration of its kind in a boot is a state of its
    // own (arm64 7.3 fprobe-exit: fgraph's return path, ftrace_return_to_handler, runs its
    // loop over the registered ops once for the first install and twice for every later
    // one, 12 insn per call), so every measured install is a later one. Not on the
    // functions axis, whose attach times start from nothing by definition.
    if kept.is_none() && !fresh && out.mechanism != "baseline" {
        let mut settle = install().context("the settling install")?;
        settle.arm().context("arming the settling install")?;
        if period.is_some() {
            cost = Some(ns_per_call(loops.workload, plan.calls)?);
        }
        settle.disarm().context("disarming the settling install")?;
        settle.remove().context("removing the settling install")?;
    } else if period.is_some() {
        cost = Some(match kept.as_mut() {
            Some(k) => {
                k.arm().context("arming for the loop's size")?;
                let cost = ns_per_call(loops.workload, plan.calls);
                k.disarm().context("disarming after the loop's size")?;
                cost?
            }
            None => ns_per_call(loops.workload, plan.calls)?,
        });
    }
    let sized = match (period, cost) {
        (Some(period), Some(cost)) => crate::loop_size::size(plan.calls, cost, period),
        _ => crate::loop_size::Sized {
            calls: plan.calls,
            tick_free: false,
        },
    };
    let calls = sized.calls;
    loops.calls = calls;
    loops.tick_free = sized.tick_free;
    out.calls = calls;
    // The stack traces of the installs already removed (stack-trace payloads).
    let mut removed_traces = StackTraces::default();
    let started = now_ns();
    for repeat in 0.. {
        if repeat >= plan.repeats {
            // Enough pairs, unless a real-time cell's interval asks for more.
            let Some(adaptive) = plan.adaptive else { break };
            if let Some(p) = precision(adaptive, repeat, started, &out.samples) {
                out.precision = Some(p);
                break;
            }
        }
        // ABBA: baseline first in even repeats, last in odd ones.
        let baseline_first = repeat % 2 == 0;
        if baseline_first {
            let baseline = loops.clean(None, repeat, Phase::Baseline)?;
            out.samples.push(baseline);
        }

        let (mut installed, install_time) = match kept.take() {
            Some(i) => (i, None),
            None => {
                let (i, span) = timed(install)?;
                (i, Some(span))
            }
        };
        out.attach.get_or_insert_with(|| installed.describe());
        let counted = installed.hits()?.is_some();
        let epc = installed.events_per_call();
        if counted {
            out.events_per_call = Some(epc);
            // Installed but disarmed, it must not fire: proven once per cell (the same
            // code defines it for every repeat).
            if repeat == 0 {
                let idle = loops.once(Some(installed.as_mut()), repeat, Phase::Baseline, None)?;
                check_fired(idle.fired.unwrap_or(0), 0, plan.alone, Phase::Baseline)?;
            }
        }
        let ((), arm_time) = timed(|| installed.arm())?;
        if repeat == 1 && out.mechanism != "baseline" {
            inject(plan.fault);
        }
        let mut tries = 0;
        let armed = loop {
            let armed = loops.clean(Some(installed.as_mut()), repeat, Phase::Mechanism)?;
            let Some(f) = armed.fired else { break armed };
            let mut check = || -> Result<()> {
                let expected = per_op.expected(calls, plan.alone, epc, f)?;
                check_fired(f, expected, plan.alone, Phase::Mechanism)?;
                // Before disarming: switching the tracer off empties the trace buffer.
                installed.check_trace(expected, crate::firing::slack(plan.alone, expected))
            };
            match check() {
                Ok(()) => {
                    *total_fired.get_or_insert(0) += f;
                    break armed;
                }
                // On several functions, a loop in which one of the others ran (a timer's
                // function the screening's rehearsal did not meet) is contaminated like
                // one with a switch: thrown away and run again, a bounded number of times.
                Err(_) if !out.functions.is_one() && tries < MAX_RERUNS => {
                    tries += 1;
                    loops.clean.reruns += 1;
                }
                Err(e) => return Err(e),
            }
        };
        // While armed, the code the install made at run time has its kallsyms names
        // (`--attribution` names the plugin's blocks by them). Read once per cell: reading
        // /proc/kallsyms formats every kernel symbol, about 1.3 s of an emulated guest's
        // time each. The names hold for the later repeats as long as a re-install puts its
        // code where the first did (the attribution guest test checks that no block of any
        // repeat is left unnamed); code placed beyond a page from every first-repeat
        // symbol is counted as `[kernel code outside the image, unnamed]`.
        if plan.attribution && repeat == 0 {
            out.runtime_symbols = crate::symbols::runtime().context("reading run-time symbols")?;
            out.runtime_symbols.sort();
        }
        // The kernel's own count and clock (BPF): an untimed-for-the-summary loop with
        // statistics on. For programs that count nothing themselves it is the proof, in
        // every repeat; for the others a cross-check, once per cell.
        let workload = &mut *loops.workload;
        let mut stats_run = || -> Result<u64> {
            let start = loop_clock();
            let ran = workload.run(calls);
            let elapsed = loop_clock().saturating_sub(start);
            ran.map_err(anyhow::Error::msg)?;
            Ok(elapsed)
        };
        let stats = if counted && repeat > 0 {
            None
        } else {
            // The firing rule is the timed loops': on several functions, a statistics
            // loop in which one of the others ran is run again, a bounded number of times.
            let mut tries = 0;
            loop {
                match installed.stats_loop(calls, &mut stats_run) {
                    Ok(s) => break s,
                    Err(_) if !out.functions.is_one() && tries < MAX_RERUNS => {
                        tries += 1;
                        loops.clean.reruns += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(k) = stats {
            if !counted {
                // The kernel's count is this mechanism's only proof: check it here too.
                let runs = k.run_cnt.saturating_sub(k.extra_runs);
                let expected = per_op.expected(calls, plan.alone, epc, runs)?;
                check_fired(runs, expected, plan.alone, Phase::Mechanism)?;
                out.events_per_call = Some(epc);
                *total_fired.get_or_insert(0) += runs;
            }
            out.kernel_stats.push(k);
        }
        let ((), disarm_time) = timed(|| installed.disarm())?;
        let traces = installed.stack_traces()?;
        let remove_time = if installed.inert_when_disarmed() && !fresh {
            // Counted since its install: what it took so far replaces the last read.
            out.stack_traces = traces.map(|t| t.plus(removed_traces));
            kept = Some(installed);
            None
        } else {
            if let Some(t) = traces {
                removed_traces = removed_traces.plus(t);
                out.stack_traces = Some(removed_traces);
            }
            let ((), span) = timed(|| installed.remove().context("detaching"))?;
            Some(span)
        };
        if out.mechanism != "baseline" {
            out.attach_times.push(AttachTime {
                repeat,
                install: install_time,
                arm: arm_time,
                disarm: disarm_time,
                remove: remove_time,
            });
        }
        out.samples.push(armed);
        if !baseline_first {
            let baseline = loops.clean(None, repeat, Phase::Baseline)?;
            out.samples.push(baseline);
        }
    }
    if let Some(i) = kept {
        i.remove().context("detaching")?;
    }
    out.fired = total_fired;
    out.traced_per_op = per_op.counted;
    Ok(())
}

/// What one call of the workload costs as it stands (armed or not), in the cell's unit:
/// a short run timed from right after a tick (no tick inside at the sizes measured).
fn ns_per_call(workload: &mut Runner, bound: u64) -> Result<f64> {
    let n = bound.clamp(1, 100);
    run_workload(workload, n)?;
    align_to_tick(crate::quiesce::TICK_WAIT_NS);
    let start = now_ns();
    let ran = workload.run(n);
    let elapsed = now_ns().saturating_sub(start);
    ran.map_err(anyhow::Error::msg)?;
    Ok(elapsed as f64 / n as f64)
}

/// Calls of the traced function per operation of the workload.
struct PerOp {
    /// What the workload does by design (None: a function chosen with `--function`).
    design: Option<u64>,
    /// What the first counted loop established.
    counted: Option<u64>,
}

impl PerOp {
    /// The events a loop that `fired` must hold: calls × traced calls per operation ×
    /// events per call. The first loop fixes the traced calls per operation: the design,
    /// or the count itself, which must then be a whole, nonzero number per operation
    /// (exactly, where the agent runs alone).
    fn expected(&mut self, calls: u64, alone: bool, epc: u64, fired: u64) -> Result<u64> {
        let per_call = calls.saturating_mul(epc).max(1);
        let n = match (self.counted, self.design) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                if alone && fired % per_call != 0 {
                    bail!(
                        "fired {fired} times in {calls} operations ({epc} events per call): not a whole number of calls per operation, so something else calls the function too"
                    );
                }
                let n = (fired as f64 / per_call as f64).round() as u64;
                if n == 0 {
                    bail!("fired {fired} times in {calls} operations: the workload does not call the function");
                }
                n
            }
        };
        self.counted = Some(n);
        Ok(per_call.saturating_mul(n))
    }
}

/// The note an imprecise real-time cell carries (its status stays ok: the figure is
/// honest, its interval says how far to trust it).
fn imprecise(p: &Precision, plan: &AgentPlan) -> String {
    let reached = match p.half_width {
        Some(h) => format!("±{h:.2} ns"),
        None => "no interval".to_string(),
    };
    let why = match (p.stopped, plan.adaptive) {
        (Stopped::Budget, Some(a)) => format!("the {} s budget ended", a.budget_secs),
        _ => format!("{} pairs is the most allowed", p.pairs),
    };
    format!(
        "imprecise: 95% CI {reached} after {} pairs, goal ±{:.2} ns ({why})",
        p.pairs, p.goal
    )
}

/// Whether a real-time cell with `pairs` pairs stops, and why: its 95% CI reached the goal
/// (checked at every fifth pair: the bootstrap costs pairs × resamples), the most pairs
/// allowed ran, or the budget ended. None: one more pair.
fn precision(
    adaptive: Adaptive,
    pairs: u32,
    started: u64,
    samples: &[Sample],
) -> Option<Precision> {
    let budget_ns = adaptive.budget_secs.saturating_mul(1_000_000_000);
    let over_budget = now_ns().saturating_sub(started) >= budget_ns;
    let at_most = pairs >= adaptive.max_repeats;
    let checked = pairs % 5 == 0 || at_most || over_budget;
    let summary = checked.then(|| summarize(samples)).flatten();
    let goal = summary.as_ref().map_or(0.5, |s| precision_goal(s.overhead));
    let half_width = summary.as_ref().and_then(half_width);
    let stopped = if half_width.is_some_and(|h| h <= goal) {
        Stopped::Precise
    } else if at_most {
        Stopped::MaxRepeats
    } else if over_budget {
        Stopped::Budget
    } else {
        return None;
    };
    Some(Precision {
        goal,
        half_width,
        pairs,
        stopped,
    })
}

/// Sends the agent the signal a clean-up test asked for (see `AgentPlan::fault`).
fn inject(fault: Option<Fault>) {
    let sig = match fault {
        None | Some(Fault::PanicAfterMs(_) | Fault::KillMidAttach | Fault::HangMidAttach) => return,
        Some(Fault::InterruptWhenArmed) => libc::SIGINT,
        Some(Fault::KillWhenArmed) => libc::SIGKILL,
    };
    // SAFETY: raise has no preconditions; SIGINT only sets the agent's flag, SIGKILL ends
    // the process, which is what the test wants.
    unsafe { libc::raise(sig) };
}

/// The firing rule ([`crate::firing`]) for a loop of `phase`: disarmed, nothing may fire.
fn check_fired(fired: u64, expected: u64, alone: bool, phase: Phase) -> Result<()> {
    match phase {
        Phase::Baseline if fired > 0 => bail!("fired {fired} times while disarmed (expected 0)"),
        Phase::Baseline => Ok(()),
        Phase::Mechanism => crate::firing::check("fired", fired, expected, alone),
    }
}

/// Runs the workload outside the timing (warmup).
fn run_workload(workload: &mut Runner, calls: u64) -> Result<()> {
    workload.run(calls).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::schema::Status;

    #[test]
    fn fired_must_match_calls_exactly_when_alone() {
        // The rule itself is crate::firing's; here, its use for each phase.
        assert!(check_fired(1000, 1000, true, Phase::Mechanism).is_ok());
        assert!(check_fired(1001, 1000, true, Phase::Mechanism).is_err());
        assert!(check_fired(1003, 1000, false, Phase::Mechanism).is_ok());
        assert!(check_fired(1, 0, false, Phase::Baseline)
            .unwrap_err()
            .to_string()
            .contains("disarmed"));
        assert!(check_fired(0, 0, true, Phase::Baseline).is_ok());
    }

    fn plan(alone: bool) -> AgentPlan {
        serde_json::from_value(serde_json::json!({
            "mechanisms": ["bpf-fentry"],
            "workload": "getppid",
            "function": null,
            "calls": 10,
            "repeats": 2,
            "unit": "ns",
            "kernel_config": {},
            "alone": alone,
        }))
        .expect("plan")
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
        fn check_trace(&self, _: u64, _: u64) -> Result<()> {
            Ok(())
        }
        fn remove(self: Box<Self>) -> Result<()> {
            Ok(())
        }
        fn stats_loop(
            &mut self,
            calls: u64,
            run: &mut dyn FnMut() -> Result<u64>,
        ) -> Result<Option<tracelab_model::schema::KernelStatsLoop>> {
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
        let plan = plan(false);
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
        let installs = Installs {
            first: None,
            again: &install,
        };
        let result = measure(
            &plan,
            &mut workload,
            installs,
            &mut counters,
            None,
            &mut out,
        );
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

    fn pairs_of(diffs: &[u64]) -> Vec<Sample> {
        let sample = |repeat, phase, elapsed| Sample::timed(repeat, phase, 10, elapsed, None);
        diffs
            .iter()
            .zip(0..)
            .flat_map(|(d, r)| {
                [
                    sample(r, Phase::Baseline, 1000),
                    sample(r, Phase::Mechanism, 1000 + d),
                ]
            })
            .collect()
    }

    #[test]
    fn real_time_repeats_stop_when_the_interval_is_tight() {
        let a = Adaptive {
            max_repeats: 40,
            budget_secs: 3600,
        };
        let start = now_ns();
        // Ten identical pairs: a zero-width interval, at the goal.
        let tight = precision(a, 10, start, &pairs_of(&[500; 10])).expect("stops");
        assert_eq!(
            (tight.stopped, tight.half_width),
            (Stopped::Precise, Some(0.0))
        );
        // Below ten pairs there is no interval: go on.
        assert_eq!(precision(a, 5, start, &pairs_of(&[500; 5])), None);
        // Wide spread: go on until the most pairs allowed.
        let wide: Vec<u64> = (0..40).map(|i| 100 + (i * 37 % 23) * 100).collect();
        assert_eq!(precision(a, 15, start, &pairs_of(&wide[..15])), None);
        let capped = precision(a, 40, start, &pairs_of(&wide)).expect("stops");
        assert_eq!(capped.stopped, Stopped::MaxRepeats);
        // A spent budget stops it, and the note says why.
        let spent = Adaptive {
            budget_secs: 0,
            ..a
        };
        let p = precision(spent, 12, start, &pairs_of(&wide[..12])).expect("stops");
        assert_eq!(p.stopped, Stopped::Budget);
        let mut plan = plan(false);
        plan.adaptive = Some(spent);
        let note = imprecise(&p, &plan);
        assert!(
            note.starts_with("imprecise: 95% CI ±") && note.contains("the 0 s budget ended"),
            "{note}"
        );
    }

    #[test]
    fn too_few_kernel_runs_fail_the_cell() {
        let (result, _) = stats_only_cell(-1);
        let err = format!("{:#}", result.expect_err("must fail"));
        assert!(err.contains("fired 19 times for an expected 20"), "{err}");
    }
}
