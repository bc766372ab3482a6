//! The experiments' numbers as Markdown tables, tab-separated rows and charts.
//!
//! Accuracies are written in percent with two decimals. A table cell of several seeds is
//! `mean ± standard deviation` (the sample standard deviation over seeds; `± 0` for one seed).
//! The TSV file has one row per measured number, under [`TSV_HEADER`]:
//!
//! ```text
//! experiment  network  pixels  augment_shift  seed  shift  direction  test_accuracy
//! ```

use super::{DIRECTIONS, Net, ShiftCurves, ShuffledPixels};
use crate::viz::{self, LegendCorner, Picture, PlotError};

/// The column names of [`ShuffledPixels::tsv_rows`] and [`ShiftCurves::tsv_rows`].
pub const TSV_HEADER: &str =
    "experiment\tnetwork\tpixels\taugment_shift\tseed\tshift\tdirection\ttest_accuracy";

/// Mean, sample standard deviation, smallest and largest of some numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The mean.
    pub mean: f32,
    /// The sample standard deviation (divided by `n - 1`); 0 for a single value.
    pub sd: f32,
    /// The smallest value.
    pub min: f32,
    /// The largest value.
    pub max: f32,
}

impl Spread {
    /// The spread of `values`; all NaN if there are none.
    ///
    /// ```
    /// use cnn_from_scratch::experiments::report::Spread;
    /// let s = Spread::of(&[1.0, 2.0, 3.0]);
    /// assert_eq!((s.mean, s.sd, s.min, s.max), (2.0, 1.0, 1.0, 3.0));
    /// ```
    pub fn of(values: &[f32]) -> Spread {
        let n = values.len() as f32;
        let mean = values.iter().sum::<f32>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0)).sqrt()
        } else if values.is_empty() {
            f32::NAN
        } else {
            0.0
        };
        let min = values.iter().copied().fold(f32::NAN, f32::min);
        let max = values.iter().copied().fold(f32::NAN, f32::max);
        Spread { mean, sd, min, max }
    }

    /// `97.62 ± 0.15` (in percent, for accuracies between 0 and 1).
    pub fn percent(&self) -> String {
        format!("{:.2} ± {:.2}", 100.0 * self.mean, 100.0 * self.sd)
    }
}

fn percent(v: f32) -> String {
    format!("{:.2}", 100.0 * v)
}

impl ShuffledPixels {
    /// `(network, pixels, accuracies per seed)` for the four cases, in table order.
    pub fn cases(&self) -> [(Net, &'static str, &[f32]); 4] {
        [
            (Net::FullyConnected, "as they are", &self.fc_as_is),
            (Net::FullyConnected, "shuffled", &self.fc_shuffled),
            (Net::ConvMaxPooling, "as they are", &self.cnn_as_is),
            (Net::ConvMaxPooling, "shuffled", &self.cnn_shuffled),
        ]
    }

    /// The table: one row per case, one column per seed, then mean ± sd.
    ///
    /// ```
    /// use cnn_from_scratch::experiments::ShuffledPixels;
    /// let r = ShuffledPixels { seeds: vec![0, 1], permutation_seed: 7,
    ///     fc_as_is: vec![0.97, 0.98], fc_shuffled: vec![0.975, 0.97],
    ///     cnn_as_is: vec![0.99, 0.99], cnn_shuffled: vec![0.93, 0.94] };
    /// let table = r.markdown();
    /// assert!(table.contains("| SimpleConvNet (max pooling) | shuffled | 93.00 | 94.00 | 93.50 ± 0.71 |"));
    /// ```
    pub fn markdown(&self) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(|s| format!("seed {s}")).collect();
        let mut out = format!(
            "| network | pixels | {} | mean ± sd |\n|---|---|{}---|\n",
            seeds.join(" | "),
            "---|".repeat(seeds.len())
        );
        for (net, pixels, values) in self.cases() {
            let cells: Vec<String> = values.iter().map(|&v| percent(v)).collect();
            out += &format!(
                "| {} | {pixels} | {} | {} |\n",
                net.name(),
                cells.join(" | "),
                Spread::of(values).percent()
            );
        }
        out
    }

    /// One TSV row per seed and case (see [`TSV_HEADER`]).
    pub fn tsv_rows(&self) -> Vec<String> {
        let mut rows = Vec::new();
        for (net, pixels, values) in self.cases() {
            let pixels = if pixels == "shuffled" {
                "shuffled"
            } else {
                "as_is"
            };
            for (seed, acc) in self.seeds.iter().zip(values) {
                rows.push(format!(
                    "1_shuffled_pixels\t{}\t{pixels}\t0\t{seed}\t0\tnone\t{acc:.4}",
                    net.key()
                ));
            }
        }
        rows
    }

    /// The bar chart: for each network a bar for the pixels as they are and one for the
    /// pixels shuffled, each seed a dot.
    pub fn chart(&self, title: &str) -> Result<Picture, PlotError> {
        let pct = |v: &[f32]| v.iter().map(|a| 100.0 * a).collect::<Vec<f32>>();
        let as_is = [pct(&self.fc_as_is), pct(&self.cnn_as_is)];
        let shuffled = [pct(&self.fc_shuffled), pct(&self.cnn_shuffled)];
        viz::bar_chart(
            title,
            &format!(
                "network ({} seed{}, one dot each)",
                self.seeds.len(),
                if self.seeds.len() == 1 { "" } else { "s" }
            ),
            "test accuracy (%)",
            &[Net::FullyConnected.name(), Net::ConvMaxPooling.name()],
            &[
                ("pixels as they are", &as_is[..]),
                ("pixels shuffled (one fixed permutation)", &shuffled[..]),
            ],
        )
    }
}

/// A run's name in tables: the network, and its augmentation if any.
fn run_name(net: Net, augment_shift: usize) -> String {
    if augment_shift > 0 {
        format!("{}, trained with shifts ≤ {augment_shift} px", net.name())
    } else {
        net.name().to_string()
    }
}

impl ShiftCurves {
    /// The table: one row per network (and augmentation), one column per shift, each cell
    /// the mean over directions and seeds ± the spread between seeds.
    ///
    /// ```
    /// use cnn_from_scratch::experiments::{Net, ShiftCurve, ShiftCurves};
    /// let curves = ShiftCurves { test_set: "MNIST".into(), test_images: 10_000, max_shift: 1,
    ///     curves: vec![ShiftCurve { net: Net::FullyConnected, augment_shift: 0, seed: 0,
    ///                               accuracy: vec![[0.98; 4], [0.90, 0.92, 0.94, 0.96]] }] };
    /// assert!(curves.markdown().contains("| fully connected | 1 | 98.00 ± 0.00 | 93.00 ± 0.00 |"));
    /// ```
    pub fn markdown(&self) -> String {
        let shifts: Vec<String> = (0..=self.max_shift).map(|k| format!("{k} px")).collect();
        let mut out = format!(
            "| network | seeds | {} |\n|---|---|{}\n",
            shifts.join(" | "),
            "---|".repeat(shifts.len())
        );
        for (net, augment) in self.runs() {
            let curves = self.of(net, augment);
            let cells: Vec<String> = (0..=self.max_shift)
                .map(|k| {
                    let per_seed: Vec<f32> = curves.iter().map(|c| c.mean(k)).collect();
                    Spread::of(&per_seed).percent()
                })
                .collect();
            out += &format!(
                "| {} | {} | {} |\n",
                run_name(net, augment),
                curves.len(),
                cells.join(" | ")
            );
        }
        out
    }

    /// One TSV row per network, seed, shift and direction (the unshifted accuracy once,
    /// with direction `none`), under `experiment` (see [`TSV_HEADER`]).
    pub fn tsv_rows(&self, experiment: &str) -> Vec<String> {
        let mut rows = Vec::new();
        for c in &self.curves {
            let prefix = format!(
                "{experiment}\t{}\tas_is\t{}\t{}",
                c.net.key(),
                c.augment_shift,
                c.seed
            );
            rows.push(format!("{prefix}\t0\tnone\t{:.4}", c.accuracy[0][0]));
            for (k, row) in c.accuracy.iter().enumerate().skip(1) {
                for ((direction, _, _), acc) in DIRECTIONS.iter().zip(row) {
                    rows.push(format!("{prefix}\t{k}\t{direction}\t{acc:.4}"));
                }
            }
        }
        rows
    }

    /// The line chart: accuracy against shift, one line per network (mean over directions
    /// and seeds). `labels` renames the runs (e.g. to say what they were trained on); by
    /// default each is named by its network and augmentation.
    pub fn chart(&self, title: &str) -> Result<Picture, PlotError> {
        let lines: Vec<(String, Vec<(f32, f32)>)> = self
            .runs()
            .into_iter()
            .map(|(net, augment)| {
                let points = self
                    .mean_curve(net, augment)
                    .iter()
                    .enumerate()
                    .map(|(k, &a)| (k as f32, 100.0 * a))
                    .collect();
                (run_name(net, augment), points)
            })
            .collect();
        chart_lines(title, &self.test_set, self.test_images, &lines)
    }
}

/// Accuracy-against-shift lines, as [`ShiftCurves::chart`] draws them; for lines gathered
/// from several experiments (experiment 3 on full MNIST and on the sample).
pub fn chart_lines(
    title: &str,
    test_set: &str,
    test_images: usize,
    lines: &[(String, Vec<(f32, f32)>)],
) -> Result<Picture, PlotError> {
    let series: Vec<(&str, &[(f32, f32)])> = lines
        .iter()
        .map(|(name, pts)| (name.as_str(), pts.as_slice()))
        .collect();
    viz::line_chart_with_legend(
        title,
        "shift of the test digits (pixels; mean of right, left, down, up)",
        &format!("test accuracy (%), {test_images} {test_set} test digits"),
        &series,
        LegendCorner::LowerLeft,
    )
}
