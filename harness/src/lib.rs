//! tracelab: measures what Linux tracing mechanisms cost per traced call.
//!
//! The data flows plan → target → agent (mechanism × workload → measurement) → results →
//! report. Modules without the `host` feature make up the static guest agent; the rest
//! (kernel catalog, guests, Parquet results, plots) run on the host only.

pub mod agent;
pub mod arch;
pub mod cleanup;
pub mod environment;
pub mod kconfig;
pub mod measurement;
pub mod mechanism;
pub mod plan;
pub mod protocol;
pub mod resolve;
pub mod schema;
pub mod tracefs;

#[cfg(feature = "host")]
pub mod cli;
#[cfg(feature = "host")]
pub mod compare;
#[cfg(feature = "host")]
pub mod dataset;
#[cfg(feature = "host")]
pub mod doctor;
#[cfg(feature = "host")]
pub mod guest;
#[cfg(feature = "host")]
pub mod kernels;
#[cfg(feature = "host")]
pub mod matrix;
#[cfg(feature = "host")]
pub mod report;
#[cfg(feature = "host")]
pub mod results;
#[cfg(feature = "host")]
pub mod study;
#[cfg(feature = "host")]
pub mod synthetic;
#[cfg(feature = "host")]
pub mod target;

/// The lab's version, recorded in every result.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
