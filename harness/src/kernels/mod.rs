//! Debian kernel catalog (being written).
