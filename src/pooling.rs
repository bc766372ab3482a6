//! # Max and average pooling (プーリング層も使う)
//!
//! *Tutorial: [page 6](crate::tutorial::_06_pooling) · notebook: `notebooks/06_pooling.ipynb`*
//!
//! To recognise a digit we want features that do not care whether a stroke sits one pixel
//! to the left or right. Pooling builds that in: it slides a window over every channel and
//! keeps one number per window, the **maximum** (max pooling, the usual choice, book Fig
//! 7-14) or the **average**. Small shifts often leave the maximum inside the same window, so
//! the pooled map changes less than the map it came from; [`shift_experiment`] measures this.
//!
//! ```text
//!  one 4x4 channel                       2x2 max pooling, stride 2
//!  1 2 | 1 0
//!  0 1 | 2 3        max of each block  ->     2 3
//!  ----+----                                  4 2
//!  3 0 | 1 2
//!  2 4 | 0 1
//! ```
//!
//! Window, stride and padding follow the same size rule as a convolution (equation 7.1,
//! [`conv_output_size`](crate::padding_stride::conv_output_size)).
//!
//! ## Padding
//!
//! - **Max pooling**: padded cells never win. The padding behaves like `-inf`, as in
//!   PyTorch's `MaxPool2d`, so a window on the border takes the maximum of the real pixels
//!   it covers. The padding must be smaller than the window, otherwise some windows would
//!   contain only padding and have no maximum: that is a
//!   [`SettingError::PadNotBelowWindow`].
//! - **Average pooling**: padded cells are zeros and *count* in the average: every window
//!   is divided by `pool_h * pool_w` (PyTorch's default, `count_include_pad=True`), so
//!   border outputs are pulled towards zero.
//!
//! ## Convolution and pooling compared (Convolution レイヤと Pooling レイヤの比較)
//!
//! Both look at neighbouring pixels. A convolution *learns* its filters and sums over all
//! input channels, making one map per filter: `C` channels in, `FN` out (Fig 7-8). Pooling
//! has **no parameters** (nothing to learn: max and mean are fixed) and works on each
//! channel alone, so `C` channels in, `C` out (Fig 7-15):
//!
//! ```
//! use cnn_from_scratch::{batching::conv_forward_im2col, pooling::max_pool};
//! use ndarray::{Array1, Array4};
//! let batch = Array4::<f32>::ones((2, 3, 8, 8)); // N=2 images, C=3 channels
//!
//! // Convolution: 5 filters of shape (3, 3, 3) + 5 biases = 140 learned numbers; C=3 -> FN=5.
//! let filters = Array4::<f32>::zeros((5, 3, 3, 3));
//! let bias = Array1::<f32>::zeros(5);
//! let conv = conv_forward_im2col(batch.view(), filters.view(), bias.view(), 1, 1).unwrap();
//! assert_eq!(conv.dim(), (2, 5, 8, 8));
//! assert_eq!(filters.len() + bias.len(), 140);
//!
//! // Pooling: no filters, no bias -- zero parameters; the channel count stays 3.
//! let pooled = max_pool(batch.view(), 2, 2, 2, 0).unwrap();
//! assert_eq!(pooled.dim(), (2, 3, 4, 4));
//! ```

use ndarray::{Array1, Array4, ArrayView3, ArrayView4, s};
use rayon::prelude::*;

use crate::batching::{conv_forward_im2col, output_hw, valid_range};
use crate::error::SettingError;
use crate::full_cnn::kernels::simd::Simd;
#[cfg(target_arch = "x86_64")]
use crate::full_cnn::kernels::simd::as_output;

pub(crate) mod avx2;
pub(crate) mod avx512;

/// The checks of the vectorised kernels' `relu_pool_rows_2x2` (modules `avx512` and
/// `avx2`), which read whole vectors at computed places: `outputs` in rows of `ow` (and
/// as many `winners`, if stored) from a plane whose rows of `w` pixels lie `row_stride`
/// apart, all inside `plane_len` floats. Returns the number of output rows.
#[cfg(target_arch = "x86_64")]
fn check_pool_rows_2x2(
    plane_len: usize,
    (w, row_stride): (usize, usize),
    ow: usize,
    outputs: usize,
    winners: Option<usize>,
) -> usize {
    assert!(
        ow > 0
            && winners.is_none_or(|winners| winners == outputs)
            && outputs.is_multiple_of(ow)
            && 2 * ow <= w
            && w <= row_stride,
        "relu_pool_rows_2x2: {outputs} outputs in rows of {ow} from rows of {w} ({row_stride} apart)"
    );
    let oh = outputs / ow;
    assert!(
        oh == 0 || plane_len >= (2 * oh - 1) * row_stride + w,
        "relu_pool_rows_2x2: plane of {plane_len} floats"
    );
    oh
}

/// `max(relu(plane + bias))` over 2x2 windows with stride 2 by the vectorised kernel of
/// `simd` (16 windows at a time with AVX-512, module `avx512`; 8 with AVX2, module
/// `avx2`; the contract of `avx512::relu_pool_rows_2x2`), for a plane whose rows of `w`
/// pixels lie `row_stride` floats apart. Returns `false`, having done nothing, for
/// `Simd::Plain`, which has no such kernel. Panics if the processor lacks `simd`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn relu_pool_rows_2x2(
    simd: Simd,
    plane: &[f32],
    (w, row_stride): (usize, usize),
    bias: f32,
    ow: usize,
    out: &mut [std::mem::MaybeUninit<f32>],
    idx: Option<&mut [u32]>,
) -> bool {
    assert!(simd <= Simd::best(), "relu_pool_rows_2x2: no {simd:?} here");
    // SAFETY (both): the processor has `simd` (asserted); the kernels check the buffers.
    match simd {
        Simd::Avx512 => unsafe {
            avx512::relu_pool_rows_2x2(plane, (w, row_stride), bias, ow, out, idx)
        },
        Simd::Avx2 => unsafe {
            avx2::relu_pool_rows_2x2(plane, (w, row_stride), bias, ow, out, idx)
        },
        Simd::Plain => return false,
    }
    true
}

/// Planes for the vectorised kernels' tests (modules `avx512` and `avx2`), each against
/// the plain loop.
#[cfg(test)]
pub(crate) mod test_planes {
    /// Planes with ties, zeros, negative zeros, negatives and NaN, odd sizes (a row and a
    /// column left out), rows of 1 to 17 windows (whole vectors, and every kind of tail).
    pub(crate) fn planes() -> impl Iterator<Item = ((usize, usize), Vec<f32>)> {
        let sizes = [
            (2, 2),
            (3, 5),
            (24, 24),
            (28, 28),
            (14, 15),
            (8, 8),
            (5, 33),
            (4, 31),
            (6, 18),
            (7, 35),
            (4, 14),
            (2, 22),
        ];
        sizes.into_iter().map(|(h, w)| {
            let plane = (0..h * w)
                .map(|i| match i {
                    _ if i % 13 == 5 => f32::NAN,
                    _ if i % 17 == 3 => -0.0,
                    _ => ((i * 37) % 11) as f32 - 5.0,
                })
                .collect();
            ((h, w), plane)
        })
    }

    /// The bits of each float (NaN compares equal to itself this way).
    pub(crate) fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|x| x.to_bits()).collect()
    }
}

/// For each output position along one axis, the input range `lo..hi` its window covers
/// after dropping the padding.
fn window_ranges(
    out: usize,
    stride: usize,
    pad: usize,
    window: usize,
    input: usize,
) -> Vec<(usize, usize)> {
    (0..out)
        .map(|o| {
            let (lo, hi, start) = valid_range(o, stride, pad, window, input);
            (start, start + (hi - lo))
        })
        .collect()
}

/// Apply `pool_plane` to every `(n, c)` plane of the input in parallel; it receives one
/// input plane and fills one output plane.
fn pool_planes<T: Copy + Default + Send>(
    input: ArrayView4<f32>,
    pool_h: usize,
    pool_w: usize,
    stride: usize,
    pad: usize,
    pool_plane: impl Fn(&[f32], &mut [T], &[(usize, usize)], &[(usize, usize)]) + Sync,
) -> Result<Array4<T>, SettingError> {
    let (n, c, h, w) = input.dim();
    let (oh, ow) = output_hw(h, w, pool_h, pool_w, stride, pad)?;
    let mut out = Array4::<T>::default((n, c, oh, ow));
    if n * c * h * w == 0 {
        return Ok(out);
    }
    let rows = window_ranges(oh, stride, pad, pool_h, h);
    let cols = window_ranges(ow, stride, pad, pool_w, w);
    let input = input.as_standard_layout();
    let (Some(src), Some(dst)) = (input.as_slice(), out.as_slice_mut()) else {
        unreachable!("standard-layout arrays are contiguous")
    };
    dst.par_chunks_mut(oh * ow)
        .zip(src.par_chunks(h * w))
        .for_each(|(out_plane, in_plane)| pool_plane(in_plane, out_plane, &rows, &cols));
    Ok(out)
}

pub(crate) fn check_pad_below_window(
    pad: usize,
    pool_h: usize,
    pool_w: usize,
) -> Result<(), SettingError> {
    if pad < pool_h.max(1) && pad < pool_w.max(1) {
        Ok(())
    } else {
        Err(SettingError::PadNotBelowWindow {
            pad,
            pool_h,
            pool_w,
        })
    }
}

/// "Gradient blocked" in an arg-max written by [`max_pool_planes`] with `relu`: the
/// window's maximum after ReLU was 0, so no input receives its gradient.
pub(crate) const BLOCKED: u32 = u32::MAX;

/// `v` beats the current best `b` of a window: larger, or the first NaN (NaNs are not
/// hidden). With `>` the first of tied maxima keeps winning.
#[inline(always)]
fn beats(v: f32, b: f32) -> bool {
    v > b || (v.is_nan() && !b.is_nan())
}

/// The hot loop of max pooling. `src` holds `planes` planes of `h x w`; every output
/// plane gets each window's maximum in `values` and its flat index `y*w + x` in `arg`.
///
/// With `relu`, the windows are pooled as if ReLU had run first, `max(relu(x))`, which is
/// what a "Conv -> ReLU -> Pool" block computes, without the full-size ReLU pass: the value
/// is the maximum of the positive inputs (0 if there are none) and the index is
/// [`BLOCKED`] when that maximum is 0 (ReLU would have blocked the gradient).
///
/// 2x2 windows with stride 2 and no padding (the book's and almost everyone's pooling)
/// take a branch-light path; both paths pick the same winner. With `relu` as well, 16
/// windows go at a time on a processor with AVX-512 (module `avx512`), 8 with AVX2
/// (module `avx2`), both tested against the plain loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_pool_planes(
    src: &[f32],
    (h, w): (usize, usize),
    (pool_h, pool_w, stride, pad): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    values: &mut [f32],
    arg: &mut [u32],
    relu: bool,
) {
    let plane_out = oh * ow;
    if plane_out == 0 || h * w == 0 {
        return;
    }
    let rows = window_ranges(oh, stride, pad, pool_h, h);
    let cols = window_ranges(ow, stride, pad, pool_w, w);
    let two_by_two = (pool_h, pool_w, stride, pad) == (2, 2, 2, 0);
    // ReLU and 2x2 pooling, the networks' case, has vectorised kernels (modules `avx512`
    // and `avx2`).
    let simd = if two_by_two && relu {
        Simd::best()
    } else {
        Simd::Plain
    };
    // A few planes per task: enough work to amortise rayon's bookkeeping.
    let per_task = (4096 / plane_out).max(1);
    values
        .par_chunks_mut(plane_out * per_task)
        .zip(arg.par_chunks_mut(plane_out * per_task))
        .zip(src.par_chunks(h * w * per_task))
        .for_each(|((values, arg), src)| {
            for ((out, idx), plane) in values
                .chunks_exact_mut(plane_out)
                .zip(arg.chunks_exact_mut(plane_out))
                .zip(src.chunks_exact(h * w))
            {
                // (Plus 0 changes no window's winner or value: only values above 0 win.)
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the kernels write only floats into `out`.
                if relu_pool_rows_2x2(
                    simd,
                    plane,
                    (w, w),
                    0.0,
                    ow,
                    unsafe { as_output(out) },
                    Some(idx),
                ) {
                    continue;
                }
                if two_by_two {
                    pool_plane_2x2(plane, w, ow, out, idx, relu);
                } else {
                    pool_plane(plane, w, &rows, &cols, out, idx, relu);
                }
            }
        });
}

/// One plane, any window: the winner of each window in row-major order.
fn pool_plane(
    plane: &[f32],
    w: usize,
    rows: &[(usize, usize)],
    cols: &[(usize, usize)],
    out: &mut [f32],
    idx: &mut [u32],
    relu: bool,
) {
    let ow = cols.len();
    for (&(y0, y1), (out_row, idx_row)) in rows
        .iter()
        .zip(out.chunks_exact_mut(ow).zip(idx.chunks_exact_mut(ow)))
    {
        for (&(x0, x1), (o, i)) in cols.iter().zip(out_row.iter_mut().zip(idx_row)) {
            let mut best = (f32::NEG_INFINITY, (y0 * w + x0) as u32);
            for y in y0..y1 {
                for (x, &v) in (x0..x1).zip(&plane[y * w + x0..y * w + x1]) {
                    let v = match relu {
                        true if v > 0.0 => v,
                        true => 0.0, // ReLU: negatives and NaN become 0
                        false => v,
                    };
                    if beats(v, best.0) {
                        best = (v, (y * w + x) as u32);
                    }
                }
            }
            if relu && best.0 <= 0.0 {
                best = (0.0, BLOCKED);
            }
            (*o, *i) = best;
        }
    }
}

/// One plane, 2x2 windows, stride 2, no padding: the four candidates in row-major order.
#[inline(always)]
fn pool_plane_2x2(
    plane: &[f32],
    w: usize,
    ow: usize,
    out: &mut [f32],
    idx: &mut [u32],
    relu: bool,
) {
    for (oy, (out_row, idx_row)) in out
        .chunks_exact_mut(ow)
        .zip(idx.chunks_exact_mut(ow))
        .enumerate()
    {
        let (top, bottom) = (2 * oy * w, (2 * oy + 1) * w);
        let (r0, r1) = (&plane[top..top + 2 * ow], &plane[bottom..bottom + 2 * ow]);
        for (ox, (o, i)) in out_row.iter_mut().zip(idx_row.iter_mut()).enumerate() {
            let x = 2 * ox;
            let candidates = [
                (r0[x], top + x),
                (r0[x + 1], top + x + 1),
                (r1[x], bottom + x),
                (r1[x + 1], bottom + x + 1),
            ];
            if relu {
                // max(relu(.)) of four numbers: the first strictly largest positive wins.
                let mut best = (0.0f32, BLOCKED);
                for (v, at) in candidates {
                    if v > best.0 {
                        best = (v, at as u32);
                    }
                }
                (*o, *i) = best;
            } else {
                let mut best = (candidates[0].0, candidates[0].1 as u32);
                for &(v, at) in &candidates[1..] {
                    if beats(v, best.0) {
                        best = (v, at as u32);
                    }
                }
                (*o, *i) = best;
            }
        }
    }
}

/// Max pooling with its arg-max, shared by [`max_pool`] and [`max_pool_with_argmax`].
fn max_pool_both(
    input: ArrayView4<f32>,
    pool_h: usize,
    pool_w: usize,
    stride: usize,
    pad: usize,
) -> Result<(Array4<f32>, Array4<u32>), SettingError> {
    let (n, c, h, w) = input.dim();
    let (oh, ow) = output_hw(h, w, pool_h, pool_w, stride, pad)?;
    check_pad_below_window(pad, pool_h, pool_w)?;
    let mut values = Array4::<f32>::zeros((n, c, oh, ow));
    let mut arg = Array4::<u32>::zeros((n, c, oh, ow));
    let input = input.as_standard_layout();
    let (Some(src), Some(v), Some(a)) =
        (input.as_slice(), values.as_slice_mut(), arg.as_slice_mut())
    else {
        unreachable!("standard-layout arrays are contiguous")
    };
    max_pool_planes(
        src,
        (h, w),
        (pool_h, pool_w, stride, pad),
        (oh, ow),
        v,
        a,
        false,
    );
    Ok((values, arg))
}

/// Max pooling on a batch `(N, C, H, W)` -> `(N, C, OH, OW)`: each output is the largest
/// input value in its `pool_h x pool_w` window. Padded cells never win (like PyTorch).
///
/// Returns a [`SettingError`] when window, stride and padding do not fit the input, or
/// when `pad >= pool_h` or `pad >= pool_w` (some windows would hold only padding).
///
/// ```
/// use cnn_from_scratch::pooling::max_pool;
/// use ndarray::Array4;
/// // The book's Fig 7-14: 2x2 windows, stride 2.
/// let x = Array4::from_shape_vec((1, 1, 4, 4), vec![
///     1., 2., 1., 0.,
///     0., 1., 2., 3.,
///     3., 0., 1., 2.,
///     2., 4., 0., 1.]).unwrap();
/// let y = max_pool(x.view(), 2, 2, 2, 0).unwrap();
/// assert_eq!(y.into_raw_vec_and_offset().0, vec![2., 3., 4., 2.]);
/// ```
pub fn max_pool(
    input: ArrayView4<f32>,
    pool_h: usize,
    pool_w: usize,
    stride: usize,
    pad: usize,
) -> Result<Array4<f32>, SettingError> {
    max_pool_both(input, pool_h, pool_w, stride, pad).map(|(values, _)| values)
}

/// Max pooling that also returns, for every output element, the flat index `y*W + x`
/// inside its `(n, c)` input plane of the winning input pixel, so a layer can route
/// gradients back (max pooling's backward).
///
/// Ties go to the first maximum in row-major order within the window. Same errors as
/// [`max_pool`].
///
/// ```
/// use cnn_from_scratch::pooling::max_pool_with_argmax;
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 4), vec![
///     1., 5., 0., 0.,
///     2., 3., 0., 7.]).unwrap();
/// let (max, argmax) = max_pool_with_argmax(x.view(), 2, 2, 2, 0).unwrap();
/// assert_eq!(max.into_raw_vec_and_offset().0, vec![5., 7.]);
/// // 5 sits at (y=0, x=1) -> 0*4 + 1; 7 at (y=1, x=3) -> 1*4 + 3.
/// assert_eq!(argmax.into_raw_vec_and_offset().0, vec![1, 7]);
/// ```
pub fn max_pool_with_argmax(
    input: ArrayView4<f32>,
    pool_h: usize,
    pool_w: usize,
    stride: usize,
    pad: usize,
) -> Result<(Array4<f32>, Array4<u32>), SettingError> {
    let (h, w) = (input.dim().2, input.dim().3);
    assert!(
        h * w <= u32::MAX as usize,
        "max_pool_with_argmax: a {h}x{w} plane has more pixels than u32 indices can name"
    );
    max_pool_both(input, pool_h, pool_w, stride, pad)
}

/// Average pooling on a batch `(N, C, H, W)` -> `(N, C, OH, OW)`: each output is the mean of
/// its `pool_h x pool_w` window. Padded cells are zeros and count in the mean (divisor
/// always `pool_h * pool_w`, PyTorch's default `count_include_pad=True`).
///
/// Returns a [`SettingError`] when window, stride and padding do not fit the input.
///
/// ```
/// use cnn_from_scratch::pooling::avg_pool;
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1., 2., 3., 6.]).unwrap();
/// assert_eq!(avg_pool(x.view(), 2, 2, 2, 0).unwrap()[[0, 0, 0, 0]], 3.0);
/// // Padding 1 around a 2x2 image, 2x2 windows, stride 2: each window sees one
/// // pixel and three padded zeros, and the zeros count: 1/4, 2/4, 3/4, 6/4.
/// let y = avg_pool(x.view(), 2, 2, 2, 1).unwrap();
/// assert_eq!(y.into_raw_vec_and_offset().0, vec![0.25, 0.5, 0.75, 1.5]);
/// ```
pub fn avg_pool(
    input: ArrayView4<f32>,
    pool_h: usize,
    pool_w: usize,
    stride: usize,
    pad: usize,
) -> Result<Array4<f32>, SettingError> {
    let w = input.dim().3;
    let scale = 1.0 / (pool_h * pool_w).max(1) as f32;
    pool_planes(
        input,
        pool_h,
        pool_w,
        stride,
        pad,
        |plane, out, rows, cols| {
            let ow = cols.len();
            for (&(y0, y1), out_row) in rows.iter().zip(out.chunks_exact_mut(ow)) {
                for (&(x0, x1), o) in cols.iter().zip(out_row) {
                    let sum: f32 = (y0..y1)
                        .map(|y| plane[y * w + x0..y * w + x1].iter().sum::<f32>())
                        .sum();
                    *o = sum * scale;
                }
            }
        },
    )
}

/// What [`shift_experiment`] measured: how much a feature map and its max-pooled version
/// change when the input image moves by one pixel. Each number is a relative change
/// `‖after − before‖ / ‖before‖` (Frobenius norms over all maps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftExperiment {
    /// Convolution output, image shifted one pixel right.
    pub conv_change_x: f32,
    /// Max-pooled convolution output, image shifted one pixel right.
    pub pooled_change_x: f32,
    /// Convolution output, image shifted one pixel down.
    pub conv_change_y: f32,
    /// Max-pooled convolution output, image shifted one pixel down.
    pub pooled_change_y: f32,
}

/// The shift experiment of the pooling section: move `image` `(C, H, W)` one pixel right
/// (and, separately, one pixel down; the pixels that enter are zeros), convolve with
/// `filters` `(FN, C, FH, FW)` (stride 1, no padding, no bias), max-pool with a
/// `pool x pool` window and stride `pool`, and report how much the feature maps and the
/// pooled maps changed, position by position.
///
/// The convolution is shift-*equivariant*: its output moves along with the image, so
/// compared in place it changes a lot. After max pooling many maxima are still inside
/// the same window, so the pooled maps change less: robustness to small shifts.
///
/// Returns a [`SettingError`] if the filter or the pooling window does not fit (e.g. the
/// feature map size is not a multiple of `pool`). Panics if the filters' channel count
/// differs from the image's.
///
/// ```
/// use cnn_from_scratch::pooling::shift_experiment;
/// use ndarray::{Array3, Array4};
/// // A digit-like "0": a soft ring of radius 8 on a 28x28 canvas.
/// let zero = Array3::from_shape_fn((1, 28, 28), |(_, y, x)| {
///     let r = ((y as f32 - 13.5).powi(2) + (x as f32 - 13.5).powi(2)).sqrt();
///     (-(r - 8.0).powi(2) / 4.0).exp()
/// });
/// // A 5x5 blur filter: the feature map is a smoothed copy of the digit, 24x24.
/// let blur = Array4::from_elem((1, 1, 5, 5), 1.0 / 25.0);
/// let e = shift_experiment(zero.view(), blur.view(), 2).unwrap();
/// println!("{e:?}");
/// assert!(e.pooled_change_x < e.conv_change_x);
/// assert!(e.pooled_change_y < e.conv_change_y);
/// ```
pub fn shift_experiment(
    image: ArrayView3<f32>,
    filters: ArrayView4<f32>,
    pool: usize,
) -> Result<ShiftExperiment, SettingError> {
    let (c, h, w) = image.dim();
    // A batch of three: the image, shifted right by one, shifted down by one.
    let mut batch = Array4::<f32>::zeros((3, c, h, w));
    batch.slice_mut(s![0, .., .., ..]).assign(&image);
    if w > 1 {
        batch
            .slice_mut(s![1, .., .., 1..])
            .assign(&image.slice(s![.., .., ..w - 1]));
    }
    if h > 1 {
        batch
            .slice_mut(s![2, .., 1.., ..])
            .assign(&image.slice(s![.., ..h - 1, ..]));
    }
    let bias = Array1::<f32>::zeros(filters.dim().0);
    let conv = conv_forward_im2col(batch.view(), filters, bias.view(), 1, 0)?;
    let pooled = max_pool(conv.view(), pool, pool, pool, 0)?;
    let change = |maps: &Array4<f32>, shifted: usize| {
        relative_change(
            maps.slice(s![0, .., .., ..]),
            maps.slice(s![shifted, .., .., ..]),
        )
    };
    Ok(ShiftExperiment {
        conv_change_x: change(&conv, 1),
        pooled_change_x: change(&pooled, 1),
        conv_change_y: change(&conv, 2),
        pooled_change_y: change(&pooled, 2),
    })
}

/// `‖after − before‖ / ‖before‖`, accumulated in f64.
fn relative_change(before: ArrayView3<f32>, after: ArrayView3<f32>) -> f32 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&b, &a) in before.iter().zip(after.iter()) {
        diff += (a as f64 - b as f64).powi(2);
        norm += (b as f64).powi(2);
    }
    (diff.sqrt() / norm.sqrt()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2x2 path against the general one (window by window in row-major order), with
    /// and without ReLU, on planes with ties, negatives, zeros and NaN, for widths that
    /// leave runs of 8 windows with and without a rest, and an odd last column.
    #[test]
    fn the_2x2_path_picks_the_same_winners_as_the_general_one() {
        let values = [1.5, -2.0, 0.0, 1.5, f32::NAN, -0.5, 3.0, 3.0, -7.0, 0.25];
        for (h, w) in [(2, 2), (4, 17), (6, 32), (5, 40), (8, 45)] {
            let (oh, ow) = (h / 2, w / 2);
            let plane: Vec<f32> = (0..h * w)
                .map(|i| values[(i * 7 + i / 3) % values.len()])
                .collect();
            let rows = window_ranges(oh, 2, 0, 2, h);
            let cols = window_ranges(ow, 2, 0, 2, w);
            for relu in [false, true] {
                let (mut fast, mut fast_at) = (vec![0.0; oh * ow], vec![0; oh * ow]);
                let (mut plain, mut plain_at) = (vec![0.0; oh * ow], vec![0; oh * ow]);
                pool_plane_2x2(&plane, w, ow, &mut fast, &mut fast_at, relu);
                pool_plane(&plane, w, &rows, &cols, &mut plain, &mut plain_at, relu);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&plain), "values, {h}x{w}, relu {relu}");
                assert_eq!(fast_at, plain_at, "arg-max, {h}x{w}, relu {relu}");
                assert!(
                    plain.iter().any(|v| v.is_nan()) != relu,
                    "NaN kept without ReLU only"
                );
            }
        }
    }
}
