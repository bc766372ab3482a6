//! # The chapter's claims, measured with trained networks
//!
//! *Tutorial: [page 9](crate::tutorial::_09_experiments) · notebook:
//! `notebooks/09_experiments.ipynb` · all three at once: `cargo run --release --example
//! experiments`*
//!
//! The note makes three claims, and the earlier pages show each with a single, untrained
//! layer. Here each one is put to trained networks on real digits, as test accuracy:
//!
//! 1. **Shuffled pixels (§1, これまでのシンプルな NN の限界).** A fully connected net cannot
//!    use which pixels are neighbours, so it should do just as well when every image's pixels
//!    are shuffled with one fixed permutation; a CNN builds the neighbourhoods in and should
//!    lose a lot. [`shuffled_pixels`] trains both on the digits as they are and shuffled.
//! 2. **Shifted test digits (§8, プーリング層).** Max pooling makes features robust to small
//!    shifts. [`shifted_test_digits`] trains a fully connected net, a CNN without pooling and
//!    SimpleConvNet with max and with average pooling, then moves every test digit 1 to 4
//!    pixels right, left, down and up ([`shift_curve`]).
//! 3. **Robustness learned from data (§8).** "If training goes very well" a network might
//!    learn shift-robust features by itself (学習がとてもうまくいけば...). [`learned_robustness`]
//!    trains SimpleConvNet with and without random shifts of its training digits
//!    ([`Trainer::augment_shift`]) and repeats experiment 2 for both.
//!
//! Each function returns plain numbers, one per seed (and per shift and direction), so a
//! learner can see the spread as well as the mean; [`report`] turns them into tables and
//! tab-separated rows. Every network is trained with the book's recipe (Adam, learning rate
//! 0.001, mini-batches of 100) as set in [`Training`].
//!
//! A tiny run of experiment 1 on the embedded sample:
//!
//! ```
//! use cnn_from_scratch::data::Dataset;
//! use cnn_from_scratch::experiments::{Training, shuffled_pixels, subset};
//!
//! let data = subset(&Dataset::sample(), 300, 200);
//! let training = Training { epochs: 1, seeds: vec![0], ..Training::default() };
//! let result = shuffled_pixels(&data, &training, 7)?;
//! assert_eq!(result.fc_shuffled.len(), 1);               // one number per seed
//! assert!(result.cnn_as_is[0] > 0.3);                   // better than guessing after 3 steps
//! # Ok::<(), cnn_from_scratch::experiments::ExperimentError>(())
//! ```
//!
//! [`Trainer::augment_shift`]: crate::full_cnn::trainer::Trainer::augment_shift

mod nets;
pub mod report;
mod shifted;
mod shuffled;

use std::io::Write;
use std::time::Instant;

use ndarray::s;
use thiserror::Error;

use crate::data::Dataset;
use crate::full_cnn::trainer::{TrainError, Trainer};
use crate::full_cnn::{Adam, Network, NetworkError};

pub use nets::Net;
pub use shifted::{
    DIRECTIONS, ShiftCurve, ShiftCurves, learned_robustness, shift_curve, shifted_test_digits,
};
pub use shuffled::{ShuffledPixels, permute_dataset, shuffled_pixels};

/// Test images per forward pass when measuring: small batches keep the feature maps in
/// the cache (measured faster than 500 for every network here).
const EVAL_BATCH: usize = 100;

/// Why an experiment could not run.
#[derive(Debug, Error)]
pub enum ExperimentError {
    /// A network could not be built.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// Training stopped (a NaN loss, no training images).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// No seeds, so nothing to measure.
    #[error("an experiment needs at least one seed")]
    NoSeeds,
    /// No test images to measure on.
    #[error("the data set {0:?} has no test images")]
    NoTestImages(String),
}

/// How every network of an experiment is trained: the book's recipe (Adam with learning
/// rate 0.001, mini-batches of `batch_size`) for `epochs` passes, once per seed. A seed
/// fixes the initial weights, the order of the images and any random shifts.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    /// Passes over the training images.
    pub epochs: usize,
    /// One trained network per seed.
    pub seeds: Vec<u64>,
    /// Images per step (the book: 100).
    pub batch_size: usize,
    /// Print one line per trained network (what, seed, accuracy, seconds).
    pub show_progress: bool,
}

impl Default for Training {
    /// 5 epochs, seeds 0, 1, 2, batches of 100, quiet.
    fn default() -> Self {
        Training {
            epochs: 5,
            seeds: vec![0, 1, 2],
            batch_size: 100,
            show_progress: false,
        }
    }
}

impl Training {
    fn check(&self, data: &Dataset) -> Result<(), ExperimentError> {
        if self.seeds.is_empty() {
            return Err(ExperimentError::NoSeeds);
        }
        if data.test_labels.is_empty() {
            return Err(ExperimentError::NoTestImages(data.name.clone()));
        }
        Ok(())
    }

    /// A fresh `net` for `seed`, trained on `data` with shift augmentation `augment_shift`.
    fn train(
        &self,
        net: Net,
        data: &Dataset,
        seed: u64,
        augment_shift: usize,
    ) -> Result<Network, ExperimentError> {
        let mut network = net.build(seed)?;
        let mut trainer = Trainer {
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed,
            optimizer: Box::new(Adam::default()),
            // The experiments measure on the whole test set themselves, afterwards.
            eval_subset: Some(200),
            show_progress: false,
            augment_shift,
        };
        trainer.fit(&mut network, data)?;
        Ok(network)
    }

    /// Prints one progress line if asked to.
    fn log(&self, started: Instant, what: std::fmt::Arguments) {
        if self.show_progress {
            println!("  {what} ({:.0} s)", started.elapsed().as_secs_f64());
            // Piped output is block-buffered: show each line as it is made.
            std::io::stdout().flush().ok();
        }
    }
}

/// The first `train` training and `test` test images of `data` (all of them if it has
/// fewer), for runs that must be quick. The sample is stratified, so its first images hold
/// every class; so do the first images of MNIST.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::experiments::subset;
/// let small = subset(&Dataset::sample(), 500, 100);
/// assert_eq!((small.train_labels.len(), small.test_labels.len()), (500, 100));
/// ```
pub fn subset(data: &Dataset, train: usize, test: usize) -> Dataset {
    let train = train.min(data.train_labels.len());
    let test = test.min(data.test_labels.len());
    Dataset {
        name: data.name.clone(),
        train_images: data.train_images.slice(s![..train, .., .., ..]).to_owned(),
        train_labels: data.train_labels.slice(s![..train]).to_owned(),
        test_images: data.test_images.slice(s![..test, .., .., ..]).to_owned(),
        test_labels: data.test_labels.slice(s![..test]).to_owned(),
        class_names: data.class_names,
    }
}

/// Training images from the crate's 4,000-digit sample, test images from `full` (the
/// 10,000 test digits of full MNIST): how far do 4,000 digits get on the real test set?
/// The sample's digits come from MNIST's training set, so none of them is a test digit.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::experiments::{subset, train_on_sample};
/// let fake_full = subset(&Dataset::sample(), 10, 321);
/// let data = train_on_sample(&fake_full);
/// assert_eq!((data.train_labels.len(), data.test_labels.len()), (4000, 321));
/// ```
pub fn train_on_sample(full: &Dataset) -> Dataset {
    let sample = Dataset::sample();
    Dataset {
        name: format!(
            "{} training digits of the sample, tested on {}",
            sample.train_labels.len(),
            full.name
        ),
        train_images: sample.train_images,
        train_labels: sample.train_labels,
        test_images: full.test_images.clone(),
        test_labels: full.test_labels.clone(),
        class_names: full.class_names,
    }
}
