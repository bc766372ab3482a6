//! # Batches, im2col and convolution as one matrix product (バッチ処理)
//!
//! *Tutorial: [page 5](crate::tutorial::_05_batching) · notebook: `notebooks/05_batching.ipynb`*
//!
//! So far we filtered one image. Training and prediction work on a *batch* of `N` images at
//! once, so the input becomes a rank-4 tensor `(N, C, H, W)` (book Fig 7-13) and the output
//! of a layer with `FN` filters is `(N, FN, OH, OW)`.
//!
//! Written as loops, a batched convolution has seven nested loops (image, filter, output row,
//! output column, channel, filter row, filter column) and runs slowly: every step does a tiny
//! amount of arithmetic and jumps around memory. The book's trick, **im2col** ("image to
//! column"), rearranges the input so the whole convolution becomes *one matrix product*.
//!
//! ## The picture (book Fig 7-17, 7-18, 7-19)
//!
//! Take one 1-channel 3x3 image and a 2x2 filter, stride 1, no padding. There are 2x2 = 4
//! filter positions. im2col copies the 2x2 patch under the filter at each position into one
//! *row*:
//!
//! ```text
//!  image          patches (one per position)          im2col matrix (4 x 4)
//!  a b c          [a b]  [b c]  [d e]  [e f]          row 0: a b d e   <- position (0,0)
//!  d e f          [d e]  [e f]  [g h]  [h i]          row 1: b c e f   <- position (0,1)
//!  g h i                                              row 2: d e g h   <- position (1,0)
//!                                                     row 3: e f h i   <- position (1,1)
//! ```
//!
//! Each filter, flattened the same way (`w00 w01 w10 w11`), is one column of a weight
//! matrix. A patch row times a filter column is exactly the sum of products the filter
//! computes at that position, so
//!
//! ```text
//!  (N*OH*OW, C*FH*FW)  x  (C*FH*FW, FN)  =  (N*OH*OW, FN)   -> reshape to (N, FN, OH, OW)
//!     im2col(input)       filters^T          all outputs
//! ```
//!
//! With several channels, a row holds the patch of channel 0, then channel 1, ... (columns
//! ordered `(c, fy, fx)`), and with a batch the rows of image 0 come first, then image 1.
//!
//! ## Why it is fast
//!
//! The im2col matrix repeats input pixels (each pixel appears in up to `FH*FW` rows), so it
//! costs memory. In exchange, all the arithmetic happens in a single large matrix product,
//! which a tuned GEMM routine (here `matrixmultiply`, behind ndarray's `dot`) runs close to
//! the machine's peak: it keeps blocks of both matrices in cache and uses SIMD. Building the
//! matrix is pure copying — contiguous runs of `FW` pixels — which is cheap next to the
//! multiplications. Here the copy is also split over the images of the batch with `rayon`.
//!
//! [`col2im`] goes the other way, adding every row back onto the pixels it came from. It is
//! the *adjoint* (transpose) of `im2col`, which is what a convolution layer's backward pass
//! needs to send gradients back to its input.

use ndarray::{Array2, Array4, ArrayView1, ArrayView2, ArrayView4, linalg::general_mat_mul};
use rayon::prelude::*;

use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// Where one filter row lands in one input row: filter columns `fx_lo..fx_hi` read input
/// columns `ix_lo..ix_lo + (fx_hi - fx_lo)`; the other filter columns see padding (zeros).
///
/// Computing the range once per patch row replaces a bounds test per pixel.
#[inline]
pub(crate) fn valid_range(
    out_pos: usize,
    stride: usize,
    pad: usize,
    filter: usize,
    input: usize,
) -> (usize, usize, usize) {
    let start = out_pos * stride; // position in padded coordinates
    let lo = pad.saturating_sub(start).min(filter);
    let hi = (input + pad).saturating_sub(start).min(filter).max(lo);
    (lo, hi, (start + lo).saturating_sub(pad).min(input))
}

/// The output positions `lo..hi` along one axis at which filter offset `f` lands inside
/// the input (`0 <= o*stride + f - pad < input`); the others read padding.
#[inline]
fn positions_inside(
    f: usize,
    stride: usize,
    pad: usize,
    input: usize,
    out: usize,
) -> (usize, usize) {
    // o*stride + f >= pad  <=>  o >= ceil((pad - f) / stride)
    let lo = pad.saturating_sub(f).div_ceil(stride).min(out);
    // o*stride + f < input + pad  <=>  o < ceil((input + pad - f) / stride)
    let hi = (input + pad)
        .saturating_sub(f)
        .div_ceil(stride)
        .min(out)
        .max(lo);
    (lo, hi)
}

/// The im2col matrix of one image, *transposed*: `(C*FH*FW, OH*OW)`, one row per filter
/// element `(c, fy, fx)`, one column per filter position `(oy, ox)`. It is `im2col`'s
/// matrix for that image with rows and columns swapped, but cheaper to build (each row is
/// the image shifted by `(fy, fx)`: runs of `OW` pixels, contiguous at stride 1) and it
/// lets the layer multiply `W · col` straight into the `(FN, OH*OW)` output. Every entry
/// of `dst` (length `C*FH*FW*OH*OW`) is written.
pub(crate) fn im2col_t_image(
    image: &[f32],
    (c, h, w): (usize, usize, usize),
    (fh, fw, stride, pad): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    dst: &mut [f32],
) {
    let p = oh * ow;
    debug_assert_eq!(dst.len(), c * fh * fw * p);
    for (r, row) in dst.chunks_exact_mut(p.max(1)).enumerate() {
        let (ch, fy, fx) = (r / (fh * fw), r / fw % fh, r % fw);
        let plane = &image[ch * h * w..(ch + 1) * h * w];
        let (oy_lo, oy_hi) = positions_inside(fy, stride, pad, h, oh);
        let (ox_lo, ox_hi) = positions_inside(fx, stride, pad, w, ow);
        row[..oy_lo * ow].fill(0.0);
        row[oy_hi * ow..].fill(0.0);
        for oy in oy_lo..oy_hi {
            let seg = &mut row[oy * ow..(oy + 1) * ow];
            let src = &plane[(oy * stride + fy - pad) * w..][..w];
            seg[..ox_lo].fill(0.0);
            seg[ox_hi..].fill(0.0);
            if ox_hi > ox_lo {
                let x0 = ox_lo * stride + fx - pad;
                if stride == 1 {
                    seg[ox_lo..ox_hi].copy_from_slice(&src[x0..x0 + (ox_hi - ox_lo)]);
                } else {
                    for (o, &v) in seg[ox_lo..ox_hi]
                        .iter_mut()
                        .zip(src[x0..].iter().step_by(stride))
                    {
                        *o = v;
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_t_image`]: adds every entry of the transposed matrix `col`
/// `(C*FH*FW, OH*OW)` onto the pixel of `image` `(C, H, W)` it was copied from (entries
/// from padding are dropped). `image` is added to, not overwritten.
///
/// Never inlined: inlined into the closure of `Convolution`'s backward pass that calls it,
/// it was compiled into slower code (1.7 times the time, SimpleConvNet's layer on a Zen 4).
#[inline(never)]
pub(crate) fn col2im_t_image(
    col: &[f32],
    (c, h, w): (usize, usize, usize),
    (fh, fw, stride, pad): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    image: &mut [f32],
) {
    let p = oh * ow;
    debug_assert_eq!(col.len(), c * fh * fw * p);
    for (r, row) in col.chunks_exact(p.max(1)).enumerate() {
        let (ch, fy, fx) = (r / (fh * fw), r / fw % fh, r % fw);
        let plane = &mut image[ch * h * w..(ch + 1) * h * w];
        let (oy_lo, oy_hi) = positions_inside(fy, stride, pad, h, oh);
        let (ox_lo, ox_hi) = positions_inside(fx, stride, pad, w, ow);
        if ox_hi == ox_lo {
            continue;
        }
        for oy in oy_lo..oy_hi {
            let seg = &row[oy * ow + ox_lo..oy * ow + ox_hi];
            let dst = &mut plane[(oy * stride + fy - pad) * w..][..w];
            let x0 = ox_lo * stride + fx - pad;
            if stride == 1 {
                for (d, &v) in dst[x0..x0 + seg.len()].iter_mut().zip(seg) {
                    *d += v;
                }
            } else {
                for (d, &v) in dst[x0..].iter_mut().step_by(stride).zip(seg) {
                    *d += v;
                }
            }
        }
    }
}

/// Output sizes `(OH, OW)` for a window of `filter_h x filter_w`, or the setting error.
pub(crate) fn output_hw(
    h: usize,
    w: usize,
    filter_h: usize,
    filter_w: usize,
    stride: usize,
    pad: usize,
) -> Result<(usize, usize), SettingError> {
    if filter_h == 0 || filter_w == 0 {
        return Err(SettingError::EmptyFilter { filter_h, filter_w });
    }
    Ok((
        conv_output_size(h, filter_h, pad, stride)?,
        conv_output_size(w, filter_w, pad, stride)?,
    ))
}

/// Unfold a batch into the im2col matrix:
/// (N, C, H, W) -> (N*OH*OW, C*FH*FW), the book's layout: row = one filter position, columns ordered (c, fy, fx).
///
/// Rows are ordered `(n, oy, ox)`; positions that fall into the zero padding hold `0.0`.
/// Returns a [`SettingError`] when the filter, stride and padding do not fit the input
/// (equation 7.1 must give a whole, positive size).
///
/// ```
/// use cnn_from_scratch::batching::im2col;
/// use ndarray::Array4;
/// // The picture in the module docs: a 3x3 image a..i (here 1..9) and a 2x2 filter.
/// let image = Array4::from_shape_vec((1, 1, 3, 3), (1..=9).map(|v| v as f32).collect()).unwrap();
/// let col = im2col(image.view(), 2, 2, 1, 0).unwrap();
/// assert_eq!(col.dim(), (4, 4));
/// assert_eq!(col.row(0).to_vec(), vec![1.0, 2.0, 4.0, 5.0]); // a b d e
/// assert_eq!(col.row(3).to_vec(), vec![5.0, 6.0, 8.0, 9.0]); // e f h i
/// ```
pub fn im2col(
    input: ArrayView4<f32>,
    filter_h: usize,
    filter_w: usize,
    stride: usize,
    pad: usize,
) -> Result<Array2<f32>, SettingError> {
    let (n, c, h, w) = input.dim();
    let (oh, ow) = output_hw(h, w, filter_h, filter_w, stride, pad)?;
    let row_len = c * filter_h * filter_w;
    let mut col = Array2::<f32>::zeros((n * oh * ow, row_len));
    let input = input.as_standard_layout();
    let (Some(src), Some(dst)) = (input.as_slice(), col.as_slice_mut()) else {
        unreachable!("standard-layout arrays are contiguous")
    };
    if row_len == 0 || h * w == 0 {
        return Ok(col);
    }
    dst.par_chunks_mut(oh * ow * row_len)
        .zip(src.par_chunks(c * h * w))
        .for_each(|(rows, image)| {
            im2col_image(
                image,
                (c, h, w),
                (filter_h, filter_w, stride, pad),
                (oh, ow),
                rows,
            )
        });
    Ok(col)
}

/// The im2col matrix of one image `(C, H, W)` in the book's layout, `(OH*OW, C*FH*FW)`:
/// one row per filter position. `dst` must hold zeros wherever the filter sees padding
/// (a fresh or zeroed buffer; with `pad == 0` every entry is written).
pub(crate) fn im2col_image(
    image: &[f32],
    (c, h, w): (usize, usize, usize),
    (filter_h, filter_w, stride, pad): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    dst: &mut [f32],
) {
    let row_len = c * filter_h * filter_w;
    debug_assert_eq!(dst.len(), oh * ow * row_len);
    if row_len == 0 || h * w == 0 {
        return;
    }
    for (p, row) in dst.chunks_exact_mut(row_len).enumerate() {
        let (oy, ox) = (p / ow, p % ow);
        let (fx_lo, fx_hi, ix_lo) = valid_range(ox, stride, pad, filter_w, w);
        let (fy_lo, fy_hi, iy_lo) = valid_range(oy, stride, pad, filter_h, h);
        let run = fx_hi - fx_lo;
        // The row already holds zeros (padding); copy only the part over the image.
        for (plane, patch) in image
            .chunks_exact(h * w)
            .zip(row.chunks_exact_mut(filter_h * filter_w))
        {
            for fy in fy_lo..fy_hi {
                let iy = iy_lo + (fy - fy_lo);
                let from = iy * w + ix_lo;
                let to = fy * filter_w + fx_lo;
                patch[to..to + run].copy_from_slice(&plane[from..from + run]);
            }
        }
    }
}

/// Fold an im2col matrix back onto the image, the adjoint of [`im2col`]:
/// (N*OH*OW, C*FH*FW) -> (N, C, H, W), summing overlapping contributions; `input_shape` is (N, C, H, W).
///
/// Every entry of `col` is added to the input pixel it was copied from; entries that came
/// from padding are dropped. Where filter positions overlap, a pixel receives the sum. This
/// is exactly how a convolution's gradient flows back to its input.
///
/// Panics if `col`'s shape is not the one `im2col` makes for `input_shape` (a programming
/// error); returns a [`SettingError`] for a filter/stride/padding that does not fit.
///
/// ```
/// use cnn_from_scratch::batching::{col2im, im2col};
/// use ndarray::Array4;
/// // 3x3 ones, 2x2 filter, stride 1: the centre pixel lies under all 4 positions.
/// let ones = Array4::<f32>::ones((1, 1, 3, 3));
/// let col = im2col(ones.view(), 2, 2, 1, 0).unwrap();
/// let back = col2im(col.view(), [1, 1, 3, 3], 2, 2, 1, 0).unwrap();
/// assert_eq!(back[[0, 0, 1, 1]], 4.0); // centre: 4 overlapping positions
/// assert_eq!(back[[0, 0, 0, 0]], 1.0); // corner: 1 position
/// assert_eq!(back[[0, 0, 0, 1]], 2.0); // edge: 2 positions
/// ```
pub fn col2im(
    col: ArrayView2<f32>,
    input_shape: [usize; 4],
    filter_h: usize,
    filter_w: usize,
    stride: usize,
    pad: usize,
) -> Result<Array4<f32>, SettingError> {
    let [n, c, h, w] = input_shape;
    let (oh, ow) = output_hw(h, w, filter_h, filter_w, stride, pad)?;
    let row_len = c * filter_h * filter_w;
    assert_eq!(
        col.dim(),
        (n * oh * ow, row_len),
        "col2im: col has shape {:?} but input shape {:?} with a {}x{} filter, stride {}, pad {} needs ({}, {})",
        col.shape(),
        input_shape,
        filter_h,
        filter_w,
        stride,
        pad,
        n * oh * ow,
        row_len
    );
    let mut image = Array4::<f32>::zeros((n, c, h, w));
    let col = col.as_standard_layout();
    let (Some(src), Some(dst)) = (col.as_slice(), image.as_slice_mut()) else {
        unreachable!("standard-layout arrays are contiguous")
    };
    if row_len == 0 || h * w == 0 {
        return Ok(image);
    }
    dst.par_chunks_mut(c * h * w)
        .zip(src.par_chunks(oh * ow * row_len))
        .for_each(|(image, rows)| {
            for (p, row) in rows.chunks_exact(row_len).enumerate() {
                let (oy, ox) = (p / ow, p % ow);
                let (fx_lo, fx_hi, ix_lo) = valid_range(ox, stride, pad, filter_w, w);
                let (fy_lo, fy_hi, iy_lo) = valid_range(oy, stride, pad, filter_h, h);
                let run = fx_hi - fx_lo;
                for (plane, patch) in image
                    .chunks_exact_mut(h * w)
                    .zip(row.chunks_exact(filter_h * filter_w))
                {
                    for fy in fy_lo..fy_hi {
                        let iy = iy_lo + (fy - fy_lo);
                        let to = iy * w + ix_lo;
                        let from = fy * filter_w + fx_lo;
                        for (pixel, v) in
                            plane[to..to + run].iter_mut().zip(&patch[from..from + run])
                        {
                            *pixel += v;
                        }
                    }
                }
            }
        });
    Ok(image)
}

/// Batched convolution as one matrix product: input (N,C,H,W), filters (FN,C,FH,FW), bias (FN) -> (N,FN,OH,OW).
///
/// Computes `im2col(input)`, multiplies it by the filters flattened to `(FN, C*FH*FW)` in a
/// single GEMM and adds the bias. Same result as the seven nested loops (cross-correlation,
/// as the book and every framework compute it), much faster.
///
/// Panics if the filters' channel count differs from the input's or the bias length from
/// `FN`; returns a [`SettingError`] for a stride/padding that does not fit.
///
/// ```
/// use cnn_from_scratch::batching::conv_forward_im2col;
/// use ndarray::{Array1, Array4};
/// // Two 1-channel 3x3 images of ones, one 2x2 filter of ones, bias 0.5:
/// // every output is 4 * 1 + 0.5.
/// let input = Array4::<f32>::ones((2, 1, 3, 3));
/// let filters = Array4::<f32>::ones((1, 1, 2, 2));
/// let out = conv_forward_im2col(input.view(), filters.view(), Array1::from(vec![0.5]).view(), 1, 0).unwrap();
/// assert_eq!(out.dim(), (2, 1, 2, 2));
/// assert!(out.iter().all(|&v| v == 4.5));
/// ```
pub fn conv_forward_im2col(
    input: ArrayView4<f32>,
    filters: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    stride: usize,
    pad: usize,
) -> Result<Array4<f32>, SettingError> {
    let (n, c, h, w) = input.dim();
    let (fnum, fc, fh, fw) = filters.dim();
    assert_eq!(
        fc,
        c,
        "conv_forward_im2col: filters have shape {:?} (C={fc}) but input has shape {:?} (C={c})",
        filters.shape(),
        input.shape()
    );
    assert_eq!(
        bias.len(),
        fnum,
        "conv_forward_im2col: bias has shape {:?} but filters have shape {:?} (FN={fnum})",
        bias.shape(),
        filters.shape()
    );
    let (oh, ow) = output_hw(h, w, fh, fw, stride, pad)?;
    let col = im2col(input, fh, fw, stride, pad)?;
    let filters = filters.as_standard_layout();
    let weights = filters
        .view()
        .into_shape_with_order((fnum, c * fh * fw))
        .expect("standard layout reshapes");
    // (FN, K) x (K, N*OH*OW): each row of the product is one filter's outputs for the whole
    // batch, so the copy into (N, FN, OH, OW) below moves contiguous runs of OH*OW values.
    let mut product = Array2::<f32>::zeros((fnum, n * oh * ow));
    general_mat_mul(1.0, &weights, &col.t(), 0.0, &mut product);
    let mut out = Array4::<f32>::zeros((n, fnum, oh, ow));
    let plane = oh * ow;
    let (Some(dst), Some(src)) = (out.as_slice_mut(), product.as_slice()) else {
        unreachable!("freshly allocated arrays are contiguous")
    };
    if plane == 0 || fnum == 0 {
        return Ok(out);
    }
    dst.par_chunks_mut(fnum * plane)
        .enumerate()
        .for_each(|(img, maps)| {
            for ((f, map), &b) in maps.chunks_exact_mut(plane).enumerate().zip(bias.iter()) {
                let from = f * n * plane + img * plane;
                for (o, &v) in map.iter_mut().zip(&src[from..from + plane]) {
                    *o = v + b;
                }
            }
        });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transposed per-image im2col (the layer's fast path) must be `im2col`'s matrix
    /// with rows and columns swapped, and its adjoint must equal `col2im`, for strides,
    /// paddings and filters that overhang the image.
    #[test]
    fn transposed_im2col_and_col2im_match_the_reference() {
        let (n, c, h, w) = (2, 2, 7, 6);
        let x = Array4::from_shape_fn((n, c, h, w), |(a, b, i, j)| {
            (a * 1000 + b * 100 + i * 10 + j) as f32
        });
        for (fh, fw, stride, pad) in [
            (3, 3, 1, 0),
            (3, 2, 2, 1),
            (2, 2, 1, 2),
            (5, 5, 3, 2),
            (1, 1, 2, 0),
        ] {
            let Ok((oh, ow)) = output_hw(h, w, fh, fw, stride, pad) else {
                continue;
            };
            let (k, p) = (c * fh * fw, oh * ow);
            let reference = im2col(x.view(), fh, fw, stride, pad).unwrap();
            // A col matrix with distinct entries for the adjoint.
            let dcol = Array2::from_shape_fn((n * p, k), |(r, q)| (r * 37 + q * 11) as f32 % 17.0);
            let expected_dx = col2im(dcol.view(), [n, c, h, w], fh, fw, stride, pad).unwrap();
            let mut dx = Array4::<f32>::zeros((n, c, h, w));
            let x_flat = x.as_slice().unwrap();
            for img in 0..n {
                let mut col_t = vec![f32::NAN; k * p]; // NaN: every entry must be written
                let image = &x_flat[img * c * h * w..(img + 1) * c * h * w];
                im2col_t_image(
                    image,
                    (c, h, w),
                    (fh, fw, stride, pad),
                    (oh, ow),
                    &mut col_t,
                );
                let col_t = Array2::from_shape_vec((k, p), col_t).unwrap();
                let rows = reference.slice(ndarray::s![img * p..(img + 1) * p, ..]);
                assert_eq!(
                    col_t.t(),
                    rows,
                    "im2col, filter {fh}x{fw} stride {stride} pad {pad}"
                );

                let dcol_t = dcol
                    .slice(ndarray::s![img * p..(img + 1) * p, ..])
                    .t()
                    .to_owned();
                let dx_img =
                    &mut dx.as_slice_mut().unwrap()[img * c * h * w..(img + 1) * c * h * w];
                let dcol_t = dcol_t.as_standard_layout();
                col2im_t_image(
                    dcol_t.as_slice().unwrap(),
                    (c, h, w),
                    (fh, fw, stride, pad),
                    (oh, ow),
                    dx_img,
                );
            }
            assert_eq!(
                dx, expected_dx,
                "col2im, filter {fh}x{fw} stride {stride} pad {pad}"
            );
        }
    }
}
