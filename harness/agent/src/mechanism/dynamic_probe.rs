//! Dynamic probe events: kprobe, kretprobe (`kprobe_events`) and fprobe (`dynamic_events`).

use super::{check_trace_names, CellError, CellSetup, Installed, Mechanism, Unsupported};
use crate::resolve::TargetFunction;
use crate::tracefs::{KernelEnv, Tracefs, KPROBES_OPTIMIZATION};
use anyhow::{bail, Context, Result};
use tracelab_model::kconfig;
use tracelab_model::mechanism::MechanismKind;
use tracelab_model::workload::Workload;
use tracelab_probes::{ProbeDef, ProbeKind};

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

    fn is_fprobe(&self) -> bool {
        matches!(
            self.placement,
            Placement::Entry(ProbeKind::Fprobe | ProbeKind::FprobeExit)
        )
    }
}

const KPROBE_OPTIONS: &[&str] = &["CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"];
const FPROBE_OPTIONS: &[&str] = &["CONFIG_FPROBE", "CONFIG_FPROBE_EVENTS"];

impl Mechanism for TracefsProbe {
    fn kind(&self) -> MechanismKind {
        self.kind
    }

    fn requires(&self) -> &'static [&'static str] {
        if self.is_fprobe() {
            FPROBE_OPTIONS
        } else {
            KPROBE_OPTIONS
        }
    }

    fn check_support(&self, env: &KernelEnv, _: Workload) -> Result<(), Unsupported> {
        if self.is_fprobe() {
            check_fprobe_support(env)
        } else {
            check_kprobe_support(env)
        }
    }

    fn install(&self, cell: &CellSetup<'_>) -> Result<Box<dyn Installed>, CellError> {
        let tracefs = cell.tracefs()?;
        let installed: Box<dyn Installed> = match self.placement {
            Placement::Entry(kind) => Box::new(define(tracefs, cell.target()?, kind)?),
            Placement::Offset => install_at_offset(tracefs, cell.target()?)?,
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

/// A probe event defined in tracefs; removed on drop.
struct DynamicProbe {
    tracefs: Tracefs,
    def: ProbeDef,
    target: TargetFunction,
    /// How the kernel placed it (`kprobes/list` flags), for the results.
    placement: Option<String>,
    /// `kprobes-optimization` value to restore.
    restore_optimization: Option<String>,
    removed: bool,
}

fn event_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Kprobe => "kprobe",
        ProbeKind::KprobeAt(_) => "kprobe_offset",
        ProbeKind::Kretprobe => "kretprobe",
        ProbeKind::Fprobe => "fprobe",
        ProbeKind::FprobeExit => "fprobe_exit",
    }
}

fn define(tracefs: &Tracefs, target: &TargetFunction, kind: ProbeKind) -> Result<DynamicProbe> {
    let def = ProbeDef::new(kind, event_name(kind), target.symbol.clone());
    tracefs.append(def.control_file(), &def.create_line())?;
    let mut probe = DynamicProbe {
        tracefs: tracefs.clone(),
        def,
        target: target.clone(),
        placement: None,
        restore_optimization: None,
        removed: false,
    };
    if !tracefs.exists(&probe.def.event_dir()) {
        bail!(
            "{} was accepted but {} does not exist",
            probe.def.create_line(),
            probe.def.event_dir()
        );
    }
    probe.placement = probe.kprobes_list_flags();
    tracefs.clear_trace()?;
    Ok(probe)
}

/// A kprobe on an instruction inside the function, past the ftrace site, so it takes the
/// breakpoint path. Jump optimization is switched off while it exists: an optimized probe
/// is a different mechanism, and the kernel optimizes asynchronously, mid-measurement.
fn install_at_offset(tracefs: &Tracefs, target: &TargetFunction) -> Result<Box<dyn Installed>> {
    let restore = match std::fs::read_to_string(KPROBES_OPTIMIZATION) {
        Ok(old) => {
            crate::cleanup::record(|s| s.kprobes_optimization = Some(old.trim().to_string()))?;
            std::fs::write(KPROBES_OPTIMIZATION, "0").with_context(|| {
                format!("disabling jump optimization in {KPROBES_OPTIMIZATION}")
            })?;
            Some(old.trim().to_string())
        }
        Err(_) => None,
    };
    let (step, max) = if cfg!(target_arch = "aarch64") {
        (4, 64)
    } else {
        (1, 64)
    };
    let mut tried = Vec::new();
    for off in (step..=max).step_by(step as usize) {
        let Ok(mut probe) = define(tracefs, target, ProbeKind::KprobeAt(off)) else {
            continue;
        };
        probe.restore_optimization = restore.clone();
        match probe.placement.as_deref() {
            Some(flags) if flags.contains("FTRACE") => tried.push(format!("+{off} (ftrace site)")),
            Some(_) => return Ok(Box::new(probe)),
            None => bail!("cannot confirm the probe takes the breakpoint path: {KPROBES_LIST} does not list it (is debugfs mounted?)"),
        }
        // Dropping `probe` removes it; the next offset is tried.
        probe.restore_optimization = None;
    }
    restore_optimization(restore.as_deref());
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

fn restore_optimization(old: Option<&str>) {
    if let Some(old) = old {
        // Best effort: this runs on drop paths too.
        if std::fs::write(KPROBES_OPTIMIZATION, old).is_ok() {
            let _ = crate::cleanup::record(|s| s.kprobes_optimization = None);
        }
    }
}

impl DynamicProbe {
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
                && (cols[0] == self.def.event || cols[0].ends_with(&format!("/{}", self.def.event)))
            {
                let hits = cols[1].parse().context("kprobe_profile hit count")?;
                let misses = cols[2].parse().context("kprobe_profile miss count")?;
                return Ok((hits, misses));
            }
        }
        bail!("kprobe_profile does not list {}", self.def.event)
    }

    fn set_enabled(&self, on: bool) -> Result<()> {
        self.tracefs.write(
            &format!("{}/enable", self.def.event_dir()),
            if on { "1" } else { "0" },
        )
    }

    fn teardown(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let disabled = self.set_enabled(false);
        let removed = self
            .tracefs
            .append(self.def.control_file(), &self.def.remove_line());
        restore_optimization(self.restore_optimization.as_deref());
        disabled?;
        removed?;
        let left = self.tracefs.read(self.def.control_file())?;
        if left
            .lines()
            .any(|l| l.contains(&format!("{}/{} ", tracelab_probes::GROUP, self.def.event)))
        {
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
        match &self.placement {
            Some(flags) if flags.is_empty() => format!("{} (breakpoint)", self.def.create_line()),
            Some(flags) => format!("{} {flags}", self.def.create_line()),
            None => self.def.create_line(),
        }
    }

    fn arm(&mut self) -> Result<()> {
        self.tracefs.write("tracing_on", "1")?;
        self.set_enabled(true)
    }

    fn disarm(&mut self) -> Result<()> {
        self.set_enabled(false)
    }

    fn hits(&self) -> Result<Option<u64>> {
        if self.is_kprobe() {
            let (hits, misses) = self.profile()?;
            if misses > 0 {
                bail!("{} missed {misses} hits (kprobe_profile)", self.def.event);
            }
            Ok(Some(hits))
        } else {
            self.tracefs.ring_buffer_events().map(Some)
        }
    }

    fn events_per_call(&self) -> u64 {
        1
    }

    fn check_trace(&self) -> Result<()> {
        check_trace_names(&self.tracefs, &self.target)
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
