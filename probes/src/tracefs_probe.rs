//! Dynamic tracefs probes (kprobe, kretprobe, fprobe, uprobe, uretprobe) as text lines.

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
    /// `p:` on a user-space instruction (`uprobe_events`).
    Uprobe,
    /// `r:` on a user-space function's return.
    Uretprobe,
}

/// Where a probe goes: a kernel symbol, every kernel function (an fprobe's `*` filter),
/// or an instruction of a user-space file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    Kernel(Symbol),
    EveryFunction,
    User(UserSite),
}

impl From<Symbol> for Site {
    fn from(s: Symbol) -> Site {
        Site::Kernel(s)
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Kernel(s) => write!(f, "{s}"),
            Site::EveryFunction => write!(f, "*"),
            Site::User(u) => write!(f, "{}:0x{:x}", u.path, u.offset),
        }
    }
}

/// An instruction of an executable file: its path and its offset in the file, as
/// `uprobe_events` and libbpf take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSite {
    path: String,
    pub offset: u64,
}

/// Why a path cannot go into `uprobe_events`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {0:?} cannot be probed through uprobe_events: use an absolute path of letters, digits and / . _ - + (no `..`)")]
pub struct PathError(pub String);

impl UserSite {
    /// Validates the path: absolute, of characters that are never tracefs syntax (a
    /// space, `:` or newline would end or split the definition).
    pub fn new(path: &str, offset: u64) -> Result<UserSite, PathError> {
        let ok = path.starts_with('/')
            && path.len() <= 4096
            && !path.split('/').any(|c| c == "..")
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
        if !ok {
            return Err(PathError(path.to_string()));
        }
        Ok(UserSite {
            path: path.to_string(),
            offset,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// One probe definition: what to write to create it and to remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    pub kind: ProbeKind,
    /// Event name inside [`GROUP`]: an identifier the lab makes (kind and run), never
    /// user text.
    pub event: String,
    pub site: Site,
}

impl ProbeDef {
    pub fn new(kind: ProbeKind, event: &str, site: impl Into<Site>) -> Self {
        // Only the lab's own identifiers get here; anything else would be tracefs syntax.
        let event: String = event
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        ProbeDef {
            kind,
            event,
            site: site.into(),
        }
    }

    /// The tracefs file the definition is written to.
    pub fn control_file(&self) -> &'static str {
        match self.kind {
            ProbeKind::Kprobe | ProbeKind::KprobeAt(_) | ProbeKind::Kretprobe => "kprobe_events",
            ProbeKind::Fprobe | ProbeKind::FprobeExit => "dynamic_events",
            ProbeKind::Uprobe | ProbeKind::Uretprobe => "uprobe_events",
        }
    }

    /// The line that creates the probe.
    pub fn create_line(&self) -> String {
        let (g, e, s) = (GROUP, &self.event, &self.site);
        match self.kind {
            ProbeKind::Kprobe => format!("p:{g}/{e} {s}"),
            ProbeKind::KprobeAt(off) => format!("p:{g}/{e} {s}+{off}"),
            ProbeKind::Kretprobe => format!("r:{g}/{e} {s}"),
            ProbeKind::Fprobe => format!("f:{g}/{e} {s}"),
            ProbeKind::FprobeExit => format!("f:{g}/{e} {s}%return"),
            ProbeKind::Uprobe => format!("p:{g}/{e} {s}"),
            ProbeKind::Uretprobe => format!("r:{g}/{e} {s}"),
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
        let site = UserSite::new("/init/tracelab-agent", 0x1a2b0).expect("path");
        let u = ProbeDef::new(ProbeKind::Uretprobe, "uretprobe", Site::User(site));
        assert_eq!(u.control_file(), "uprobe_events");
        assert_eq!(
            u.create_line(),
            "r:tracelab/uretprobe /init/tracelab-agent:0x1a2b0"
        );
        assert_eq!(
            ProbeDef::new(ProbeKind::Fprobe, "fprobe", Site::EveryFunction).create_line(),
            "f:tracelab/fprobe *"
        );
        assert_eq!(d.remove_line(), "-:tracelab/fprobe");
        assert_eq!(d.event_dir(), "events/tracelab/fprobe");
    }

    #[test]
    fn user_paths_cannot_smuggle_tracefs_syntax() {
        for p in [
            "relative/agent",
            "/a b",
            "/a:0x10 p:evil/x /bin/sh",
            "/a\nr:x /b",
            "/tmp/../etc/x",
            "/a%return",
            "",
        ] {
            assert!(UserSite::new(p, 0).is_err(), "{p:?} accepted");
        }
        assert!(UserSite::new("/usr/lib/x86_64-linux-gnu/libc.so.6", 0).is_ok());
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
