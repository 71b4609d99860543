//! Dynamic tracefs probes (kprobe, kretprobe, fprobe) as text lines.

/// Event group of every probe the lab creates. It marks them as ours, so a later run can
/// find and remove leftovers of a crashed one without touching anybody else's probes.
pub const GROUP: &str = "tracelab";

pub use tracelab_model::symbol::{Symbol, SymbolError};

/// The kinds of dynamic probe the lab defines through tracefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `p:` at the function's entry.
    Kprobe,
    /// `p:` at a byte offset inside the function (past the ftrace site: the breakpoint path).
    KprobeAt(u32),
    /// `r:` on return.
    Kretprobe,
    /// `f:` fprobe at entry.
    Fprobe,
    /// `f: ... %return` fprobe at exit.
    FprobeExit,
}

/// One probe definition: what to write to create it and to remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    pub kind: ProbeKind,
    /// Event name inside [`GROUP`]: an identifier the lab makes (kind and run), never
    /// user text.
    pub event: String,
    pub symbol: Symbol,
}

impl ProbeDef {
    pub fn new(kind: ProbeKind, event: &str, symbol: Symbol) -> Self {
        // Only the lab's own identifiers get here; anything else would be tracefs syntax.
        let event: String = event
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        ProbeDef {
            kind,
            event,
            symbol,
        }
    }

    /// The tracefs file the definition is written to.
    pub fn control_file(&self) -> &'static str {
        match self.kind {
            ProbeKind::Kprobe | ProbeKind::KprobeAt(_) | ProbeKind::Kretprobe => "kprobe_events",
            ProbeKind::Fprobe | ProbeKind::FprobeExit => "dynamic_events",
        }
    }

    /// The line that creates the probe.
    pub fn create_line(&self) -> String {
        let (g, e, s) = (GROUP, &self.event, &self.symbol);
        match self.kind {
            ProbeKind::Kprobe => format!("p:{g}/{e} {s}"),
            ProbeKind::KprobeAt(off) => format!("p:{g}/{e} {s}+{off}"),
            ProbeKind::Kretprobe => format!("r:{g}/{e} {s}"),
            ProbeKind::Fprobe => format!("f:{g}/{e} {s}"),
            ProbeKind::FprobeExit => format!("f:{g}/{e} {s}%return"),
        }
    }

    /// The line that removes the probe (`-:GROUP/EVENT`).
    pub fn remove_line(&self) -> String {
        remove_line(&self.event)
    }

    /// The event's directory under tracefs.
    pub fn event_dir(&self) -> String {
        format!("events/{GROUP}/{}", self.event)
    }
}

/// The line that removes event `event` of [`GROUP`], whatever kind of probe it is.
pub fn remove_line(event: &str) -> String {
    format!("-:{GROUP}/{event}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).expect("valid symbol")
    }

    #[test]
    fn accepts_kernel_symbols() {
        for s in [
            "__x64_sys_getppid",
            "__arm64_sys_getppid",
            "do_one.isra.0",
            "_text",
        ] {
            assert!(Symbol::new(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_smuggled_tracefs_syntax() {
        for s in [
            "getppid\np:evil/x do_exit",
            "a b",
            "f%return",
            "sym+4",
            "-:tracelab/kprobe",
            "x:y",
            "!sym",
            "*",
            "1abc",
            "",
        ] {
            assert!(Symbol::new(s).is_err(), "{s:?} accepted");
        }
        assert_eq!(
            Symbol::new(&"a".repeat(300)),
            Err(SymbolError::TooLong(300))
        );
    }

    #[test]
    fn lines_for_each_kind() {
        let s = sym("__do_sys_getppid");
        let line = |k, e| ProbeDef::new(k, e, s.clone()).create_line();
        assert_eq!(
            line(ProbeKind::Kprobe, "kprobe"),
            "p:tracelab/kprobe __do_sys_getppid"
        );
        assert_eq!(
            line(ProbeKind::KprobeAt(9), "kprobe_offset"),
            "p:tracelab/kprobe_offset __do_sys_getppid+9"
        );
        assert_eq!(
            line(ProbeKind::Kretprobe, "kretprobe"),
            "r:tracelab/kretprobe __do_sys_getppid"
        );
        assert_eq!(
            line(ProbeKind::Fprobe, "fprobe"),
            "f:tracelab/fprobe __do_sys_getppid"
        );
        assert_eq!(
            line(ProbeKind::FprobeExit, "fprobe_exit"),
            "f:tracelab/fprobe_exit __do_sys_getppid%return"
        );
        let d = ProbeDef::new(ProbeKind::Fprobe, "fprobe", s);
        assert_eq!(d.control_file(), "dynamic_events");
        assert_eq!(d.remove_line(), "-:tracelab/fprobe");
        assert_eq!(d.event_dir(), "events/tracelab/fprobe");
    }

    proptest::proptest! {
        /// Round trip: whatever text comes in as a function or event name, the line
        /// written to tracefs is one command of our group, and its symbol reads back as
        /// exactly the name that was validated; nothing else reaches tracefs.
        #[test]
        fn only_validated_symbols_reach_tracefs(name in "\\PC{0,40}|[a-z_][a-z0-9_.]{0,20}", event in "\\PC{0,20}", off in 0u32..64) {
            let Ok(symbol) = Symbol::new(&name) else {
                return Ok(());
            };
            for kind in [ProbeKind::Kprobe, ProbeKind::KprobeAt(off), ProbeKind::Kretprobe, ProbeKind::Fprobe, ProbeKind::FprobeExit] {
                let def = ProbeDef::new(kind, &event, symbol.clone());
                let line = def.create_line();
                proptest::prop_assert!(!line.contains(['\n', '\r', ';', '*', '$']), "{line:?}");
                let (head, target) = line.split_once(' ').expect("two words");
                proptest::prop_assert!(!target.contains(' '), "{line:?}");
                proptest::prop_assert!(head[2..].starts_with(&format!("{GROUP}/")), "{line:?}");
                let back = target.split(['+', '%']).next().expect("symbol");
                proptest::prop_assert_eq!(back, name.as_str());
                proptest::prop_assert_eq!(def.remove_line(), format!("-:{GROUP}/{}", def.event));
            }
        }
    }
}
