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

    /// A line above the table (in HTML a `<figcaption>` on one line, see [`Table::html`]).
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

    /// The table as HTML: a `<table>` with one `<tr>` per row; with a title, the title and the
    /// table together in a `<figure>`.
    ///
    /// The title is a `<figcaption>` above the table, not the table's own `<caption>`: a
    /// `<caption>` is only as wide as the table, so over a 3x3 table of small numbers a title
    /// such as "window × filter, entry by entry" wrapped one word per line. The figcaption
    /// keeps to one line (`white-space: nowrap`), the table is centred under it, and in a row
    /// of tables ([`Table::row_html`]) each figure is as wide as the wider of the two.
    ///
    /// ```
    /// use cnn_from_scratch::viz::Table;
    /// use ndarray::array;
    ///
    /// let x = array![[1.0_f32, -0.5]];
    /// let html = Table::new(x.view()).title("a < b").html();
    /// assert!(html.contains(">a &lt; b</figcaption>"));
    /// assert!(html.contains("<td>1.00</td><td>-0.50</td>"));
    /// ```
    pub fn html(&self) -> String {
        let mut table = String::from(
            "<table style=\"font-family: monospace; text-align: right; border-collapse: collapse; margin: 0 auto\">",
        );
        for row in self.cells() {
            table += "<tr>";
            for cell in row {
                table += &format!("<td>{cell}</td>");
            }
            table += "</tr>";
        }
        table += "</table>";
        match &self.title {
            None => table,
            Some(title) => format!(
                "<figure style=\"margin: 0\">\
                 <figcaption style=\"white-space: nowrap; text-align: center; margin-bottom: 0.25em\">{}</figcaption>\
                 {table}</figure>",
                escape_html(title)
            ),
        }
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
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            Table::row_html(tables)
        );
    }

    /// Several tables side by side as HTML, tops aligned; in a window too narrow for all of
    /// them the rest continue on the next line instead of running off the edge.
    pub fn row_html(tables: &[Table]) -> String {
        let tables: String = tables.iter().map(Table::html).collect();
        format!(
            "<div style=\"display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start\">{tables}</div>"
        )
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
        assert!(html.contains(">x &amp; y</figcaption>"), "{html}");
    }

    /// The `style="..."` declarations of the first `<tag ...>` in `html`, as (property, value)
    /// pairs, and where that tag starts.
    fn style_of(html: &str, tag: &str) -> (usize, Vec<(String, String)>) {
        let start = html
            .find(&format!("<{tag} "))
            .unwrap_or_else(|| panic!("no <{tag}> in {html}"));
        let open_tag = &html[start..start + html[start..].find('>').unwrap()];
        let style = open_tag
            .split_once("style=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or("", |(style, _)| style);
        let declarations = style
            .split(';')
            .filter_map(|d| d.split_once(':'))
            .map(|(p, v)| (p.trim().to_string(), v.trim().to_string()))
            .collect();
        (start, declarations)
    }

    fn has(declarations: &[(String, String)], property: &str, value: &str) -> bool {
        declarations
            .iter()
            .any(|(p, v)| p == property && v == value)
    }

    #[test]
    fn title_is_one_line_above_the_table_not_a_caption_as_narrow_as_the_table() {
        // Notebook 02's case: a long title over a 3x3 table of one-digit numbers. As the
        // table's <caption> it was given the table's width and wrapped word by word.
        let products = ndarray::array![[2.0_f32, 0., 3.], [0., 1., 4.], [3., 0., 2.]];
        let html = Table::new(products.view())
            .title("window × filter, entry by entry")
            .precision(0)
            .html();
        assert!(!html.contains("<caption"), "{html}");
        let (title_at, title_style) = style_of(&html, "figcaption");
        let (table_at, _) = style_of(&html, "table");
        // The title is a sibling before the table, so the table's width does not limit it...
        let title_end = html.find("</figcaption>").expect("a closed figcaption");
        assert!(title_at < title_end && title_end < table_at, "{html}");
        assert_eq!(
            &html[html[..title_end].rfind('>').unwrap() + 1..title_end],
            "window × filter, entry by entry"
        );
        // ...and it may not break into lines even when the box around it is narrow.
        assert!(
            has(&title_style, "white-space", "nowrap"),
            "{title_style:?}"
        );
        // Title and table are one figure, so a row of tables keeps each title over its table.
        let (figure_at, _) = style_of(&html, "figure");
        assert!(
            figure_at < title_at && html.ends_with("</table></figure>"),
            "{html}"
        );
    }

    #[test]
    fn untitled_table_is_a_bare_table() {
        let x = ndarray::array![[1.0_f32]];
        assert_eq!(
            Table::new(x.view()).html(),
            "<table style=\"font-family: monospace; text-align: right; border-collapse: collapse; margin: 0 auto\"><tr><td>1.00</td></tr></table>"
        );
    }

    #[test]
    fn a_row_lays_tables_side_by_side_and_wraps_when_narrow() {
        let a = ndarray::array![[1.0_f32]];
        let b = ndarray::array![[2.0_f32]];
        let (ta, tb) = (
            Table::new(a.view()).title("a"),
            Table::new(b.view()).title("b"),
        );
        let html = Table::row_html(&[ta.clone(), tb.clone()]);
        let (at, row_style) = style_of(&html, "div");
        assert_eq!(at, 0);
        assert!(has(&row_style, "display", "flex"), "{row_style:?}");
        assert!(has(&row_style, "flex-wrap", "wrap"), "{row_style:?}");
        let inner = html
            .strip_suffix("</div>")
            .and_then(|h| h.split_once('>'))
            .map(|(_, inner)| inner);
        assert_eq!(inner, Some(format!("{}{}", ta.html(), tb.html()).as_str()));
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
