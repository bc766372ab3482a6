//! Small matrices as readable tables: the book's 4x4 input, a 3x3 filter, a 2x2 output.
//!
//! A picture shows the shape of a feature map; for the hand-sized examples of the chapter
//! (Fig 7-3, 7-4, 7-6) the numbers themselves are the point. [`Table`] prints them aligned
//! as text, and in a notebook running evcxr it shows them as an HTML table.

use std::fmt;

use ndarray::ArrayView2;

/// A matrix shown as a table: aligned text with `{}`, an HTML table in a notebook.
///
/// ```
/// use cnn_from_scratch::viz::Table;
/// use ndarray::array;
///
/// let w = array![[2.0_f32, 0., 1.], [0., 1., 2.], [1., 0., 2.]];
/// let table = Table::new(w.view()).title("filter (Fig 7-3)").precision(0);
/// assert_eq!(table.to_string(), "filter (Fig 7-3)\n2  0  1\n0  1  2\n1  0  2\n");
/// ```
#[derive(Debug, Clone)]
pub struct Table<'a> {
    data: ArrayView2<'a, f32>,
    title: Option<String>,
    precision: usize,
}

impl<'a> Table<'a> {
    /// A table of `data` with no title and 2 decimals.
    pub fn new(data: ArrayView2<'a, f32>) -> Self {
        Table {
            data,
            title: None,
            precision: 2,
        }
    }

    /// A line above the table (the `<caption>` in HTML).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Digits after the decimal point (0 for whole numbers).
    pub fn precision(mut self, precision: usize) -> Self {
        self.precision = precision;
        self
    }

    /// Every entry formatted, row by row.
    fn cells(&self) -> Vec<Vec<String>> {
        self.data
            .rows()
            .into_iter()
            .map(|row| {
                row.iter()
                    .map(|v| {
                        let text = format!("{v:.*}", self.precision);
                        // -0.0001 rounds to "-0.000"; show it as the zero it looks like.
                        match text.strip_prefix('-') {
                            Some(zero) if zero.chars().all(|c| c == '0' || c == '.') => {
                                zero.to_string()
                            }
                            _ => text,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The table as HTML: `<table>` with an optional `<caption>`, one `<tr>` per row.
    ///
    /// ```
    /// use cnn_from_scratch::viz::Table;
    /// use ndarray::array;
    ///
    /// let x = array![[1.0_f32, -0.5]];
    /// let html = Table::new(x.view()).title("a < b").html();
    /// assert!(html.contains("<caption>a &lt; b</caption>"));
    /// assert!(html.contains("<td>1.00</td><td>-0.50</td>"));
    /// ```
    pub fn html(&self) -> String {
        let mut html = String::from(
            "<table style=\"font-family: monospace; text-align: right; border-collapse: collapse\">",
        );
        if let Some(title) = &self.title {
            html += &format!("<caption>{}</caption>", escape_html(title));
        }
        for row in self.cells() {
            html += "<tr>";
            for cell in row {
                html += &format!("<td>{cell}</td>");
            }
            html += "</tr>";
        }
        html + "</table>"
    }

    /// Shows the table inline in a Jupyter notebook running the evcxr kernel: a cell whose
    /// last expression is a `Table` displays it.
    pub fn evcxr_display(&self) {
        Table::evcxr_display_row(std::slice::from_ref(self));
    }

    /// Shows several tables next to each other in a notebook (input, filter, output).
    ///
    /// evcxr keeps only one HTML output per cell, so call this once with all the tables
    /// rather than `evcxr_display` on each.
    pub fn evcxr_display_row(tables: &[Table]) {
        let html: String = tables.iter().map(Table::html).collect();
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n<div style=\"display: flex; gap: 2em; align-items: flex-start\">{html}</div>\nEVCXR_END_CONTENT"
        );
    }
}

impl fmt::Display for Table<'_> {
    /// One line per row, columns right-aligned to the widest entry, two spaces apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(title) = &self.title {
            writeln!(f, "{title}")?;
        }
        let cells = self.cells();
        let width = cells.iter().flatten().map(String::len).max().unwrap_or(0);
        for row in cells {
            let line: Vec<String> = row.iter().map(|c| format!("{c:>width$}")).collect();
            writeln!(f, "{}", line.join("  "))?;
        }
        Ok(())
    }
}

/// Replaces the characters HTML gives a meaning to, so a title shows as written.
fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            _ => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn html_has_one_row_per_row_and_one_cell_per_entry() {
        let x = Array2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f32 / 4.0);
        let html = Table::new(x.view()).title("x & y").precision(1).html();
        assert_eq!(html.matches("<tr>").count(), 3);
        assert_eq!(html.matches("<td>").count(), 12);
        // Entry (2, 3) is 23 / 4 = 5.75, shown with one decimal.
        assert!(html.contains("<td>5.8</td></tr></table>"), "{html}");
        assert!(html.contains("<caption>x &amp; y</caption>"), "{html}");
    }

    #[test]
    fn tiny_negatives_show_as_zero() {
        let x = ndarray::array![[-0.0001_f32, -0.5, 0.0]];
        assert_eq!(
            Table::new(x.view()).precision(1).to_string(),
            " 0.0  -0.5   0.0\n"
        );
    }

    #[test]
    fn text_columns_line_up() {
        let x = ndarray::array![[1.0_f32, -12.5], [100.0, 0.0]];
        let text = Table::new(x.view()).precision(1).to_string();
        assert_eq!(text, "  1.0  -12.5\n100.0    0.0\n");
    }
}
