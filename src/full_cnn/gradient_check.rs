//! Numerical gradient checking (勾配確認): compare a hand-derived backward pass with
//! central differences, for a layer's input, a layer's weights or the whole network.
//!
//! Backpropagation is fast but easy to get wrong: a flipped sign or a forgotten term still
//! gives numbers of the right shape. The numerical gradient is slow (two forward passes
//! per parameter) but follows directly from the definition of a derivative,
//!
//! ```text
//! dL/dx_i ≈ (L(x + h e_i) - L(x - h e_i)) / 2h          (central difference)
//! ```
//!
//! so the two should agree. [`relative_error`] measures how well:
//! `‖a - n‖ / (‖a‖ + ‖n‖)`, 0 for identical gradients, 1 for one gradient zero or for
//! opposite signs.
//!
//! ## The bound in `f32`
//!
//! In `f64` one uses `h ≈ 1e-5` and expects errors below `1e-7`. In `f32` the loss itself
//! is only known to about `1e-7` relative, and dividing that rounding error by `2h` blows
//! it up as `h` shrinks; a large `h`, on the other hand, lets a perturbed input cross a
//! kink (a ReLU input near 0, two near-equal values in a max-pooling window), where the
//! difference quotient is no derivative at all. For entries of order 0.1 to 1,
//! [`DEFAULT_STEP`] `= 5e-4` balances the two; the difference quotient is computed in
//! `f64` from the two `f32` losses.
//!
//! Measured on a small SimpleConvNet (stride 2, padding 1, 40 random seeds, all six
//! parameters): relative errors are typically `1e-5` to `1e-4` and at most `3e-3`; single
//! layers (no kinks crossed) stay below `1e-4`. So [`F32_TOLERANCE`] `= 1e-2` is accepted,
//! while a flipped sign or a missing gradient gives 1, a transposed weight gradient about
//! 0.65, and any gradient off by a factor `s` gives `|s - 1| / (s + 1)`, above the bound
//! once `s` differs from 1 by more than 2% (the tests in `tests/full_cnn_gradients.rs`
//! show both sides). Check a network with a `weight_scale` of 0.1 or more: with the book's
//! 0.01 the first layers' gradients are so small that rounding noise dominates them.

use ndarray::{Array, ArrayView, ArrayView1, ArrayViewD, Dimension, Zip};

use super::{Network, Params};

/// Default finite-difference step for `f32` tensors whose entries are of order 0.1 to 1
/// (see the module docs for how it was chosen).
pub const DEFAULT_STEP: f32 = 5e-4;

/// Largest [`relative_error`] accepted between an analytic and a numerical gradient in
/// `f32` (see the module docs for why it is not `1e-6`).
pub const F32_TOLERANCE: f32 = 1e-2;

/// The numerical gradient of `loss` with respect to every entry of `x`, by central
/// differences with step `h`: `(loss(x + h e_i) - loss(x - h e_i)) / 2h`.
///
/// `loss` receives the perturbed tensor; it returns an `f32` (a network's loss) or an
/// `f64`. `x` is changed one entry at a time and restored exactly before returning.
/// The book's `numerical_gradient(f, x)`.
///
/// On a layer's input, with the simple loss `L = Σ y²/2` whose `dL/dy` is `y`:
///
/// ```
/// use cnn_from_scratch::full_cnn::gradient_check::{numerical_gradient, relative_error, DEFAULT_STEP, F32_TOLERANCE};
/// use cnn_from_scratch::full_cnn::Convolution;
/// use ndarray::{array, Array4};
/// let mut conv = Convolution::new(Array4::from_shape_fn((2, 1, 2, 2), |(f, _, i, j)| (f + i) as f32 - j as f32),
///                                 array![0.1, -0.2], 1, 0);
/// let mut x = Array4::from_shape_fn((1, 1, 3, 3), |(_, _, i, j)| (i * 3 + j) as f32 / 9.0 - 0.5);
///
/// // Analytic: forward, then backward with dL/dy = y.
/// let y = conv.forward(x.view()).unwrap();
/// let dx = conv.backward(y.view());
/// // Numerical: the same loss as a function of x.
/// let numeric = numerical_gradient(
///     |x| conv.forward(x).unwrap().mapv(|v| v as f64 * v as f64 / 2.0).sum(),
///     &mut x,
///     DEFAULT_STEP,
/// );
/// assert!(relative_error(dx.view(), numeric.view()) < F32_TOLERANCE);
/// ```
///
/// On a layer's weights, install the perturbed weights inside the closure:
///
/// ```
/// # use cnn_from_scratch::full_cnn::gradient_check::{numerical_gradient, relative_error, DEFAULT_STEP, F32_TOLERANCE};
/// use cnn_from_scratch::full_cnn::Affine;
/// use ndarray::array;
/// let x = array![[1.0f32, 2.0], [-1.0, 0.5]];
/// let mut affine = Affine::new(array![[0.3, -0.1, 0.2], [0.5, 0.4, -0.6]], array![0.0, 0.1, 0.2]);
/// let y = affine.forward(x.clone());
/// affine.backward(y.view());                          // dL/dy = y for L = Σ y²/2
/// let mut w = affine.w.clone();
/// let numeric = numerical_gradient(
///     |w| {
///         affine.w.assign(&w);
///         affine.forward(x.clone()).mapv(|v| v * v / 2.0).sum()
///     },
///     &mut w,
///     DEFAULT_STEP,
/// );
/// assert!(relative_error(affine.dw.view(), numeric.view()) < F32_TOLERANCE);
/// ```
pub fn numerical_gradient<D, F, R>(mut loss: F, x: &mut Array<f32, D>, h: f32) -> Array<f32, D>
where
    D: Dimension,
    F: FnMut(ArrayView<f32, D>) -> R,
    R: Into<f64>,
{
    // Walk the entries in memory order; `grad` is a clone of `x`, so it has the same layout.
    let mut grad = x.clone();
    for i in 0..x.len() {
        let original = *entry(x, i);
        *entry(x, i) = original + h;
        let plus: f64 = loss(x.view()).into();
        *entry(x, i) = original - h;
        let minus: f64 = loss(x.view()).into();
        *entry(x, i) = original;
        // The actual steps taken, (original ± h) rounded to f32, not the nominal 2h.
        let step = ((original + h) as f64) - ((original - h) as f64);
        grad.as_slice_memory_order_mut()
            .expect("an owned array is contiguous")[i] = ((plus - minus) / step) as f32;
    }
    grad
}

/// Entry `i` of `x` in memory order.
fn entry<D: Dimension>(x: &mut Array<f32, D>, i: usize) -> &mut f32 {
    &mut x
        .as_slice_memory_order_mut()
        .expect("an owned array is contiguous")[i]
}

/// Relative error between an analytic and a numerical gradient,
/// `‖a - n‖ / (‖a‖ + ‖n‖)` with Euclidean norms, computed in `f64`.
/// Zero if both are zero.
///
/// Panics if the shapes differ.
///
/// ```
/// use cnn_from_scratch::full_cnn::gradient_check::relative_error;
/// use ndarray::array;
/// let a = array![1.0f32, -2.0, 3.0];
/// assert_eq!(relative_error(a.view(), a.view()), 0.0);
/// assert_eq!(relative_error(a.view(), (-&a).view()), 1.0);   // a flipped sign
/// assert_eq!(relative_error(a.view(), (0.0 * &a).view()), 1.0); // a missing gradient
/// ```
pub fn relative_error<D: Dimension>(
    analytic: ArrayView<f32, D>,
    numerical: ArrayView<f32, D>,
) -> f32 {
    assert_eq!(
        analytic.shape(),
        numerical.shape(),
        "relative_error: analytic gradient has shape {:?} but numerical has shape {:?}",
        analytic.shape(),
        numerical.shape()
    );
    let (mut diff, mut norm_a, mut norm_n) = (0.0f64, 0.0f64, 0.0f64);
    Zip::from(&analytic).and(&numerical).for_each(|&a, &n| {
        let (a, n) = (a as f64, n as f64);
        diff += (a - n) * (a - n);
        norm_a += a * a;
        norm_n += n * n;
    });
    let denominator = norm_a.sqrt() + norm_n.sqrt();
    if denominator == 0.0 {
        0.0
    } else {
        (diff.sqrt() / denominator) as f32
    }
}

/// The numerical gradient of a network's loss (training mode) with respect to every one of
/// its parameters, by central differences with step `h`, under the parameters' names.
/// Two forward passes per parameter: for small networks only. Dropout layers must draw a
/// fixed mask ([`Dropout::with_fixed_mask`](super::Dropout::with_fixed_mask)), or the loss
/// changes between the two passes for reasons other than the step.
pub fn network_numerical_gradient<D: Dimension>(
    net: &mut Network,
    x: ArrayView<f32, D>,
    labels: ArrayView1<u8>,
    h: f32,
) -> Params {
    let mut numeric = Params::new();
    for (name, tensor) in net.params().into_vec() {
        let mut p = tensor;
        let grad = numerical_gradient(
            |p| {
                set(net, &name, p);
                net.loss(x.view(), labels)
            },
            &mut p,
            h,
        );
        set(net, &name, p.view());
        numeric.push(name, grad);
    }
    numeric
}

fn set(net: &mut Network, name: &str, value: ArrayViewD<f32>) {
    net.params_mut()
        .get_mut(name)
        .expect("the network's own parameter names")
        .assign(&value);
}

/// Checks backpropagation through a whole network: for every parameter, the
/// [`relative_error`] between [`Network::gradient`] and [`network_numerical_gradient`]
/// (step [`DEFAULT_STEP`]), in the parameters' order. A correct network gives errors
/// below [`F32_TOLERANCE`] for weights of order 0.1 or more.
///
/// ```
/// use cnn_from_scratch::full_cnn::gradient_check::{check_network_gradients, F32_TOLERANCE};
/// use cnn_from_scratch::full_cnn::{Init, mlp};
/// use ndarray::{Array1, Array2};
/// let mut net = mlp(&[4, 5, 3], Init::Scale(0.5), 1).unwrap();
/// let x = Array2::from_shape_fn((6, 4), |(i, j)| (i as f32 - j as f32) / 3.0);
/// let t = Array1::from(vec![0u8, 1, 2, 0, 1, 2]);
/// for (name, error) in check_network_gradients(&mut net, x.view(), t.view()) {
///     assert!(error < F32_TOLERANCE, "{name}: {error}");
/// }
/// ```
pub fn check_network_gradients<D: Dimension>(
    net: &mut Network,
    x: ArrayView<f32, D>,
    labels: ArrayView1<u8>,
) -> Vec<(String, f32)> {
    let (_, analytic) = net.gradient(x.view(), labels);
    let numeric = network_numerical_gradient(net, x, labels, DEFAULT_STEP);
    analytic
        .named()
        .into_iter()
        .zip(numeric.named())
        .map(|((name, a), (_, n))| (name.to_string(), relative_error(a, n)))
        .collect()
}
