//! Progress of a running study, matrix or userland guest, typed: the events the
//! library reports and the one observer trait the CLI (and tests) implement. A leaf, so
//! the guest layer can report progress without importing the study that drives it.

use crate::dataset::GuestEntry;
use tracelab_model::cell::Cell;

/// What a running study or matrix reports as it goes, typed: the one progress observer
/// of `run` and `matrix` (the CLI's draws the bars; tests record or ignore them).
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step before or between cells (fetching, booting, a warning).
    Stage(&'a str),
    /// A cell finished and is stored.
    Cell {
        cell: &'a Cell,
        done: usize,
        total: usize,
    },
    /// A matrix guest finished (done or error: the entry says which).
    GuestDone(&'a GuestEntry),
}

pub trait Observer: Sync {
    /// `guest` names the matrix guest the event is about; None for a lone study.
    fn event(&self, guest: Option<&str>, event: Event<'_>);
}
