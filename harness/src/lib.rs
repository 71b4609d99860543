//! tracelab: measures what Linux tracing mechanisms cost per traced call.

pub mod arch;
pub mod kconfig;
pub mod measurement;
pub mod mechanism;
pub mod plan;
pub mod protocol;
pub mod schema;

#[cfg(feature = "host")]
pub mod kernels;
#[cfg(feature = "host")]
pub mod results;

/// The lab's version, recorded in every result.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
