//! The one rendering layer: numbers, tables (text and Markdown) and escaping, shared by
//! `show`, `compare`, `report` and the matrix summary.

pub(crate) mod number;
pub(crate) mod table;

pub(crate) use number::{fixed, signed};
pub(crate) use table::Table;

/// Escapes text for HTML and SVG.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a Markdown table cell (a `|` would end it).
pub(crate) fn escape_markdown(s: &str) -> String {
    s.replace('|', "\\|")
}
