//! tracelab's host side: the command line, studies on their targets (this host, or QEMU
//! guests booted from Debian kernels), the results store, datasets, matrix, report,
//! compare and doctor.
//!
//! The data flow plan → target → agent (`tracelab-agent`, in a guest or in-process) →
//! results → show / report / compare. Crates point one way: tracelab → {agent, kernels}
//! → model.

pub mod attribution;
pub mod bisect;
pub mod cli;
pub mod compare;
pub mod dataset;
pub mod doctor;
pub mod export;
pub mod guest;
pub mod history;
pub mod interrupt;
pub mod matrix;
pub mod merge;
pub mod plot;
pub mod progress;
pub mod publish;
pub mod render;
pub mod report;
pub mod results;
pub mod self_study;
pub mod study;
/// Fabricated results for tests and benchmarks (the `test-support` feature), never part
/// of a measurement.
#[cfg(any(test, feature = "test-support"))]
pub mod synthetic;
pub mod target;
pub mod timing;
