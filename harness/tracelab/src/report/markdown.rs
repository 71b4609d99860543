//! The report's Markdown summary: the same tables as the HTML page, the figures as
//! links to `figures/*.svg` (so it renders on a forge or in a CI job summary), and each
//! run's environment.

use super::html::cell_text;
use super::model::{self, Point};
use super::Figure;
use crate::dataset::Run;
use crate::render::{escape_markdown as esc, Table};
use crate::results::row::one_line;
use tracelab_model::schema::Status;

pub(super) fn summary(
    title: &str,
    inputs: &[String],
    runs: &[Run],
    points: &[Point],
    figures: &[Figure],
) -> String {
    let mut out = format!("# {title}\n\n");
    out.push_str(&format!(
        "{} runs, {} cells ({} measured) from {}.\n\n",
        runs.len(),
        points.len(),
        points.iter().filter(|p| p.status == Status::Ok).count(),
        inputs
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(
        "Figures are median overhead per call (armed − interleaved baseline); intervals are \
         the bootstrap 95% CI, or min..max over repeats where no CI is stored. `insn` = guest \
         instructions (QEMU -icount), `ns` = real nanoseconds.\n\n",
    );
    for (label, here) in model::panels(points) {
        let per = model::per_what(&here[0].workload);
        for unit in model::units(here.iter().copied()) {
            let cells: Vec<&Point> = here.iter().copied().filter(|p| p.unit == unit).collect();
            let kernels = model::kernels(cells.iter().copied());
            out.push_str(&format!("## {label}: overhead per {per} ({unit})\n\n"));
            let mut headers = vec!["mechanism".to_string()];
            headers.extend(kernels.iter().map(|k| format!("kernel {k} ({unit})")));
            let mut right = vec![false];
            right.extend(kernels.iter().map(|_| true));
            let mut t = Table::new(headers, right);
            for s in model::series(cells.iter().copied()) {
                let mut row = vec![s.clone()];
                for k in &kernels {
                    let p = cells
                        .iter()
                        .copied()
                        .find(|p| p.series() == s && &p.kernel == k);
                    row.push(cell_text(p));
                }
                t.push(row);
            }
            out.push_str(&t.markdown());
            out.push('\n');
        }
    }
    if model::distinct(points.iter().map(Point::workload_label)).len() > 1 {
        for (title, headers, rows) in model::workload_tables(points) {
            out.push_str(&format!("## {title}\n\n"));
            let right = (0..headers.len()).map(|i| i > 0).collect();
            let mut t = Table::new(headers, right);
            for (series, row) in rows {
                let mut cells = vec![series];
                cells.extend(row.into_iter().map(|(_, text)| text));
                t.push(cells);
            }
            out.push_str(&t.markdown());
            out.push('\n');
        }
    }
    let changes = super::attribution::changes(points);
    if !changes.is_empty() {
        out.push_str(&format!(
            "## {}: what changed between kernels\n\n{}.\n\n",
            super::attribution::SECTION,
            super::attribution::WHAT
        ));
        out.push_str(&super::attribution::changes_table(&changes).markdown());
        out.push('\n');
    }
    let unstable: Vec<(&Point, String)> = points
        .iter()
        .filter_map(|p| Some((p, p.unstable()?)))
        .collect();
    if !unstable.is_empty() {
        out.push_str("## Unstable cells\n\nTheir pairs spread beyond max(1 insn, 0.1 % of the overhead): the median each figure shows is one of several modes.\n\n");
        let headers = ["arch", "kernel", "mechanism", "overhead", "pairs"];
        let mut t = Table::new(headers.map(String::from).to_vec(), vec![false; 5]);
        for (p, why) in unstable {
            t.push(vec![
                p.arch.clone(),
                p.kernel.clone(),
                model::listed_name(p, points),
                cell_text(Some(p)),
                why,
            ]);
        }
        out.push_str(&t.markdown());
        out.push('\n');
    }
    let not_ok: Vec<&Point> = points.iter().filter(|p| p.status != Status::Ok).collect();
    if !not_ok.is_empty() {
        out.push_str("## Not measured\n\n");
        let headers = ["arch", "kernel", "mechanism", "status", "reason"];
        let mut t = Table::new(headers.map(String::from).to_vec(), vec![false; 5]);
        for p in not_ok {
            t.push(vec![
                p.arch.clone(),
                p.kernel.clone(),
                model::listed_name(p, points),
                p.status.to_string(),
                one_line(p.reason.as_deref().unwrap_or("no reason recorded")),
            ]);
        }
        out.push_str(&t.markdown());
        out.push('\n');
    }
    if !figures.is_empty() {
        out.push_str("## Figures\n\n");
        for f in figures {
            out.push_str(&format!("- [{}](figures/{}.svg)\n", esc(&f.title), f.id));
        }
        out.push('\n');
    }
    out.push_str("## Environment\n\n");
    let headers = [
        "run",
        "target",
        "kernel release",
        "mode / unit",
        "cpu",
        "qemu",
        "calls × repeats",
        "lab",
    ];
    let mut t = Table::new(headers.map(String::from).to_vec(), vec![false; 8]);
    for r in runs {
        let m = &r.meta;
        t.push(vec![
            m.run_id.clone(),
            m.target.clone(),
            m.kernel_release.clone().unwrap_or_else(|| "-".into()),
            format!("{} / {}", m.mode, m.unit),
            m.cpu.clone(),
            m.qemu_version.clone().unwrap_or_else(|| "-".into()),
            format!("{} × {}", m.calls, m.repeats),
            format!(
                "{}{}",
                m.tracelab_version,
                m.git_revision
                    .as_deref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default()
            ),
        ]);
    }
    out.push_str(&t.markdown());
    out
}
