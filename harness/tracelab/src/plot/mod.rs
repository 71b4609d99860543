//! The one plotting module: every SVG the lab draws (the per-run chart of a results
//! directory and the report's figures) with plotters' SVG backend, sharing its font, its
//! limits and its fallback.

pub mod figures;
pub mod lines;
pub mod run_chart;
pub mod trend;

pub(crate) const FONT: &str = "sans-serif";
/// Values beyond this are not drawn: no traced call costs 10^15 instructions or ns, and
/// axis arithmetic near f64::MAX overflows to infinity.
pub(crate) const PLOTTABLE: f64 = 1e15;

/// A value a chart can place on an axis.
pub(crate) fn plottable(x: f64) -> Option<f64> {
    (x.is_finite() && x.abs() < PLOTTABLE).then_some(x)
}

pub(crate) type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `draw` and turns any error or panic into a fallback SVG: one NaN must not end a
/// long run.
pub(crate) fn guarded(draw: impl FnOnce() -> DrawResult<String>) -> String {
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        draw().map_err(|e| e.to_string())
    }));
    match drawn {
        Ok(Ok(svg)) => svg,
        Ok(Err(e)) => fallback_svg(&format!("figure could not be drawn: {e}")),
        Err(_) => fallback_svg("figure could not be drawn: plotting panicked"),
    }
}

/// A minimal valid SVG carrying a message, for when plotting itself failed.
pub fn fallback_svg(message: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"60\">\
         <text x=\"10\" y=\"30\" font-family=\"sans-serif\" font-size=\"14\">{}</text></svg>\n",
        crate::render::escape_html(message)
    )
}
