//! `overhead.svg`: per-call overhead per mechanism, drawn only from stored cells.
//!
//! Everything here is infallible from the caller's view: a bad value (NaN, an empty run,
//! a plotters error) produces a note or a fallback SVG, never a panic or an error that
//! would stop a measurement run.

use super::{fallback_svg, plottable, FONT};
use crate::render::one_line;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tracelab_model::cell::Cell;
use tracelab_model::schema::{Status, Unit};

const TITLE_H: u32 = 56;
const PANEL_H: u32 = 420;
const NOTE_H: u32 = 20;

/// One bar: a mechanism's median overhead and its spread over repeats.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    label: String,
    overhead: f64,
    min: Option<f64>,
    max: Option<f64>,
}

/// Ok cells grouped by unit (first-seen order) and the notes listed under the chart.
fn collect(cells: &[Cell]) -> (Vec<(Unit, Vec<Bar>)>, Vec<String>) {
    let mut panels: Vec<(Unit, Vec<Bar>)> = Vec::new();
    let mut notes = Vec::new();
    for cell in cells {
        let m = &cell.measured;
        // BPF cells differ by payload and stack too.
        let label = m.id().label();
        if m.status != Status::Ok {
            let reason = m.reason.as_deref().unwrap_or("no reason recorded");
            notes.push(format!("{}: {} ({})", label, m.status, one_line(reason)));
            continue;
        }
        let Some(overhead) = cell.summary.as_ref().and_then(|s| plottable(s.overhead)) else {
            notes.push(format!("{label}: ok, but no plottable overhead"));
            continue;
        };
        let s = cell.summary.as_ref();
        let bar = Bar {
            label,
            overhead,
            min: s.and_then(|s| plottable(s.overhead_min)),
            max: s.and_then(|s| plottable(s.overhead_max)),
        };
        match panels.iter_mut().find(|(u, _)| *u == m.unit) {
            Some((_, bars)) => bars.push(bar),
            None => panels.push((m.unit, vec![bar])),
        }
    }
    if panels.len() > 1 {
        notes.insert(
            0,
            "cells use different units: one panel per unit".to_string(),
        );
    }
    (panels, notes)
}

/// Renders the chart as an SVG document.
/// What the chart's two title lines say about the run.
pub struct Heading<'a> {
    pub arch: &'a str,
    /// The kernel release, else its label.
    pub kernel: &'a str,
    pub workload: &'a str,
    pub calls: u64,
    pub repeats: u32,
    pub mode: &'a str,
}

pub fn overhead_svg(meta: &Heading<'_>, cells: &[Cell]) -> String {
    let (panels, notes) = collect(cells);
    // plotters does unchecked arithmetic on axis ranges; values are filtered above, but
    // a chart is not worth a run, so a panic inside it degrades to a note as well.
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        draw(meta, &panels, &notes).map_err(|e| e.to_string())
    }));
    match drawn {
        Ok(Ok(svg)) => svg,
        Ok(Err(e)) => fallback_svg(&format!("chart could not be drawn: {e}")),
        Err(_) => fallback_svg("chart could not be drawn: plotting panicked"),
    }
}

fn title(meta: &Heading<'_>) -> String {
    format!(
        "per-call overhead: {}, kernel {}, workload {}",
        meta.arch, meta.kernel, meta.workload
    )
}

fn subtitle(meta: &Heading<'_>) -> String {
    format!(
        "{} calls × {} repeats, {} mode; bars: median, whiskers: min–max over repeats",
        meta.calls, meta.repeats, meta.mode
    )
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

fn draw(meta: &Heading<'_>, panels: &[(Unit, Vec<Bar>)], notes: &[String]) -> DrawResult<String> {
    let most_bars = panels.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    let longest = panels
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| b.label.chars().count()))
        .max()
        .unwrap_or(0);
    let slot = (longest as u32 * 8 + 16).max(100);
    let width = (160 + slot * most_bars as u32).max(720);
    let n_panels = panels.len().max(1) as u32;
    let notes_h = if notes.is_empty() {
        0
    } else {
        NOTE_H * notes.len() as u32 + 16
    };
    let height = TITLE_H + PANEL_H * n_panels + notes_h;

    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let centered = Pos::new(HPos::Center, VPos::Top);
        let half = i32::try_from(width / 2)?;
        root.draw(&Text::new(
            title(meta),
            (half, 10),
            (FONT, 20).into_font().color(&BLACK).pos(centered),
        ))?;
        root.draw(&Text::new(
            subtitle(meta),
            (half, 34),
            (FONT, 13).into_font().color(&BLACK.mix(0.7)).pos(centered),
        ))?;
        let (_, body) = root.split_vertically(TITLE_H);
        let (plots, notes_area) = body.split_vertically(PANEL_H * n_panels);
        if panels.is_empty() {
            plots.draw(&Text::new(
                "no measured cells to plot",
                (half, i32::try_from(PANEL_H / 2)?),
                (FONT, 16).into_font().color(&BLACK).pos(centered),
            ))?;
        }
        for (area, (unit, bars)) in plots
            .split_evenly((panels.len().max(1), 1))
            .iter()
            .zip(panels)
        {
            draw_panel(area, *unit, bars)?;
        }
        for (i, note) in notes.iter().enumerate() {
            let y = i32::try_from(NOTE_H * i as u32 + 8)?;
            notes_area.draw(&Text::new(
                note.as_str(),
                (20, y),
                (FONT, 14).into_font().color(&BLACK),
            ))?;
        }
        root.present()?;
    }
    Ok(buf)
}

/// The y range: every plotted value and zero, padded so whiskers and labels fit.
fn y_range(bars: &[Bar]) -> (f64, f64) {
    let values = bars
        .iter()
        .flat_map(|b| [Some(b.overhead), b.min, b.max])
        .flatten()
        .filter_map(plottable);
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (-1.0, 1.0);
    }
    let pad = span * 0.12;
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    if lo.is_finite() && hi.is_finite() && lo < hi {
        (lo, hi)
    } else {
        (-1.0, 1.0)
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    unit: Unit,
    bars: &[Bar],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let n = bars.len() as f64;
    let (lo, hi) = y_range(bars);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, lo..hi)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(format!("overhead per call ({unit})"))
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .draw()?;

    let fill = RGBColor(66, 114, 196).filled();
    let whisker = BLACK.stroke_width(1);
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let x = i as f64;
        Rectangle::new([(x + 0.2, 0.0), (x + 0.8, b.overhead)], fill)
    }))?;
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64 + 0.5;
        if let (Some(min), Some(max)) = (b.min, b.max) {
            chart.draw_series([PathElement::new(vec![(x, min), (x, max)], whisker)])?;
            for y in [min, max] {
                chart.draw_series([
                    EmptyElement::at((x, y)) + PathElement::new(vec![(-6, 0), (6, 0)], whisker)
                ])?;
            }
        }
        let top = b.max.unwrap_or(b.overhead).max(b.overhead);
        chart.draw_series([EmptyElement::at((x, top))
            + Text::new(
                format!("{:.1}", b.overhead),
                (0, -4),
                (FONT, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )])?;
    }
    // Mechanism names under the axis, centred on their bars: plotters' own tick labels
    // would sit on round numbers, not on bar centres.
    let label_style = (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let (dx, dy) = area.get_base_pixel();
    for (i, b) in bars.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
        area.draw(&Text::new(
            b.label.as_str(),
            (px - dx, py - dy + 8),
            label_style.clone(),
        ))?;
    }
    Ok(())
}
