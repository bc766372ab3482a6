//! # Output size, padding and stride (フィルタリング後の画像サイズ)
//!
//! *Tutorial: [page 3](crate::tutorial::_03_padding_stride) · notebook: `notebooks/03_padding_stride.ipynb`*
//!
//! A 3x3 filter slid over a 4x4 image fits in only 2x2 places, so every convolution
//! shrinks the image a little; stack a few and nothing is left. Surrounding the image with
//! a border of zeros, *padding*, gives the filter room at the edges and can keep the size
//! unchanged (the book's Fig 7-6: a 4x4 input padded by 1 gives a 4x4 output). Moving the
//! filter by more than one pixel at a time, the *stride*, does the opposite and shrinks the
//! output on purpose (Fig 7-7).
//!
//! So the output size is fixed by three numbers chosen before training, hyperparameters that
//! are never learned: the filter size, the padding and the stride. Equation (7.1) says how:
//!
//! ```text
//! OH = (H + 2P - FH) / S + 1        OW = (W + 2P - FW) / S + 1
//! ```
//!
//! This module has that equation ([`conv_output_size`]), zero padding ([`pad_zeros`]), a
//! single-channel convolution with padding and stride ([`conv2d_pad_stride`]) and a table of
//! output sizes for a list of settings ([`output_size_table`]). A setting that does not fit
//! is an [`SettingError`] naming the numbers, never a silently wrong size.

use std::fmt;

use ndarray::{Array, Array2, ArrayRef, ArrayRef2, Dimension, Slice};

use crate::error::SettingError;

/// Output size of a convolution or pooling along one axis, equation (7.1) of the book:
///
/// ```text
/// OH = (H + 2P - FH) / S + 1
/// ```
///
/// Unlike many implementations, a size that does not divide evenly is an error, not a
/// silently floored number: a floored size would drop the last rows of the image without
/// telling anyone.
///
/// ```
/// use cnn_from_scratch::padding_stride::conv_output_size;
/// // The book's example: a 4x4 input, a 3x3 filter, padding 1, stride 1 keeps the size.
/// assert_eq!(conv_output_size(4, 3, 1, 1).unwrap(), 4);
/// // 7x7 input, 3x3 filter, stride 2: (7 - 3) / 2 + 1 = 3.
/// assert_eq!(conv_output_size(7, 3, 0, 2).unwrap(), 3);
/// // (6 - 3) / 2 is not whole: an error, not 2.
/// assert!(conv_output_size(6, 3, 0, 2).is_err());
/// ```
pub fn conv_output_size(
    input: usize,
    filter: usize,
    pad: usize,
    stride: usize,
) -> Result<usize, SettingError> {
    if stride == 0 {
        return Err(SettingError::ZeroStride { stride });
    }
    if filter == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: filter,
            filter_w: filter,
        });
    }
    let padded = input + 2 * pad;
    if filter > padded {
        return Err(SettingError::FilterTooLarge {
            input,
            filter,
            pad,
            padded,
        });
    }
    let numerator = padded - filter;
    if !numerator.is_multiple_of(stride) {
        return Err(SettingError::NotWhole {
            input,
            filter,
            pad,
            stride,
            numerator,
        });
    }
    Ok(numerator / stride + 1)
}

/// Surround the last two axes (height and width) with `pad` rows and columns of zeros.
///
/// One function for every layout of the crate: a single-channel image `(H, W)`, an image
/// `(C, H, W)` or a batch `(N, C, H, W)`. Leading axes (channels, batch) are left alone,
/// because padding is about giving the filter room at the image's edges.
///
/// # Panics
///
/// If `x` has fewer than two axes (there is no image to pad).
///
/// ```
/// use cnn_from_scratch::padding_stride::pad_zeros;
/// use ndarray::{array, Array3};
///
/// let x = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// assert_eq!(
///     pad_zeros(&x, 1),
///     array![
///         [0.0, 0.0, 0.0, 0.0],
///         [0.0, 1.0, 2.0, 0.0],
///         [0.0, 3.0, 4.0, 0.0],
///         [0.0, 0.0, 0.0, 0.0],
///     ]
/// );
/// // A colour image keeps its 3 channels; only height and width grow.
/// let rgb = Array3::<f32>::ones((3, 5, 7));
/// assert_eq!(pad_zeros(&rgb, 2).dim(), (3, 9, 11));
/// ```
pub fn pad_zeros<D: Dimension>(x: &ArrayRef<f32, D>, pad: usize) -> Array<f32, D> {
    let ndim = x.ndim();
    assert!(
        ndim >= 2,
        "pad_zeros needs at least (H, W) axes, got shape {:?}",
        x.shape()
    );
    let mut padded_dim = x.raw_dim();
    padded_dim[ndim - 2] += 2 * pad;
    padded_dim[ndim - 1] += 2 * pad;
    let mut padded = Array::zeros(padded_dim);
    // Copy `x` into the middle: the last two axes start `pad` in, the others are untouched.
    padded
        .slice_each_axis_mut(|axis| {
            if axis.axis.index() >= ndim - 2 {
                Slice::from(pad..pad + x.len_of(axis.axis))
            } else {
                Slice::from(..)
            }
        })
        .assign(x);
    padded
}

/// Single-channel convolution with zero padding `pad` and stride `stride` (Fig 7-6, 7-7).
///
/// First pad the image with zeros, then slide the filter in steps of `stride`:
///
/// ```text
/// out[i, j] = bias + sum over (u, v) of padded[i*S + u, j*S + v] * filter[u, v]
/// ```
///
/// With `pad = 0, stride = 1` this is [`crate::convolution::conv2d`]. The output size is
/// [`conv_output_size`] along each axis; a setting that does not fit is an error.
///
/// ```
/// use cnn_from_scratch::padding_stride::conv2d_pad_stride;
/// use ndarray::array;
///
/// // The book's 4x4 input and 3x3 filter with padding 1 (Fig 7-6): the size stays 4x4.
/// let x = array![[1.0_f32, 2., 3., 0.], [0., 1., 2., 3.], [3., 0., 1., 2.], [2., 3., 0., 1.]];
/// let w = array![[2.0_f32, 0., 1.], [0., 1., 2.], [1., 0., 2.]];
/// let y = conv2d_pad_stride(&x, &w, 0.0, 1, 1).unwrap();
/// assert_eq!(y.dim(), (4, 4));
/// assert_eq!(y[[1, 1]], 15.0); // the centre agrees with the unpadded result
/// // A 3x3 filter with stride 2 does not fit a 4x4 input evenly: an error, not a guess.
/// assert!(conv2d_pad_stride(&x, &w, 0.0, 0, 2).is_err());
/// ```
pub fn conv2d_pad_stride(
    x: &ArrayRef2<f32>,
    filter: &ArrayRef2<f32>,
    bias: f32,
    pad: usize,
    stride: usize,
) -> Result<Array2<f32>, SettingError> {
    let (h, w) = x.dim();
    let (fh, fw) = filter.dim();
    if fh == 0 || fw == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: fh,
            filter_w: fw,
        });
    }
    let oh = conv_output_size(h, fh, pad, stride)?;
    let ow = conv_output_size(w, fw, pad, stride)?;
    let padded = pad_zeros(x, pad);

    let mut out = Array2::zeros((oh, ow));
    for i in 0..oh {
        for j in 0..ow {
            let mut sum = bias;
            for u in 0..fh {
                for v in 0..fw {
                    sum += padded[[i * stride + u, j * stride + v]] * filter[[u, v]];
                }
            }
            out[[i, j]] = sum;
        }
    }
    Ok(out)
}

/// One row of an output-size table: a setting and the size equation (7.1) gives for it,
/// or the reason it does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSizeRow {
    /// Input size `H` (or `W`).
    pub input: usize,
    /// Filter size `FH`.
    pub filter: usize,
    /// Padding `P`.
    pub pad: usize,
    /// Stride `S`.
    pub stride: usize,
    /// `OH`, or the error that says why this setting does not fit.
    pub output: Result<usize, SettingError>,
}

impl fmt::Display for OutputSizeRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "H={:>3}  FH={:>2}  P={:>2}  S={:>2}  ->  ",
            self.input, self.filter, self.pad, self.stride
        )?;
        match &self.output {
            Ok(size) => write!(f, "OH={size}"),
            Err(e) => write!(f, "error: {e}"),
        }
    }
}

/// Output sizes, equation (7.1), for one input size and a list of `(filter, pad, stride)`
/// settings: the numbers behind a printed table or a plot of how padding and stride change
/// the size. Settings that do not fit stay in the table with their error, so the table also
/// shows *why* some combinations are not allowed.
///
/// ```
/// use cnn_from_scratch::padding_stride::output_size_table;
///
/// let rows = output_size_table(28, &[(5, 0, 1), (5, 2, 1), (3, 1, 2), (4, 0, 2)]);
/// assert_eq!(rows[0].output, Ok(24)); // SimpleConvNet's first layer: 28 -> 24
/// assert_eq!(rows[1].output, Ok(28)); // "same" padding keeps the size
/// assert!(rows[2].output.is_err()); // (28 + 2 - 3) / 2 is not whole
/// assert_eq!(rows[3].output, Ok(13));
/// for row in &rows {
///     println!("{row}");
/// }
/// ```
pub fn output_size_table(input: usize, settings: &[(usize, usize, usize)]) -> Vec<OutputSizeRow> {
    settings
        .iter()
        .map(|&(filter, pad, stride)| OutputSizeRow {
            input,
            filter,
            pad,
            stride,
            output: conv_output_size(input, filter, pad, stride),
        })
        .collect()
}
