//! # The limits of a plain neural net (これまでのシンプルな NN の限界 / 何が問題か？ / じゃあどうするか？)
//!
//! *Tutorial: [page 1](crate::tutorial::_01_fc_limits) · notebook: `notebooks/01_fc_limits.ipynb`*
//!
//! The nets of the earlier chapters are a chain `Affine - Activation - ... - Affine -
//! Softmax`. An Affine layer takes a *vector*, so an image, a matrix `(H, W)` or for colour a
//! rank-3 tensor `(C, H, W)`, is first flattened into one long row of numbers
//! ([`flatten`]). After that the net has no way to know which pixels were neighbours, or
//! which numbers belonged to which colour: the shape information is gone.
//!
//! What is the problem (何が問題か？)? Every feature an Affine layer makes is a linear
//! combination of *all* its inputs, which is why it is called "fully connected". With
//! enough luck and data it might learn shape-aware features by itself, but nothing in the
//! model helps it, and it pays for every connection ([`compare_param_counts`]: for one
//! MNIST digit, an Affine layer with as many outputs as SimpleConvNet's first convolution
//! needs about 13.6 million weights; the convolution needs 780).
//!
//! This module makes "the shape information is lost" measurable. Shuffle the pixels of every
//! image with one fixed permutation ([`pixel_permutation`], [`permute_pixels`]) and shuffle
//! the rows of the Affine weights the same way: the fully connected layer gives *exactly*
//! the same outputs, so it cannot tell a digit from a scrambled digit and a net trained on
//! scrambled digits is just as good. A convolution looks at neighbouring pixels, so its
//! output changes completely ([`permutation_demo`]).
//!
//! So what do we do (じゃあどうするか？)? Instead of hoping, build the assumption into the
//! model: layers whose features are made only from nearby pixels, filtering (convolution,
//! [`crate::convolution`]) and pooling ([`crate::pooling`]), with the filter values learned.

use ndarray::{Array1, Array2, Array3, ArrayRef, ArrayRef1, ArrayRef2, Axis, Dimension};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};

use crate::convolution::{conv2d, sobel_x};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// Flatten an image, `(H, W)` or `(C, H, W)` or any shape, into a vector, row by row
/// (channel by channel first): what an Affine layer must do before it can look at a picture.
///
/// ```
/// use cnn_from_scratch::fc_limits::flatten;
/// use ndarray::array;
///
/// let image = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// // Pixel (1, 0) sat right below pixel (0, 0); in the vector they are two places apart
/// // and nothing records that they were neighbours.
/// assert_eq!(flatten(&image), array![1.0, 2.0, 3.0, 4.0]);
/// ```
pub fn flatten<D: Dimension>(image: &ArrayRef<f32, D>) -> Array1<f32> {
    image.iter().copied().collect()
}

/// Put a flattened vector back into an image of shape `(C, H, W)`, the inverse of
/// [`flatten`]. The shape has to be supplied from outside: the vector does not know it.
///
/// # Panics
///
/// If the vector's length is not `C * H * W`.
///
/// ```
/// use cnn_from_scratch::fc_limits::{flatten, unflatten};
/// use ndarray::Array3;
///
/// let rgb = Array3::from_shape_fn((3, 2, 4), |(c, i, j)| (100 * c + 10 * i + j) as f32);
/// let v = flatten(&rgb);
/// assert_eq!(v.len(), 24);
/// assert_eq!(unflatten(&v, (3, 2, 4)), rgb);
/// ```
pub fn unflatten(vector: &ArrayRef1<f32>, (c, h, w): (usize, usize, usize)) -> Array3<f32> {
    assert_eq!(
        vector.len(),
        c * h * w,
        "cannot unflatten a vector of shape [{}] into an image of shape [{c}, {h}, {w}]",
        vector.len()
    );
    Array3::from_shape_fn((c, h, w), |(k, i, j)| vector[(k * h + i) * w + j])
}

/// Parameters of an Affine layer from `inputs` to `outputs` values: one weight per pair
/// (fully connected) plus one bias per output.
///
/// ```
/// use cnn_from_scratch::fc_limits::affine_param_count;
/// // The book's SimpleConvNet: Affine 4320 -> 100.
/// assert_eq!(affine_param_count(4320, 100), 432_100);
/// ```
pub fn affine_param_count(inputs: usize, outputs: usize) -> usize {
    inputs * outputs + outputs
}

/// Parameters of a convolution layer with `filters` filters of shape `(channels, fh, fw)`:
/// the filter entries plus one bias per filter. It does not depend on the image size,
/// because every position shares the same filter.
///
/// ```
/// use cnn_from_scratch::fc_limits::conv_param_count;
/// // SimpleConvNet's first layer: 30 filters of 1x5x5.
/// assert_eq!(conv_param_count(1, 30, 5, 5), 780);
/// ```
pub fn conv_param_count(channels: usize, filters: usize, fh: usize, fw: usize) -> usize {
    filters * channels * fh * fw + filters
}

/// Parameter counts of a convolution and of an Affine layer doing the same job: same input
/// image, same number of output values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    /// Input image `(C, H, W)`.
    pub input: (usize, usize, usize),
    /// Output of the convolution `(FN, OH, OW)`, no padding, stride 1.
    pub output: (usize, usize, usize),
    /// Parameters of the convolution layer.
    pub conv: usize,
    /// Parameters of an Affine layer from `C*H*W` inputs to `FN*OH*OW` outputs.
    pub affine: usize,
}

/// Compare parameter counts: a convolution with `filters` filters of `fh x fw` on an image
/// of shape `input = (C, H, W)` (no padding, stride 1) against an Affine layer that maps the
/// flattened image to the same number of outputs.
///
/// ```
/// use cnn_from_scratch::fc_limits::compare_param_counts;
///
/// // One MNIST digit through SimpleConvNet's first layer.
/// let counts = compare_param_counts((1, 28, 28), 30, 5, 5).unwrap();
/// assert_eq!(counts.output, (30, 24, 24));
/// assert_eq!(counts.conv, 780);
/// assert_eq!(counts.affine, 784 * 17_280 + 17_280); // about 13.6 million
/// // A filter larger than the image is a setting error.
/// assert!(compare_param_counts((1, 4, 4), 1, 5, 5).is_err());
/// ```
pub fn compare_param_counts(
    input: (usize, usize, usize),
    filters: usize,
    fh: usize,
    fw: usize,
) -> Result<ParamCounts, SettingError> {
    let (c, h, w) = input;
    if fh == 0 || fw == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: fh,
            filter_w: fw,
        });
    }
    let output = (
        filters,
        conv_output_size(h, fh, 0, 1)?,
        conv_output_size(w, fw, 0, 1)?,
    );
    Ok(ParamCounts {
        input,
        output,
        conv: conv_param_count(c, filters, fh, fw),
        affine: affine_param_count(c * h * w, output.0 * output.1 * output.2),
    })
}

/// A fixed, reproducible shuffle of `0..n`: the same `seed` always gives the same order.
///
/// ```
/// use cnn_from_scratch::fc_limits::pixel_permutation;
///
/// let p = pixel_permutation(10, 7);
/// assert_eq!(p, pixel_permutation(10, 7));
/// let mut sorted = p.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>());
/// ```
pub fn pixel_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

/// Scramble an image's pixels: pixel `k` of the result (in row-by-row order) is pixel
/// `permutation[k]` of the input. Applied with one fixed permutation to every image, this
/// keeps all the information (it can be undone) but destroys which pixels are neighbours.
///
/// # Panics
///
/// If `permutation` is not a permutation of `0..H*W`.
///
/// ```
/// use cnn_from_scratch::fc_limits::permute_pixels;
/// use ndarray::array;
///
/// let image = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// assert_eq!(permute_pixels(&image, &[3, 0, 2, 1]), array![[4.0, 1.0], [3.0, 2.0]]);
/// ```
pub fn permute_pixels(image: &ArrayRef2<f32>, permutation: &[usize]) -> Array2<f32> {
    assert_is_permutation(permutation, image.len(), image.shape());
    let flat = flatten(image);
    flat.select(Axis(0), permutation)
        .into_shape_with_order(image.dim())
        .expect("a permutation keeps the number of pixels")
}

fn assert_is_permutation(permutation: &[usize], n: usize, shape: &[usize]) {
    let mut seen = vec![false; n];
    let is_permutation = permutation.len() == n
        && permutation
            .iter()
            .all(|&k| k < n && !std::mem::replace(&mut seen[k], true));
    assert!(
        is_permutation,
        "a pixel permutation for an image of shape {shape:?} must hold each of 0..{n} once, \
         got {} entries of shape [{}]",
        if permutation.len() == n {
            "repeated or out-of-range"
        } else {
            "the wrong number of"
        },
        permutation.len()
    );
}

/// The numbers of [`permutation_demo`]: how much each layer's output moves when the pixels
/// are shuffled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PermutationDemo {
    /// Largest `|y - y'|` between the Affine outputs for (image, weights) and for
    /// (shuffled image, rows of the weights shuffled alike). Zero up to float rounding.
    pub fc_max_abs_diff: f32,
    /// Largest `|y|` of the Affine outputs, to judge the difference against.
    pub fc_output_max_abs: f32,
    /// Largest `|y - y'|` between the convolution outputs (Sobel x filter) for the image
    /// and for the shuffled image, position by position.
    pub conv_max_abs_diff: f32,
    /// The same after sorting both outputs: even allowed to rearrange its outputs freely,
    /// the convolution cannot give the same values on the shuffled image.
    pub conv_sorted_max_abs_diff: f32,
    /// Largest `|y|` of the convolution output on the original image.
    pub conv_output_max_abs: f32,
}

/// Shuffle the pixels of `image` with the fixed permutation `pixel_permutation(H*W, seed)`
/// and measure what a fully connected layer and a convolution make of it.
///
/// * Affine layer, 10 outputs, weights drawn from `N(0, 1/(H*W))` with `seed`: apply it to
///   the image, then to the shuffled image with the rows of its weights shuffled alike.
///   Each output sums the same products in a different order, so the outputs agree up to
///   rounding: the fully connected layer is blind to where the pixels are.
/// * Convolution with the Sobel x filter: there is no way to "shuffle a 3x3 filter along
///   with the pixels", because after shuffling, a pixel's neighbours are random other
///   pixels. The output on the shuffled image is a different picture.
///
/// The image must be at least 3x3 (the filter's size), otherwise a setting error.
///
/// ```
/// use cnn_from_scratch::fc_limits::permutation_demo;
/// use ndarray::Array2;
///
/// // A bright square on a dark background.
/// let image = Array2::from_shape_fn((12, 12), |(i, j)| {
///     if (3..9).contains(&i) && (3..9).contains(&j) { 1.0_f32 } else { 0.0 }
/// });
/// let demo = permutation_demo(&image, 42).unwrap();
/// println!("{demo:?}");
/// assert!(demo.fc_max_abs_diff < 1e-5);
/// assert!(demo.conv_max_abs_diff > 1.0);
/// ```
pub fn permutation_demo(
    image: &ArrayRef2<f32>,
    seed: u64,
) -> Result<PermutationDemo, SettingError> {
    const FC_OUTPUTS: usize = 10;
    let n = image.len();
    let permutation = pixel_permutation(n, seed);
    let shuffled = permute_pixels(image, &permutation);

    // Fully connected: y = x · W, and y' = x' · W' with x' and the rows of W' shuffled alike.
    let normal = Normal::new(0.0_f32, (1.0 / n.max(1) as f32).sqrt())
        .expect("a positive, finite standard deviation");
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = Array2::from_shape_simple_fn((n, FC_OUTPUTS), || normal.sample(&mut rng));
    let shuffled_weights = weights.select(Axis(0), &permutation);
    let fc = flatten(image).dot(&weights);
    let fc_shuffled = flatten(&shuffled).dot(&shuffled_weights);

    // Convolution: the same filter on both images.
    let conv = conv2d(image, &sobel_x(), 0.0)?;
    let conv_shuffled = conv2d(&shuffled, &sobel_x(), 0.0)?;

    let mut sorted = flatten(&conv).to_vec();
    let mut sorted_shuffled = flatten(&conv_shuffled).to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted_shuffled.sort_by(f32::total_cmp);

    Ok(PermutationDemo {
        fc_max_abs_diff: max_abs_diff(fc.iter(), fc_shuffled.iter()),
        fc_output_max_abs: fc.iter().fold(0.0, |m, &v| m.max(v.abs())),
        conv_max_abs_diff: max_abs_diff(conv.iter(), conv_shuffled.iter()),
        conv_sorted_max_abs_diff: max_abs_diff(sorted.iter(), sorted_shuffled.iter()),
        conv_output_max_abs: conv.iter().fold(0.0, |m, &v| m.max(v.abs())),
    })
}

fn max_abs_diff<'a>(a: impl Iterator<Item = &'a f32>, b: impl Iterator<Item = &'a f32>) -> f32 {
    a.zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}
