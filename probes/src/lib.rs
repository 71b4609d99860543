//! Probe definitions.
//!
//! Everything the lab writes into tracefs is built here from validated parts, so no
//! newline, space or tracefs syntax can be smuggled into `kprobe_events`,
//! `dynamic_events` or `set_ftrace_filter` through a function name. The BPF programs
//! (`src/bpf/*.bpf.c`) are compiled by `build.rs`; [`bpf`] names what is in them.

pub mod bpf;
pub mod tracefs_probe;

pub use tracefs_probe::{
    PathError, ProbeDef, ProbeKind, Site, Symbol, SymbolError, UserSite, GROUP,
};
