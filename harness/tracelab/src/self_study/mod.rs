//! The lab's studies of itself, apart from the measuring pipeline they exercise:
//! - [`chaos`]: runs killed at seeded random points, checked for leftovers and lost cells;
//! - [`peers`]: bpftrace and the kernel's selftests bench beside the lab's own cells;
//! - [`rehearsal`]: the native (`--target local`) path, run in a guest with a Debian
//!   userland and put beside the agent guest's figures.

pub mod chaos;
pub mod peers;
pub mod rehearsal;
