//! Tracing mechanisms (being written).
mod kind;
pub use kind::{MechanismKind, UnknownMechanism};
