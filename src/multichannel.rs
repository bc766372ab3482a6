//! # Colour images and banks of filters (カラー画像 (複数チャネル画像) のフィルタリング / 同じ画像に色んなフィルタをかけて色んな特徴取り出す)
//!
//! *Tutorial: [page 4](crate::tutorial::_04_multichannel) · notebook: `notebooks/04_multichannel.ipynb`*
//!
//! A colour picture is not a matrix but a rank-3 tensor `(C, H, W)`: a 256x256 RGB image is
//! `(3, 256, 256)`, one `H x W` plane per colour channel. A convolution on it uses a filter
//! with *as many channels as the input*, `(C, FH, FW)`: each channel of the filter is slid
//! over the matching channel of the image and the `C` results are **summed** into a single
//! output plane, the *feature map* (the book's Fig 7-8, 7-9 and 7-10). Because the channels
//! are summed with their own weights, one filter can respond to colour as well as to shape.
//! [`conv_multichannel`] does this.
//!
//! One filter extracts one kind of feature; to get many kinds (edges in several directions,
//! blobs, colours), apply `FN` filters and stack their `FN` feature maps along the channel
//! axis (同じ画像に色んなフィルタをかけて色んな特徴取り出す). The `FN` filters of shape
//! `(C, FH, FW)` form one rank-4 tensor `(FN, C, FH, FW)`, with one bias per filter, and the
//! output is `(FN, OH, OW)` (Fig 7-11, 7-12). [`conv_filter_bank`] does this, and
//! [`example_filter_bank`] gives a hand-made bank to try on a picture before any learning.
//!
//! The loops here are naive on purpose: they are the reference the fast im2col version in
//! [`crate::batching`] is checked against. Padding is done inside the loops (a position
//! outside the image reads as zero) rather than by copying into a padded image, so these
//! loops are also an independent check of [`crate::padding_stride::pad_zeros`].

use ndarray::{Array1, Array2, Array3, Array4, ArrayRef1, ArrayRef3, ArrayRef4, Axis, array, s};

use crate::convolution::{box_filter, laplacian, sobel_x, sobel_y};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// Convolve a `(C, H, W)` image with one `(C, FH, FW)` filter plus a bias into one
/// `(OH, OW)` feature map, with zero padding `pad` and stride `stride`:
///
/// ```text
/// out[i, j] = bias + sum over (c, u, v) of x[c, i*S + u - P, j*S + v - P] * filter[c, u, v]
/// ```
///
/// where a position outside the image counts as zero.
///
/// # Panics
///
/// If the filter's channel count differs from the image's (a shape mismatch).
///
/// ```
/// use cnn_from_scratch::multichannel::conv_multichannel;
/// use ndarray::{Array3, array};
///
/// // Two channels; the filter adds channel 0 and subtracts channel 1 at each pixel.
/// let x = Array3::from_shape_vec((2, 2, 2), vec![1.0_f32, 2., 3., 4., 10., 20., 30., 40.]).unwrap();
/// let w = Array3::from_shape_vec((2, 1, 1), vec![1.0_f32, -1.0]).unwrap();
/// let map = conv_multichannel(&x, &w, 0.0, 0, 1).unwrap();
/// assert_eq!(map, array![[-9.0, -18.], [-27., -36.]]);
/// ```
pub fn conv_multichannel(
    x: &ArrayRef3<f32>,
    filter: &ArrayRef3<f32>,
    bias: f32,
    pad: usize,
    stride: usize,
) -> Result<Array2<f32>, SettingError> {
    let (c, h, w) = x.dim();
    let (fc, fh, fw) = filter.dim();
    assert_eq!(
        fc,
        c,
        "filter channels must equal input channels: filter shape {:?}, input shape {:?}",
        filter.shape(),
        x.shape()
    );
    let (oh, ow) = output_dim(h, w, fh, fw, pad, stride)?;

    let mut out = Array2::zeros((oh, ow));
    for i in 0..oh {
        for j in 0..ow {
            let mut sum = bias;
            for k in 0..c {
                for u in 0..fh {
                    for v in 0..fw {
                        // Row and column in the unpadded image; outside it the value is 0.
                        let (row, col) = (
                            (i * stride + u) as isize - pad as isize,
                            (j * stride + v) as isize - pad as isize,
                        );
                        if (0..h as isize).contains(&row) && (0..w as isize).contains(&col) {
                            sum += x[[k, row as usize, col as usize]] * filter[[k, u, v]];
                        }
                    }
                }
            }
            out[[i, j]] = sum;
        }
    }
    Ok(out)
}

/// Apply a bank of `FN` filters `(FN, C, FH, FW)` with biases `(FN)` to a `(C, H, W)` image:
/// `FN` feature maps stacked into `(FN, OH, OW)` (Fig 7-11, 7-12). Feature map `n` is
/// [`conv_multichannel`] with filter `n` and bias `n`.
///
/// # Panics
///
/// If the filters' channel count differs from the image's, or there is not one bias per
/// filter (shape mismatches).
///
/// ```
/// use cnn_from_scratch::multichannel::conv_filter_bank;
/// use ndarray::{Array1, Array3, Array4};
///
/// let rgb = Array3::<f32>::ones((3, 8, 8));
/// let filters = Array4::<f32>::ones((5, 3, 3, 3));
/// let bias = Array1::from_vec(vec![0.0_f32, 1., 2., 3., 4.]);
/// let maps = conv_filter_bank(&rgb, &filters, &bias, 1, 1).unwrap();
/// assert_eq!(maps.dim(), (5, 8, 8)); // padding 1 keeps 8x8; 5 filters give 5 maps
/// assert_eq!(maps[[2, 4, 4]], 27.0 + 2.0); // 3 channels * 9 ones + bias 2
/// assert_eq!(maps[[0, 0, 0]], 12.0); // a corner sees only 2x2 of each channel
/// ```
pub fn conv_filter_bank(
    x: &ArrayRef3<f32>,
    filters: &ArrayRef4<f32>,
    bias: &ArrayRef1<f32>,
    pad: usize,
    stride: usize,
) -> Result<Array3<f32>, SettingError> {
    let (c, h, w) = x.dim();
    let (fn_, fc, fh, fw) = filters.dim();
    assert_eq!(
        fc,
        c,
        "filter channels must equal input channels: filter bank shape {:?}, input shape {:?}",
        filters.shape(),
        x.shape()
    );
    assert_eq!(
        bias.len(),
        fn_,
        "one bias per filter: bias shape {:?}, filter bank shape {:?}",
        bias.shape(),
        filters.shape()
    );
    let (oh, ow) = output_dim(h, w, fh, fw, pad, stride)?;

    let mut out = Array3::zeros((fn_, oh, ow));
    for (n, mut map) in out.axis_iter_mut(Axis(0)).enumerate() {
        map.assign(&conv_multichannel(
            x,
            &filters.index_axis(Axis(0), n),
            bias[n],
            pad,
            stride,
        )?);
    }
    Ok(out)
}

/// `(OH, OW)` by equation (7.1), or the setting error; an empty filter is checked on both
/// sides at once so the error names the whole filter.
fn output_dim(
    h: usize,
    w: usize,
    fh: usize,
    fw: usize,
    pad: usize,
    stride: usize,
) -> Result<(usize, usize), SettingError> {
    if fh == 0 || fw == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: fh,
            filter_w: fw,
        });
    }
    Ok((
        conv_output_size(h, fh, pad, stride)?,
        conv_output_size(w, fw, pad, stride)?,
    ))
}

/// A hand-made bank of 3x3 filters with names, for looking at feature maps before any
/// learning: what a trained first layer tends to discover on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterBank {
    /// `(FN, C, 3, 3)`.
    pub filters: Array4<f32>,
    /// `(FN)`, all zero.
    pub bias: Array1<f32>,
    /// One short name per filter, for labelling a grid of feature maps.
    pub names: Vec<&'static str>,
}

/// A bank of classic 3x3 filters for an image with `channels` channels (3 for a colour
/// picture, 1 for a digit): vertical edges (Sobel x), horizontal edges (Sobel y), the two
/// diagonal edges, blur (box), edges in every direction (Laplacian), and, for a 3-channel
/// image, "red minus green", a filter only a multichannel convolution can express.
///
/// The shape filters are the same 2-D kernel in every channel divided by `C`, so they act on
/// the mean brightness of the channels.
///
/// # Panics
///
/// If `channels` is 0.
///
/// ```
/// use cnn_from_scratch::multichannel::{conv_filter_bank, example_filter_bank};
/// use ndarray::{Array2, Array3};
///
/// let digit_bank = example_filter_bank(1);
/// assert_eq!(digit_bank.filters.dim(), (6, 1, 3, 3));
/// let colour_bank = example_filter_bank(3);
/// assert_eq!(colour_bank.filters.dim(), (7, 3, 3, 3));
/// assert_eq!(colour_bank.names[6], "red - green");
///
/// // On a 1-channel image with a vertical edge, "vertical edges" responds, "horizontal" not.
/// let digit = Array2::from_shape_fn((6, 6), |(_, j)| if j < 3 { 0.0_f32 } else { 1.0 });
/// let digit = digit.insert_axis(ndarray::Axis(0));
/// let maps = conv_filter_bank(&digit, &digit_bank.filters, &digit_bank.bias, 1, 1).unwrap();
/// assert_eq!(maps.dim(), (6, 6, 6));
/// assert_eq!(maps[[0, 3, 3]], 4.0);
/// assert_eq!(maps[[1, 3, 3]], 0.0);
/// ```
pub fn example_filter_bank(channels: usize) -> FilterBank {
    assert!(
        channels > 0,
        "a filter bank needs at least 1 channel, got channels={channels}"
    );
    // Sobel turned by 45 degrees: brightness rising towards the top right marks an edge
    // running from top left to bottom right ("\"), and the mirror image for "/".
    let diagonal_backslash = array![[0., 1., 2.], [-1., 0., 1.], [-2., -1., 0.]];
    let diagonal_slash = array![[2., 1., 0.], [1., 0., -1.], [0., -1., -2.]];
    let blur = box_filter(3).expect("3 is a valid filter size");
    let mut kernels = vec![
        ("vertical edges", sobel_x()),
        ("horizontal edges", sobel_y()),
        ("diagonal \\ edges", diagonal_backslash),
        ("diagonal / edges", diagonal_slash),
        ("blur", blur),
        ("edges, all directions", laplacian()),
    ];
    let mut names: Vec<&'static str> = kernels.iter().map(|(name, _)| *name).collect();
    let shape_filters = kernels.len();
    let fn_ = shape_filters + usize::from(channels == 3);

    let mut filters = Array4::zeros((fn_, channels, 3, 3));
    for (n, (_, kernel)) in kernels.drain(..).enumerate() {
        for k in 0..channels {
            filters
                .slice_mut(s![n, k, .., ..])
                .assign(&(&kernel / channels as f32));
        }
    }
    if channels == 3 {
        // Only the centre pixel: +1 for red, -1 for green, 0 for blue.
        filters[[shape_filters, 0, 1, 1]] = 1.0;
        filters[[shape_filters, 1, 1, 1]] = -1.0;
        names.push("red - green");
    }
    FilterBank {
        filters,
        bias: Array1::zeros(fn_),
        names,
    }
}
