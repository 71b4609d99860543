//! The agent: runs a plan's cells on the kernel it is running on (in a guest, or natively)
//! and reports each finished cell at once.

use crate::cleanup;
use crate::counters::Counters;
use crate::cpu;
use crate::function_set::{self, FunctionSet};
use crate::mechanism::{self, CellError, CellSetup, Installed};
use crate::other_tracers::{self, OtherTracers};
use crate::resolve::{self, TargetFunction};
use crate::tracefs::{KernelEnv, Tracefs};
use anyhow::{bail, Context, Result};
use tracelab_model::cell_id::Functions;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::plan::{AgentPlan, CellSpec, Fault};
use tracelab_model::protocol::Record;
use tracelab_model::schema::{Measured, Status};
use tracelab_probes::Symbol;
use tracelab_workloads::{Runner, Workload};

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
    if plan.unit == tracelab_model::schema::Unit::Insn {
        crate::clock::count_with_tsc();
    }
    let workload: Workload = plan.workload.parse()?;
    cleanup::catch_signals()?;
    if let Some(Fault::PanicAfterMs(ms)) = plan.fault {
        panic_kernel_after(ms);
    }
    let _lock = cleanup::RunLock::acquire()?;
    // In-kernel workloads need their BPF driver loaded for the whole run.
    let mut runner =
        mechanism::bpf::driver::runner(workload).context("setting up the in-kernel workload")?;
    let tracefs = Tracefs::open().ok();
    let env = KernelEnv::probe(tracefs.as_ref(), plan.kernel_config.clone());
    let mut leftovers = Vec::new();
    if let Some(t) = &tracefs {
        leftovers = cleanup::recover(t).context("restoring what an earlier run left")?;
        leftovers.extend(clear_leftovers(t).context("removing leftovers of an earlier run")?);
    }
    let target = resolve_target(plan, workload, &env);
    let cpu = match (plan.peer_cpu, &runner) {
        // The agent on CPU 0 and the workload's peer on its own CPU.
        (Some(peer), Ok(runner)) => {
            place_peers(runner, peer)?;
            if !cpu::pin(0, 0) {
                bail!(
                    "pinning the agent to CPU 0: {}",
                    std::io::Error::last_os_error()
                );
            }
            Some(0)
        }
        _ => cpu::pin_to_current_cpu(),
    };
    let mut counters = Counters::open();
    let functions = choose_functions(
        plan,
        &env,
        tracefs.as_ref(),
        &target,
        &mut runner,
        &mut counters,
    );
    let mut beside = set_up_other_tracers(plan, tracefs.as_ref(), &functions);
    let every = std::cell::OnceCell::new();
    emit(&Record::Hello {
        kernel_release: env.release.clone(),
        machine: env.machine.clone(),
        agent_version: tracelab_model::VERSION.to_string(),
        function: target.as_ref().ok().map(|t| t.symbol.to_string()),
        cpu,
        counters_absent: counters.absent().clone(),
        leftovers_removed: leftovers,
        environment: Some(Box::new(crate::environment::capture())),
        agent_revision: tracelab_model::provenance::revision_label(),
        boot_id: crate::environment::read("/proc/sys/kernel/random/boot_id"),
        uptime: crate::environment::read("/proc/uptime"),
    });
    // The host names the plugin's blocks by these (sent after the hello, before any cell).
    if plan.attribution {
        // Without them the host names every kernel block `[kernel]` and says so.
        if let Ok(records) = crate::symbols::kernel_text().and_then(|t| crate::symbols::records(&t))
        {
            records.iter().for_each(&mut *emit);
        }
    }
    for spec in plan.cells_to_run() {
        let cell = match &mut runner {
            Ok(runner) => run_cell(
                plan,
                runner,
                spec,
                &Kernel {
                    env: &env,
                    tracefs: tracefs.as_ref(),
                    target: &target,
                    functions: &functions,
                    every: &every,
                },
                &mut beside,
                &mut counters,
            ),
            // The kernel cannot run the workload at all: every cell, the baseline too.
            Err(why) => status_only(plan, workload, spec, Status::Unsupported, why.0.clone()),
        };
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

/// The other functions of the plan's cells on several functions and of its other tracers
/// (none for a plan on one function beside no other tracer), or why they could not be
/// chosen.
fn choose_functions(
    plan: &AgentPlan,
    env: &KernelEnv,
    tracefs: Option<&Tracefs>,
    target: &Result<TargetFunction>,
    runner: &mut std::result::Result<Runner, mechanism::Unsupported>,
    counters: &mut Counters,
) -> std::result::Result<FunctionSet, String> {
    if plan.max_functions() <= 1 && plan.max_other_tracers() == 0 {
        return Ok(FunctionSet::none());
    }
    let (Some(tracefs), Ok(resolved), Ok(runner)) = (tracefs, target, runner) else {
        return Err(
            "choosing the other functions needs tracefs, the workload's function and the workload"
                .into(),
        );
    };
    // The rehearsal traces the workload's function with the `function` tracer, so that
    // what writing trace events calls (the ring buffer's wake-ups) is screened too.
    let tracer = mechanism::get(MechanismKind::Function);
    let setup = CellSetup {
        workload: runner.kind(),
        peers: runner.helper_pids(),
        tracefs: Some(tracefs),
        target,
        payload: None,
        stack: 1,
        calls: plan.calls.saturating_mul(runner.kind().traced_per_op()),
        traced_per_op: runner.kind().traced_per_op(),
        others: &[],
        mid_attach: None,
        every_function: false,
        alone: plan.alone,
    };
    let traced = tracer.check_support(env, runner.kind()).is_ok();
    // What a cell's armed loop runs, with the function tracer armed on the target.
    let mut rehearse = || -> Result<()> {
        let _knobs = if traced {
            tracer.prepare(&setup).map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            None
        };
        let mut armed = match traced {
            true => Some(tracer.install(&setup).map_err(|e| anyhow::anyhow!("{e}"))?),
            false => None,
        };
        if let Some(i) = armed.as_mut() {
            i.arm()?;
        }
        let ran = crate::measure::rehearse(plan, runner, counters, armed.as_deref_mut());
        if let Some(mut i) = armed {
            i.disarm()?;
            i.remove()?;
        }
        ran
    };
    function_set::choose(
        plan.max_functions(),
        plan.max_other_tracers(),
        resolved,
        tracefs,
        &mut rehearse,
    )
    .map_err(|e| format!("choosing the other functions: {e:#}"))
}

/// The other tracers of a plan's cells beside other tracers (None for a plan without),
/// created once for the run with the most any cell needs, or why they could not be.
type Beside = std::result::Result<Option<OtherTracers>, (Status, String)>;

fn set_up_other_tracers(
    plan: &AgentPlan,
    tracefs: Option<&Tracefs>,
    functions: &std::result::Result<FunctionSet, String>,
) -> Beside {
    let max = plan.max_other_tracers();
    if max == 0 {
        return Ok(None);
    }
    let Some(tracefs) = tracefs else {
        return Err((Status::Unsupported, "tracefs is not mounted".into()));
    };
    let set = functions
        .as_ref()
        .map_err(|why| (Status::Failed, why.clone()))?;
    let m = (max as usize).min(set.beside_available()) as u32;
    let chosen = set.beside(m).map_err(|why| (Status::Failed, why))?;
    OtherTracers::create(tracefs, &chosen)
        .map(Some)
        .map_err(|e| {
            let (status, why) = e.status();
            (status, format!("setting up the other tracers: {why}"))
        })
}

/// Crashes the kernel `ms` milliseconds from now (the panic fault of `tracelab chaos`),
/// from a thread, so it strikes wherever the run is.
fn panic_kernel_after(ms: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = std::fs::write("/proc/sysrq-trigger", "c");
    });
}

/// Pins the workload's peer processes to `cpu` (sched_setaffinity succeeds only with the
/// mask set), or says why not: a figure said to be measured across two CPUs must be.
fn place_peers(runner: &tracelab_workloads::Runner, cpu: u32) -> Result<()> {
    let online = cpu::online();
    if cpu as usize >= online {
        bail!("the workload's peer was to run on CPU {cpu}, and this kernel has {online} CPU(s) online");
    }
    for pid in runner.helper_pids() {
        let pid = libc::pid_t::try_from(pid).context("peer pid")?;
        if !cpu::pin(pid, cpu as usize) {
            bail!(
                "pinning the workload's peer (pid {pid}) to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

fn resolve_target(plan: &AgentPlan, workload: Workload, env: &KernelEnv) -> Result<TargetFunction> {
    if workload.is_user() {
        let f = tracelab_workloads::user_function(workload)
            .with_context(|| format!("workload {workload} has no function on this architecture"))?;
        let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
        return resolve::resolve_user(&f, &maps);
    }
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

/// Removes probes of our group and the trace instances (the functions' screening, the
/// other tracers) that a crashed run left behind; returns what it removed.
pub fn clear_leftovers(tracefs: &Tracefs) -> Result<Vec<String>> {
    let mut removed = other_tracers::remove_leftovers(tracefs)?;
    let group = format!("{}/", tracelab_probes::GROUP);
    for file in ["kprobe_events", "dynamic_events", "uprobe_events"] {
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

/// A kernel mechanism sees nothing of a workload that calls the agent's own function,
/// and a user-space probe nothing of a kernel function: such a cell is unsupported, with
/// the mechanisms that do apply named.
fn same_domain(kind: MechanismKind, workload: Workload) -> Result<(), mechanism::Unsupported> {
    if kind == MechanismKind::Baseline || kind.traces_user_space() == workload.is_user() {
        return Ok(());
    }
    let user: Vec<&str> = MechanismKind::USER[1..].iter().map(|m| m.name()).collect();
    Err(mechanism::Unsupported(if workload.is_user() {
        format!(
            "{kind} traces kernel functions, and workload {workload} calls one of the agent's own ({}); use {}",
            workload.entry_symbols("")[0],
            user.join(", ")
        )
    } else {
        format!(
            "{kind} probes user-space code, and workload {workload} traces a kernel function; its workloads are {}",
            Workload::ALL
                .iter()
                .filter(|w| w.is_user())
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

/// Calls per operation a function given with `--function` is sized for.
const MAX_TRACED_PER_OP: u64 = 16;

/// A cell of which nothing was measured: its status and reason alone.
fn status_only(
    plan: &AgentPlan,
    workload: Workload,
    spec: CellSpec,
    status: Status,
    reason: String,
) -> Measured {
    let id = spec.id();
    let mut m =
        Measured::without_samples(&id.mechanism, workload.name(), plan.unit, status, reason);
    m.payload = id.payload;
    m.stack = id.stack;
    m.functions = id.functions;
    m.other_tracers = id.other_tracers;
    m
}

/// What the run found out about its kernel, shared by every cell.
struct Kernel<'a> {
    env: &'a KernelEnv,
    tracefs: Option<&'a Tracefs>,
    target: &'a Result<TargetFunction>,
    /// The other functions for cells on several (or why there are none).
    functions: &'a std::result::Result<FunctionSet, String>,
    /// Every function kprobe_multi may trace beside the target (`--functions all`),
    /// listed at its first cell.
    every: &'a std::cell::OnceCell<std::result::Result<Vec<Symbol>, String>>,
}

fn run_cell(
    plan: &AgentPlan,
    workload: &mut Runner,
    spec: CellSpec,
    kernel: &Kernel<'_>,
    beside: &mut Beside,
    counters: &mut Counters,
) -> Measured {
    let (env, tracefs, target) = (kernel.env, kernel.tracefs, kernel.target);
    let kind = spec.mechanism;
    let id = spec.id();
    let (others, traced) = match (spec.functions, kernel.functions) {
        (Functions::Count(1), _) => (&[][..], None),
        // The tracers take every function unfiltered; kprobe_multi is given them all.
        (Functions::All, _) if kind == MechanismKind::BpfKprobeMulti => {
            let every = kernel.every.get_or_init(|| match (tracefs, target) {
                (Some(t), Ok(target)) => {
                    function_set::every(t, target).map_err(|e| format!("{e:#}"))
                }
                _ => Err("listing every function needs tracefs and the workload's function".into()),
            });
            match every {
                Ok(names) => (&names[..], None),
                Err(why) => {
                    return status_only(plan, workload.kind(), spec, Status::Failed, why.clone())
                }
            }
        }
        (Functions::All, _) if kind.traces_everything() => (&[][..], None),
        (Functions::All, _) => {
            let able: Vec<&str> = MechanismKind::ALL
                .iter()
                .filter(|k| k.traces_everything())
                .map(|k| k.name())
                .collect();
            let why = format!(
                "{kind} on every function: it would attach one probe or program per function (tens of thousands); tracing every function is built for {} (no filter); use --functions N",
                able.join(", ")
            );
            return status_only(plan, workload.kind(), spec, Status::Unsupported, why);
        }
        (Functions::Count(n), Ok(set)) => match set.others(n) {
            Ok(others) => (others, set.traced(n)),
            Err(why) => return status_only(plan, workload.kind(), spec, Status::Unsupported, why),
        },
        (_, Err(why)) => {
            return status_only(plan, workload.kind(), spec, Status::Failed, why.clone())
        }
    };
    // The other tracers beside the cell: the run's first `other_tracers` of them.
    let (tracers, beside_set) = match (spec.other_tracers, beside, kernel.functions) {
        (0, _, _) => (None, None),
        (m, Ok(Some(t)), Ok(set)) => match set.beside(m).and_then(|_| t.fits(m as usize)) {
            Ok(()) => (Some(t), set.traced_beside(m)),
            Err(why) => return status_only(plan, workload.kind(), spec, Status::Unsupported, why),
        },
        (_, Err((status, why)), _) => {
            return status_only(plan, workload.kind(), spec, *status, why.clone())
        }
        (_, _, Err(why)) => {
            return status_only(plan, workload.kind(), spec, Status::Failed, why.clone())
        }
        (_, Ok(None), _) => unreachable!("other tracers are set up for every plan that has some"),
    };
    let mut measured = Measured {
        mechanism: id.mechanism,
        payload: id.payload,
        stack: id.stack,
        functions: id.functions,
        traced,
        other_tracers: id.other_tracers,
        beside: beside_set,
        attach_times: Vec::new(),
        stack_traces: None,
        runtime_symbols: Vec::new(),
        workload: workload.kind().name().to_string(),
        function: (kind != MechanismKind::Baseline)
            .then(|| target.as_ref().map(|t| t.symbol.to_string()).ok())
            .flatten(),
        attach: None,
        status: Status::Ok,
        reason: None,
        unit: plan.unit,
        calls: plan.calls,
        events_per_call: None,
        traced_per_op: None,
        fired: None,
        samples: Vec::new(),
        kernel_stats: Vec::new(),
        cleanliness: None,
        precision: None,
    };
    let mechanism = mechanism::get(kind);
    // Buffers hold a loop's events: a function chosen with --function may be called
    // several times per operation (counted later), so room is left for that.
    let traced_per_op = match plan.function {
        None => workload.kind().traced_per_op(),
        Some(_) => MAX_TRACED_PER_OP,
    };
    let setup = CellSetup {
        workload: workload.kind(),
        peers: workload.helper_pids(),
        tracefs,
        target,
        payload: spec.payload,
        stack: spec.stack,
        calls: plan.calls.saturating_mul(traced_per_op),
        traced_per_op,
        others,
        mid_attach: plan
            .fault
            .filter(|f| matches!(f, Fault::KillMidAttach | Fault::HangMidAttach)),
        every_function: spec.functions == Functions::All,
        alone: plan.alone,
    };
    let ready = same_domain(kind, workload.kind())
        .and_then(|()| mechanism.check_support(env, workload.kind()))
        .map_err(CellError::from)
        .and_then(|()| mechanism.prepare(&setup))
        .and_then(|guard| mechanism.preflight(&setup).map(|kept| (guard, kept)));
    // The guard restores the cell's knobs after whatever was installed is gone.
    let (_prepared, preflighted) = match ready {
        Ok(ready) => ready,
        Err(e) => {
            let (status, reason) = e.status();
            return status_only(plan, workload.kind(), spec, status, reason);
        }
    };
    let install = || -> Result<Box<dyn Installed>> {
        mechanism.install(&setup).map_err(|e| match e {
            CellError::Failed(e) => match target {
                Ok(t) if kind != MechanismKind::Baseline => {
                    e.context(format!("attaching {kind} to {}", t.symbol))
                }
                _ => e,
            },
            unsupported => anyhow::anyhow!("{unsupported}"),
        })
    };
    let installs = crate::measure::Installs {
        first: preflighted,
        again: &install,
    };
    let result = match tracers {
        Some(t) => t
            .enable(spec.other_tracers as usize)
            .context("switching the other tracers on")
            .and_then(|()| {
                let ran = crate::measure::measure(
                    plan,
                    workload,
                    installs,
                    counters,
                    Some(t),
                    &mut measured,
                );
                let off = t.disable().context("switching the other tracers off");
                ran.and(off)
            }),
        None => crate::measure::measure(plan, workload, installs, counters, None, &mut measured),
    };
    match result {
        Err(e) => {
            measured.status = Status::Failed;
            measured.reason = Some(format!("{e:#}"));
        }
        Ok(()) => {
            if let Some(why) = did_no_work(&measured) {
                measured.status = Status::Unsupported;
                measured.reason = Some(why);
            }
        }
    }
    measured
}

/// Why a measured cell's payload did none of its work, if it did none: a stack payload
/// whose every trace held no frame (`bpf_get_stack` on a 6.1 raw tracepoint returns an
/// empty stack). Its figure would say stacks are cheap on that kernel; it is a result
/// (`unsupported`, with the reason), never a figure.
fn did_no_work(m: &Measured) -> Option<String> {
    let t = m.stack_traces?;
    (t.traces > 0 && t.frames == 0).then(|| {
        format!(
            "the stack payload took 0 frames in all {} stack traces: this kernel gives this attach point an empty stack, so the payload did no work",
            t.traces
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_payload_with_no_frame_did_no_work() {
        use tracelab_model::schema::{StackTraces, Unit};
        let mut m =
            Measured::without_samples("bpf-tp", "getppid", Unit::Insn, Status::Ok, String::new());
        assert_eq!(did_no_work(&m), None);
        m.stack_traces = Some(StackTraces {
            traces: 60_000,
            frames: 0,
        });
        assert!(did_no_work(&m).is_some_and(|w| w.contains("0 frames in all 60000")));
        m.stack_traces = Some(StackTraces {
            traces: 60_000,
            frames: 360_000,
        });
        assert_eq!(did_no_work(&m), None);
    }

    #[test]
    fn mechanisms_apply_to_their_own_side() {
        assert_eq!(
            same_domain(MechanismKind::Baseline, Workload::UserNop),
            Ok(())
        );
        assert_eq!(same_domain(MechanismKind::Uprobe, Workload::Usdt), Ok(()));
        assert_eq!(
            same_domain(MechanismKind::BpfFentry, Workload::Pipe),
            Ok(())
        );
        let why = same_domain(MechanismKind::Kprobe, Workload::UserRet)
            .unwrap_err()
            .0;
        assert!(
            why.contains("tracelab_user_ret") && why.contains("bpf-usdt"),
            "{why}"
        );
        let why = same_domain(MechanismKind::BpfUprobe, Workload::Getppid)
            .unwrap_err()
            .0;
        assert!(why.contains("user-nop") && why.contains("usdt"), "{why}");
    }
}
