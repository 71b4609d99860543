//! Dynamic probe events: kprobe, kretprobe (`kprobe_events`), fprobe (`dynamic_events`)
//! and uprobe, uretprobe (`uprobe_events`) on the agent's own functions.

use super::{
    buffer_events_per_call, check_trace_exact, stack_event, trace_knobs, traceable_functions,
    CellError, CellSetup, Every, Installed, Mechanism, Unsupported,
};
use crate::resolve::TargetFunction;
use crate::ring_buffer::{EventSpec, Role};
use crate::tracefs::{KernelEnv, Tracefs, KPROBES_OPTIMIZATION};
use anyhow::{bail, Context, Result};
use tracelab_model::kconfig;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::plan::Fault;
use tracelab_model::schema::StackTraces;
use tracelab_model::workload::Workload;
use tracelab_probes::{ProbeDef, ProbeKind, Site, Symbol};

/// Where a tracefs probe goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Placement {
    /// At the function entry (or return), as the kind says.
    Entry(ProbeKind),
    /// At the first instruction inside the function that takes the breakpoint path.
    Offset,
}

/// kprobe, kretprobe and fprobe events defined through tracefs.
pub(super) struct TracefsProbe {
    kind: MechanismKind,
    placement: Placement,
}

impl TracefsProbe {
    pub(super) const fn new(kind: MechanismKind, placement: Placement) -> TracefsProbe {
        TracefsProbe { kind, placement }
    }

    fn family(&self) -> Family {
        match self.placement {
            Placement::Entry(ProbeKind::Fprobe | ProbeKind::FprobeExit) => Family::Fprobe,
            Placement::Entry(ProbeKind::Uprobe | ProbeKind::Uretprobe) => Family::Uprobe,
            _ => Family::Kprobe,
        }
    }
}

/// Which tracefs interface defines the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Kprobe,
    Fprobe,
    Uprobe,
}

const KPROBE_OPTIONS: &[&str] = &["CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"];
const FPROBE_OPTIONS: &[&str] = &["CONFIG_FPROBE", "CONFIG_FPROBE_EVENTS"];
const UPROBE_OPTIONS: &[&str] = &["CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS"];

impl Mechanism for TracefsProbe {
    fn kind(&self) -> MechanismKind {
        self.kind
    }

    fn requires(&self) -> &'static [&'static str] {
        match self.family() {
            Family::Kprobe => KPROBE_OPTIONS,
            Family::Fprobe => FPROBE_OPTIONS,
            Family::Uprobe => UPROBE_OPTIONS,
        }
    }

    fn check_support(&self, env: &KernelEnv, _: Workload) -> Result<(), Unsupported> {
        match self.family() {
            Family::Kprobe => check_kprobe_support(env),
            Family::Fprobe => check_fprobe_support(env),
            Family::Uprobe => check_uprobe_support(env),
        }
    }

    fn prepare(&self, cell: &CellSetup<'_>) -> Result<Option<Box<dyn std::any::Any>>, CellError> {
        if cell.takes_stack() && self.family() == Family::Uprobe {
            return Err(CellError::Unsupported(format!(
                "{} with a stack trace: ftrace's stacktrace option takes the kernel stack, not the probed program's (userstacktrace is not measured)",
                self.kind
            )));
        }
        let per_call = buffer_events_per_call(cell)?;
        if cell.every_function && self.family() == Family::Fprobe {
            fprobe_on_fgraph();
        }
        let buffer = trace_knobs(cell, per_call, "stacktrace")?;
        let optimization = match self.placement {
            Placement::Offset => OptimizationOff::new()?,
            Placement::Entry(_) => None,
        };
        Ok(Some(Box::new((buffer, optimization))))
    }

    fn install(&self, cell: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError> {
        let tracefs = cell.tracefs()?;
        let installed: Box<dyn Installed> = match self.placement {
            Placement::Entry(kind @ (ProbeKind::Uprobe | ProbeKind::Uretprobe)) => {
                cell.one_function(self.kind, "it probes the agent's own function")?;
                Box::new(define(tracefs, cell.target()?, kind, &[], None, false)?)
            }
            Placement::Entry(ProbeKind::Fprobe) if cell.every_function => {
                Box::new(define_every(tracefs, cell.target()?)?)
            }
            Placement::Entry(kind) => Box::new(define(
                tracefs,
                cell.target()?,
                kind,
                cell.others,
                cell.mid_attach,
                cell.takes_stack(),
            )?),
            Placement::Offset => {
                cell.one_function(
                    self.kind,
                    "it probes one instruction inside the workload's function",
                )?;
                install_at_offset(tracefs, cell.target()?, cell.takes_stack())?
            }
        };
        Ok(installed)
    }
}

const KPROBES_LIST: &str = "/sys/kernel/debug/kprobes/list";
/// The tracefs README line that exists only with CONFIG_FPROBE_EVENTS.
const FPROBE_SYNTAX: &str = "f[:[<group>/][<event>]]";

/// Names the first option in `options` the config lacks; `fallback` when it is unknown.
fn missing_option(env: &KernelEnv, options: &[&str], fallback: &str) -> Unsupported {
    for o in options {
        if kconfig::enabled(&env.config, o) == Some(false) {
            return Unsupported(format!("{o} is not set"));
        }
    }
    Unsupported(fallback.to_string())
}

fn check_kprobe_support(env: &KernelEnv) -> Result<(), Unsupported> {
    let opts = KPROBE_OPTIONS;
    if !env.tracefs {
        return Err(Unsupported("tracefs is not mounted".into()));
    }
    if env.kprobe_events
        && opts
            .iter()
            .all(|o| kconfig::enabled(&env.config, o) != Some(false))
    {
        return Ok(());
    }
    Err(missing_option(
        env,
        opts,
        "tracefs has no kprobe_events (CONFIG_KPROBE_EVENTS is not set?)",
    ))
}

fn check_uprobe_support(env: &KernelEnv) -> Result<(), Unsupported> {
    let opts = UPROBE_OPTIONS;
    if !env.tracefs {
        return Err(Unsupported("tracefs is not mounted".into()));
    }
    let known_off = opts
        .iter()
        .any(|o| kconfig::enabled(&env.config, o) == Some(false));
    if env.uprobe_events && !known_off {
        return Ok(());
    }
    Err(missing_option(
        env,
        opts,
        "tracefs has no uprobe_events (CONFIG_UPROBE_EVENTS is not set?)",
    ))
}

fn check_fprobe_support(env: &KernelEnv) -> Result<(), Unsupported> {
    let opts = FPROBE_OPTIONS;
    if !env.tracefs {
        return Err(Unsupported("tracefs is not mounted".into()));
    }
    let known_off = opts
        .iter()
        .any(|o| kconfig::enabled(&env.config, o) == Some(false));
    if env.dynamic_events && env.readme.contains(FPROBE_SYNTAX) && !known_off {
        return Ok(());
    }
    Err(missing_option(
        env,
        opts,
        "tracefs accepts no fprobe events (CONFIG_FPROBE_EVENTS is not set?)",
    ))
}

/// A probe event defined in tracefs, and one more per other function traced beside the
/// target (`--functions`); removed on drop.
struct DynamicProbe {
    tracefs: Tracefs,
    def: ProbeDef,
    others: Vec<ProbeDef>,
    target: TargetFunction,
    /// How the kernel placed it (`kprobes/list` flags), for the results.
    placement: Option<String>,
    /// Its event in the ring buffer (empty until the event exists), and the kernel stack
    /// entry that follows it with the stack-trace payload.
    events: Vec<EventSpec>,
    /// The stack-trace payload's stacks so far (None without it).
    stacks: Option<std::cell::Cell<StackTraces>>,
    /// An fprobe on `*` (every function): the target's events counted by draining, and
    /// how many it writes per call ([`per_call_on_every`]).
    every: Option<(Every, u64)>,
    removed: bool,
}

fn event_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Kprobe => "kprobe",
        ProbeKind::KprobeAt(_) => "kprobe_offset",
        ProbeKind::Kretprobe => "kretprobe",
        ProbeKind::Fprobe => "fprobe",
        ProbeKind::FprobeExit => "fprobe_exit",
        ProbeKind::Uprobe => "uprobe",
        ProbeKind::Uretprobe => "uretprobe",
    }
}

fn define(
    tracefs: &Tracefs,
    target: &TargetFunction,
    kind: ProbeKind,
    others: &[Symbol],
    mid_attach: Option<Fault>,
    stack: bool,
) -> Result<DynamicProbe> {
    // Unique to this run: another user's `kprobe` event (any group) cannot be mistaken
    // for ours in kprobe_profile, which names events without their group.
    let event = format!("{}_{}", event_name(kind), std::process::id());
    let site = match kind {
        ProbeKind::Uprobe | ProbeKind::Uretprobe => Site::User(
            target
                .user
                .clone()
                .with_context(|| format!("{} is not a user-space function", target.symbol))?,
        ),
        _ => Site::Kernel(target.symbol.clone()),
    };
    let def = ProbeDef::new(kind, &event, site);
    tracefs.append(def.control_file(), &def.create_line())?;
    let mut probe = DynamicProbe::defined(tracefs, def, target, stack)?;
    probe.placement = probe.kprobes_list_flags();
    // The others, one event each, named after the target's (`kprobe_60_7`); a failure
    // drops `probe`, which removes every one defined so far.
    for (i, function) in others.iter().enumerate() {
        match mid_attach {
            Some(Fault::KillMidAttach) if i == others.len() / 2 => {
                // SAFETY: raise has no preconditions; SIGKILL ends the process, as the
                // clean-up test wants.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            Some(Fault::HangMidAttach) if i == others.len() / 2 => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            _ => {}
        }
        let other = ProbeDef::new(
            kind,
            &format!("{event}_{i}"),
            Site::Kernel(function.clone()),
        );
        tracefs
            .append(other.control_file(), &other.create_line())
            .with_context(|| format!("defining the probe on other function {function}"))?;
        probe.others.push(other);
    }
    // Entry events record the probed address, return events the function's.
    let field = match kind {
        ProbeKind::Kretprobe | ProbeKind::FprobeExit | ProbeKind::Uretprobe => "__probe_func",
        ProbeKind::Kprobe | ProbeKind::KprobeAt(_) | ProbeKind::Fprobe | ProbeKind::Uprobe => {
            "__probe_ip"
        }
    };
    probe.read_events(field)?;
    Ok(probe)
}

/// An fprobe on every function (`f:tracelab/<event> *`, the filter glob fprobe takes),
/// as a user asks for a wide glob. A kernel that refuses it says so in `error_log`,
/// and the cell reports that as unsupported.
fn define_every(tracefs: &Tracefs, target: &TargetFunction) -> Result<DynamicProbe, CellError> {
    let event = format!("{}_{}", event_name(ProbeKind::Fprobe), std::process::id());
    let def = ProbeDef::new(ProbeKind::Fprobe, &event, Site::EveryFunction);
    if let Err(e) = tracefs.append(def.control_file(), &def.create_line()) {
        let said = tracefs
            .read("error_log")
            .ok()
            .and_then(|l| {
                l.lines()
                    .rev()
                    .find_map(|l| l.split_once("error: ").map(|(_, m)| m.trim().to_string()))
            })
            .unwrap_or_else(|| format!("{e:#}"));
        return Err(CellError::Unsupported(format!(
            "fprobe on every function: this kernel refused `{}` ({said})",
            def.create_line()
        )));
    }
    let mut probe = DynamicProbe::defined(tracefs, def, target, false)?;
    probe.every = Some((Every::default(), per_call_on_every(target)));
    probe.read_events("__probe_ip")?;
    Ok(probe)
}

/// Events an fprobe on `*` writes per call of `target`. Since fprobe runs on
/// function_graph (6.15), its glob is matched against kallsyms and the function is
/// registered once per matching name: on x86_64 7.3 `__do_sys_getppid`,
/// `__x64_sys_getppid` and `__ia32_sys_getppid` share an address, and each call writes
/// three events. Before, the glob went through ftrace's filter, one entry per address.
/// The loops' count check holds the kernel to this prediction.
fn per_call_on_every(target: &TargetFunction) -> u64 {
    if fprobe_on_fgraph() {
        target.names().count() as u64
    } else {
        1
    }
}

/// Whether fprobe runs on function_graph (its `fprobe_fgraph_entry` in kallsyms). Read
/// once, at the first cell's `prepare`: scanning kallsyms inside an install, with every
/// function's fprobe defined, would be timed as the attach.
fn fprobe_on_fgraph() -> bool {
    static ON_FGRAPH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON_FGRAPH.get_or_init(|| {
        std::fs::read_to_string("/proc/kallsyms").is_ok_and(|k| {
            k.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("fprobe_fgraph_entry"))
        })
    })
}

/// Jump optimization off for a whole cell, restored when dropped: an optimized probe is
/// a different mechanism, and toggling it every repeat would queue the optimizer's
/// delayed work into the next timed loops.
pub(super) struct OptimizationOff {
    old: String,
}

impl OptimizationOff {
    /// Switches optimization off (recorded in the state file first, so a killed run's
    /// successor restores it); None where the kernel has no such knob.
    fn new() -> Result<Option<OptimizationOff>> {
        let Ok(old) = std::fs::read_to_string(KPROBES_OPTIMIZATION) else {
            return Ok(None);
        };
        let old = old.trim().to_string();
        crate::cleanup::record(|s| s.kprobes_optimization = Some(old.clone()))?;
        std::fs::write(KPROBES_OPTIMIZATION, "0")
            .with_context(|| format!("disabling jump optimization in {KPROBES_OPTIMIZATION}"))?;
        Ok(Some(OptimizationOff { old }))
    }
}

impl Drop for OptimizationOff {
    fn drop(&mut self) {
        // Best effort: this runs on error and unwind paths too.
        if std::fs::write(KPROBES_OPTIMIZATION, &self.old).is_ok() {
            let _ = crate::cleanup::record(|s| s.kprobes_optimization = None);
        }
    }
}

/// A kprobe on an instruction inside the function, past the ftrace site, so it takes the
/// breakpoint path (jump optimization is off for the cell: [`OptimizationOff`]).
fn install_at_offset(
    tracefs: &Tracefs,
    target: &TargetFunction,
    stack: bool,
) -> Result<Box<dyn Installed>> {
    let (step, max) = if cfg!(target_arch = "aarch64") {
        (4, 64)
    } else {
        (1, 64)
    };
    let mut tried = Vec::new();
    for off in (step..=max).step_by(step as usize) {
        let Ok(probe) = define(tracefs, target, ProbeKind::KprobeAt(off), &[], None, stack) else {
            continue;
        };
        match probe.placement.as_deref() {
            Some(flags) if flags.contains("FTRACE") => tried.push(format!("+{off} (ftrace site)")),
            Some(_) => return Ok(Box::new(probe)),
            None => bail!("cannot confirm the probe takes the breakpoint path: {KPROBES_LIST} does not list it (is debugfs mounted?)"),
        }
        // Dropping `probe` removes it; the next offset is tried.
    }
    bail!(
        "no offset inside {} up to +{max} takes a breakpoint kprobe (tried: {})",
        target.symbol,
        if tried.is_empty() {
            "none accepted".to_string()
        } else {
            tried.join(", ")
        }
    )
}

impl DynamicProbe {
    /// The probe `def`, which tracefs just took; removed when dropped.
    fn defined(
        tracefs: &Tracefs,
        def: ProbeDef,
        target: &TargetFunction,
        stack: bool,
    ) -> Result<DynamicProbe> {
        let probe = DynamicProbe {
            tracefs: tracefs.clone(),
            def,
            others: Vec::new(),
            target: target.clone(),
            placement: None,
            events: Vec::new(),
            stacks: stack.then(Default::default),
            every: None,
            removed: false,
        };
        if !tracefs.exists(&probe.def.event_dir()) {
            bail!(
                "{} was accepted but {} does not exist",
                probe.def.create_line(),
                probe.def.event_dir()
            );
        }
        Ok(probe)
    }

    /// Reads its event's format (the address in `field`) and, with the stack trace, the
    /// kernel stack entry's; then empties the buffer.
    fn read_events(&mut self, field: &str) -> Result<()> {
        self.events = vec![EventSpec::read(
            &self.tracefs,
            &self.def.event_dir(),
            field,
            Role::Call,
        )?];
        if self.stacks.is_some() {
            self.events.push(stack_event(&self.tracefs)?);
        }
        self.tracefs.clear_trace()
    }

    fn is_kprobe(&self) -> bool {
        self.def.control_file() == "kprobe_events"
    }

    /// Flags `kprobes/list` shows for this probe (e.g. `[FTRACE]`; empty for a plain
    /// breakpoint), None when the list is unreadable or does not show it.
    fn kprobes_list_flags(&self) -> Option<String> {
        if !self.is_kprobe() {
            return None;
        }
        let list = std::fs::read_to_string(KPROBES_LIST).ok()?;
        let suffix = match self.def.kind {
            ProbeKind::KprobeAt(off) => format!("+0x{off:x}"),
            _ => "+0x".to_string(),
        };
        let line = list.lines().find(|l| {
            self.target.names().any(|n| {
                l.split_whitespace()
                    .any(|w| w.starts_with(&format!("{n}{suffix}")))
            }) && l.split_whitespace().nth(1)
                == Some(if self.def.kind == ProbeKind::Kretprobe {
                    "r"
                } else {
                    "k"
                })
        })?;
        // `[DISABLED]` only says the event is not enabled yet.
        let flags = line.split_whitespace().filter(|w| w.starts_with('['));
        let flags: Vec<String> = flags
            .map(|w| w.replace("[DISABLED]", ""))
            .filter(|w| !w.is_empty())
            .collect();
        Some(flags.join(" "))
    }

    /// (hits, misses) of this probe in `kprobe_profile`.
    fn profile(&self) -> Result<(u64, u64)> {
        let text = self.tracefs.read("kprobe_profile")?;
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() == 3
                && (cols[0] == self.def.event
                    || cols[0] == format!("{}/{}", tracelab_probes::GROUP, self.def.event))
            {
                let hits = cols[1].parse().context("kprobe_profile hit count")?;
                let misses = cols[2].parse().context("kprobe_profile miss count")?;
                return Ok((hits, misses));
            }
        }
        bail!("kprobe_profile does not list {}", self.def.event)
    }

    /// Hits of this probe in `uprobe_profile` (`<file> <event> <hits>`; the event named
    /// with or without its group, as kernels differ).
    fn uprobe_hits(&self) -> Result<u64> {
        let text = self.tracefs.read("uprobe_profile")?;
        let ours = format!("{}/{}", tracelab_probes::GROUP, self.def.event);
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() == 3 && (cols[1] == self.def.event || cols[1] == ours) {
                return cols[2].parse().context("uprobe_profile hit count");
            }
        }
        bail!("uprobe_profile does not list {}", self.def.event)
    }

    /// Enables or disables the probe; with others, every event of the group at once
    /// (one write, as a tool enabling a group does; the group holds only this run's).
    fn set_enabled(&self, on: bool) -> Result<()> {
        let file = if self.others.is_empty() {
            format!("{}/enable", self.def.event_dir())
        } else {
            format!("events/{}/enable", tracelab_probes::GROUP)
        };
        self.tracefs.write(&file, if on { "1" } else { "0" })
    }

    fn teardown(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        // Recording back on, should a loop have failed between pause and resume.
        let resumed = match self.every.as_ref().map(|(e, _)| e) {
            Some(every) => every.resume(&self.tracefs),
            None => Ok(()),
        };
        let disabled = self.set_enabled(false);
        let mut removed = self
            .tracefs
            .append(self.def.control_file(), &self.def.remove_line());
        for other in std::mem::take(&mut self.others) {
            let r = self
                .tracefs
                .append(other.control_file(), &other.remove_line());
            removed = removed.and(r);
        }
        disabled?;
        removed?;
        resumed?;
        let left = self.tracefs.read(self.def.control_file())?;
        // The target's event and the others' (`<event>_<i>`).
        let ours = format!("{}/{}", tracelab_probes::GROUP, self.def.event);
        if left.lines().any(|l| {
            l.split_whitespace()
                .next()
                .and_then(|d| d.split_once(':'))
                .is_some_and(|(_, name)| name == ours || name.starts_with(&format!("{ours}_")))
        }) {
            bail!(
                "{} still lists {} after removal",
                self.def.control_file(),
                self.def.event
            );
        }
        Ok(())
    }
}

impl Installed for DynamicProbe {
    fn describe(&self) -> String {
        let mut s = match &self.placement {
            Some(flags) if flags.is_empty() => format!("{} (breakpoint)", self.def.create_line()),
            Some(flags) => format!("{} {flags}", self.def.create_line()),
            None => self.def.create_line(),
        };
        if self.every.is_some() {
            s.push_str(&format!(
                ": every function ({} in available_filter_functions); the target's events counted in the raw buffer, drained with recording off; {} per call",
                traceable_functions(&self.tracefs),
                match self.events_per_call() {
                    1 => "one event".to_string(),
                    n => format!(
                        "{n} events, one per name of its address ({})",
                        self.target.names().collect::<Vec<_>>().join(", ")
                    ),
                }
            ));
        }
        if !self.others.is_empty() {
            s.push_str(&format!(
                " + {} events like it on the other functions (`{}_<i>`), enabled with events/{}/enable",
                self.others.len(),
                self.def.event,
                tracelab_probes::GROUP
            ));
        }
        if self.stacks.is_some() {
            s.push_str("; options/stacktrace=1: a kernel stack entry after every event");
        }
        s
    }

    fn arm(&mut self) -> Result<()> {
        self.set_enabled(true)
    }

    fn disarm(&mut self) -> Result<()> {
        self.set_enabled(false)
    }

    fn hits(&self) -> Result<Option<u64>> {
        if let Some((every, _)) = &self.every {
            return every
                .drain(&self.tracefs, &self.events, &self.target)
                .map(Some);
        }
        match self.def.control_file() {
            "kprobe_events" => {
                let (hits, misses) = self.profile()?;
                if misses > 0 {
                    bail!("{} missed {misses} hits (kprobe_profile)", self.def.event);
                }
                Ok(Some(hits))
            }
            "uprobe_events" => self.uprobe_hits().map(Some),
            _ => {
                let written = self.tracefs.ring_buffer_events()?;
                // With the stack trace each event is followed by its stack entry (the
                // trace check proves it, one for one).
                Ok(Some(if self.stacks.is_some() {
                    written / 2
                } else {
                    written
                }))
            }
        }
    }

    fn stack_traces(&self) -> Result<Option<StackTraces>> {
        Ok(self.stacks.as_ref().map(std::cell::Cell::get))
    }

    fn events_per_call(&self) -> u64 {
        self.every.as_ref().map_or(1, |(_, n)| *n)
    }

    fn before_loop(&mut self) -> Result<()> {
        self.tracefs.clear_trace()?;
        // On every function, recording is off through the wait for a quiet kernel: the
        // fprobe's events of every function the wait runs overflowed a buffer sized for
        // the loop (x86_64 7.3, 200 calls).
        match self.every.as_ref().map(|(e, _)| e) {
            Some(every) => every.pause(&self.tracefs),
            None => Ok(()),
        }
    }

    fn loop_starts(&self) -> Result<()> {
        match self.every.as_ref().map(|(e, _)| e) {
            Some(every) => every.resume(&self.tracefs),
            None => Ok(()),
        }
    }

    fn check_trace(&self, expected: u64, slack: u64) -> Result<()> {
        if self.every.is_some() {
            // The loop's drain (hits) counted the target's events against `expected`.
            return Ok(());
        }
        // kprobe hits prove the handler ran; the buffer proves each event was written.
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

impl Drop for DynamicProbe {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(config: &[(&str, &str)], readme: &str) -> KernelEnv {
        KernelEnv {
            tracefs: true,
            kprobe_events: true,
            dynamic_events: true,
            readme: readme.into(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..KernelEnv::default()
        }
    }

    #[test]
    fn fprobe_support_names_the_missing_option() {
        let e = env(&[("CONFIG_FPROBE", "n"), ("CONFIG_KPROBES", "y")], "");
        assert_eq!(
            check_fprobe_support(&e),
            Err(Unsupported("CONFIG_FPROBE is not set".into()))
        );
        let e = env(
            &[("CONFIG_FPROBE", "y"), ("CONFIG_FPROBE_EVENTS", "n")],
            FPROBE_SYNTAX,
        );
        assert_eq!(
            check_fprobe_support(&e),
            Err(Unsupported("CONFIG_FPROBE_EVENTS is not set".into()))
        );
        let e = env(
            &[("CONFIG_FPROBE", "y"), ("CONFIG_FPROBE_EVENTS", "y")],
            FPROBE_SYNTAX,
        );
        assert_eq!(check_fprobe_support(&e), Ok(()));
        // Unknown config: the README decides, and the reason says it is a guess.
        let e = env(&[], "");
        assert!(check_fprobe_support(&e)
            .unwrap_err()
            .0
            .contains("CONFIG_FPROBE_EVENTS is not set?"));
    }

    #[test]
    fn uprobe_support_names_the_missing_option() {
        let mut e = env(
            &[("CONFIG_UPROBES", "y"), ("CONFIG_UPROBE_EVENTS", "y")],
            "",
        );
        e.uprobe_events = true;
        assert_eq!(check_uprobe_support(&e), Ok(()));
        let mut e = env(&[("CONFIG_UPROBES", "n")], "");
        e.uprobe_events = false;
        assert_eq!(
            check_uprobe_support(&e),
            Err(Unsupported("CONFIG_UPROBES is not set".into()))
        );
    }

    #[test]
    fn kprobe_support() {
        assert_eq!(
            check_kprobe_support(&env(
                &[("CONFIG_KPROBES", "y"), ("CONFIG_KPROBE_EVENTS", "y")],
                ""
            )),
            Ok(())
        );
        let mut e = env(&[("CONFIG_KPROBES", "n")], "");
        e.kprobe_events = false;
        assert_eq!(
            check_kprobe_support(&e),
            Err(Unsupported("CONFIG_KPROBES is not set".into()))
        );
    }
}
