//! One stored cell: where it ran, what the agent measured, and the summary derived from
//! the samples (never stored without them).

use crate::schema::{CellContext, Measured, Status, SCHEMA_VERSION};
use crate::summary::Summary;
use serde::{Deserialize, Serialize};

/// One stored cell: context, raw measurement, derived summary, and for failures the
/// console tail that explains them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub schema_version: u32,
    #[serde(flatten)]
    pub context: CellContext,
    #[serde(flatten)]
    pub measured: Measured,
    pub summary: Option<Summary>,
    pub console_tail: Option<String>,
}

impl Cell {
    pub fn new(context: CellContext, measured: Measured, console_tail: Option<String>) -> Self {
        let summary = if measured.status == Status::Ok {
            crate::summary::summarize(&measured.samples)
        } else {
            None
        };
        Cell {
            schema_version: SCHEMA_VERSION,
            context,
            measured,
            summary,
            console_tail,
        }
    }
}
