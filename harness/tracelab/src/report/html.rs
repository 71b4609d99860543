//! The report as one self-contained HTML page: SVG inline, CSS inline, no script and no
//! external reference, so it opens offline and can be attached to a CI run as one file.

use super::model::{self, Point};
use super::Figure;
use crate::dataset::Run;
use crate::render::{escape_html as escape, fixed};
use crate::results::row::one_line;
use tracelab_model::schema::Status;

const STYLE: &str =
    "body{font-family:sans-serif;margin:2em auto;max-width:1280px;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.9em;color:#555}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.ns{color:#888}.failed{color:#b00}\
details{margin:.5em 0}code{font-size:.9em}";

/// Text of one table cell for a point: the overhead with its interval, or the status.
pub(super) fn cell_text(p: Option<&Point>) -> String {
    match p {
        None => "-".into(),
        Some(p) => match (p.status, p.overhead) {
            (Status::Ok, Some(o)) => match p.interval {
                Some(i) if i.high > i.low => {
                    format!(
                        "{} [{}, {}]",
                        fixed(o, 2),
                        fixed(i.low, 2),
                        fixed(i.high, 2)
                    )
                }
                _ => fixed(o, 2),
            },
            (Status::Ok, None) => "ok, no summary".into(),
            (s, _) => s.name().into(),
        },
    }
}

/// Per panel (arch, workload) and unit: series × kernel table of overheads; then each
/// arch's counters.
fn tables(points: &[Point]) -> String {
    let mut out = String::new();
    for (label, here) in model::panels(points) {
        let per = model::per_what(&here[0].workload);
        for unit in model::units(here.iter().copied()) {
            let cells: Vec<&Point> = here.iter().copied().filter(|p| p.unit == unit).collect();
            let kernels = model::kernels(cells.iter().copied());
            out.push_str(&format!(
                "<h3>{}: overhead per {per} ({unit})</h3>\n<table><tr><th>mechanism</th>",
                escape(&label)
            ));
            for k in &kernels {
                out.push_str(&format!("<th>kernel {} ({unit})</th>", escape(k)));
            }
            out.push_str("</tr>\n");
            for s in model::series(cells.iter().copied()) {
                out.push_str(&format!("<tr><td>{}</td>", escape(&s)));
                for k in &kernels {
                    let p = cells
                        .iter()
                        .copied()
                        .find(|p| p.series() == s && &p.kernel == k);
                    out.push_str(&td(p, cell_text(p)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
    }
    if model::distinct(points.iter().map(Point::workload_label)).len() > 1 {
        for (title, headers, rows) in model::workload_tables(points) {
            out.push_str(&format!("<h3>{}</h3>\n<table><tr>", escape(&title)));
            for h in headers {
                out.push_str(&format!("<th>{}</th>", escape(&h)));
            }
            out.push_str("</tr>\n");
            for (series, row) in rows {
                out.push_str(&format!("<tr><td>{}</td>", escape(&series)));
                for (p, text) in row {
                    out.push_str(&td(p, text));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
    }
    for (label, here) in model::panels(points) {
        out.push_str(&counter_table(&label, &here));
    }
    out
}

/// One numeric table cell for a point: greyed or red by status, its reason on hover.
fn td(p: Option<&Point>, text: String) -> String {
    let class = match p.map(|p| p.status) {
        Some(Status::Unsupported) => "num ns",
        Some(Status::Failed) => "num failed",
        _ => "num",
    };
    let title = p
        .and_then(|p| p.reason.as_deref())
        .map(|r| format!(" title=\"{}\"", escape(&one_line(r))))
        .unwrap_or_default();
    format!("<td class=\"{class}\"{title}>{}</td>", escape(&text))
}

/// Perf counters per call or operation (armed − baseline) of one panel, one row per
/// (mechanism, counter): counts of events, not times, so they get their own table.
fn counter_table(label: &str, here: &[&Point]) -> String {
    let all = model::distinct(here.iter().flat_map(|p| p.counters.keys().cloned()));
    if all.is_empty() {
        return String::new();
    }
    // Counters that moved in no cell get one line, not a table of zeros.
    let (names, still): (Vec<String>, Vec<String>) = all.into_iter().partition(|n| {
        here.iter()
            .any(|p| p.counters.get(n).is_some_and(|v| *v != 0.0))
    });
    let kernels = model::kernels(here.iter().copied());
    let per = model::per_what(&here[0].workload);
    let mut out = format!(
        "<h3>{}: perf counters, overhead per {per} (events per {per})</h3>\n",
        escape(label)
    );
    if !still.is_empty() {
        out.push_str(&format!(
            "<p>No change in any cell: {}.</p>\n",
            escape(&still.join(", "))
        ));
    }
    if names.is_empty() {
        return out;
    }
    out.push_str("<table><tr><th>mechanism</th><th>counter</th>");
    for k in &kernels {
        out.push_str(&format!("<th>kernel {} (per {per})</th>", escape(k)));
    }
    out.push_str("</tr>\n");
    for s in model::series(here.iter().copied()) {
        for name in &names {
            let values: Vec<Option<f64>> = kernels
                .iter()
                .map(|k| {
                    here.iter()
                        .find(|p| p.series() == s && &p.kernel == k)
                        .and_then(|p| p.counters.get(name).copied())
                })
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td>",
                escape(&s),
                escape(name)
            ));
            for v in values {
                let text = v.map_or_else(|| "-".to_string(), |v| fixed(v, 2));
                out.push_str(&format!("<td class=\"num\">{text}</td>"));
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</table>\n");
    out
}

/// Cells that are not `ok`, with why.
fn notes(runs: &[Run], points: &[Point]) -> String {
    let mut out = String::new();
    let mut unstable = crate::render::Table::new(
        ["arch", "kernel", "mechanism", "pairs"]
            .map(String::from)
            .to_vec(),
        vec![false; 4],
    );
    for p in points {
        if let Some(why) = p.unstable() {
            unstable.push(vec![
                p.arch.clone(),
                p.kernel.clone(),
                model::listed_name(p, points),
                why,
            ]);
        }
    }
    if !unstable.is_empty() {
        out.push_str("<h2 id=\"unstable\">Unstable cells</h2>\n<p>Their pairs spread beyond max(1 insn, 0.1 % of the overhead): the median each figure shows is one of several modes.</p>\n");
        out.push_str(&unstable.html());
    }
    let not_ok: Vec<&Point> = points.iter().filter(|p| p.status != Status::Ok).collect();
    if not_ok.is_empty() {
        return out;
    }
    out.push_str(
        "<h2 id=\"not-measured\">Not measured</h2>\n<table><tr><th>run</th><th>arch</th><th>kernel</th><th>mechanism</th><th>status</th><th>reason</th></tr>\n",
    );
    for p in not_ok {
        let run = runs
            .get(p.run)
            .map(|r| r.meta.run_id.as_str())
            .unwrap_or("");
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(run),
            escape(&p.arch),
            escape(&p.kernel),
            escape(&model::listed_name(p, points)),
            p.status,
            escape(&one_line(
                p.reason.as_deref().unwrap_or("no reason recorded")
            ))
        ));
    }
    out.push_str("</table>\n");
    out
}

/// Each run's environment (meta.json), one table row per run and the kernel config.
fn environment(runs: &[Run]) -> String {
    let mut out = String::from(
        "<h2 id=\"environment\">Environment of each run</h2>\n<table><tr><th>run</th><th>target</th><th>kernel release</th><th>kernel package</th><th>mode / unit</th><th>clock</th><th>cpu</th><th>qemu</th><th>accel</th><th>workload</th><th>calls × repeats</th><th>lab</th><th>started</th></tr>\n",
    );
    for r in runs {
        let m = &r.meta;
        let lab = match &m.git_revision {
            Some(g) => format!("{} ({g})", m.tracelab_version),
            None => m.tracelab_version.clone(),
        };
        let cells = [
            m.run_id.clone(),
            m.target.clone(),
            m.kernel_release.clone().unwrap_or_else(|| "-".into()),
            m.kernel_package.clone().unwrap_or_else(|| "-".into()),
            format!("{} / {}", m.mode, m.unit),
            m.clock.clone(),
            m.cpu.clone(),
            m.qemu_version.clone().unwrap_or_else(|| "-".into()),
            m.accel.clone().unwrap_or_else(|| "-".into()),
            m.workload.clone(),
            format!("{} × {}", m.calls, m.repeats),
            lab,
            m.started_at.clone(),
        ];
        out.push_str("<tr>");
        for c in cells {
            out.push_str(&format!("<td>{}</td>", escape(&c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    for r in runs {
        let m = &r.meta;
        out.push_str(&format!(
            "<details><summary>{}: kernel config, command line, extra</summary>\n<p><code>{}</code></p>\n<table>",
            escape(&m.run_id),
            escape(&m.command_line.join(" "))
        ));
        for (k, v) in &m.kernel_config {
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(k),
                escape(v)
            ));
        }
        for (k, v) in &m.extra {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                escape(k),
                escape(&v)
            ));
        }
        out.push_str("</table></details>\n");
    }
    out
}

pub(super) fn page(
    title: &str,
    inputs: &[String],
    runs: &[Run],
    points: &[Point],
    figures: &[Figure],
) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let ok = points.iter().filter(|p| p.status == Status::Ok).count();
    out.push_str(&format!(
        "<p>{} runs, {} cells ({} measured) from {}. Units: <code>insn</code> = guest instructions \
         (QEMU -icount, deterministic), <code>ns</code> = real nanoseconds; they are never mixed on one axis.</p>\n",
        runs.len(),
        points.len(),
        ok,
        escape(&inputs.join(", "))
    ));
    if runs.is_empty() {
        out.push_str("<p>No runs.</p>\n");
    }
    let mut section = "";
    for f in figures {
        if f.section != section {
            section = f.section;
            out.push_str(&format!("<h2>{}</h2>\n", escape(section)));
        }
        out.push_str(&format!(
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(&f.id),
            strip_xml_declaration(&f.svg),
            escape(&f.title)
        ));
    }
    out.push_str("<h2 id=\"tables\">Tables</h2>\n<p>Median overhead per call [interval: bootstrap 95% CI, or min..max over repeats].</p>\n");
    out.push_str(&tables(points));
    let changes = super::attribution::changes(points);
    if !changes.is_empty() {
        out.push_str(&format!(
            "<h3>{}: what changed between kernels</h3>\n<p>{}.</p>\n{}",
            escape(super::attribution::SECTION),
            escape(super::attribution::WHAT),
            super::attribution::changes_table(&changes).html()
        ));
    }
    out.push_str(&notes(runs, points));
    out.push_str(&environment(runs));
    out.push_str("</body>\n</html>\n");
    out
}

/// An inline `<svg>` must not carry an XML declaration.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(svg, |i| rest[i + 2..].trim_start()),
        None => svg,
    }
}
