//! The one progress observer of the commands that run guests: an indicatif bar and one
//! line per event on a terminal, plain `tracelab:` lines on stderr otherwise (CI logs).

use crate::progress::{Event, Observer};
use crate::render::fixed;
use crate::results::row::one_line;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use tracelab_model::schema::Status;

/// The one progress observer of `run` and `matrix`: a bar (cells, or guests) and one line
/// per event on a terminal; plain lines on stderr otherwise (CI logs).
pub(super) struct CliObserver {
    bar: Option<(MultiProgress, ProgressBar)>,
}

impl CliObserver {
    pub(super) fn new(total: usize, what: &str) -> CliObserver {
        let bar = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}  {{msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            (multi, bar)
        });
        CliObserver { bar }
    }

    pub(super) fn line(&self, text: &str) {
        match &self.bar {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("tracelab: {text}"),
        }
    }

    pub(super) fn finish(&self) {
        if let Some((_, bar)) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for CliObserver {
    fn event(&self, guest: Option<&str>, event: Event<'_>) {
        let tag = guest.map(|g| format!("[{g}] ")).unwrap_or_default();
        match event {
            Event::Stage(what) => match (&self.bar, guest) {
                (Some((_, bar)), None) => bar.set_message(what.to_string()),
                _ => self.line(&format!("{tag}{what}")),
            },
            Event::Cell { cell, done, total } => {
                let m = &cell.measured;
                let what = match (&cell.summary, m.status) {
                    (Some(s), Status::Ok) => {
                        format!("ok, overhead {} {}/call", fixed(s.overhead, 2), m.unit)
                    }
                    _ => format!(
                        "{} {}",
                        m.status,
                        m.reason.as_deref().map(one_line).unwrap_or_default()
                    ),
                };
                if let (Some((_, bar)), None) = (&self.bar, guest) {
                    bar.set_position(done as u64);
                }
                self.line(&format!(
                    "{tag}cell {done}/{total} {}: {what}",
                    m.id().label()
                ));
            }
            Event::GuestDone(entry) => {
                if let Some((_, bar)) = &self.bar {
                    bar.inc(1);
                }
                match &entry.error {
                    Some(e) => self.line(&format!("{tag}error: {e}")),
                    None => self.line(&format!(
                        "{tag}done in {:.0} s: {} cells, {} ok, {} failed",
                        entry.wall_seconds.unwrap_or(0.0),
                        entry.cells,
                        entry.ok_cells,
                        entry.failed_cells
                    )),
                }
            }
        }
    }
}

/// Download progress on stderr (`kernels fetch`, `doctor`): a line per file and every
/// tenth of it, so a slow mirror shows it is moving; silent for what is cached.
pub(super) fn download() -> impl Fn(&str, u64, Option<u64>) {
    let last = std::sync::Mutex::new((String::new(), 0u64));
    move |what: &str, done: u64, total: Option<u64>| {
        let Ok(mut last) = last.lock() else { return };
        let step = total.map_or(8 << 20, |t| (t / 10).max(1));
        if last.0 != what || done >= last.1 + step || total == Some(done) {
            let of = total.map_or(String::new(), |t| format!(" of {:.1} MB", t as f64 / 1e6));
            eprintln!(
                "tracelab: downloading {what}: {:.1} MB{of}",
                done as f64 / 1e6
            );
            *last = (what.to_string(), done);
        }
    }
}
