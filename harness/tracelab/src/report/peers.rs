//! The report's Peers section: each `tracelab peers` run found among the inputs, its
//! trig-* table (the selftests bench and bpftrace beside the lab's cells) and how it
//! was made, in both documents.

use super::Report;
use crate::peers::{self, Stored};
use crate::render::escape_html as escape;
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
        let source = format!("from `{}`", dir.display());
        md.push_str(&format!(
            "### {} ({source})\n\n{}\n\n| {} |\n|",
            done.target,
            peers::method(done),
            headers.join(" | ")
        ));
        for i in 0..headers.len() {
            md.push_str(if peers::NUMERIC.contains(&i) {
                "---:|"
            } else {
                "---|"
            });
        }
        md.push('\n');
        for r in &rows {
            md.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        md.push('\n');
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
