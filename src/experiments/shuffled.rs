//! Experiment 1 (§1): train on digits as they are and on digits whose pixels are shuffled.

use std::time::Instant;

use ndarray::{Array4, Axis};

use super::{EVAL_BATCH, ExperimentError, Net, Training};
use crate::data::Dataset;
use crate::fc_limits::{permute_pixels, pixel_permutation};

/// Test accuracy of the fully connected net and of SimpleConvNet, each trained and tested
/// on the digits as they are and on the digits with their pixels shuffled: one number per
/// seed, in the order of `seeds`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShuffledPixels {
    /// The seeds of the runs.
    pub seeds: Vec<u64>,
    /// The seed of the one pixel permutation used for every image, train and test alike.
    pub permutation_seed: u64,
    /// Fully connected net, pixels as they are.
    pub fc_as_is: Vec<f32>,
    /// Fully connected net, pixels shuffled.
    pub fc_shuffled: Vec<f32>,
    /// SimpleConvNet, pixels as they are.
    pub cnn_as_is: Vec<f32>,
    /// SimpleConvNet, pixels shuffled.
    pub cnn_shuffled: Vec<f32>,
}

fn permute_all(images: &Array4<f32>, permutation: &[usize]) -> Array4<f32> {
    let mut out = images.clone();
    for mut image in out.axis_iter_mut(Axis(0)) {
        for mut channel in image.axis_iter_mut(Axis(0)) {
            let shuffled = permute_pixels(&channel, permutation);
            channel.assign(&shuffled);
        }
    }
    out
}

/// `data` with the pixels of every image, training and test alike, rearranged by one
/// `permutation` of `0..H*W` ([`permute_pixels`]: pixel `k` of a shuffled image is pixel
/// `permutation[k]` of the original). Labels stay as they are. Nothing is lost (the
/// permutation can be undone), but which pixels were neighbours is.
///
/// # Panics
///
/// If `permutation` is not a permutation of `0..H*W`.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::experiments::{permute_dataset, subset};
/// use cnn_from_scratch::fc_limits::pixel_permutation;
///
/// let data = subset(&Dataset::sample(), 5, 5);
/// let p = pixel_permutation(784, 1);
/// let shuffled = permute_dataset(&data, &p);
/// let k = 300;
/// assert_eq!(shuffled.train_images[[2, 0, k / 28, k % 28]], data.train_images[[2, 0, p[k] / 28, p[k] % 28]]);
/// assert_eq!(shuffled.test_labels, data.test_labels);
/// ```
pub fn permute_dataset(data: &Dataset, permutation: &[usize]) -> Dataset {
    Dataset {
        name: format!("{}, pixels shuffled", data.name),
        train_images: permute_all(&data.train_images, permutation),
        train_labels: data.train_labels.clone(),
        test_images: permute_all(&data.test_images, permutation),
        test_labels: data.test_labels.clone(),
        class_names: data.class_names,
    }
}

/// Experiment 1: can a network tell a digit from its shuffled pixels?
///
/// For every seed, trains four networks: the fully connected net ([`Net::FullyConnected`])
/// and SimpleConvNet ([`Net::ConvMaxPooling`]), each on `data` as it is and on `data` with
/// the pixels of all images shuffled by `pixel_permutation(H*W, permutation_seed)`, and
/// measures each on all test images (shuffled alike). The fully connected net should score
/// the same on both, up to the spread between seeds: it sums over all pixels with weights of
/// its own, and a permutation only renames the weights. SimpleConvNet should lose: its 5x5
/// filters now look at 25 pixels from all over the image.
pub fn shuffled_pixels(
    data: &Dataset,
    training: &Training,
    permutation_seed: u64,
) -> Result<ShuffledPixels, ExperimentError> {
    training.check(data)?;
    let (_, _, h, w) = data.train_images.dim();
    let shuffled = permute_dataset(data, &pixel_permutation(h * w, permutation_seed));
    let mut result = ShuffledPixels {
        seeds: training.seeds.clone(),
        permutation_seed,
        fc_as_is: Vec::new(),
        fc_shuffled: Vec::new(),
        cnn_as_is: Vec::new(),
        cnn_shuffled: Vec::new(),
    };
    for &seed in &training.seeds {
        for (net, set, pixels) in [
            (Net::FullyConnected, data, "as they are"),
            (Net::FullyConnected, &shuffled, "shuffled"),
            (Net::ConvMaxPooling, data, "as they are"),
            (Net::ConvMaxPooling, &shuffled, "shuffled"),
        ] {
            let started = Instant::now();
            let mut network = training.train(net, set, seed, 0)?;
            let acc = network.accuracy(set.test_images.view(), set.test_labels.view(), EVAL_BATCH);
            training.log(
                started,
                format_args!(
                    "{}, pixels {pixels}, seed {seed}: test accuracy {:.2}%",
                    net.name(),
                    100.0 * acc
                ),
            );
            let slot = match (net, pixels) {
                (Net::FullyConnected, "as they are") => &mut result.fc_as_is,
                (Net::FullyConnected, _) => &mut result.fc_shuffled,
                (_, "as they are") => &mut result.cnn_as_is,
                _ => &mut result.cnn_shuffled,
            };
            slot.push(acc);
        }
    }
    Ok(result)
}
