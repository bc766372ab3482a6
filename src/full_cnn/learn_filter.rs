//! "Filters are learned from data" (フィルタリングするための畳み込み層: フィルタの値は
//! データから学習する), made visible: a single [`Convolution`] layer, trained by gradient
//! descent to reproduce what the Sobel filter does to images, ends up *being* the Sobel
//! filter.
//!
//! The experiment: random images `x` and their Sobel-x filtered versions `t` are the
//! training pairs. A 3x3 convolution starts from small random weights and minimises the
//! mean squared error `L = (1/2M) Σ (conv(x) - t)²` over the `M` output pixels. Its only
//! way to match every pair is to become the filter that made them, so its weights walk to
//! Sobel-x; [`FilterLearning::kernels`] records them step by step for a picture.

use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::Convolution;
use crate::convolution::{conv2d, sobel_x};

/// What [`learn_filter`] recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterLearning {
    /// The kernel before training (`kernels[0]`) and after each step (`kernels[k]` after
    /// `k` steps): `steps + 1` kernels.
    pub kernels: Vec<Array2<f32>>,
    /// The bias, likewise (the target filter has none, so it should go to 0).
    pub biases: Vec<f32>,
    /// The loss before each step (`steps` values).
    pub losses: Vec<f32>,
}

/// The training targets: each image filtered with `kernel` by the naive loops of
/// [`conv2d`] (section 3), independently of the layer being trained.
fn filter_images(x: ArrayView4<f32>, kernel: ArrayView2<f32>) -> Array4<f32> {
    let (n, _, h, w) = x.dim();
    let (kh, kw) = kernel.dim();
    let mut out = Array4::zeros((n, 1, h - kh + 1, w - kw + 1));
    for (image, mut target) in x.outer_iter().zip(out.outer_iter_mut()) {
        let filtered = conv2d(&image.index_axis(Axis(0), 0), &kernel, 0.0)
            .expect("the caller checked that the kernel fits");
        target.index_axis_mut(Axis(0), 0).assign(&filtered);
    }
    out
}

/// Train a one-filter [`Convolution`] (kernel of `target`'s size, stride 1, no padding)
/// to reproduce `target` applied to random images, by `steps` steps of gradient descent
/// with learning rate `lr`. Images (16 of 12x12 standard-normal pixels) and the initial
/// kernel (`0.1 * N(0, 1)`) come from `seed`: the same seed gives the same history.
///
/// Panics if `target` is empty or larger than 12x12.
///
/// ```
/// use cnn_from_scratch::full_cnn::learn_filter::learn_filter;
/// use ndarray::array;
/// let blur = array![[0.25f32, 0.25], [0.25, 0.25]];
/// let history = learn_filter(blur.view(), 40, 0.3, 7);
/// let learned = history.kernels.last().unwrap();
/// assert!((learned - &blur).iter().all(|d| d.abs() < 1e-3));
/// assert!(history.losses[39] < history.losses[0]);
/// ```
pub fn learn_filter(target: ArrayView2<f32>, steps: usize, lr: f32, seed: u64) -> FilterLearning {
    const IMAGES: usize = 16;
    const SIZE: usize = 12;
    let (kh, kw) = target.dim();
    assert!(
        (1..=SIZE).contains(&kh) && (1..=SIZE).contains(&kw),
        "learn_filter: the target kernel has shape {:?}; it must be between 1x1 and {SIZE}x{SIZE}",
        target.shape()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let images = Array4::from_shape_simple_fn((IMAGES, 1, SIZE, SIZE), || {
        rng.sample::<f32, _>(StandardNormal)
    });
    let targets = filter_images(images.view(), target);
    let w = Array4::from_shape_simple_fn((1, 1, kh, kw), || {
        0.1 * rng.sample::<f32, _>(StandardNormal)
    });
    let mut conv = Convolution::new(w, Array1::zeros(1), 1, 0);

    let kernel_of = |conv: &Convolution| conv.w.slice(ndarray::s![0, 0, .., ..]).to_owned();
    let mut history = FilterLearning {
        kernels: vec![kernel_of(&conv)],
        biases: vec![conv.b[0]],
        losses: Vec::with_capacity(steps),
    };
    let count = targets.len() as f32;
    for _ in 0..steps {
        let y = conv
            .forward(images.view())
            .expect("a kernel of at most 12x12 fits");
        let diff = y - &targets;
        history
            .losses
            .push(diff.mapv(|d| d * d).sum() / (2.0 * count));
        // dL/dy = (y - t) / M; the layer turns it into dL/dW and dL/db.
        conv.backward((diff / count).view());
        conv.w.scaled_add(-lr, &conv.dw);
        conv.b.scaled_add(-lr, &conv.db);
        history.kernels.push(kernel_of(&conv));
        history.biases.push(conv.b[0]);
    }
    history
}

/// [`learn_filter`] with the Sobel-x kernel ([`sobel_x`]) as the target.
///
/// ```
/// use cnn_from_scratch::full_cnn::learn_filter::learn_sobel_x;
/// let history = learn_sobel_x(60, 0.2, 0);
/// let learned = history.kernels.last().unwrap();
/// println!("{learned:.3}");   // close to [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
/// assert!((learned[[1, 2]] - 2.0).abs() < 1e-2);
/// ```
pub fn learn_sobel_x(steps: usize, lr: f32, seed: u64) -> FilterLearning {
    learn_filter(sobel_x().view(), steps, lr, seed)
}
