//! The report's Peers section: each `tracelab peers` run found among the inputs, its
//! trig-* table (the selftests bench and bpftrace beside the lab's cells) and how it
//! was made, in both documents.

use super::Report;
use crate::render::escape_html as escape;
use crate::self_study::peers::{self, Stored};
use std::path::PathBuf;

/// Appends one Peers section per run to the report's Markdown and HTML.
pub(super) fn add(report: &mut Report, found: &[(PathBuf, Stored)]) {
    if found.is_empty() {
        return;
    }
    let mut md = String::from("\n## Peers\n\n");
    let mut html = String::from("<h2>Peers</h2>\n");
    for (dir, done) in found {
        let (headers, rows) = peers::table(done);
        md.push_str(&format!(
            "### {} (from `{}`)\n\n{}\n\n{}\n",
            done.target,
            dir.display(),
            peers::method(done),
            peers::markdown_table(done)
        ));
        html.push_str(&format!(
            "<h3>{} (from <code>{}</code>)</h3>\n<p>{}</p>\n<table>\n<tr>{}</tr>\n",
            escape(&done.target),
            escape(&dir.display().to_string()),
            escape(&peers::method(done)),
            headers
                .iter()
                .map(|h| format!("<th>{}</th>", escape(h)))
                .collect::<String>()
        ));
        for r in &rows {
            html.push_str("<tr>");
            for (i, v) in r.iter().enumerate() {
                let class = if peers::NUMERIC.contains(&i) {
                    " class=\"num\""
                } else {
                    ""
                };
                html.push_str(&format!("<td{class}>{}</td>", escape(v)));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
    }
    report.markdown.push_str(&md);
    match report.html.rfind("</body>") {
        Some(at) => report.html.insert_str(at, &html),
        None => report.html.push_str(&html),
    }
}

#[cfg(test)]
mod tests {
    /// A peers record as `tracelab peers` writes it, two rows of it.
    const RECORD: &str = r#"{
      "target": "vm:x86_64/7.3", "calls": 20000, "memory_mib": 2048, "tolerance": 0.03,
      "bpftrace": "bpftrace v0.23.2",
      "selftests": {"built": {"binary": "/c/bench", "arch": "x86_64",
        "source": {"name": "linux-source-7.3", "version": "7.3.4-1~bpo13+1",
          "filename": "pool/x.deb", "sha256": "00", "size_bytes": 1},
        "clang": "Debian clang version 19.1.7", "baseline_calls_helper": true, "build_secs": 24.2}},
      "rows": [
        {"bench": "fentry", "workload": "bpf-numa-batch", "lab_cell": "bpf-fentry",
         "lab": 137.16, "lab_empty": 117.16, "selftests": 122.11, "selftests_mps": [6.549, 0.0],
         "bpftrace": 140.16, "bpftrace_hits": 462001, "expected_hits": 120000,
         "note": "bench differs beyond 3%, likely a different program body <x>"},
        {"bench": "fmodret", "workload": "bpf-kfunc-batch", "lab_cell": "bpf-fmod-ret",
         "lab": 188.16, "lab_empty": 168.16, "selftests": 168.15, "selftests_mps": [5.032, 0.0],
         "bpftrace": null, "bpftrace_hits": null, "expected_hits": 120000,
         "note": "bpftrace: not run (bpftrace has no fmod_ret probe type)"}
      ],
      "steps": [["bench-fentry", 0]], "secs": 217.5,
      "userland": {"arch": "x86_64", "profile": "peers", "suite": "trixie", "mirror": "m",
        "packages": [], "file_bytes": 1048576, "archive_sha256": "00"}
    }"#;

    #[test]
    fn a_peers_directory_becomes_a_section_of_the_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let peers = dir.path().join("peers-7.3");
        // The runs a peers directory holds were measured with a peer attached: a stray
        // results directory under it must not be drawn.
        std::fs::create_dir_all(peers.join("guest/bpftrace-fentry")).expect("mkdir");
        std::fs::write(peers.join("guest/bpftrace-fentry/meta.json"), "{}").expect("write");
        std::fs::write(peers.join("peers.json"), RECORD).expect("write");
        let out = dir.path().join("report");
        let made =
            super::super::make(std::slice::from_ref(&peers), &out, "t", false).expect("report");
        assert_eq!(made.runs, 0);
        let md = std::fs::read_to_string(out.join("report.md")).expect("md");
        assert!(md.contains("## Peers\n\n### vm:x86_64/7.3 (from `"), "{md}");
        assert!(md.contains("| trig-fentry | bpf-numa-batch | bpf-fentry | 117.16 | 6.549 ± 0.000 | 122.11 | +4.2% | 137.16 | 140.16 | +2.2% | 462001 |"), "{md}");
        assert!(
            md.contains("built from linux-source-7.3 7.3.4-1~bpo13+1"),
            "{md}"
        );
        let html = std::fs::read_to_string(out.join("report.html")).expect("html");
        let section = html.find("<h2>Peers</h2>").expect("section");
        assert!(section < html.rfind("</body>").expect("body"));
        assert!(
            html.contains("&lt;x&gt;") && !html.contains("<x>"),
            "notes are escaped"
        );
        assert!(html.contains("<td class=\"num\">122.11</td>"));
    }
}
