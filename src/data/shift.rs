//! Moving digits by whole pixels: the shifted test digits of the pooling experiment and the
//! random shifts of shift augmentation (プーリング層: 微小な位置変化に対してロバスト).
//!
//! A shift by `(dx, dy)` moves every pixel `dx` columns to the right and `dy` rows down
//! (negative values move left and up). What leaves the picture is lost; what comes in is
//! background, zero. A digit moved by 28 or more pixels is gone altogether.

use ndarray::{Array4, ArrayView3, ArrayView4, ArrayViewMut3, Axis, s};
use rand::Rng;

/// The source and destination ranges along one axis of length `n` for a shift by `d`:
/// pixel `i` of the source lands at `i + d`.
fn ranges(n: usize, d: isize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let k = d.unsigned_abs().min(n);
    if d >= 0 {
        (0..n - k, k..n)
    } else {
        (k..n, 0..n - k)
    }
}

/// Writes `image` (C, H, W) shifted by `dx` columns right and `dy` rows down into `out`
/// (same shape), filling the uncovered border with zeros.
///
/// # Panics
///
/// If `image` and `out` have different shapes.
pub fn shift_image_into(image: ArrayView3<f32>, mut out: ArrayViewMut3<f32>, dx: isize, dy: isize) {
    assert_eq!(
        image.shape(),
        out.shape(),
        "shift_image_into: image {:?} and output {:?} must have the same shape",
        image.shape(),
        out.shape()
    );
    let (_, h, w) = image.dim();
    let (src_rows, dst_rows) = ranges(h, dy);
    let (src_cols, dst_cols) = ranges(w, dx);
    out.fill(0.0);
    out.slice_mut(s![.., dst_rows, dst_cols])
        .assign(&image.slice(s![.., src_rows, src_cols]));
}

/// Every image of a batch `(N, C, H, W)` moved by the same `dx` pixels right and `dy` pixels
/// down, zeros shifted in.
///
/// ```
/// use cnn_from_scratch::data::shift_images;
/// use ndarray::{Array4, array};
///
/// let x = Array4::from_shape_vec((1, 1, 3, 3), (1..=9).map(|v| v as f32).collect()).unwrap();
/// // One pixel right: the left column is new background, the right column falls off.
/// let right = shift_images(x.view(), 1, 0);
/// assert_eq!(right.slice(ndarray::s![0, 0, .., ..]), array![[0., 1., 2.], [0., 4., 5.], [0., 7., 8.]]);
/// // One pixel up.
/// let up = shift_images(x.view(), 0, -1);
/// assert_eq!(up.slice(ndarray::s![0, 0, .., ..]), array![[4., 5., 6.], [7., 8., 9.], [0., 0., 0.]]);
/// ```
pub fn shift_images(images: ArrayView4<f32>, dx: isize, dy: isize) -> Array4<f32> {
    let mut out = Array4::zeros(images.raw_dim());
    for (image, slot) in images.outer_iter().zip(out.outer_iter_mut()) {
        shift_image_into(image, slot, dx, dy);
    }
    out
}

/// Shift augmentation: each image of the batch moved by its own random `(dx, dy)`, both
/// drawn uniformly from `-max_shift..=max_shift` with `rng` (first `dx`, then `dy`, image by
/// image, so the same generator state gives the same shifts). With `max_shift = 0` the
/// batch is returned unchanged and `rng` is not used.
///
/// ```
/// use cnn_from_scratch::data::{Dataset, random_shifts};
/// use ndarray::s;
/// use rand::{SeedableRng, rngs::StdRng};
///
/// let digits = Dataset::sample();
/// let batch = digits.train_images.slice(s![..8, .., .., ..]).to_owned();
/// let a = random_shifts(batch.clone(), 2, &mut StdRng::seed_from_u64(1));
/// let b = random_shifts(batch.clone(), 2, &mut StdRng::seed_from_u64(1));
/// assert_eq!(a, b);                       // the same seed, the same shifts
/// assert_ne!(a, batch);                   // but the digits moved
/// ```
pub fn random_shifts<R: Rng + ?Sized>(
    images: Array4<f32>,
    max_shift: usize,
    rng: &mut R,
) -> Array4<f32> {
    if max_shift == 0 {
        return images;
    }
    let m = max_shift as i64;
    let mut out = Array4::zeros(images.raw_dim());
    for (image, slot) in images.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        let dx = rng.random_range(-m..=m) as isize;
        let dy = rng.random_range(-m..=m) as isize;
        shift_image_into(image, slot, dx, dy);
    }
    out
}
