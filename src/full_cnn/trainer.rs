//! Training a network on MNIST (CNN の実装: 学習).
//!
//! Training repeats one small step many times: take a mini-batch of images, compute the
//! loss and its gradient by backpropagation, let the optimiser nudge every parameter
//! downhill. One pass over the whole training set, in a fresh random order, is an
//! *epoch*. After each epoch the [`Trainer`] measures loss and accuracy on the training
//! and the test images; the two curves side by side show whether the network learns
//! (both rise) or memorises (train rises, test stalls).
//!
//! The book's recipe is the default: mini-batches of 100, Adam with learning rate 0.001.
//! Everything random (the initial weights, the order of the images) comes from seeds, so
//! the same seed gives the same weights and the same history, bit for bit.
//!
//! **Shift augmentation** ([`Trainer::augment_shift`], off by default): with
//! `augment_shift = N`, every image of every training mini-batch is moved by its own random
//! `(dx, dy)`, each drawn uniformly from `-N..=N`, with zeros shifted in
//! ([`random_shifts`]); the labels stay as they are, and the
//! test images are never shifted. So the network sees a slightly different picture of each
//! digit every epoch and can *learn* that a digit moved by a pixel or two is the same digit.
//! The shifts come from a second generator seeded from `seed`, so the same seed gives the
//! same shifts, and switching augmentation on does not change the order of the images.
//!
//! A loss that becomes NaN or infinite (a learning rate far too large, a broken input)
//! stops training at once with [`TrainError::NonFinite`], naming the epoch and step, rather
//! than carrying on with garbage parameters; so does a non-finite gradient
//! ([`TrainError::NonFiniteGradient`]), which NaN pixels can cause without ever showing in
//! the loss.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array4, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use thiserror::Error;

use super::kernels::simd;
use super::kernels::threads::on_worker;
use super::optimizer::{Adam, Optimizer};
use super::{Network, SoftmaxWithLoss, argmax_rows};
use crate::data::{Dataset, mini_batches, random_shifts};

/// How many images the evaluation pushes through the network at once: enough for fast
/// matrix products, few enough that a 60,000-image set needs no more than ~70 MB at a time.
const EVAL_BATCH: usize = 500;

/// Mixed into the seed of the shift augmentation's generator, to make it differ from the
/// shuffling's.
const SHIFT_SEED: u64 = 0x5348_4946_5453; // "SHIFTS"

/// The settings of a training run. [`Default`] is the book's recipe: mini-batches of 100,
/// Adam with learning rate 0.001, 20 epochs; seed 0; evaluation on every image.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::full_cnn::trainer::Trainer;
/// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
///
/// let data = Dataset::sample();
/// let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 1).unwrap();
/// let mut trainer = Trainer { epochs: 1, eval_subset: Some(200), show_progress: false, ..Trainer::default() };
/// let history = trainer.fit(&mut net, &data)?;
/// assert_eq!(history.step_losses.len(), 40);   // 4,000 images / 100 per step
/// let last = history.epochs.last().unwrap();
/// assert!(last.test_acc > 0.5, "one epoch on the sample: {last:?}");
/// # Ok::<(), cnn_from_scratch::full_cnn::trainer::TrainError>(())
/// ```
pub struct Trainer {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step (the book: 100).
    pub batch_size: usize,
    /// Seed of the shuffling: the same seed gives the same mini-batches.
    pub seed: u64,
    /// What turns gradients into parameter updates (the book: Adam, lr 0.001).
    pub optimizer: Box<dyn Optimizer + Send>,
    /// Measure loss and accuracy on only the first `n` training and test images after each
    /// epoch (faster on full MNIST), or on all of them with `None`. `Some(0)` skips the
    /// measurement: the epochs' losses and accuracies are then NaN, "not measured" (as
    /// the test ones are for a data set without test images).
    pub eval_subset: Option<usize>,
    /// Draw a progress bar with the running loss on the terminal.
    pub show_progress: bool,
    /// Shift augmentation: move each training image by a random `(dx, dy)` in
    /// `-N..=N` pixels before each step (0, the default: no shifts). See the module docs.
    pub augment_shift: usize,
}

impl Default for Trainer {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 100,
            seed: 0,
            optimizer: Box::new(Adam::default()),
            eval_subset: None,
            show_progress: true,
            augment_shift: 0,
        }
    }
}

/// Loss and accuracy after one epoch, and how long its training steps took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean cross-entropy on the (subset of the) training images.
    pub train_loss: f32,
    /// Fraction of the (subset of the) training images classified correctly.
    pub train_acc: f32,
    /// Mean cross-entropy on the (subset of the) test images.
    pub test_loss: f32,
    /// Fraction of the (subset of the) test images classified correctly.
    pub test_acc: f32,
    /// Wall-clock seconds of the epoch's training steps (the evaluation not included).
    pub seconds: f64,
}

/// Everything measured during [`Trainer::fit`], ready to plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The loss of every mini-batch, in order (noisy: it is one batch each).
    pub step_losses: Vec<f32>,
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
}

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TrainError {
    /// The loss became NaN or infinite; the parameters were left as they were before this
    /// step. Usually the learning rate is too large, or the inputs hold NaN.
    #[error(
        "the loss became {loss} at epoch {epoch}, step {step} of {steps_per_epoch}; \
         try a smaller learning rate, or check the inputs for NaN"
    )]
    NonFinite {
        /// 1 for the first epoch.
        epoch: usize,
        /// 1 for the first step of the epoch.
        step: usize,
        /// Steps in each epoch.
        steps_per_epoch: usize,
        /// The offending loss.
        loss: f32,
    },
    /// A gradient held NaN or infinity although the loss was finite, e.g. NaN pixels
    /// that ReLU turned into zeros on the way forward but that still reach the filters'
    /// gradient. The parameters were left as they were before this step.
    #[error(
        "the gradient of {tensor} holds NaN or infinity at epoch {epoch}, step {step} of \
         {steps_per_epoch}; check the inputs for NaN"
    )]
    NonFiniteGradient {
        /// 1 for the first epoch.
        epoch: usize,
        /// 1 for the first step of the epoch.
        step: usize,
        /// Steps in each epoch.
        steps_per_epoch: usize,
        /// The book's name of the parameter, e.g. `"W1"`.
        tensor: String,
    },
    /// `batch_size` was 0 or there are no training images.
    #[error("nothing to train on: batch_size = {batch_size}, training images = {images}")]
    Empty {
        /// The batch size asked for.
        batch_size: usize,
        /// The number of training images.
        images: usize,
    },
    /// `augment_shift` could move a whole image out of its frame (a shift of the
    /// image's height or width leaves only the zeros shifted in).
    #[error(
        "augment_shift = {shift} can move a {height}x{width} image entirely out of its \
         frame; use at most {max}",
        max = height.min(width).saturating_sub(1)
    )]
    ShiftTooLarge {
        /// The shift asked for.
        shift: usize,
        /// The images' height.
        height: usize,
        /// The images' width.
        width: usize,
    },
}

impl Trainer {
    /// Trains `net` on `data.train_images` for `self.epochs` epochs and returns the loss of
    /// every step and the per-epoch statistics.
    ///
    /// Each epoch shuffles the training set with a generator seeded once from `self.seed`,
    /// walks through it in mini-batches of `self.batch_size` (the last one smaller if the
    /// size does not divide the set), and after the last step measures loss and accuracy
    /// on the training and test images (or their first `eval_subset`).
    ///
    /// # Errors
    ///
    /// Before the first step, with the parameters untouched: [`TrainError::Empty`] (no
    /// batch or no training image) and [`TrainError::ShiftTooLarge`] (`augment_shift` of
    /// the images' height or width). During training, with the parameters as they were
    /// before the step: [`TrainError::NonFinite`] and [`TrainError::NonFiniteGradient`].
    ///
    /// # Panics
    ///
    /// If the images' shape is not the one `net` was built for.
    pub fn fit(&mut self, net: &mut Network, data: &Dataset) -> Result<History, TrainError> {
        self.fit_reporting(net, data, |_| {})
    }

    /// [`Trainer::fit`], calling `on_epoch` with each epoch's statistics as soon as the
    /// epoch is measured, so a caller can print them live (the progress bar, if shown, is
    /// cleared first).
    ///
    /// ```
    /// use cnn_from_scratch::data::Dataset;
    /// use cnn_from_scratch::full_cnn::trainer::Trainer;
    /// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
    /// let data = Dataset::sample();
    /// let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 1).unwrap();
    /// let mut trainer = Trainer { epochs: 2, eval_subset: Some(100), show_progress: false, ..Trainer::default() };
    /// let mut seen = Vec::new();
    /// let history = trainer.fit_reporting(&mut net, &data, |e| seen.push(e.epoch))?;
    /// assert_eq!(seen, [1, 2]);
    /// assert_eq!(history.epochs.len(), 2);
    /// # Ok::<(), cnn_from_scratch::full_cnn::trainer::TrainError>(())
    /// ```
    pub fn fit_reporting(
        &mut self,
        net: &mut Network,
        data: &Dataset,
        mut on_epoch: impl FnMut(&EpochStats),
    ) -> Result<History, TrainError> {
        let images = data.train_images.dim().0;
        if self.batch_size == 0 || images == 0 {
            return Err(TrainError::Empty {
                batch_size: self.batch_size,
                images,
            });
        }
        let test_images = data.test_labels.len();
        let (_, _, height, width) = data.train_images.dim();
        if self.augment_shift > 0 && self.augment_shift >= height.min(width) {
            return Err(TrainError::ShiftTooLarge {
                shift: self.augment_shift,
                height,
                width,
            });
        }
        let steps_per_epoch = images.div_ceil(self.batch_size);
        let mut rng = StdRng::seed_from_u64(self.seed);
        // Its own generator, so augmentation leaves the order of the images as it was.
        let mut shift_rng = StdRng::seed_from_u64(self.seed ^ SHIFT_SEED);
        let mut history = History::default();

        for epoch in 1..=self.epochs {
            let bar = self.progress_bar(epoch, steps_per_epoch);
            let started = Instant::now();
            let batches = mini_batches(
                &data.train_images,
                &data.train_labels,
                self.batch_size,
                &mut rng,
            );
            let optimizer = &mut self.optimizer;
            let augment_shift = self.augment_shift;
            // The whole epoch on rayon's pool, its other workers kept awake from one step
            // to the next (see `threads::on_worker`).
            on_worker(|| {
                let mut loss_sum = 0.0;
                for (step, (x, t)) in batches.enumerate().map(|(i, b)| (i + 1, b)) {
                    let x = random_shifts(x, augment_shift, &mut shift_rng);
                    let (loss, grads) = net.gradient(x.view(), t.view());
                    if !loss.is_finite() {
                        bar.abandon();
                        return Err(TrainError::NonFinite {
                            epoch,
                            step,
                            steps_per_epoch,
                            loss,
                        });
                    }
                    // One pass over the gradients, cheap next to the step that made them.
                    let bad = grads
                        .named()
                        .into_iter()
                        .find(|(_, g)| !all_finite(g.view()));
                    if let Some((tensor, _)) = bad {
                        let tensor = tensor.to_string();
                        bar.abandon();
                        return Err(TrainError::NonFiniteGradient {
                            epoch,
                            step,
                            steps_per_epoch,
                            tensor,
                        });
                    }
                    optimizer.update(net.params_mut(), &grads);
                    history.step_losses.push(loss);
                    loss_sum += loss;
                    bar.set_message(format!("loss {:.4}", loss_sum / step as f32));
                    bar.inc(1);
                }
                Ok(())
            })?;
            let seconds = started.elapsed().as_secs_f64();
            bar.finish_and_clear();

            let n_train = self.eval_subset.map_or(images, |n| n.min(images));
            let n_test = self.eval_subset.map_or(test_images, |n| n.min(test_images));
            let (train_loss, train_acc) =
                evaluate(net, &data.train_images, &data.train_labels, n_train);
            let (test_loss, test_acc) = evaluate(net, &data.test_images, &data.test_labels, n_test);
            let stats = EpochStats {
                epoch,
                train_loss,
                train_acc,
                test_loss,
                test_acc,
                seconds,
            };
            on_epoch(&stats);
            history.epochs.push(stats);
        }
        Ok(history)
    }

    fn progress_bar(&self, epoch: usize, steps: usize) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(steps as u64);
        let style = ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} steps, {msg} ({elapsed}, eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        bar
    }
}

/// Mean cross-entropy loss and accuracy of `net` on the first `n` images (all of them if
/// there are fewer), computed 500 images at a time from one forward pass each.
/// With no images at all both are NaN.
///
/// ```
/// use cnn_from_scratch::data::Dataset;
/// use cnn_from_scratch::full_cnn::trainer::evaluate;
/// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
///
/// let data = Dataset::sample();
/// let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 0).unwrap();
/// let (loss, acc) = evaluate(&mut net, &data.test_images, &data.test_labels, 1000);
/// // Untrained, tiny weights: every class gets about 1/10, so the loss is about ln 10.
/// assert!((loss - 10f32.ln()).abs() < 0.05);
/// assert!(acc < 0.3);
/// ```
pub fn evaluate(
    net: &mut Network,
    images: &Array4<f32>,
    labels: &Array1<u8>,
    n: usize,
) -> (f32, f32) {
    let n = n.min(labels.len());
    if n == 0 {
        return (f32::NAN, f32::NAN);
    }
    let mut softmax = SoftmaxWithLoss::new();
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for start in (0..n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        let t = labels.slice(s![start..end]);
        let scores = net.predict(images.slice(s![start..end, .., .., ..]));
        // The batch loss is a mean; weight it by the batch's size for the overall mean.
        loss_sum += f64::from(softmax.forward(scores.view(), t)) * (end - start) as f64;
        correct += argmax_rows(&scores)
            .iter()
            .zip(t.iter())
            .filter(|&(&p, &label)| p == label as usize)
            .count();
    }
    ((loss_sum / n as f64) as f32, correct as f32 / n as f32)
}

/// Whether every number of `t` is finite: [`simd::all_finite`] where it is contiguous.
fn all_finite(t: ndarray::ArrayViewD<f32>) -> bool {
    match t.as_slice() {
        Some(numbers) => simd::all_finite(numbers),
        None => t.iter().all(|v| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// A NaN, an infinity or a minus infinity anywhere (first, inside a block, last, past
    /// the first block) is found, in a contiguous tensor and in a strided view; finite
    /// numbers, however large, pass.
    #[test]
    fn all_finite_finds_every_non_finite_number() {
        let (rows, cols) = (7, 600);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 1, 1023, 1024, 2500, rows * cols - 1] {
                let mut t = Array2::from_shape_fn((rows, cols), |(i, j)| (i * cols + j) as f32);
                t[[at / cols, at % cols]] = bad;
                assert!(!all_finite(t.view().into_dyn()), "{bad} at {at}");
                // Every other column: not contiguous; sees the bad number if its column is even.
                let strided = t.slice(s![.., ..;2]);
                assert_eq!(
                    all_finite(strided.into_dyn()),
                    (at % cols) % 2 == 1,
                    "{bad} at {at}, strided"
                );
            }
        }
        let finite = Array2::from_elem((3, 3000), f32::MAX);
        assert!(all_finite(finite.view().into_dyn()));
    }
}
