//! A series across nights: its figure per night as a line, each change point a dashed
//! vertical line with the relative change, on a plotters SVG. And a sparkline (a bare
//! polyline, no axes) for the index of a site.

use super::{guarded, plottable, DrawResult, FONT};
use plotters::prelude::*;

/// One series to draw.
pub struct Trend<'a> {
    pub title: &'a str,
    /// The y axis label, with its unit (`overhead (insn/call)`).
    pub y_label: &'a str,
    /// (night, value) in night order.
    pub points: &'a [(String, f64)],
    /// (index of the first night of the new level, label) per change.
    pub changes: &'a [(usize, String)],
}

pub fn trend_svg(t: &Trend<'_>) -> String {
    guarded(|| draw(t))
}

fn draw(t: &Trend<'_>) -> DrawResult<String> {
    let values: Vec<f64> = t.points.iter().filter_map(|(_, v)| plottable(*v)).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.1;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - lo.abs().max(1.0) * 0.05, lo + lo.abs().max(1.0) * 0.05)
    } else {
        (0.0, 1.0)
    };
    let n = t.points.len().max(2);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(t.title, (FONT, 16))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..(n - 1) as f64, lo..hi)?;
        let labels: Vec<&str> = t.points.iter().map(|(n, _)| n.as_str()).collect();
        chart
            .configure_mesh()
            .y_desc(t.y_label)
            .x_desc("night")
            .x_labels(8.min(n))
            .x_label_formatter(&|x| {
                labels
                    .get(x.round() as usize)
                    .map(|s| s.get(..10).unwrap_or(s).to_string())
                    .unwrap_or_default()
            })
            .label_style((FONT, 12))
            .draw()?;
        let line: Vec<(f64, f64)> = t
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, (_, v))| plottable(*v).map(|v| (i as f64, v)))
            .collect();
        chart.draw_series(LineSeries::new(line.clone(), BLUE.stroke_width(2)))?;
        chart.draw_series(
            line.iter()
                .map(|&(x, y)| Circle::new((x, y), 3, BLUE.filled())),
        )?;
        for (at, label) in t.changes {
            let x = *at as f64 - 0.5;
            chart.draw_series(DashedLineSeries::new(
                [(x, lo), (x, hi)],
                6,
                4,
                RED.stroke_width(2),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (x, hi),
                (FONT, 12).into_font().color(&RED),
            )))?;
        }
    }
    Ok(buf)
}

/// A 120 × 24 sparkline of `values` (no axes; the index's table has the numbers).
pub fn sparkline(values: &[f64]) -> String {
    let finite: Vec<f64> = values.iter().copied().filter_map(plottable).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = finite.len().max(2) - 1;
    let pts: Vec<String> = finite
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = 2.0 + 116.0 * i as f64 / n as f64;
            let y = if hi > lo {
                21.0 - 18.0 * (v - lo) / span
            } else {
                12.0
            };
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"24\" role=\"img\"><polyline fill=\"none\" stroke=\"#1f4e9c\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        pts.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_and_a_sparkline_are_svg_and_a_flat_series_draws() {
        let pts: Vec<(String, f64)> = (0..10)
            .map(|i| {
                (
                    format!("2026-11-{:02}-a", i + 1),
                    if i < 5 { 100.0 } else { 116.0 },
                )
            })
            .collect();
        let svg = trend_svg(&Trend {
            title: "x86_64 6.12 getppid fprobe-exit",
            y_label: "overhead (insn/call)",
            points: &pts,
            changes: &[(5, "+16.0%".into())],
        });
        assert!(svg.starts_with("<svg") && svg.contains("+16.0%"), "{svg}");
        let flat: Vec<(String, f64)> = vec![("2026-11-01-a".into(), 5.0)];
        assert!(trend_svg(&Trend {
            title: "t",
            y_label: "y",
            points: &flat,
            changes: &[]
        })
        .starts_with("<svg"));
        let s = sparkline(&[1.0, 2.0, 3.0]);
        assert!(
            s.contains("polyline") && s.contains("2.0,21.0") && s.contains("118.0,3.0"),
            "{s}"
        );
        assert!(sparkline(&[]).contains("points=\"\""));
    }
}
