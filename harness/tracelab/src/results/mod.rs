//! Results: storing finished cells and everything derived from them.
//!
//! A results directory holds `meta.json` ([`RunMeta`]), `cells/NNN-<mechanism>.json`
//! (each [`tracelab_model::cell::Cell`] as finished), and the derived `samples.parquet`,
//! `summary.parquet` and `overhead.svg`, rebuilt after every cell. `results/README.md`
//! at the repository root documents every file and column.

pub mod atomic;

pub mod meta;
pub mod parquet;
pub mod render;
pub mod row;
pub mod store;

pub use meta::{new_run_id, rfc3339_utc, RunMeta};
pub use render::{render, render_rows};
pub use row::SummaryRow;
pub use store::{
    load, load_breakdowns, load_rows, load_summaries, read_meta, regenerate, update_meta,
    ResultsDir, ATTRIBUTION_FILE,
};

#[cfg(test)]
mod tests;
