//! The report's Markdown summary: the same tables as the HTML page, the figures as
//! links to `figures/*.svg` (so it renders on a forge or in a CI job summary), and each
//! run's environment.

use super::html::cell_text;
use super::model::{self, Point};
use super::Figure;
use crate::dataset::Run;
use crate::results::row::one_line;
use tracelab_model::schema::Status;

fn esc(s: &str) -> String {
    s.replace('|', "\\|")
}

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
    for arch in model::arches(points) {
        let here: Vec<&Point> = points.iter().filter(|p| p.arch == arch).collect();
        for unit in model::units(here.iter().copied()) {
            let cells: Vec<&Point> = here.iter().copied().filter(|p| p.unit == unit).collect();
            let kernels = model::kernels(cells.iter().copied());
            out.push_str(&format!(
                "## {arch}: overhead per call ({unit})\n\n| mechanism |"
            ));
            for k in &kernels {
                out.push_str(&format!(" kernel {k} ({unit}) |"));
            }
            out.push_str("\n|---|");
            out.push_str(&"---:|".repeat(kernels.len()));
            out.push('\n');
            for s in model::series(cells.iter().copied()) {
                out.push_str(&format!("| {} |", esc(&s)));
                for k in &kernels {
                    let p = cells
                        .iter()
                        .copied()
                        .find(|p| p.series() == s && &p.kernel == k);
                    out.push_str(&format!(" {} |", esc(&cell_text(p))));
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    let not_ok: Vec<&Point> = points.iter().filter(|p| p.status != Status::Ok).collect();
    if !not_ok.is_empty() {
        out.push_str("## Not measured\n\n| arch | kernel | mechanism | status | reason |\n|---|---|---|---|---|\n");
        for p in not_ok {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                esc(&p.arch),
                esc(&p.kernel),
                esc(&p.series()),
                p.status,
                esc(&one_line(
                    p.reason.as_deref().unwrap_or("no reason recorded")
                ))
            ));
        }
        out.push('\n');
    }
    if !figures.is_empty() {
        out.push_str("## Figures\n\n");
        for f in figures {
            out.push_str(&format!("- [{}](figures/{}.svg)\n", esc(&f.title), f.id));
        }
        out.push('\n');
    }
    out.push_str("## Environment\n\n| run | target | kernel release | mode / unit | cpu | qemu | calls × repeats | lab |\n|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        let m = &r.meta;
        out.push_str(&format!(
            "| {} | {} | {} | {} / {} | {} | {} | {} × {} | {}{} |\n",
            esc(&m.run_id),
            esc(&m.target),
            esc(m.kernel_release.as_deref().unwrap_or("-")),
            m.mode,
            m.unit,
            esc(&m.cpu),
            esc(m.qemu_version.as_deref().unwrap_or("-")),
            m.calls,
            m.repeats,
            esc(&m.tracelab_version),
            m.git_revision
                .as_deref()
                .map(|g| format!(" ({g})"))
                .unwrap_or_default()
        ));
    }
    out
}
