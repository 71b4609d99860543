//! `tracelab publish <store> --out <site>`: a static site of a store's history, with
//! everything inline (CSS and SVG in each page; nothing is fetched):
//! - `index.html`: every series with its latest figure, latest change and a sparkline;
//! - `series/<slug>.html`: the trend (plotters SVG) with its change points marked, its
//!   changes and every night's figure with its kernel;
//! - `changes.html`: every regression and improvement, newest first;
//! - `nights/<night>.html`: one night's figures and what it ran on;
//! - `feed.xml`: an Atom feed of the changes, for a reader or a chat bot.

use crate::history::{Found, History, Series};
use crate::plot::trend::{sparkline, trend_svg, Trend};
use crate::render::{escape_html as esc, fixed, signed};
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.reg{color:#b00020;font-weight:bold}\
.imp{color:#006b2d;font-weight:bold}nav a{margin-right:1.5em}small{color:#666}";

/// What a publish wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub pages: usize,
    pub series: usize,
    pub changes: usize,
}

/// A stable id for a store's feed: its canonical path, hashed.
pub fn store_id(store: &Path) -> String {
    let path = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    tracelab_kernels::cache::sha256_bytes(path.to_string_lossy().as_bytes())[..16].to_string()
}

/// A file name for a series: its label in plain characters, unique by a hash suffix.
pub fn slug(label: &str) -> String {
    let plain: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let hash = tracelab_kernels::cache::sha256_bytes(label.as_bytes());
    format!("{}-{}", plain.trim_matches('-'), &hash[..8])
}

fn page(title: &str, depth: usize, body: &str) -> String {
    let up = "../".repeat(depth);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style><link rel=\"alternate\" type=\"application/atom+xml\" href=\"{up}feed.xml\" title=\"changes\"></head>\
         <body><nav><a href=\"{up}index.html\">series</a><a href=\"{up}changes.html\">regressions and improvements</a>\
         <a href=\"{up}feed.xml\">Atom feed</a></nav><h1>{t}</h1>\n{body}</body></html>\n",
        t = esc(title)
    )
}

fn verdict(c: &Found) -> String {
    let (class, word) = if c.regression {
        ("reg", "regression")
    } else {
        ("imp", "improvement")
    };
    format!("<span class=\"{class}\">{word}</span>")
}

fn change_row(c: &Found, depth: usize) -> String {
    let up = "../".repeat(depth);
    format!(
        "<tr><td><a href=\"{up}nights/{n}.html\">{n}</a></td><td><a href=\"{up}series/{s}.html\">{label}</a></td>\
         <td class=\"n\">{b}</td><td class=\"n\">{a}</td><td>{u}/call</td><td class=\"n\">{r}%</td><td class=\"n\">{p}</td><td>{v}</td><td>{also}</td></tr>\n",
        n = esc(&c.night),
        s = slug(&c.series),
        label = esc(&c.series),
        b = fixed(c.before, 2),
        a = fixed(c.after, 2),
        u = esc(&c.key.unit),
        r = signed(c.relative * 100.0, 1),
        p = if c.p < 1e-12 { "&lt;1e-12".to_string() } else { format!("{:.1e}", c.p) },
        v = verdict(c),
        also = esc(&if c.also_changed.is_empty() { "nothing else".to_string() } else { c.also_changed.join("; ") }),
    )
}

const CHANGE_HEAD: &str =
    "<tr><th>night</th><th>series</th><th>before</th><th>after</th><th>unit</th>\
<th>change</th><th>p</th><th>verdict</th><th>also changed that night</th></tr>\n";

fn series_page(s: &Series, changes: &[&Found]) -> String {
    let label = s.key.label();
    let points: Vec<(String, f64)> = s
        .points
        .iter()
        .map(|p| (p.night.clone(), p.value))
        .collect();
    let marks: Vec<(usize, String)> = changes
        .iter()
        .filter_map(|c| {
            let at = s.points.iter().position(|p| p.night == c.night)?;
            Some((at, format!("{}%", signed(c.relative * 100.0, 1))))
        })
        .collect();
    let y = format!("overhead ({}/call)", s.key.unit);
    let mut body = format!(
        "<p>host {} · unit {} · {} nights{}</p>\n{}\n",
        esc(&s.key.host),
        esc(&s.key.unit),
        s.points.len(),
        if s.key.kernel_args.is_empty() {
            String::new()
        } else {
            format!(" · kernel arguments {}", esc(&s.key.kernel_args))
        },
        trend_svg(&Trend {
            title: &label,
            y_label: &y,
            points: &points,
            changes: &marks
        })
    );
    if !changes.is_empty() {
        body.push_str("<h2>Changes</h2><table>");
        body.push_str(CHANGE_HEAD);
        for c in changes {
            body.push_str(&change_row(c, 1));
        }
        body.push_str("</table>\n");
    }
    body.push_str(
        "<h2>Nights</h2><table><tr><th>night</th><th>overhead</th><th>±</th><th>kernel</th></tr>\n",
    );
    for p in s.points.iter().rev() {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"../nights/{n}.html\">{n}</a></td><td class=\"n\">{v}</td><td class=\"n\">{h}</td><td>{k}</td></tr>",
            n = esc(&p.night),
            v = fixed(p.value, 2),
            h = fixed(p.half_width, 2),
            k = esc(p.facts.get("kernel").map(String::as_str).unwrap_or("-")),
        );
    }
    body.push_str("</table>\n");
    page(&label, 1, &body)
}

fn night_page(night: &str, rows: &[(&Series, &crate::history::Point)]) -> String {
    let mut body = String::new();
    if let Some((_, p)) = rows.first() {
        body.push_str("<table>");
        for (k, v) in &p.facts {
            let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        body.push_str("</table>\n");
    }
    body.push_str("<table><tr><th>series</th><th>overhead</th><th>±</th><th>unit</th></tr>\n");
    for (s, p) in rows {
        let label = s.key.label();
        let _ = writeln!(
            body,
            "<tr><td><a href=\"../series/{}.html\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}/call</td></tr>",
            slug(&label),
            esc(&label),
            fixed(p.value, 2),
            fixed(p.half_width, 2),
            esc(&s.key.unit)
        );
    }
    body.push_str("</table>\n");
    page(&format!("night {night}"), 1, &body)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The Atom feed (RFC 4287): one entry per change, newest first, with stable ids.
fn feed(h: &History, store_id: &str) -> String {
    let updated = |night: &str| format!("{}T00:00:00Z", night.get(..10).unwrap_or("1970-01-01"));
    let newest = h
        .changes
        .iter()
        .map(|c| c.night.as_str())
        .max()
        .unwrap_or("1970-01-01");
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>tracelab: regressions and improvements</title>\n<id>urn:tracelab:{store_id}</id>\n\
         <updated>{}</updated>\n<author><name>tracelab</name></author>\n<link href=\"changes.html\"/>\n",
        updated(newest)
    );
    for c in h.changes.iter().rev() {
        let title = format!(
            "{} {}: {} → {} {}/call ({}%) on {}",
            if c.regression {
                "regression"
            } else {
                "improvement"
            },
            c.series,
            fixed(c.before, 2),
            fixed(c.after, 2),
            c.key.unit,
            signed(c.relative * 100.0, 1),
            c.night
        );
        let _ = writeln!(
            out,
            "<entry><title>{}</title><id>urn:tracelab:{store_id}:{}:{}</id><updated>{}</updated>\
             <link href=\"series/{}.html\"/><summary>{}</summary></entry>",
            xml(&title),
            slug(&c.series),
            xml(&c.night),
            updated(&c.night),
            slug(&c.series),
            xml(&if c.also_changed.is_empty() {
                "nothing else changed that night".into()
            } else {
                format!("also changed: {}", c.also_changed.join("; "))
            }),
        );
    }
    out.push_str("</feed>\n");
    out
}

/// Writes the site of `series` and their `history` into `out` (created; files replaced).
pub fn publish(
    series: &[Series],
    history: &History,
    out: &Path,
    store_id: &str,
) -> Result<Published> {
    for d in ["series", "nights"] {
        std::fs::create_dir_all(out.join(d))
            .with_context(|| format!("creating {}", out.join(d).display()))?;
    }
    let mut by_series: BTreeMap<String, Vec<&Found>> = BTreeMap::new();
    for c in &history.changes {
        by_series.entry(c.series.clone()).or_default().push(c);
    }
    // Series pages, in parallel: the plots are the work.
    series
        .par_iter()
        .map(|s| {
            let label = s.key.label();
            let changes = by_series.get(&label).cloned().unwrap_or_default();
            crate::results::atomic::write(
                &out.join("series").join(format!("{}.html", slug(&label))),
                series_page(s, &changes).as_bytes(),
            )
        })
        .collect::<Result<Vec<()>>>()?;
    let mut nights: BTreeMap<&str, Vec<(&Series, &crate::history::Point)>> = BTreeMap::new();
    for s in series {
        for p in &s.points {
            nights.entry(p.night.as_str()).or_default().push((s, p));
        }
    }
    nights
        .par_iter()
        .map(|(night, rows)| {
            crate::results::atomic::write(
                &out.join("nights").join(format!("{night}.html")),
                night_page(night, rows).as_bytes(),
            )
        })
        .collect::<Result<Vec<()>>>()?;
    let mut index = format!(
        "<p>{} nights ({} … {}), {} series, {} changes: {} regressions, {} improvements. \
         Change points: penalised piecewise-constant fit (optimal partitioning, as asv), scale = each series' own spread. \
         Every figure is the per-call overhead in its series' unit.</p>\n<table><tr><th>series</th><th>unit</th><th>nights</th>\
         <th>latest</th><th>latest change</th><th>trend</th></tr>\n",
        history.nights,
        nights.keys().next().copied().unwrap_or("-"),
        nights.keys().last().copied().unwrap_or("-"),
        history.series,
        history.changes.len(),
        history.changes.iter().filter(|c| c.regression).count(),
        history.changes.iter().filter(|c| !c.regression).count(),
    );
    for s in series {
        let label = s.key.label();
        let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
        let latest = by_series.get(&label).and_then(|c| c.last()).map_or_else(
            || "-".to_string(),
            |c| {
                format!(
                    "{} {}% on {}",
                    verdict(c),
                    signed(c.relative * 100.0, 1),
                    esc(&c.night)
                )
            },
        );
        let _ = writeln!(
            index,
            "<tr><td><a href=\"series/{}.html\">{}</a></td><td>{}/call</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            slug(&label),
            esc(&label),
            esc(&s.key.unit),
            s.points.len(),
            s.points.last().map_or("-".into(), |p| fixed(p.value, 2)),
            latest,
            sparkline(&values)
        );
    }
    index.push_str("</table>\n");
    let mut changes = format!("<table>{CHANGE_HEAD}");
    for c in history.changes.iter().rev() {
        changes.push_str(&change_row(c, 0));
    }
    changes.push_str("</table>\n");
    let write =
        |name: &str, text: String| crate::results::atomic::write(&out.join(name), text.as_bytes());
    write("index.html", page("tracelab history", 0, &index))?;
    write(
        "changes.html",
        page("Regressions and improvements", 0, &changes),
    )?;
    write("feed.xml", feed(history, store_id))?;
    Ok(Published {
        pages: series.len() + nights.len() + 2,
        series: series.len(),
        changes: history.changes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_plain_and_distinct() {
        let a = slug("x86_64 6.12 getppid fprobe-exit");
        assert!(a.starts_with("x86-64-6.12-getppid-fprobe-exit-"), "{a}");
        assert_ne!(a, slug("x86_64 6.12 getppid fprobe exit"));
        assert!(slug("a/b <c>")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    }
}
