//! tracelab's measurement agent: runs a plan's cells on the kernel it is running on (in a
//! guest, or natively for `--target local`) and reports each finished cell at once.
//!
//! The data go plan → [`mechanism`] (one registry) × workload → [`measure`] (the paired
//! protocol) → one [`tracelab_model::protocol::Record`] per cell. Everything it changes
//! in the kernel sits behind a guard, and [`cleanup`] restores what a killed run left.
//! Its dependency graph holds no polars, plotters or HTTP client: it is copied into every
//! guest as one static binary.

mod btf;
pub mod cleanup;
mod clock;
pub mod console;
pub mod counters;
mod cpu;
pub mod environment;
mod firing;
mod function_set;
mod interrupts;
pub mod kernel_state;
mod loop_size;
mod marker;
mod measure;
pub mod mechanism;
mod other_tracers;
mod quiesce;
pub mod resolve;
mod ring_buffer;
mod run;
mod symbols;
pub mod tracefs;

pub use run::{clear_leftovers, run, Completion};
