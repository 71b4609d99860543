//! Line charts of a figure against a count (the functions axis): one line per series,
//! x on a log scale, y on a log or a linear scale.

use super::figures::PALETTE;
use super::{guarded, plottable, DrawResult, FONT};
use plotters::prelude::*;

/// A chart of lines over a count.
#[derive(Debug, Clone)]
pub struct Lines {
    pub title: String,
    pub subtitle: String,
    /// Axis labels, the y one with its unit: `attach time (insn)`.
    pub x_label: String,
    pub y_label: String,
    /// Whether y is drawn on a log scale (times spanning decades); x always is.
    pub log_y: bool,
    /// (name, points (x, y)); points that cannot be placed are left out.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// An x that stands for a category rather than a count (`--functions all` drawn a
    /// decade beyond the largest N): its tick reads `all`.
    pub all_at: Option<f64>,
}

pub fn lines(fig: &Lines) -> String {
    guarded(|| draw(fig))
}

/// The points of a series a log axis can place.
fn placeable(points: &[(f64, f64)], log_y: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(x, y)| {
            plottable(x).is_some_and(|x| x > 0.0) && plottable(y).is_some_and(|y| !log_y || y > 0.0)
        })
        .collect()
}

/// A tick label: `1e9` for the decades of a log axis, plain below 10^5.
fn tick(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn draw(fig: &Lines) -> DrawResult<String> {
    let series: Vec<(String, Vec<(f64, f64)>)> = fig
        .series
        .iter()
        .map(|(n, p)| (n.clone(), placeable(p, fig.log_y)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let x_max = all().map(|(x, _)| x).fold(1.0f64, f64::max) * 1.5;
    let (y_lo, y_hi) = all().fold((f64::MAX, f64::MIN), |(lo, hi), (_, y)| {
        (lo.min(y), hi.max(y))
    });
    let (y_lo, y_hi) = if y_lo > y_hi {
        (1.0, 10.0)
    } else {
        (y_lo, y_hi)
    };
    let height = 420 + 18 * series.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(60);
        top.draw(&Text::new(
            fig.title.clone(),
            (10, 8),
            (FONT, 18).into_font(),
        ))?;
        top.draw(&Text::new(
            fig.subtitle.clone(),
            (10, 34),
            (FONT, 12).into_font().color(&RGBColor(90, 90, 90)),
        ))?;
        let (plot, legend) = bottom.split_vertically(360);
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80);
        let x = (0.8f64..x_max).log_scale();
        let style = |c: &RGBColor| ShapeStyle::from(c).stroke_width(2);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(fig.x_label.clone())
                    .y_desc(fig.y_label.clone())
                    .x_label_formatter(&|v| match fig.all_at {
                        Some(a) if (v - a).abs() <= a * 1e-9 => "all".to_string(),
                        _ => tick(*v),
                    })
                    .y_label_formatter(&|v| tick(*v))
                    .label_style((FONT, 12))
                    .draw()?;
                for (i, (_, points)) in series.iter().enumerate() {
                    let c = PALETTE[i % PALETTE.len()];
                    chart.draw_series(LineSeries::new(points.clone(), style(&c)))?;
                    chart.draw_series(
                        points
                            .iter()
                            .map(|&p| Circle::new(p, 3, ShapeStyle::from(&c).filled())),
                    )?;
                }
            }};
        }
        if fig.log_y {
            let y = (y_lo / 1.5..y_hi * 1.5).log_scale();
            body!(builder.build_cartesian_2d(x, y)?);
        } else {
            let pad = ((y_hi - y_lo).abs() * 0.1).max(1.0);
            let lo = if y_lo >= 0.0 { 0.0 } else { y_lo - pad };
            body!(builder.build_cartesian_2d(x, lo..y_hi + pad)?);
        }
        for (i, (name, _)) in series.iter().enumerate() {
            let y = 6 + 18 * i as i32;
            let c = PALETTE[i % PALETTE.len()];
            legend.draw(&Rectangle::new([(90, y), (110, y + 10)], c.filled()))?;
            legend.draw(&Text::new(
                name.clone(),
                (118, y - 1),
                (FONT, 12).into_font(),
            ))?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(1e9), "1e9");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(12.5), "12.5");
    }

    #[test]
    fn draws_log_log_and_leaves_out_what_it_cannot_place() {
        let svg = lines(&Lines {
            all_at: None,
            title: "attach time (insn)".into(),
            subtitle: "per mechanism".into(),
            x_label: "functions".into(),
            y_label: "attach time (insn)".into(),
            log_y: true,
            series: vec![
                ("kprobe".into(), vec![(1.0, 1e7), (10.0, 1e8), (100.0, 1e9)]),
                (
                    "bad".into(),
                    vec![(0.0, 1.0), (10.0, f64::NAN), (10.0, -1.0)],
                ),
            ],
        });
        assert!(svg.contains("<svg") && svg.contains("kprobe"), "{svg}");
        assert!(
            !svg.contains(">bad<"),
            "a series with no placeable point has no legend"
        );
        let flat = lines(&Lines {
            log_y: false,
            series: vec![("x".into(), vec![(1.0, -5.0), (100.0, 5.0)])],
            ..Lines {
                title: String::new(),
                subtitle: String::new(),
                x_label: String::new(),
                y_label: String::new(),
                all_at: None,
                log_y: true,
                series: Vec::new(),
            }
        });
        assert!(flat.contains("<svg"));
    }
}
