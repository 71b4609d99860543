//! The ftrace `function` and `function_graph` tracers, filtered to the target (and to
//! the functions axis' others), or unfiltered: every function (`--functions all`).

use super::{
    buffer_events_per_call, check_trace_exact, stack_event, trace_knobs, traceable_functions,
    CellError, CellSetup, Every, Installed, Mechanism, Unsupported,
};
use crate::resolve::TargetFunction;
use crate::ring_buffer::{EventSpec, Role};
use crate::tracefs::{KernelEnv, Tracefs};
use anyhow::{bail, Result};
use tracelab_model::kconfig;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::schema::StackTraces;
use tracelab_model::workload::Workload;
use tracelab_probes::Symbol;

/// An ftrace tracer (`function`, `function_graph`) filtered to the target.
pub(super) struct Tracer {
    kind: MechanismKind,
    tracer: &'static str,
}

impl Tracer {
    pub(super) const fn new(kind: MechanismKind, tracer: &'static str) -> Tracer {
        Tracer { kind, tracer }
    }
}

impl Mechanism for Tracer {
    fn kind(&self) -> MechanismKind {
        self.kind
    }

    fn requires(&self) -> &'static [&'static str] {
        if self.tracer == "function_graph" {
            &["CONFIG_FUNCTION_GRAPH_TRACER"]
        } else {
            &["CONFIG_FUNCTION_TRACER"]
        }
    }

    fn check_support(&self, env: &KernelEnv, _: Workload) -> Result<(), Unsupported> {
        check_support(env, self.tracer, self.requires()[0])
    }

    fn prepare(&self, cell: &CellSetup<'_>) -> Result<Option<Box<dyn std::any::Any>>, CellError> {
        let per_call = buffer_events_per_call(cell)?;
        if self.tracer == "function_graph" {
            if cell.takes_stack() {
                return Err(CellError::Unsupported(
                    "function-graph with a stack trace: ftrace's func_stack_trace option is the function tracer's only".into(),
                ));
            }
            return trace_knobs(cell, 2 * per_call, "");
        }
        trace_knobs(cell, per_call, "func_stack_trace")
    }

    fn install(&self, cell: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError> {
        Ok(install(
            cell.tracefs()?,
            cell.target()?,
            Filter::of(cell),
            self.tracer,
            cell.takes_stack(),
        )?)
    }
}

/// What `set_ftrace_filter` reads as when no filter is set.
const NO_FILTER: &str = "#### all functions enabled ####";

/// What the tracer is filtered to.
#[derive(Clone, Copy)]
enum Filter<'a> {
    /// The target and the functions axis' others.
    Functions(&'a [Symbol]),
    /// Nothing: every function.
    Every,
}

impl<'a> Filter<'a> {
    fn of(cell: &CellSetup<'a>) -> Filter<'a> {
        if cell.every_function {
            Filter::Every
        } else {
            Filter::Functions(cell.others)
        }
    }
}

fn check_support(env: &KernelEnv, tracer: &str, option: &str) -> Result<(), Unsupported> {
    if !env.tracefs {
        return Err(Unsupported("tracefs is not mounted".into()));
    }
    if !env.tracers.iter().any(|t| t == tracer) {
        return Err(Unsupported(format!(
            "{} is not set (available_tracers: {})",
            option,
            env.tracers.join(" ")
        )));
    }
    if !env.ftrace_filter {
        let why = match kconfig::enabled(&env.config, "CONFIG_DYNAMIC_FTRACE") {
            Some(false) => "CONFIG_DYNAMIC_FTRACE is not set",
            _ => "tracefs has no set_ftrace_filter (CONFIG_DYNAMIC_FTRACE is not set?)",
        };
        return Err(Unsupported(why.into()));
    }
    Ok(())
}

struct FtraceTracer {
    tracefs: Tracefs,
    tracer: &'static str,
    target: TargetFunction,
    /// Functions in the filter beside the target (`--functions`).
    others: usize,
    /// Every function traced: the target's events are counted by draining the buffer
    /// (with recording off), and other functions' events are expected.
    every: Option<Every>,
    /// The tracer's events in the ring buffer, and the kernel stack entry that follows
    /// each with the stack-trace payload.
    events: Vec<EventSpec>,
    /// The stack-trace payload's stacks so far (None without it).
    stacks: Option<std::cell::Cell<StackTraces>>,
    removed: bool,
}

fn filter_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != NO_FILTER)
        .collect()
}

fn install(
    tracefs: &Tracefs,
    target: &TargetFunction,
    filter: Filter<'_>,
    tracer: &'static str,
    stack: bool,
) -> Result<Box<dyn Installed>> {
    let others = match filter {
        Filter::Functions(others) => others,
        Filter::Every => &[],
    };
    let current = tracefs.read("current_tracer")?;
    if current.trim() != "nop" {
        bail!(
            "another tracer is active (current_tracer is {:?}); refusing to replace it",
            current.trim()
        );
    }
    let before = tracefs.read("set_ftrace_filter")?;
    if !filter_lines(&before).is_empty() {
        bail!(
            "set_ftrace_filter is already set by someone else ({} entries); refusing to replace it",
            filter_lines(&before).len()
        );
    }
    let mut events = if tracer == "function_graph" {
        vec![
            EventSpec::read(
                tracefs,
                "events/ftrace/funcgraph_entry",
                "func",
                Role::Entry,
            )?,
            EventSpec::read(
                tracefs,
                "events/ftrace/funcgraph_exit",
                "func",
                Role::Return,
            )?,
        ]
    } else {
        vec![EventSpec::read(
            tracefs,
            "events/ftrace/function",
            "ip",
            Role::Call,
        )?]
    };
    if stack {
        events.push(stack_event(tracefs)?);
    }
    let installed = FtraceTracer {
        tracefs: tracefs.clone(),
        tracer,
        target: target.clone(),
        others: others.len(),
        every: matches!(filter, Filter::Every).then(Every::default),
        events,
        stacks: stack.then(Default::default),
        removed: false,
    };
    if let Filter::Every = filter {
        // Nothing to write: the filter is empty (checked above), so the tracer, once
        // armed, traces every function.
        tracefs.clear_trace()?;
        return Ok(Box::new(installed));
    }
    crate::cleanup::record(|s| s.ftrace_filter = true)?;
    tracefs.write("set_ftrace_filter", target.symbol.as_str())?;
    let names: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
    tracefs.append_lines("set_ftrace_filter", &names)?;
    // A filter that silently did not apply would trace every function in the kernel.
    let applied = tracefs.read("set_ftrace_filter")?;
    let lines = filter_lines(&applied);
    if !others.is_empty() {
        if lines.len() != others.len() + 1 || !lines.contains(&target.symbol.as_str()) {
            bail!(
                "set_ftrace_filter did not apply: wrote {} and {} others, it holds {} entries",
                target.symbol,
                others.len(),
                lines.len()
            );
        }
    } else if lines != [target.symbol.as_str()] {
        bail!(
            "set_ftrace_filter did not apply: wrote {:?}, it reads {:?}",
            target.symbol.as_str(),
            applied.trim()
        );
    }
    tracefs.clear_trace()?;
    Ok(Box::new(installed))
}

impl FtraceTracer {
    fn teardown(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let stopped = self.tracefs.write("current_tracer", "nop");
        let cleared = self.tracefs.write("set_ftrace_filter", "");
        stopped?;
        cleared?;
        let tracer = self.tracefs.read("current_tracer")?;
        let filter = self.tracefs.read("set_ftrace_filter")?;
        if tracer.trim() != "nop" || !filter_lines(&filter).is_empty() {
            bail!(
                "ftrace not clean after removal: current_tracer {:?}, set_ftrace_filter {:?}",
                tracer.trim(),
                filter.trim()
            );
        }
        crate::cleanup::record(|s| {
            s.tracer = None;
            s.ftrace_filter = false;
        })
    }
}

impl Installed for FtraceTracer {
    fn describe(&self) -> String {
        let others = match self.others {
            0 => String::new(),
            n => format!(" and {n} other functions"),
        };
        if self.every.is_some() {
            let listed = traceable_functions(&self.tracefs);
            return format!(
                "current_tracer={} set_ftrace_filter empty: every function ({listed} in available_filter_functions); the target's events counted in the raw buffer, drained with recording off",
                self.tracer
            );
        }
        let stack = if self.stacks.is_some() {
            "; options/func_stack_trace=1: a kernel stack entry after every event"
        } else {
            ""
        };
        format!(
            "current_tracer={} set_ftrace_filter={}{others}{stack}",
            self.tracer, self.target.symbol
        )
    }

    fn arm(&mut self) -> Result<()> {
        crate::cleanup::record(|s| s.tracer = Some(self.tracer.to_string()))?;
        self.tracefs.write("current_tracer", self.tracer)?;
        Ok(())
    }

    fn disarm(&mut self) -> Result<()> {
        self.tracefs.write("current_tracer", "nop")
    }

    fn hits(&self) -> Result<Option<u64>> {
        if let Some(every) = &self.every {
            return every
                .drain(&self.tracefs, &self.events, &self.target)
                .map(Some);
        }
        let written = self.tracefs.ring_buffer_events()?;
        // With the stack trace each event is followed by its stack entry (the trace
        // check proves it, one for one).
        Ok(Some(if self.stacks.is_some() {
            written / 2
        } else {
            written
        }))
    }

    fn stack_traces(&self) -> Result<Option<StackTraces>> {
        Ok(self.stacks.as_ref().map(std::cell::Cell::get))
    }

    fn events_per_call(&self) -> u64 {
        // function_graph records an entry and a return event per call.
        if self.tracer == "function_graph" {
            2
        } else {
            1
        }
    }

    fn before_loop(&mut self) -> Result<()> {
        // Recording stays on through the wait for a quiet kernel (the fprobe on every
        // function pauses it): the loop then writes into a buffer the wait filled, as a
        // tracer left running does, and its figures repeat exactly; paused, they varied
        // by ±1% between repeats (x86_64 7.3), a cause not yet found.
        self.tracefs.clear_trace()
    }

    fn check_trace(&self, expected: u64, slack: u64) -> Result<()> {
        if let Some(every) = &self.every {
            // The loop's drain (hits) counted the target's events against `expected`.
            let t = every.last();
            if t.entries != t.returns {
                bail!(
                    "function_graph recorded {} entries of {} but {} returns",
                    t.entries,
                    self.target.symbol,
                    t.returns
                );
            }
            return Ok(());
        }
        check_trace_exact(
            &self.tracefs,
            &self.target,
            &self.events,
            expected,
            slack,
            self.stacks.as_ref(),
        )
    }

    fn remove(mut self: Box<Self>) -> Result<()> {
        self.teardown()
    }
}

impl Drop for FtraceTracer {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_tracer_names_its_option() {
        let env = KernelEnv {
            tracefs: true,
            ftrace_filter: true,
            tracers: vec!["function".into(), "nop".into()],
            ..KernelEnv::default()
        };
        assert_eq!(
            check_support(&env, "function", "CONFIG_FUNCTION_TRACER"),
            Ok(())
        );
        let why = check_support(&env, "function_graph", "CONFIG_FUNCTION_GRAPH_TRACER")
            .unwrap_err()
            .0;
        assert!(
            why.starts_with("CONFIG_FUNCTION_GRAPH_TRACER is not set"),
            "{why}"
        );
    }

    #[test]
    fn filter_reading() {
        assert!(filter_lines("#### all functions enabled ####\n").is_empty());
        assert_eq!(filter_lines("__do_sys_getppid\n"), ["__do_sys_getppid"]);
    }
}
