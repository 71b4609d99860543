//! tracelab's model: what the agent and the host agree on.
//!
//! The schema of results and the console protocol, the plan, a cell's identity, the axes
//! of a study (arch, mechanism, payload, workload), kernel-config parsing and the
//! statistics that turn samples into a summary. The static guest agent and the host both
//! build on it, so it stays a light leaf: serde, thiserror, strum, nothing else heavy.

pub mod arch;
pub mod atomic;
pub mod attribution;
pub mod cell;
pub mod cell_id;
pub mod environment;
pub mod family;
pub mod kconfig;
pub mod kernel_state;
pub mod mechanism;
pub mod names;
pub mod payload;
pub mod plan;
pub mod protocol;
pub mod provenance;
pub mod rank_test;
pub mod schema;
pub mod stats;
pub mod summary;
pub mod symbol;
pub mod workload;

pub use provenance::VERSION;
