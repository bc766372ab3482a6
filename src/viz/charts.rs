//! Charts with axes: lines through points, grouped bars, training curves, a confusion
//! matrix.

use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Canvas, LABEL_SIZE, TITLE_SIZE, font, text_height, text_width};
use super::colour::sequential;
use super::{Picture, PlotError};

/// Line colours (matplotlib's first four), distinct for the colour-blind.
const LINE_COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// `lo..hi` widened by 5% on each side (and made non-empty).
fn padded(lo: f32, hi: f32) -> std::ops::Range<f32> {
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// Which corner of the plot a chart's legend sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendCorner {
    /// Top left (the default of [`line_chart`]: empty for curves that rise).
    UpperLeft,
    /// Top right.
    UpperRight,
    /// Bottom left (empty for curves that fall, such as accuracy against shift).
    LowerLeft,
    /// Bottom right.
    LowerRight,
}

impl LegendCorner {
    fn position(self) -> SeriesLabelPosition {
        match self {
            LegendCorner::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendCorner::UpperRight => SeriesLabelPosition::UpperRight,
            LegendCorner::LowerLeft => SeriesLabelPosition::LowerLeft,
            LegendCorner::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// Lines through points, one per named series, with markers and a legend: the shift
/// experiment (change of the output vs shift in pixels, for convolution and pooling), or
/// any small measured table.
///
/// ```
/// use cnn_from_scratch::viz;
///
/// let conv = [(0.0, 0.0), (1.0, 0.62), (2.0, 0.95)];
/// let pooled = [(0.0, 0.0), (1.0, 0.31), (2.0, 0.58)];
/// let picture = viz::line_chart(
///     "How much does the output change when the input shifts?",
///     "shift (pixels)",
///     "relative change of the output",
///     &[("convolution", &conv[..]), ("convolution + max pooling", &pooled[..])],
/// )?;
/// assert_eq!((picture.width(), picture.height()), (960, 600));
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &[(f32, f32)])],
) -> Result<Picture, PlotError> {
    line_chart_with_legend(title, x_label, y_label, series, LegendCorner::UpperLeft)
}

/// [`line_chart`] with the legend in another corner, to keep it off the lines: accuracy
/// against shift falls from the top left, so its legend goes [`LegendCorner::LowerLeft`].
///
/// ```
/// use cnn_from_scratch::viz::{self, LegendCorner};
///
/// let fc = [(0.0, 97.5), (1.0, 90.1), (2.0, 62.0)];
/// let cnn = [(0.0, 98.4), (1.0, 96.0), (2.0, 88.0)];
/// let picture = viz::line_chart_with_legend(
///     "Test accuracy of digits moved by k pixels",
///     "shift (pixels)",
///     "test accuracy (%)",
///     &[("fully connected", &fc[..]), ("SimpleConvNet", &cnn[..])],
///     LegendCorner::LowerLeft,
/// )?;
/// assert_eq!(picture.width(), 960);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn line_chart_with_legend(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &[(f32, f32)])],
    legend: LegendCorner,
) -> Result<Picture, PlotError> {
    let points = || series.iter().flat_map(|(_, pts)| pts.iter());
    if points().next().is_none() {
        return Err(PlotError::Nothing(format!(
            "line_chart {title:?} got no points"
        )));
    }
    let (x_lo, x_hi) = super::colour::min_max(points().map(|(x, _)| x));
    let (y_lo, y_hi) = super::colour::min_max(points().map(|(_, y)| y));
    let mut canvas = Canvas::new(960, 600);
    canvas.draw(|root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(LABEL_SIZE + 2))
            .draw()?;
        for (k, (name, pts)) in series.iter().enumerate() {
            let colour = LINE_COLOURS[k % LINE_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(3)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .label_font(font(LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(legend.position())
            .draw()?;
        Ok(())
    })?;
    canvas.into_picture()
}

/// A number as a bar's label: three significant digits or so (`97.3`, `0.954`, `1250`).
fn bar_label(v: f32) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// Grouped bars that show every measurement: for each group (a network, say) one bar per
/// series (pixels as they are, pixels shuffled), as high as the mean of its values, with
/// each value (one per seed) drawn as a black dot on the bar and the mean written above it.
///
/// `series` holds, for each series, its name and one list of values per group (a list may
/// be empty: no bar). The value axis starts near the smallest value rather than at zero,
/// so differences of a percent stay visible; its tick labels say where it starts.
///
/// # Panics
///
/// If a series does not have one list of values per group.
///
/// ```
/// use cnn_from_scratch::viz;
///
/// let as_is = [vec![97.6, 97.4, 97.9], vec![98.7, 98.9, 98.8]];
/// let shuffled = [vec![97.5, 97.7, 97.3], vec![93.0, 92.1, 93.4]];
/// let picture = viz::bar_chart(
///     "Test accuracy with the pixels as they are and shuffled",
///     "network",
///     "test accuracy (%)",
///     &["fully connected", "SimpleConvNet"],
///     &[("pixels as they are", &as_is[..]), ("pixels shuffled", &shuffled[..])],
/// )?;
/// assert_eq!((picture.width(), picture.height()), (960, 600));
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[&str],
    series: &[(&str, &[Vec<f32>])],
) -> Result<Picture, PlotError> {
    for (name, values) in series {
        assert_eq!(
            values.len(),
            groups.len(),
            "bar_chart: series {name:?} has {} lists of values for {} groups",
            values.len(),
            groups.len()
        );
    }
    let values = || {
        series
            .iter()
            .flat_map(|(_, per_group)| per_group.iter().flatten())
    };
    if values().next().is_none() {
        return Err(PlotError::Nothing(format!(
            "bar_chart {title:?} got no values"
        )));
    }
    let (lo, hi) = super::colour::min_max(values());
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    // Start at zero when that still shows the differences, else a round number below the
    // smallest value; leave room above the bars for their labels and the legend.
    let bottom = if lo >= 0.0 && lo < 0.5 * hi {
        0.0
    } else {
        let step = 10f32.powf((0.5 * span).log10().floor());
        ((lo - 0.3 * span) / step).floor() * step
    };
    let top = hi + 0.45 * (hi - bottom);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;

    let mut canvas = Canvas::new(960, 600);
    canvas.draw(|root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f32..groups.len() as f32 - 0.5, bottom..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(LABEL_SIZE + 2))
            .draw()?;
        let above = font(LABEL_SIZE)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        let below = font(LABEL_SIZE)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let width = 0.8 / series.len().max(1) as f32;
        for (k, (name, per_group)) in series.iter().enumerate() {
            let colour = LINE_COLOURS[k % LINE_COLOURS.len()];
            let left = |g: usize| g as f32 - 0.4 + k as f32 * width + 0.05 * width;
            let right = |g: usize| g as f32 - 0.4 + (k + 1) as f32 * width - 0.05 * width;
            let bars = per_group.iter().enumerate().filter(|(_, v)| !v.is_empty());
            chart
                .draw_series(bars.clone().map(|(g, v)| {
                    Rectangle::new([(left(g), bottom), (right(g), mean(v))], colour.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 7), (x + 20, y + 7)], colour.filled())
                });
            for (g, v) in bars {
                let centre = (left(g) + right(g)) / 2.0;
                chart.draw_series(
                    v.iter()
                        .map(|&y| Circle::new((centre, y), 4, BLACK.filled())),
                )?;
                // The mean above the bar and above its highest dot.
                let highest = v.iter().copied().fold(mean(v), f32::max);
                let (x, y) = chart.backend_coord(&(centre, highest));
                root.draw(&Text::new(bar_label(mean(v)), (x, y - 8), &above))?;
            }
        }
        // Group names under the axis, centred on each group (the axis has no ticks).
        for (g, name) in groups.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(g as f32, bottom));
            root.draw(&Text::new(name.to_string(), (x, y + 8), &below))?;
        }
        chart
            .configure_series_labels()
            .label_font(font(LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    })?;
    canvas.into_picture()
}

/// Training curves side by side: the loss of every mini-batch step (with a moving average,
/// since single steps are noisy) and the train and test accuracy after every epoch.
///
/// `losses_per_step` must not be empty; the accuracy slices may be empty (the right-hand
/// chart is then left without lines) or of any equal or unequal length (epoch k is at x = k).
///
/// ```
/// use cnn_from_scratch::viz;
///
/// let losses: Vec<f32> = (0..300).map(|s| 2.3 * (-(s as f32) / 80.0).exp() + 0.05 * ((s * 7) % 5) as f32).collect();
/// let picture = viz::training_curves("SimpleConvNet on MNIST", &losses, &[0.90, 0.95, 0.97], &[0.89, 0.94, 0.955])?;
/// assert_eq!(picture.width(), 1200);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn training_curves(
    title: &str,
    losses_per_step: &[f32],
    train_acc: &[f32],
    test_acc: &[f32],
) -> Result<Picture, PlotError> {
    if losses_per_step.is_empty() {
        return Err(PlotError::Nothing(format!(
            "training_curves {title:?} got no loss values"
        )));
    }
    let window = (losses_per_step.len() / 50).max(1);
    let smoothed: Vec<(f32, f32)> = losses_per_step
        .windows(window)
        .enumerate()
        .map(|(s, w)| {
            (
                (s + window - 1) as f32,
                w.iter().sum::<f32>() / window as f32,
            )
        })
        .collect();
    let (_, loss_hi) = super::colour::min_max(losses_per_step);
    let epochs = train_acc.len().max(test_acc.len()).max(1);
    let (acc_lo, _) = super::colour::min_max(train_acc.iter().chain(test_acc));
    let acc_lo = if train_acc.is_empty() && test_acc.is_empty() {
        0.0
    } else {
        acc_lo
    };
    let acc_floor = ((acc_lo - 0.02) * 50.0).floor().max(0.0) / 50.0;

    let mut canvas = Canvas::new(1200, 520);
    canvas.draw(|root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, font(TITLE_SIZE))?;
        let (left, right) = root.split_horizontally(600);

        let mut loss = ChartBuilder::on(&left)
            .caption("loss per step", font(LABEL_SIZE + 2))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(
                0f32..losses_per_step.len() as f32,
                0f32..loss_hi.max(1e-6) * 1.05,
            )?;
        loss.configure_mesh()
            .x_desc("step (mini-batch)")
            .y_desc("loss")
            .x_label_formatter(&|x| format!("{}", x.round()))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(LABEL_SIZE))
            .draw()?;
        let raw = RGBColor(158, 202, 225);
        loss.draw_series(LineSeries::new(
            losses_per_step
                .iter()
                .enumerate()
                .map(|(s, &l)| (s as f32, l)),
            raw.stroke_width(1),
        ))?
        .label("loss of one step")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], raw.stroke_width(2)));
        let dark = LINE_COLOURS[0];
        loss.draw_series(LineSeries::new(
            smoothed.iter().copied(),
            dark.stroke_width(2),
        ))?
        .label(format!("average of {window} steps"))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], dark.stroke_width(2)));
        loss.configure_series_labels()
            .label_font(font(LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;

        let mut acc = ChartBuilder::on(&right)
            .caption("accuracy per epoch", font(LABEL_SIZE + 2))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5f32..epochs as f32 + 0.5, acc_floor..1.0f32)?;
        acc.configure_mesh()
            .x_desc("epoch")
            .y_desc("accuracy")
            .x_labels(epochs.min(20))
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&|y| format!("{:.1}%", y * 100.0))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(LABEL_SIZE))
            .draw()?;
        for (k, (name, values)) in [("train", train_acc), ("test", test_acc)]
            .into_iter()
            .enumerate()
        {
            let colour = LINE_COLOURS[k + 1];
            let pts: Vec<(f32, f32)> = values
                .iter()
                .enumerate()
                .map(|(e, &a)| ((e + 1) as f32, a))
                .collect();
            acc.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(3)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            acc.draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        acc.configure_series_labels()
            .label_font(font(LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(())
    })?;
    canvas.into_picture()
}

/// A confusion matrix as a heatmap: row = true class, column = predicted class, the count
/// written in every cell. A cell's colour is its share of its row (of all examples of that
/// true class), so a weak class stands out even when classes differ in size. The overall
/// accuracy is printed underneath.
///
/// Panics if `counts` is not square or `class_names` does not have one name per row.
///
/// ```
/// use cnn_from_scratch::viz;
/// use ndarray::array;
///
/// let counts = array![[50, 2, 0], [3, 45, 2], [0, 6, 42]];
/// let picture = viz::confusion_matrix("Three classes", counts.view(), &["cat", "dog", "fox"])?;
/// assert!(picture.width() > 250);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn confusion_matrix(
    title: &str,
    counts: ArrayView2<usize>,
    class_names: &[&str],
) -> Result<Picture, PlotError> {
    let (k, k2) = counts.dim();
    assert!(
        k == k2 && class_names.len() == k,
        "confusion_matrix needs a square matrix and one name per class, got counts of shape {:?} and {} names",
        counts.shape(),
        class_names.len()
    );
    if k == 0 {
        return Err(PlotError::Nothing(format!(
            "confusion_matrix {title:?} got no classes"
        )));
    }
    let cell = (640 / k as u32).clamp(24, 64);
    let count_size = (cell * 2 / 7).clamp(9, LABEL_SIZE);
    let margin = 20;
    let name_w = class_names
        .iter()
        .map(|n| text_width(n, LABEL_SIZE))
        .max()
        .unwrap_or(0);
    let left = margin + (name_w + 12).max(text_width("true ↓", LABEL_SIZE) + 8);
    let title_h = text_height(title, TITLE_SIZE) + 12;
    let header_h = 2 * text_height("predicted", LABEL_SIZE) + 8;
    let top = margin + title_h + header_h;
    let grid = cell * k as u32;
    let total: usize = counts.sum();
    let correct: usize = counts.diag().sum();
    let footer = if total > 0 {
        format!(
            "accuracy {:.2}% ({correct} of {total}); colour = share of the true class's row",
            100.0 * correct as f64 / total as f64
        )
    } else {
        "no examples counted".to_string()
    };
    let width = (left + grid + margin)
        .max(text_width(title, TITLE_SIZE) + 2 * margin)
        .max(text_width(&footer, LABEL_SIZE) + 2 * margin);
    let height = top + grid + 14 + text_height(&footer, LABEL_SIZE) + margin;
    let mut canvas = Canvas::new(width, height);
    canvas.text(
        title,
        (width as i32 / 2, margin as i32 / 2),
        TITLE_SIZE,
        true,
        [0, 0, 0],
    )?;

    let (left_i, top_i, cell_i) = (left as i32, top as i32, cell as i32);
    let header_y = (margin + title_h) as i32;
    canvas.text(
        "predicted →",
        (left_i + grid as i32 / 2, header_y),
        LABEL_SIZE,
        true,
        [0, 0, 0],
    )?;
    canvas.text(
        "true ↓",
        (margin as i32, top_i - LABEL_SIZE as i32 - 6),
        LABEL_SIZE,
        false,
        [0, 0, 0],
    )?;
    for (i, name) in class_names.iter().enumerate() {
        let centre = left_i + i as i32 * cell_i + cell_i / 2;
        canvas.text(
            name,
            (centre, top_i - LABEL_SIZE as i32 - 6),
            LABEL_SIZE,
            true,
            [0, 0, 0],
        )?;
        let row_y = top_i + i as i32 * cell_i + (cell_i - LABEL_SIZE as i32) / 2;
        canvas.text(name, (margin as i32, row_y), LABEL_SIZE, false, [0, 0, 0])?;
    }
    for (i, row) in counts.outer_iter().enumerate() {
        let row_total = row.sum();
        for (j, &n) in row.iter().enumerate() {
            let share = if row_total > 0 {
                n as f32 / row_total as f32
            } else {
                0.0
            };
            let (x, y) = (left_i + j as i32 * cell_i, top_i + i as i32 * cell_i);
            canvas.fill_rect(i64::from(x), i64::from(y), cell, cell, sequential(share));
            let ink = match (n, share > 0.5) {
                (0, _) => [170, 170, 170],
                (_, true) => [255, 255, 255],
                (_, false) => [0, 0, 0],
            };
            let text_y = y + (cell_i - count_size as i32) / 2;
            canvas.text(
                &n.to_string(),
                (x + cell_i / 2, text_y),
                count_size,
                true,
                ink,
            )?;
        }
    }
    canvas.frame(i64::from(left), i64::from(top), grid, grid, [120, 120, 120]);
    let footer_y = top_i + grid as i32 + 14;
    canvas.text(
        &footer,
        (width as i32 / 2, footer_y),
        LABEL_SIZE,
        true,
        [0, 0, 0],
    )?;
    canvas.into_picture()
}
