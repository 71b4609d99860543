//! Results store (being written).
