//! The one rendering layer: numbers, tables (text and Markdown) and escaping, shared by
//! `show`, `compare`, `report` and the matrix summary.

pub(crate) mod number;
pub(crate) mod table;

pub use number::fixed;
pub(crate) use number::signed;
pub(crate) use table::Table;

/// How `show` and `compare` print: one enum, parsed by clap (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// RFC 4180 CSV, full precision.
    Csv,
    /// JSON, full precision.
    Json,
    /// A Markdown table (for a CI job summary or a forge).
    #[value(alias = "md")]
    Markdown,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Table, Format::Csv, Format::Json, Format::Markdown];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown `--format`; the message lists the valid ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown format `{0}`; valid formats: table, csv, json, markdown")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Format as clap::ValueEnum>::from_str(s, true).map_err(|_| UnknownFormat(s.to_string()))
    }
}

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

/// Collapses a multi-line reason (e.g. a console excerpt) onto one line for tables.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes a Markdown table cell (a `|` would end it).
pub(crate) fn escape_markdown(s: &str) -> String {
    s.replace('|', "\\|")
}
