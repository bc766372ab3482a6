//! Experiments 2 and 3 (§8): test digits moved by a few pixels, and networks trained with
//! random shifts.

use std::time::Instant;

use ndarray::{Array1, Array4};

use super::{EVAL_BATCH, ExperimentError, Net, Training};
use crate::data::{Dataset, shift_images};
use crate::full_cnn::Network;

/// The four directions a test digit is moved in, as `(name, dx, dy)` for one pixel: right,
/// left, down, up.
pub const DIRECTIONS: [(&str, isize, isize); 4] = [
    ("right", 1, 0),
    ("left", -1, 0),
    ("down", 0, 1),
    ("up", 0, -1),
];

/// How one trained network copes with moved test digits.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftCurve {
    /// Which network.
    pub net: Net,
    /// The shift augmentation it was trained with (0: none), in pixels.
    pub augment_shift: usize,
    /// Its seed.
    pub seed: u64,
    /// `accuracy[k][d]`: test accuracy with every test digit moved `k` pixels in direction
    /// [`DIRECTIONS`]`[d]`; `accuracy[0]` is the unshifted accuracy, four times.
    pub accuracy: Vec<[f32; 4]>,
}

impl ShiftCurve {
    /// Accuracy at a shift of `k` pixels, the mean over the four directions.
    pub fn mean(&self, k: usize) -> f32 {
        self.accuracy[k].iter().sum::<f32>() / 4.0
    }
}

/// The curves of a set of networks, one per network, augmentation and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftCurves {
    /// Where the test images came from (e.g. `"MNIST"`).
    pub test_set: String,
    /// Number of test images.
    pub test_images: usize,
    /// Largest shift measured, in pixels.
    pub max_shift: usize,
    /// In the order trained: network by network (and augmentation), seed by seed.
    pub curves: Vec<ShiftCurve>,
}

impl ShiftCurves {
    /// The curves of `net` trained with `augment_shift`, one per seed.
    pub fn of(&self, net: Net, augment_shift: usize) -> Vec<&ShiftCurve> {
        self.curves
            .iter()
            .filter(|c| c.net == net && c.augment_shift == augment_shift)
            .collect()
    }

    /// The mean over seeds (and directions) of the accuracy of `net` trained with
    /// `augment_shift`, at each shift `0..=max_shift`; empty if there is no such run.
    pub fn mean_curve(&self, net: Net, augment_shift: usize) -> Vec<f32> {
        let curves = self.of(net, augment_shift);
        if curves.is_empty() {
            return Vec::new();
        }
        (0..=self.max_shift)
            .map(|k| curves.iter().map(|c| c.mean(k)).sum::<f32>() / curves.len() as f32)
            .collect()
    }

    /// The distinct `(network, augmentation)` pairs, in the order trained.
    pub fn runs(&self) -> Vec<(Net, usize)> {
        let mut runs = Vec::new();
        for c in &self.curves {
            if !runs.contains(&(c.net, c.augment_shift)) {
                runs.push((c.net, c.augment_shift));
            }
        }
        runs
    }
}

/// Test accuracy of `net` on `images` moved by `0..=max_shift` pixels in each of the four
/// [`DIRECTIONS`], zeros shifted in ([`shift_images`]): `result[k][d]`. The unshifted
/// images are measured once.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::experiments::{Net, shift_curve, subset};
/// let data = subset(&Dataset::sample(), 0, 50);
/// let mut net = Net::FullyConnected.build(0).unwrap();
/// let curve = shift_curve(&mut net, &data.test_images, &data.test_labels, 2);
/// assert_eq!(curve.len(), 3);                               // shifts 0, 1, 2
/// assert_eq!(curve[0][0], net.accuracy(data.test_images.view(), data.test_labels.view(), 50));
/// ```
pub fn shift_curve(
    net: &mut Network,
    images: &Array4<f32>,
    labels: &Array1<u8>,
    max_shift: usize,
) -> Vec<[f32; 4]> {
    let unshifted = net.accuracy(images.view(), labels.view(), EVAL_BATCH);
    let mut curve = vec![[unshifted; 4]];
    for k in 1..=max_shift as isize {
        let mut row = [0.0; 4];
        for (d, &(_, dx, dy)) in DIRECTIONS.iter().enumerate() {
            let moved = shift_images(images.view(), k * dx, k * dy);
            row[d] = net.accuracy(moved.view(), labels.view(), EVAL_BATCH);
        }
        curve.push(row);
    }
    curve
}

/// Trains every `(network, augmentation)` of `runs` once per seed and measures its curve.
fn curves(
    data: &Dataset,
    training: &Training,
    runs: &[(Net, usize)],
    max_shift: usize,
) -> Result<ShiftCurves, ExperimentError> {
    training.check(data)?;
    let mut result = ShiftCurves {
        test_set: data.name.clone(),
        test_images: data.test_labels.len(),
        max_shift,
        curves: Vec::new(),
    };
    for &(net, augment_shift) in runs {
        for &seed in &training.seeds {
            let started = Instant::now();
            let mut network = training.train(net, data, seed, augment_shift)?;
            let accuracy = shift_curve(
                &mut network,
                &data.test_images,
                &data.test_labels,
                max_shift,
            );
            let curve = ShiftCurve {
                net,
                augment_shift,
                seed,
                accuracy,
            };
            let means: Vec<String> = (0..=max_shift)
                .map(|k| format!("{:.1}", 100.0 * curve.mean(k)))
                .collect();
            let augmented = if augment_shift > 0 {
                format!(", trained with shifts up to {augment_shift} px")
            } else {
                String::new()
            };
            training.log(
                started,
                format_args!(
                    "{}{augmented}, seed {seed}: accuracy at 0..{max_shift} px {}%",
                    net.name(),
                    means.join(" ")
                ),
            );
            result.curves.push(curve);
        }
    }
    Ok(result)
}

/// Experiment 2: how much do the networks lose when the test digits move?
///
/// Trains each of `nets` once per seed on `data` (no augmentation), then measures the test
/// accuracy with every test digit moved `0..=max_shift` pixels right, left, down and up
/// ([`shift_curve`]). Expected: the fully connected net falls fastest (a digit one pixel over
/// puts its ink on other weights), max pooling holds up best.
pub fn shifted_test_digits(
    data: &Dataset,
    training: &Training,
    nets: &[Net],
    max_shift: usize,
) -> Result<ShiftCurves, ExperimentError> {
    let runs: Vec<(Net, usize)> = nets.iter().map(|&net| (net, 0)).collect();
    curves(data, training, &runs, max_shift)
}

/// Experiment 3: can SimpleConvNet *learn* to ignore shifts?
///
/// Trains SimpleConvNet once per seed without augmentation and once with every training
/// digit moved by a random `(dx, dy)` of up to `augment_shift` pixels each way, before
/// every step ([`Trainer::augment_shift`](crate::full_cnn::trainer::Trainer::augment_shift)),
/// then measures both as in experiment 2. With the same seed both see the images in the same
/// order; only the shifts differ.
pub fn learned_robustness(
    data: &Dataset,
    training: &Training,
    augment_shift: usize,
    max_shift: usize,
) -> Result<ShiftCurves, ExperimentError> {
    let runs = [
        (Net::ConvMaxPooling, 0),
        (Net::ConvMaxPooling, augment_shift),
    ];
    curves(data, training, &runs, max_shift)
}
