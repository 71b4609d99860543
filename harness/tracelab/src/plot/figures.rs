//! The report's SVG figures, drawn with plotters' SVG backend only: text is SVG
//! `<text>` rendered by the viewer's fonts, so no font crate is linked.
//!
//! Like `results::chart`, nothing here can fail or panic from the caller's view: a value
//! that cannot be placed is left out, and a drawing error becomes a small SVG saying so.

use super::{guarded, plottable, DrawResult, FONT};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours of the groups (kernels, payloads), colour-blind safe (Okabe & Ito, 2008).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// One bar of a grouped bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub value: f64,
    /// (low, high) whiskers, in the bar's unit.
    pub interval: Option<(f64, f64)>,
}

/// A grouped bar chart: for each category (x), one bar per group (colour).
#[derive(Debug, Clone)]
pub struct Grouped {
    pub title: String,
    pub subtitle: String,
    /// The y axis label, with its unit: `overhead per call (insn)`.
    pub y_label: String,
    pub categories: Vec<String>,
    pub groups: Vec<String>,
    /// `bars[category][group]`; None where the cell is missing or not measured.
    pub bars: Vec<Vec<Option<Bar>>>,
    /// `marks[category][group]`: a short word drawn where no bar is (`n/s`, `failed`).
    pub marks: Vec<Vec<Option<String>>>,
}

pub fn grouped_bars(fig: &Grouped) -> String {
    guarded(|| draw_grouped(fig))
}

fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter_map(plottable)
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (-1.0, 1.0);
    }
    let pad = span * 0.12;
    // A median of -0.001 (noise around zero) should not open a negative half-axis.
    let negative = lo < -span * 1e-3;
    (if negative { lo - pad } else { 0.0 }, hi + pad)
}

const TITLE_H: u32 = 64;
const LEGEND_H: u32 = 28;

/// Horizontal bars: categories top to bottom, so a chart of twenty mechanisms grows in
/// height and keeps its labels readable instead of shrinking to fit a page's width.
fn draw_grouped(fig: &Grouped) -> DrawResult<String> {
    let n = fig.categories.len().max(1);
    let k = fig.groups.len().max(1);
    let longest = fig
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4) as u32;
    let slot = k as u32 * 13 + 12;
    let label_w = longest * 7 + 24;
    let width = 1000u32;
    let plot_h = slot * n as u32 + 60;
    let height = TITLE_H + LEGEND_H + plot_h;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        header(&root, width, &fig.title, &fig.subtitle)?;
        legend(&root, TITLE_H, &fig.groups)?;
        let (_, plot) = root.split_vertically(TITLE_H + LEGEND_H);
        let values = fig.bars.iter().flatten().flatten().flat_map(|b| {
            [
                Some(b.value),
                b.interval.map(|i| i.0),
                b.interval.map(|i| i.1),
            ]
            .into_iter()
            .flatten()
        });
        let (lo, hi) = y_range(values);
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(30)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(label_w)
            .build_cartesian_2d(lo..hi, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(fig.y_label.as_str())
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .light_line_style(WHITE)
            .draw()?;
        let height_each = 0.8 / k as f64;
        let whisker = BLACK.stroke_width(1);
        // Category `ci` sits at the top when ci = 0.
        let top_of = |ci: usize| (n - ci) as f64;
        for (ci, row) in fig.bars.iter().enumerate() {
            for (gi, bar) in row.iter().enumerate() {
                let y1 = top_of(ci) - 0.1 - gi as f64 * height_each;
                let y0 = y1 - height_each;
                let yc = (y0 + y1) / 2.0;
                let colour = PALETTE[gi % PALETTE.len()];
                let Some(b) = bar.as_ref().filter(|b| plottable(b.value).is_some()) else {
                    let mark = fig.marks.get(ci).and_then(|m| m.get(gi)).cloned().flatten();
                    if let Some(mark) = mark {
                        chart.draw_series([EmptyElement::at((0.0, yc))
                            + Text::new(
                                mark,
                                (4, 0),
                                (FONT, 10)
                                    .into_font()
                                    .color(&RGBColor(120, 120, 120))
                                    .pos(Pos::new(HPos::Left, VPos::Center)),
                            )])?;
                    }
                    continue;
                };
                chart.draw_series([Rectangle::new(
                    [
                        (0.0, y0 + height_each * 0.08),
                        (b.value, y1 - height_each * 0.08),
                    ],
                    colour.filled(),
                )])?;
                if let Some(i) = b.interval {
                    if let (Some(l), Some(h)) = (plottable(i.0), plottable(i.1)) {
                        if h > l {
                            chart
                                .draw_series([PathElement::new(vec![(l, yc), (h, yc)], whisker)])?;
                            for x in [l, h] {
                                chart.draw_series([EmptyElement::at((x, yc))
                                    + PathElement::new(vec![(0, -3), (0, 3)], whisker)])?;
                            }
                        }
                    }
                }
            }
        }
        // Category names right-aligned against the axis, centred on their group.
        let (dx, dy) = plot.get_base_pixel();
        for (ci, label) in fig.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(lo, top_of(ci) - 0.5));
            plot.draw(&Text::new(
                label.as_str(),
                (px - dx - 8, py - dy),
                (FONT, 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        root.present()?;
    }
    Ok(buf)
}

fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    width: u32,
    title: &str,
    subtitle: &str,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let centred = Pos::new(HPos::Center, VPos::Top);
    let half = i32::try_from(width / 2)?;
    root.draw(&Text::new(
        title,
        (half, 10),
        (FONT, 19).into_font().color(&BLACK).pos(centred),
    ))?;
    root.draw(&Text::new(
        subtitle,
        (half, 36),
        (FONT, 12).into_font().color(&BLACK.mix(0.7)).pos(centred),
    ))?;
    Ok(())
}

fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    top: u32,
    groups: &[String],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let y = i32::try_from(top)? + 6;
    let mut x = 110i32;
    for (gi, g) in groups.iter().enumerate() {
        let colour = PALETTE[gi % PALETTE.len()];
        root.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], colour.filled()))?;
        root.draw(&Text::new(
            g.as_str(),
            (x + 20, y + 1),
            (FONT, 13).into_font().color(&BLACK),
        ))?;
        x += 34 + i32::try_from(g.chars().count())? * 8;
    }
    Ok(())
}

/// A stacked bar chart: for each category (y), one bar made of segments (colours),
/// positive parts stacked right of zero and negative parts left of it.
#[derive(Debug, Clone)]
pub struct Stacked {
    pub title: String,
    pub subtitle: String,
    /// The x axis label, with its unit: `overhead per call (insn, QEMU TCG plugin)`.
    pub x_label: String,
    pub categories: Vec<String>,
    /// The segments' names, in legend (and stacking) order.
    pub segments: Vec<String>,
    /// `values[category][segment]`.
    pub values: Vec<Vec<f64>>,
}

pub fn stacked_bars(fig: &Stacked) -> String {
    guarded(|| draw_stacked(fig))
}

/// The colour of segment `i`: the palette, then its tints, then greys.
fn segment_colour(i: usize) -> RGBColor {
    let n = PALETTE.len();
    let RGBColor(r, g, b) = PALETTE[i % n];
    let lighten = |c: u8| (f64::from(c) + (255.0 - f64::from(c)) * 0.55).round() as u8;
    match i / n {
        0 => PALETTE[i],
        1 => RGBColor(lighten(r), lighten(g), lighten(b)),
        _ => {
            let grey = u8::try_from(80 + (i % n) * 20).unwrap_or(200);
            RGBColor(grey, grey, grey)
        }
    }
}

fn draw_stacked(fig: &Stacked) -> DrawResult<String> {
    let n = fig.categories.len().max(1);
    let longest = fig
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4) as u32;
    let label_w = longest * 7 + 24;
    let width = 1000u32;
    // The legend wraps: four names a line (the longest family name is 36 characters).
    let legend_lines = fig.segments.len().div_ceil(4).max(1) as u32;
    let legend_h = legend_lines * 22 + 8;
    let slot = 28u32;
    let plot_h = slot * n as u32 + 60;
    let height = TITLE_H + legend_h + plot_h;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        header(&root, width, &fig.title, &fig.subtitle)?;
        for (i, name) in fig.segments.iter().enumerate() {
            let x = 20 + i32::try_from(i % 4)? * 245;
            let y = i32::try_from(TITLE_H)? + 4 + i32::try_from(i / 4)? * 22;
            root.draw(&Rectangle::new(
                [(x, y), (x + 14, y + 14)],
                segment_colour(i).filled(),
            ))?;
            root.draw(&Text::new(
                name.as_str(),
                (x + 20, y + 1),
                (FONT, 12).into_font().color(&BLACK),
            ))?;
        }
        let (_, plot) = root.split_vertically(TITLE_H + legend_h);
        let sums = fig.values.iter().flat_map(|row| {
            let pos: f64 = row
                .iter()
                .filter_map(|v| plottable(*v))
                .filter(|v| *v > 0.0)
                .sum();
            let neg: f64 = row
                .iter()
                .filter_map(|v| plottable(*v))
                .filter(|v| *v < 0.0)
                .sum();
            [pos, neg]
        });
        let (lo, hi) = y_range(sums);
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(30)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(label_w)
            .build_cartesian_2d(lo..hi, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(fig.x_label.as_str())
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .light_line_style(WHITE)
            .draw()?;
        let top_of = |ci: usize| (n - ci) as f64;
        for (ci, row) in fig.values.iter().enumerate() {
            let (y0, y1) = (top_of(ci) - 0.85, top_of(ci) - 0.15);
            let (mut right, mut left) = (0.0, 0.0);
            for (si, v) in row.iter().enumerate() {
                let Some(v) = plottable(*v).filter(|v| *v != 0.0) else {
                    continue;
                };
                let (from, to) = if v > 0.0 {
                    right += v;
                    (right - v, right)
                } else {
                    left += v;
                    (left - v, left)
                };
                chart.draw_series([Rectangle::new(
                    [(from, y0), (to, y1)],
                    segment_colour(si).filled(),
                )])?;
            }
        }
        let (dx, dy) = plot.get_base_pixel();
        for (ci, label) in fig.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(lo, top_of(ci) - 0.5));
            plot.draw(&Text::new(
                label.as_str(),
                (px - dx - 8, py - dy),
                (FONT, 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        root.present()?;
    }
    Ok(buf)
}

/// A heatmap cell: a value (coloured by it) or a word (not measured).
#[derive(Debug, Clone, PartialEq)]
pub enum Tile {
    Value(f64),
    Word(String),
    Empty,
}

#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub subtitle: String,
    /// What the colour encodes, with its unit: `overhead per call (insn)`.
    pub scale_label: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// `tiles[row][col]`.
    pub tiles: Vec<Vec<Tile>>,
}

pub fn heatmap(fig: &Heatmap) -> String {
    guarded(|| draw_heatmap(fig))
}

/// White to dark blue as `t` goes 0 → 1.
fn shade(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(239.0, 8.0), mix(243.0, 48.0), mix(255.0, 107.0))
}

fn draw_heatmap(fig: &Heatmap) -> DrawResult<String> {
    let row_label_w = fig
        .rows
        .iter()
        .map(|r| r.chars().count() as u32 * 8 + 20)
        .max()
        .unwrap_or(60)
        .max(80);
    let (cell_w, cell_h) = (110u32, 30u32);
    let cols = fig.cols.len().max(1) as u32;
    let rows = fig.rows.len().max(1) as u32;
    let grid_top = TITLE_H + 30;
    let width = (row_label_w + cell_w * cols + 40).max(560);
    let height = grid_top + cell_h * rows + 70;
    let values: Vec<f64> = fig
        .tiles
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Tile::Value(v) => plottable(*v),
            _ => None,
        })
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi.is_finite() && hi > lo {
        hi - lo
    } else {
        1.0
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        header(&root, width, &fig.title, &fig.subtitle)?;
        let x0 = i32::try_from(row_label_w)?;
        let y0 = i32::try_from(grid_top)?;
        let (cw, ch) = (i32::try_from(cell_w)?, i32::try_from(cell_h)?);
        let centred = Pos::new(HPos::Center, VPos::Center);
        for (c, name) in fig.cols.iter().enumerate() {
            let x = x0 + cw * i32::try_from(c)? + cw / 2;
            root.draw(&Text::new(
                name.as_str(),
                (x, y0 - 14),
                (FONT, 13).into_font().color(&BLACK).pos(centred),
            ))?;
        }
        for (r, name) in fig.rows.iter().enumerate() {
            let y = y0 + ch * i32::try_from(r)?;
            root.draw(&Text::new(
                name.as_str(),
                (x0 - 8, y + ch / 2),
                (FONT, 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            for (c, tile) in fig.tiles.get(r).into_iter().flatten().enumerate() {
                let x = x0 + cw * i32::try_from(c)?;
                let (fill, text, dark) = match tile {
                    Tile::Value(v) => match plottable(*v) {
                        Some(v) => {
                            let t = (v - lo) / span;
                            (shade(t), crate::render::fixed(v, 1), t > 0.55)
                        }
                        None => (RGBColor(250, 250, 250), "-".to_string(), false),
                    },
                    Tile::Word(w) => (RGBColor(225, 225, 225), w.clone(), false),
                    Tile::Empty => (RGBColor(250, 250, 250), "-".to_string(), false),
                };
                root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], fill.filled()))?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cw, y + ch)],
                    WHITE.stroke_width(2),
                ))?;
                let colour = if dark { WHITE } else { BLACK };
                root.draw(&Text::new(
                    text,
                    (x + cw / 2, y + ch / 2),
                    (FONT, 12).into_font().color(&colour).pos(centred),
                ))?;
            }
        }
        // The colour scale, labelled with its unit.
        let sy = y0 + ch * i32::try_from(rows)? + 22;
        let steps = 10;
        let sw = 24;
        for s in 0..steps {
            let x = x0 + sw * s;
            root.draw(&Rectangle::new(
                [(x, sy), (x + sw, sy + 12)],
                shade(f64::from(s) / f64::from(steps - 1)).filled(),
            ))?;
        }
        let scale = if values.is_empty() {
            fig.scale_label.clone()
        } else {
            format!(
                "{}: {} to {}",
                fig.scale_label,
                crate::render::fixed(lo, 1),
                crate::render::fixed(lo + span, 1)
            )
        };
        root.draw(&Text::new(
            scale,
            (x0, sy + 18),
            (FONT, 12).into_font().color(&BLACK),
        ))?;
        root.present()?;
    }
    Ok(buf)
}
