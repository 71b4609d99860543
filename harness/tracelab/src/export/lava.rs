//! `lava-test-case` lines, one per cell, for the run steps of a LAVA test definition
//! (`tracelab export --format lava <results> | sh`): a measured cell passes with its
//! overhead and unit, an unsupported one is `skip` and a failed one `fail`, each after an
//! `echo` of its reason for the job's log.

use super::Exported;
use std::fmt::Write;
use tracelab_model::schema::Status;

pub(super) fn render(cells: &[Exported]) -> String {
    let mut out = String::new();
    for c in cells {
        let r = &c.row;
        let name = test_case_name(&c.name);
        match (r.status, r.overhead.filter(|v| v.is_finite())) {
            (Status::Ok, Some(v)) => {
                let _ = writeln!(
                    out,
                    "lava-test-case {name} --result pass --measurement {v} --units {}",
                    r.unit
                );
            }
            (status, _) => {
                let result = if status == Status::Unsupported {
                    "skip"
                } else {
                    "fail"
                };
                let why = format!(
                    "tracelab: {}: {status}: {}",
                    c.name,
                    r.reason.as_deref().unwrap_or("no figure")
                );
                let _ = writeln!(out, "echo {}", shell_quote(&why));
                let _ = writeln!(out, "lava-test-case {name} --result {result}");
            }
        }
    }
    out
}

/// A test case name LAVA accepts: letters, digits, `.`, `_` and `-` (a `/` or anything
/// else becomes `_`).
pub(super) fn test_case_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `s` in single quotes for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
