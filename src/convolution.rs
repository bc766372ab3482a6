//! # The convolution layer: filtering built into the net (フィルタリングするための畳み込み層)
//!
//! *Tutorial: [page 2](crate::tutorial::_02_convolution) · notebook: `notebooks/02_convolution.ipynb`*
//!
//! Image processing has long used *filters*: a small grid of numbers slid over the picture,
//! each output pixel the weighted sum of the input pixels under the grid. A Sobel filter
//! makes edges light up, an averaging (box) filter blurs. A CNN builds exactly this
//! operation into the network (the book's Fig 7-3 and 7-4) with one change: the numbers in
//! the filter are not chosen by an expert, they are the layer's *weights*, learned from data,
//! plus one bias per filter.
//!
//! Put next to the Affine layer of earlier chapters, the difference is small and precise
//! (じゃあどうするか？):
//!
//! * Affine: every output is a linear combination of **all** inputs ("fully connected").
//! * Convolution: every output is a linear combination of a few **neighbouring** inputs
//!   ("partially connected"), and every output position uses the **same** weights.
//!
//! [`conv_as_affine`] makes that sentence concrete: it writes a convolution as an Affine
//! weight matrix that is mostly zeros and repeats the same few filter values, and
//! [`conv2d_via_affine`] checks it gives the same numbers as [`conv2d`].
//!
//! What the book, PyTorch and every framework call "convolution" is, strictly, the
//! *cross-correlation*: the filter is not flipped. [`conv2d`] computes it that way too, so
//! the numbers here match theirs.
//!
//! Functions take `&ArrayRef2<f32>`; pass `&image` for an `Array2<f32>` or a view alike.

use ndarray::{Array1, Array2, ArrayRef2, array};

use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// Naive single-channel 2-D convolution (cross-correlation) with a bias: no padding, stride 1.
///
/// Written as plain loops on purpose: it is the reference every faster version (im2col,
/// the layers in `full_cnn`) is tested against.
///
/// ```text
/// out[i, j] = bias + sum over (u, v) of x[i + u, j + v] * filter[u, v]
/// ```
///
/// The output is `(H - FH + 1, W - FW + 1)`; a filter larger than the image is an error.
/// For padding and stride see [`crate::padding_stride::conv2d_pad_stride`].
///
/// ```
/// use cnn_from_scratch::convolution::conv2d;
/// use ndarray::array;
///
/// // The book's Fig 7-3 / 7-4 example.
/// let x = array![[1.0_f32, 2., 3., 0.], [0., 1., 2., 3.], [3., 0., 1., 2.], [2., 3., 0., 1.]];
/// let w = array![[2.0_f32, 0., 1.], [0., 1., 2.], [1., 0., 2.]];
/// assert_eq!(conv2d(&x, &w, 0.0).unwrap(), array![[15.0, 16.], [6., 15.]]);
/// assert_eq!(conv2d(&x, &w, 3.0).unwrap(), array![[18.0, 19.], [9., 18.]]);
/// ```
pub fn conv2d(
    x: &ArrayRef2<f32>,
    filter: &ArrayRef2<f32>,
    bias: f32,
) -> Result<Array2<f32>, SettingError> {
    let (oh, ow) = valid_output_dim(x.dim(), filter.dim())?;
    let (fh, fw) = filter.dim();

    let mut out = Array2::zeros((oh, ow));
    for i in 0..oh {
        for j in 0..ow {
            let mut sum = bias;
            for u in 0..fh {
                for v in 0..fw {
                    sum += x[[i + u, j + v]] * filter[[u, v]];
                }
            }
            out[[i, j]] = sum;
        }
    }
    Ok(out)
}

/// Output size of a no-padding, stride-1 convolution, or the setting error.
fn valid_output_dim(
    (h, w): (usize, usize),
    (fh, fw): (usize, usize),
) -> Result<(usize, usize), SettingError> {
    if fh == 0 || fw == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: fh,
            filter_w: fw,
        });
    }
    Ok((
        conv_output_size(h, fh, 0, 1)?,
        conv_output_size(w, fw, 0, 1)?,
    ))
}

/// Sobel filter for change along x (left to right): large positive where the image gets
/// brighter to the right, so it lights up *vertical* edges.
///
/// ```
/// use cnn_from_scratch::convolution::{conv2d, sobel_x};
/// use ndarray::Array2;
///
/// // Dark left half, bright right half: a vertical edge in the middle.
/// let x = Array2::from_shape_fn((5, 6), |(_, j)| if j < 3 { 0.0_f32 } else { 1.0 });
/// let edges = conv2d(&x, &sobel_x(), 0.0).unwrap();
/// assert_eq!(edges.row(0).to_vec(), vec![0.0, 4.0, 4.0, 0.0]);
/// ```
pub fn sobel_x() -> Array2<f32> {
    array![[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]]
}

/// Sobel filter for change along y (top to bottom): lights up *horizontal* edges.
/// It is [`sobel_x`] transposed.
///
/// ```
/// use cnn_from_scratch::convolution::{sobel_x, sobel_y};
/// assert_eq!(sobel_y(), sobel_x().t());
/// ```
pub fn sobel_y() -> Array2<f32> {
    array![[-1., -2., -1.], [0., 0., 0.], [1., 2., 1.]]
}

/// Averaging (box) filter of side `size`: every entry `1 / size²`, so each output pixel is
/// the mean of its neighbourhood and the image is blurred.
///
/// ```
/// use cnn_from_scratch::convolution::{box_filter, conv2d};
/// use ndarray::Array2;
///
/// let blur = box_filter(3).unwrap();
/// assert!((blur.sum() - 1.0).abs() < 1e-6);
/// // Blurring a constant image leaves it unchanged.
/// let flat = Array2::from_elem((4, 4), 0.5_f32);
/// let y = conv2d(&flat, &blur, 0.0).unwrap();
/// assert!(y.iter().all(|&v| (v - 0.5).abs() < 1e-6));
/// assert!(box_filter(0).is_err());
/// ```
pub fn box_filter(size: usize) -> Result<Array2<f32>, SettingError> {
    if size == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: size,
            filter_w: size,
        });
    }
    Ok(Array2::from_elem((size, size), 1.0 / (size * size) as f32))
}

/// Sharpening filter: the pixel, plus how much it differs from its four neighbours.
/// Its entries sum to 1, so flat regions stay as they are and edges get more contrast.
///
/// ```
/// use cnn_from_scratch::convolution::sharpen;
/// assert_eq!(sharpen().sum(), 1.0);
/// ```
pub fn sharpen() -> Array2<f32> {
    array![[0., -1., 0.], [-1., 5., -1.], [0., -1., 0.]]
}

/// Laplacian filter (4-neighbour): zero on flat regions and on straight ramps, large where
/// the brightness bends, so it finds edges in every direction at once.
///
/// ```
/// use cnn_from_scratch::convolution::{conv2d, laplacian};
/// use ndarray::Array2;
///
/// // A linear ramp has no curvature: the Laplacian response is zero everywhere.
/// let ramp = Array2::from_shape_fn((5, 5), |(i, j)| (i + 2 * j) as f32);
/// assert!(conv2d(&ramp, &laplacian(), 0.0).unwrap().iter().all(|&v| v == 0.0));
/// ```
pub fn laplacian() -> Array2<f32> {
    array![[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]]
}

/// The convolution of `filter` over an `h x w` image, written as an Affine weight matrix.
///
/// The image is flattened row by row into a vector of `h * w` numbers, as a fully
/// connected net would see it, and the Affine layer computes `x · W + b` with `W` of shape
/// `(h * w, OH * OW)` (the book's convention: one column per output). Column `(i, j)` of
/// `W` holds the filter at the places of the pixels under it and zeros everywhere else:
///
/// * *sparse*: each column has only `FH * FW` non-zero entries out of `h * w`;
/// * *weight-shared*: every column holds the same `FH * FW` numbers, just shifted.
///
/// A general Affine layer would learn all `h * w * OH * OW` entries freely.
///
/// ```
/// use cnn_from_scratch::convolution::conv_as_affine;
/// use ndarray::array;
///
/// let w = array![[1.0_f32, 2.], [3., 4.]];
/// let affine = conv_as_affine(&w, 3, 3).unwrap();
/// assert_eq!(affine.dim(), (9, 4)); // 3x3 pixels in, 2x2 outputs
/// // Output (0, 0) sees pixels (0,0), (0,1), (1,0), (1,1) = flat indices 0, 1, 3, 4.
/// assert_eq!(affine.column(0).to_vec(), vec![1., 2., 0., 3., 4., 0., 0., 0., 0.]);
/// ```
pub fn conv_as_affine(
    filter: &ArrayRef2<f32>,
    h: usize,
    w: usize,
) -> Result<Array2<f32>, SettingError> {
    let (oh, ow) = valid_output_dim((h, w), filter.dim())?;
    let (fh, fw) = filter.dim();

    let mut affine = Array2::zeros((h * w, oh * ow));
    for i in 0..oh {
        for j in 0..ow {
            let column = i * ow + j;
            for u in 0..fh {
                for v in 0..fw {
                    let pixel = (i + u) * w + (j + v);
                    affine[[pixel, column]] = filter[[u, v]];
                }
            }
        }
    }
    Ok(affine)
}

/// Convolution computed the fully connected way: flatten `x`, multiply by the matrix of
/// [`conv_as_affine`], add the bias, reshape to `(OH, OW)`. Gives the same numbers as
/// [`conv2d`] (up to float rounding), which is the point: a convolution *is* an Affine layer
/// with most weights forced to zero and the rest forced to be equal.
///
/// ```
/// use cnn_from_scratch::convolution::{conv2d, conv2d_via_affine, sobel_x};
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((6, 5), |(i, j)| (i * j) as f32 % 4.0);
/// let direct = conv2d(&x, &sobel_x(), 0.5).unwrap();
/// let affine = conv2d_via_affine(&x, &sobel_x(), 0.5).unwrap();
/// assert_eq!(direct, affine);
/// ```
pub fn conv2d_via_affine(
    x: &ArrayRef2<f32>,
    filter: &ArrayRef2<f32>,
    bias: f32,
) -> Result<Array2<f32>, SettingError> {
    let (h, w) = x.dim();
    let (oh, ow) = valid_output_dim((h, w), filter.dim())?;
    let weights = conv_as_affine(filter, h, w)?;
    let flat: Array1<f32> = x.iter().copied().collect();
    let out = flat.dot(&weights) + bias;
    Ok(out
        .into_shape_with_order((oh, ow))
        .expect("OH * OW outputs reshape to (OH, OW)"))
}
