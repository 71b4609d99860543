//! The ftrace `function` and `function_graph` tracers, filtered to the target (and to
//! the functions axis' others), or unfiltered: every function (`--functions all`); and
//! `function_graph` as the tools set it up, on the target's call graph
//! (`set_graph_function`).

use super::{
    buffer_events_per_call, check_trace_exact, stack_event, trace_knobs, traceable_functions,
    CellError, CellSetup, Every, Installed, Mechanism, Unsupported, EVERY_EVENTS_PER_CALL,
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

/// What a tracer's install writes besides `current_tracer`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    /// `set_ftrace_filter`: the target (and the functions axis' others), or nothing for
    /// every function. Only the filtered functions are hooked.
    Filter,
    /// `set_graph_function` = the target, `set_ftrace_filter` left empty, as
    /// `trace-cmd record -p function_graph -g F` and `perf ftrace -G F` do: every
    /// function is hooked (the graph hash is checked on each entry and return), and the
    /// target's call graph is recorded. The target's own events are counted in the raw
    /// buffer, apart from its callees'.
    GraphFunction,
}

/// An ftrace tracer (`function`, `function_graph`) on the target.
pub(super) struct Tracer {
    kind: MechanismKind,
    tracer: &'static str,
    setup: Setup,
}

impl Tracer {
    pub(super) const fn new(kind: MechanismKind, tracer: &'static str, setup: Setup) -> Tracer {
        Tracer {
            kind,
            tracer,
            setup,
        }
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
        if self.setup == Setup::GraphFunction {
            if cell.takes_stack() {
                return Err(CellError::Unsupported(
                    "function-graph-g with a stack trace: ftrace's func_stack_trace option is the function tracer's only".into(),
                ));
            }
            cell.one_function(
                self.kind,
                "set_graph_function names the one function whose call graph is recorded",
            )?;
            // The target's callees are recorded too: room for them, as for every function.
            return trace_knobs(cell, 2 * EVERY_EVENTS_PER_CALL, "");
        }
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
        let filter = match self.setup {
            Setup::Filter => Filter::of(cell),
            Setup::GraphFunction => Filter::GraphFunction,
        };
        Ok(install(
            cell.tracefs()?,
            cell.target()?,
            filter,
            self.tracer,
            cell.takes_stack(),
        )?)
    }
}

/// What `set_ftrace_filter` (and `set_graph_function`) reads as when no filter is set.
const NO_FILTER: &str = "#### all functions enabled ####";

/// The function_graph tracer's graph filter.
const GRAPH_FUNCTION: &str = "set_graph_function";

/// What the tracer is filtered to.
#[derive(Clone, Copy, PartialEq)]
enum Filter<'a> {
    /// The target and the functions axis' others.
    Functions(&'a [Symbol]),
    /// Nothing: every function.
    Every,
    /// `set_graph_function` = the target; `set_ftrace_filter` empty.
    GraphFunction,
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
    /// Every function traced, or the target's call graph: the target's events are
    /// counted by draining the buffer (with recording off), and other functions' events
    /// are expected.
    every: Option<Every>,
    /// `set_graph_function` holds the target (function-graph-g).
    graph_function: bool,
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
        Filter::Every | Filter::GraphFunction => &[],
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
    let graph = tracefs.read(GRAPH_FUNCTION)?;
    if !filter_lines(&graph).is_empty() {
        bail!(
            "set_graph_function is already set by someone else ({} entries); refusing to replace it",
            filter_lines(&graph).len()
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
        every: matches!(filter, Filter::Every | Filter::GraphFunction).then(Every::default),
        graph_function: filter == Filter::GraphFunction,
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
    if let Filter::GraphFunction = filter {
        // Only set_graph_function: set_ftrace_filter stays empty (checked above), as the
        // tools leave it.
        crate::cleanup::record(|s| s.graph_function = true)?;
        tracefs.write(GRAPH_FUNCTION, target.symbol.as_str())?;
        let applied = tracefs.read(GRAPH_FUNCTION)?;
        if filter_lines(&applied) != [target.symbol.as_str()] {
            bail!(
                "set_graph_function did not apply: wrote {:?}, it reads {:?}",
                target.symbol.as_str(),
                applied.trim()
            );
        }
        // The setup is exactly the tools': nothing else filtered.
        let filter = tracefs.read("set_ftrace_filter")?;
        if !filter_lines(&filter).is_empty() {
            bail!(
                "set_ftrace_filter is not empty beside set_graph_function: {:?}",
                filter.trim()
            );
        }
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
    // The filter setup writes the filter only: no graph function narrows it.
    let graph = tracefs.read(GRAPH_FUNCTION)?;
    if !filter_lines(&graph).is_empty() {
        bail!(
            "set_graph_function is not empty beside set_ftrace_filter: {:?}",
            graph.trim()
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
        let graph = if self.graph_function {
            self.tracefs.write(GRAPH_FUNCTION, "")
        } else {
            Ok(())
        };
        stopped?;
        cleared?;
        graph?;
        let tracer = self.tracefs.read("current_tracer")?;
        let filter = self.tracefs.read("set_ftrace_filter")?;
        let graph = self.tracefs.read(GRAPH_FUNCTION)?;
        if tracer.trim() != "nop"
            || !filter_lines(&filter).is_empty()
            || !filter_lines(&graph).is_empty()
        {
            bail!(
                "ftrace not clean after removal: current_tracer {:?}, set_ftrace_filter {:?}, set_graph_function {:?}",
                tracer.trim(),
                filter.trim(),
                graph.trim()
            );
        }
        crate::cleanup::record(|s| {
            s.tracer = None;
            s.ftrace_filter = false;
            s.graph_function = false;
        })
    }
}

impl Installed for FtraceTracer {
    fn describe(&self) -> String {
        let others = match self.others {
            0 => String::new(),
            n => format!(" and {n} other functions"),
        };
        if self.graph_function {
            return format!(
                "current_tracer={} set_graph_function={} set_ftrace_filter empty (as trace-cmd -g and perf ftrace -G set it up): every function hooked, the target's call graph recorded; its own events counted in the raw buffer",
                self.tracer, self.target.symbol
            );
        }
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
