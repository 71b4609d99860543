//! SQUAD (Linaro's test and metrics dashboard): one submission of every cell to
//! `POST <url>/api/submit/<group>/<project>/<build>/<environment>`, as SQUAD's form fields
//! `metrics` (`{"tracelab/x86_64/6.12/getppid/kprobe": {"value": 818.86, "unit": "insn"}}`:
//! the overhead per call in the cell's own unit), `tests` (the same names, `pass` for a
//! measured cell, `skip` for an unsupported one, `fail` for a failed one) and `metadata`
//! (the runs and their clocks). SQUAD names a metric's suite by what comes before the last
//! `/`, so a label's own `/` (`bpf-fentry/count/k1`) becomes `:`.
//!
//! One request: SQUAD stores all of it or nothing, and a refusal leaves nothing behind.

use super::Exported;
use anyhow::{bail, Result};
use serde_json::{json, Map, Value};
use tracelab_model::schema::Status;

/// What SQUAD is sent: its three form fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub metrics: Value,
    pub tests: Value,
    pub metadata: Value,
}

impl Payload {
    pub fn metric_count(&self) -> usize {
        self.metrics.as_object().map_or(0, Map::len)
    }

    pub fn test_count(&self) -> usize {
        self.tests.as_object().map_or(0, Map::len)
    }

    /// The three fields as one JSON object (what `export --format squad` prints without
    /// `--url`).
    pub fn to_json(&self) -> Value {
        json!({ "metrics": self.metrics, "tests": self.tests, "metadata": self.metadata })
    }
}

/// A cell's name in SQUAD: `tracelab/<where>/<label with : for />`.
fn name(c: &Exported) -> String {
    let prefix = c
        .name
        .strip_suffix(&c.label)
        .unwrap_or(&c.name)
        .trim_end_matches('/');
    format!("tracelab/{prefix}/{}", c.label.replace('/', ":"))
}

pub(super) fn payload(cells: &[Exported]) -> Payload {
    let mut metrics = Map::new();
    let mut tests = Map::new();
    let mut runs: Vec<Value> = Vec::new();
    for c in cells {
        let name = name(c);
        let status = match c.row.status {
            Status::Ok => "pass",
            Status::Unsupported => "skip",
            _ => "fail",
        };
        tests.insert(name.clone(), json!(status));
        if let Some(v) = c.row.overhead.filter(|v| v.is_finite()) {
            if c.row.status == Status::Ok {
                metrics.insert(name, json!({ "value": v, "unit": c.row.unit.name() }));
            }
        }
        let run = json!({ "run_id": c.run_id, "clock": c.clock });
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    Payload {
        metrics: Value::Object(metrics),
        tests: Value::Object(tests),
        metadata: json!({ "source": "tracelab", "runs": runs }),
    }
}

/// Where a submission goes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The server's base URL (`https://qa-reports.linaro.org`).
    pub url: String,
    pub group: String,
    pub project: String,
    pub build: String,
    pub environment: String,
    /// An API token of a user who may submit to the project (`$SQUAD_TOKEN`).
    pub token: String,
}

/// A slug or a build name as one URL path segment: letters, digits, `.`, `_`, `-`, `+`.
pub fn check_segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        && !s.starts_with('.');
    if !ok {
        bail!("SQUAD {what} {s:?}: use letters, digits and . _ - + (at most 100)");
    }
    Ok(())
}

impl Destination {
    pub fn endpoint(&self) -> String {
        format!(
            "{}/api/submit/{}/{}/{}/{}",
            self.url.trim_end_matches('/'),
            self.group,
            self.project,
            self.build,
            self.environment
        )
    }
}

/// How long SQUAD gets to answer a submission.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Submits `payload` to `to` in one request; SQUAD's reply (the test run's id).
pub fn submit(payload: &Payload, to: &Destination) -> Result<String> {
    let endpoint = to.endpoint();
    let sent = format!(
        "{} metrics and {} tests in one request",
        payload.metric_count(),
        payload.test_count()
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .user_agent(format!("tracelab/{}", tracelab_model::VERSION))
        .build()
        .into();
    let fields = [
        ("metrics", payload.metrics.to_string()),
        ("tests", payload.tests.to_string()),
        ("metadata", payload.metadata.to_string()),
    ];
    let reply = agent
        .post(&endpoint)
        .header("Auth-Token", &to.token)
        .send_form(fields.iter().map(|(k, v)| (*k, v.as_str())));
    match reply {
        Ok(mut r) => Ok(r.body_mut().read_to_string().unwrap_or_default().trim().to_string()),
        Err(ureq::Error::StatusCode(status)) => {
            let hint = match status {
                401 | 403 => " (is $SQUAD_TOKEN a token of a user who may submit to this project?)",
                404 => " (does the group exist, and the project in it?)",
                _ => "",
            };
            bail!("SQUAD at {endpoint} refused the submission: HTTP {status}{hint}; nothing was stored ({sent})")
        }
        Err(e) => bail!(
            "SQUAD at {endpoint} did not answer: {e}; the submission ({sent}) was not confirmed, check the build before sending it again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_checked() {
        for good in ["tracelab", "nightly", "2026-12-06-1", "6.12.118+deb12"] {
            assert!(check_segment("build", good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "..", "a b", "x?y=1", ".hidden"] {
            let e = check_segment("build", bad).expect_err(bad).to_string();
            assert!(e.contains("letters, digits"), "{e}");
        }
    }
}
