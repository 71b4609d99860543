//! A table of strings rendered as aligned text, CSV, a Markdown table or an HTML table.

use super::escape_markdown;

/// Column headers, which columns hold numbers (right-aligned), and the rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; `right` marks the numeric columns.
    pub(crate) fn new(headers: Vec<String>, right: Vec<bool>) -> Table {
        Table {
            headers,
            right,
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Aligned text: headers, a rule of dashes, rows; columns two spaces apart, numeric
    /// ones right-aligned (in the text only: `right_in_text` false aligns all left).
    pub(crate) fn text(&self, right_in_text: bool) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(self.right.iter().chain(std::iter::repeat(&false)))
                .map(|((c, &w), &right)| {
                    if right && right_in_text {
                        format!("{c:>w$}")
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect();
            let s = parts.join("  ");
            s.trim_end().to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV of the headers and rows, as written by the `csv` crate.
    pub(crate) fn csv(&self) -> String {
        csv_text(std::iter::once(&self.headers).chain(&self.rows))
    }

    /// A Markdown table; every cell escaped, numeric columns right-aligned.
    pub(crate) fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| escape_markdown(c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&self.headers);
        let align: Vec<&str> = self
            .right
            .iter()
            .map(|&r| if r { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// An HTML `<table>`; every cell escaped, numeric columns classed `num`.
    pub(crate) fn html(&self) -> String {
        let cell = |tag: &str, i: usize, c: &str| {
            let class = if self.right.get(i) == Some(&true) {
                " class=\"num\""
            } else {
                ""
            };
            format!("<{tag}{class}>{}</{tag}>", super::escape_html(c))
        };
        let mut out = String::from("<table><tr>");
        for (i, h) in self.headers.iter().enumerate() {
            out.push_str(&cell("th", i, h));
        }
        out.push_str("</tr>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                out.push_str(&cell("td", i, c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        out
    }
}

/// Records as RFC 4180 CSV (fields quoted only where they need it).
pub(crate) fn csv_text<'a>(records: impl IntoIterator<Item = &'a Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for r in records {
        // Writing into memory cannot fail but on a record of the wrong length, which
        // every caller rules out by building rows from its header list.
        let _ = w.write_record(r);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        let mut t = Table::new(vec!["name".into(), "n (insn)".into()], vec![false, true]);
        t.push(vec!["a|b".into(), "1.00".into()]);
        t.push(vec!["kprobe".into(), "821.57".into()]);
        t
    }

    #[test]
    fn text_aligns_numbers_right_and_trims() {
        assert_eq!(
            t().text(true),
            "name    n (insn)\n------  --------\na|b         1.00\nkprobe    821.57\n"
        );
        assert_eq!(
            t().text(false),
            "name    n (insn)\n------  --------\na|b     1.00\nkprobe  821.57\n"
        );
    }

    #[test]
    fn csv_quotes_only_where_needed() {
        let mut t = Table::new(vec!["a".into(), "b".into()], vec![]);
        t.push(vec!["x,y".into(), "say \"hi\"".into()]);
        t.push(vec![String::new(), "1.5".into()]);
        assert_eq!(t.csv(), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n,1.5\n");
    }

    #[test]
    fn markdown_escapes_cells_and_aligns_numbers() {
        assert_eq!(
            t().markdown(),
            "| name | n (insn) |\n|---|---:|\n| a\\|b | 1.00 |\n| kprobe | 821.57 |\n"
        );
    }
}
