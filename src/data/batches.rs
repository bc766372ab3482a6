//! Shuffled mini-batches: one pass over the training set per epoch.

use ndarray::{Array1, Array4, Axis};
use rand::Rng;
use rand::seq::SliceRandom;

/// Iterator over shuffled mini-batches, made by [`mini_batches`].
#[derive(Debug, Clone)]
pub struct MiniBatches<'a> {
    images: &'a Array4<f32>,
    labels: &'a Array1<u8>,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

/// Splits a data set into mini-batches in a random order drawn from `rng`.
///
/// Yields `(images (B, 1, 28, 28), labels (B))` pairs that together hold every image exactly
/// once; the last batch is smaller when `batch_size` does not divide the number of images.
/// The same seed gives the same batches. The order is drawn when this is called, so `rng`
/// is free again while you iterate.
///
/// ```
/// use cnn_from_scratch::data::{Dataset, mini_batches};
/// use rand::{SeedableRng, rngs::StdRng};
///
/// let digits = Dataset::sample();
/// let mut rng = StdRng::seed_from_u64(7);
/// let mut seen = 0;
/// for (images, labels) in mini_batches(&digits.train_images, &digits.train_labels, 100, &mut rng) {
///     assert_eq!(images.shape(), &[100, 1, 28, 28]);
///     assert_eq!(labels.len(), 100);
///     seen += labels.len();
/// }
/// assert_eq!(seen, 4000);
/// ```
///
/// # Panics
///
/// If `batch_size` is 0, or if `images` and `labels` hold different numbers of items.
pub fn mini_batches<'a, R: Rng + ?Sized>(
    images: &'a Array4<f32>,
    labels: &'a Array1<u8>,
    batch_size: usize,
    rng: &mut R,
) -> MiniBatches<'a> {
    assert!(
        batch_size > 0,
        "mini_batches: batch_size must be at least 1"
    );
    assert_eq!(
        images.shape()[0],
        labels.len(),
        "mini_batches: images {:?} and labels {:?} hold different numbers of items",
        images.shape(),
        labels.shape()
    );
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(rng);
    MiniBatches {
        images,
        labels,
        order,
        batch_size,
        next: 0,
    }
}

impl Iterator for MiniBatches<'_> {
    type Item = (Array4<f32>, Array1<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let picked = &self.order[self.next..end];
        self.next = end;
        Some((
            self.images.select(Axis(0), picked),
            self.labels.select(Axis(0), picked),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for MiniBatches<'_> {}
