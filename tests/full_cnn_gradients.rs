//! Numerical gradient checks of every full_cnn layer and of SimpleConvNet, with stride and
//! padding other than the defaults, and proof that the check catches broken backward passes.
//!
//! Each layer is checked with the loss `L = Σ r ⊙ layer(x)` for a fixed random `r`, so
//! `dL/dout = r` and the numerical gradient (central differences, see
//! `full_cnn::gradient_check`) is independent of the hand-derived backward pass.

use cnn_from_scratch::full_cnn::gradient_check::{
    DEFAULT_STEP, F32_TOLERANCE, network_numerical_gradient, numerical_gradient, relative_error,
};
use cnn_from_scratch::full_cnn::{
    Affine, Convolution, Pooling, Relu, SimpleConvNetConfig, SoftmaxWithLoss, simple_conv_net,
};
use ndarray::{Array, Array1, Array2, Array4, ArrayView, Dimension, Ix4};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn normal<D: Dimension, Sh: ndarray::ShapeBuilder<Dim = D>>(
    shape: Sh,
    rng: &mut StdRng,
) -> Array<f32, D> {
    Array::from_shape_simple_fn(shape, || rng.sample::<f32, _>(StandardNormal))
}

/// `Σ r ⊙ y` in f64: a loss whose gradient with respect to `y` is exactly `r`.
fn project<D: Dimension>(y: ArrayView<f32, D>, r: &Array<f32, D>) -> f64 {
    y.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Assert that a correct gradient passes, print the measured error.
fn assert_passes<D: Dimension>(
    what: &str,
    analytic: ArrayView<f32, D>,
    numeric: ArrayView<f32, D>,
) {
    let err = relative_error(analytic, numeric);
    eprintln!("{what:<40} relative error {err:.2e}");
    assert!(
        err < F32_TOLERANCE,
        "{what}: relative error {err} >= {F32_TOLERANCE}"
    );
}

/// Assert that a deliberately broken gradient fails the same check.
fn assert_caught<D: Dimension>(what: &str, broken: ArrayView<f32, D>, numeric: ArrayView<f32, D>) {
    let err = relative_error(broken, numeric);
    eprintln!("{what:<40} relative error {err:.2e} (broken on purpose)");
    assert!(
        err > 10.0 * F32_TOLERANCE,
        "{what}: a broken gradient passed with error {err}"
    );
}

/// The small shapes of the gradient tests: N=2, C=2, 7x7, 3 filters 3x3, stride 2, pad 1.
struct ConvCase {
    x: Array4<f32>,
    conv: Convolution,
    r: Array4<f32>,
}

fn conv_case(seed: u64) -> ConvCase {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = normal((2, 2, 7, 7), &mut rng);
    let w = normal((3, 2, 3, 3), &mut rng);
    let b = normal(3, &mut rng);
    let conv = Convolution::new(w, b, 2, 1);
    let r = normal((2, 3, 4, 4), &mut rng); // (7 + 2 - 3) / 2 + 1 = 4
    ConvCase { x, conv, r }
}

#[test]
fn convolution_gradients_with_stride_2_and_pad_1() {
    let ConvCase { mut x, mut conv, r } = conv_case(1);
    let y = conv.forward(x.view()).unwrap();
    assert_eq!(y.dim(), r.dim());
    let dx = conv.backward(r.view());
    let (dw, db) = (conv.dw.clone(), conv.db.clone());

    let num_dx = numerical_gradient(
        |x| project(conv.forward(x).unwrap().view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    let mut w = conv.w.clone();
    let num_dw = numerical_gradient(
        |w| {
            conv.w.assign(&w);
            project(conv.forward(x.view()).unwrap().view(), &r)
        },
        &mut w,
        DEFAULT_STEP,
    );
    conv.w.assign(&w);
    let mut b = conv.b.clone();
    let num_db = numerical_gradient(
        |b| {
            conv.b.assign(&b);
            project(conv.forward(x.view()).unwrap().view(), &r)
        },
        &mut b,
        DEFAULT_STEP,
    );
    assert_passes("Convolution dx", dx.view(), num_dx.view());
    assert_passes("Convolution dW", dw.view(), num_dw.view());
    assert_passes("Convolution db", db.view(), num_db.view());

    // Broken on purpose: a transposed filter gradient (FH and FW swapped), a missing bias
    // gradient, a flipped sign on the input gradient.
    assert_caught(
        "Convolution dW transposed",
        dw.view().permuted_axes([0, 1, 3, 2]),
        num_dw.view(),
    );
    assert_caught(
        "Convolution db missing",
        Array1::<f32>::zeros(3).view(),
        num_db.view(),
    );
    assert_caught("Convolution dx sign flipped", (-&dx).view(), num_dx.view());
}

#[test]
fn convolution_gradients_with_default_stride_and_pad() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut x = normal((2, 1, 6, 6), &mut rng);
    let mut conv = Convolution::new(normal((2, 1, 3, 3), &mut rng), normal(2, &mut rng), 1, 0);
    let r = normal((2, 2, 4, 4), &mut rng);
    conv.forward(x.view()).unwrap();
    let dx = conv.backward(r.view());
    let dw = conv.dw.clone();
    let num_dx = numerical_gradient(
        |x| project(conv.forward(x).unwrap().view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    let mut w = conv.w.clone();
    let num_dw = numerical_gradient(
        |w| {
            conv.w.assign(&w);
            project(conv.forward(x.view()).unwrap().view(), &r)
        },
        &mut w,
        DEFAULT_STEP,
    );
    assert_passes("Convolution (stride 1, pad 0) dx", dx.view(), num_dx.view());
    assert_passes("Convolution (stride 1, pad 0) dW", dw.view(), num_dw.view());
}

/// Inputs whose values are all at least 0.1 apart and 0.05 away from 0 (a shuffled ramp
/// of odd multiples of 0.05), so a step of `DEFAULT_STEP` never changes which input wins a
/// max-pooling window nor crosses ReLU's kink.
fn spaced_input(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = shape.0 * shape.1 * shape.2 * shape.3;
    let mut values: Vec<f32> = (0..len)
        .map(|i| 0.1 * i as f32 - 0.05 * len as f32 + 0.05)
        .collect();
    values.shuffle(&mut rng);
    Array4::from_shape_vec(shape, values).unwrap()
}

#[test]
fn max_pooling_gradients_with_overlapping_windows_and_padding() {
    // 3x3 windows, stride 2, pad 1 on 7x7: (7 + 2 - 3) / 2 + 1 = 4; windows overlap, so
    // one pixel can win two windows and must receive both gradients.
    let mut x = spaced_input((2, 2, 7, 7), 3);
    let mut rng = StdRng::seed_from_u64(4);
    let r = normal((2, 2, 4, 4), &mut rng);
    let mut pool = Pooling::new(3, 3, 2, 1);
    pool.forward(x.view()).unwrap();
    let dx = pool.backward(r.view());
    let num_dx = numerical_gradient(
        |x| project(pool.forward(x).unwrap().view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    assert_passes("Pooling max dx", dx.view(), num_dx.view());

    // Broken on purpose: every window's gradient sent to its top-left pixel instead of the
    // winner (the mistake of forgetting the argmax).
    let mut top_left = Array4::<f32>::zeros(x.dim());
    for ((n, c, oy, ox), &g) in r.indexed_iter() {
        let (y, x) = ((2 * oy).saturating_sub(1), (2 * ox).saturating_sub(1));
        top_left[[n, c, y, x]] += g;
    }
    assert_caught(
        "Pooling max dx to the wrong pixel",
        top_left.view(),
        num_dx.view(),
    );
}

#[test]
fn average_pooling_gradients_with_padding() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut x = normal((2, 2, 7, 7), &mut rng);
    let r = normal((2, 2, 4, 4), &mut rng);
    let mut pool = Pooling::average(3, 3, 2, 1);
    pool.forward(x.view()).unwrap();
    let dx = pool.backward(r.view());
    let num_dx = numerical_gradient(
        |x| project(pool.forward(x).unwrap().view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    assert_passes("Pooling average dx", dx.view(), num_dx.view());
    // Broken on purpose: forgetting to divide by the window size.
    assert_caught(
        "Pooling average dx not divided by 9",
        (9.0 * &dx).view(),
        num_dx.view(),
    );
}

#[test]
fn relu_gradients() {
    // Inputs at least 0.1 away from the kink at 0, so a step of 1e-2 never crosses it.
    let mut x = spaced_input((2, 3, 4, 4), 6);
    let mut rng = StdRng::seed_from_u64(7);
    let r = normal((2, 3, 4, 4), &mut rng);
    let mut relu = Relu::new();
    relu.forward(x.clone());
    let dx = relu.backward(r.clone());
    let num_dx = numerical_gradient(
        |x| project(relu.forward(x.to_owned()).view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    assert_passes("Relu dx", dx.view(), num_dx.view());
    // Broken on purpose: a flipped sign, and the mask inverted (gradient passed where x <= 0).
    assert_caught("Relu dx sign flipped", (-&dx).view(), num_dx.view());
    let inverted = &r - &dx;
    assert_caught("Relu dx mask inverted", inverted.view(), num_dx.view());
}

#[test]
fn affine_gradients_on_image_shaped_input() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut x = normal((2, 2, 2, 2), &mut rng); // flattened to (2, 8)
    let mut affine = Affine::new(normal((8, 8), &mut rng), normal(8, &mut rng)); // square W
    let r = normal((2, 8), &mut rng);
    affine.forward(x.clone());
    let dx = affine
        .backward(r.view())
        .into_dimensionality::<Ix4>()
        .expect("the input's rank-4 shape is restored");
    let (dw, db) = (affine.dw.clone(), affine.db.clone());
    let num_dx = numerical_gradient(
        |x| project(affine.forward(x.to_owned()).view(), &r),
        &mut x,
        DEFAULT_STEP,
    );
    let mut w = affine.w.clone();
    let num_dw = numerical_gradient(
        |w| {
            affine.w.assign(&w);
            project(affine.forward(x.clone()).view(), &r)
        },
        &mut w,
        DEFAULT_STEP,
    );
    affine.w.assign(&w);
    let mut b = affine.b.clone();
    let num_db = numerical_gradient(
        |b| {
            affine.b.assign(&b);
            project(affine.forward(x.clone()).view(), &r)
        },
        &mut b,
        DEFAULT_STEP,
    );
    assert_passes("Affine dx (N, C, H, W)", dx.view(), num_dx.view());
    assert_passes("Affine dW", dw.view(), num_dw.view());
    assert_passes("Affine db", db.view(), num_db.view());
    // Broken on purpose: dW transposed (dout^T x instead of x^T dout), db missing.
    assert_caught("Affine dW transposed", dw.t(), num_dw.view());
    assert_caught(
        "Affine db missing",
        Array1::<f32>::zeros(8).view(),
        num_db.view(),
    );
}

#[test]
fn softmax_with_loss_gradients() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut scores: Array2<f32> = normal((3, 5), &mut rng);
    let labels = Array1::from(vec![0u8, 4, 2]);
    let mut last = SoftmaxWithLoss::new();
    last.forward(scores.view(), labels.view());
    let ds = last.backward();
    let num = numerical_gradient(
        |s| last.forward(s, labels.view()),
        &mut scores,
        DEFAULT_STEP,
    );
    assert_passes("SoftmaxWithLoss dscores", ds.view(), num.view());
    // Broken on purpose: forgetting the 1/N of the mean (N = 3).
    assert_caught(
        "SoftmaxWithLoss missing 1/N",
        (3.0 * &ds).view(),
        num.view(),
    );
}

fn check_network(config: SimpleConvNetConfig, seed: u64) {
    let mut net = simple_conv_net(&config, seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed + 100);
    let (c, h, w) = config.input;
    let x: Array4<f32> = normal((3, c, h, w), &mut rng);
    let labels = Array1::from_shape_fn(3, |i| (i % config.classes) as u8);
    let (_, grads) = net.gradient(x.view(), labels.view());
    let numeric = network_numerical_gradient(&mut net, x.view(), labels.view(), DEFAULT_STEP);
    assert_eq!(grads.names(), ["W1", "b1", "W2", "b2", "W3", "b3"]);
    for ((name, analytic), (_, num)) in grads.named().iter().zip(numeric.named()) {
        assert_passes(
            &format!(
                "SimpleConvNet {name} (stride {}, pad {})",
                config.stride, config.pad
            ),
            analytic.view(),
            num.view(),
        );
    }
    // Broken on purpose: the output bias gradient missing, W1's sign flipped.
    assert_caught(
        "SimpleConvNet b3 missing",
        (0.0 * &grads["b3"]).view(),
        numeric["b3"].view(),
    );
    assert_caught(
        "SimpleConvNet W1 sign flipped",
        (-&grads["W1"]).view(),
        numeric["W1"].view(),
    );
}

#[test]
fn simple_conv_net_gradients_with_stride_2_and_pad_1() {
    // (7 + 2 - 3) / 2 + 1 = 4 -> pooled 2x2 -> 3 * 2 * 2 = 12 inputs to the hidden layer.
    // A weight scale of 0.5 instead of the book's 0.01 keeps every gradient well above the
    // f32 rounding noise of the loss.
    let config = SimpleConvNetConfig {
        input: (2, 7, 7),
        filter_num: 3,
        filter_size: 3,
        pad: 1,
        stride: 2,
        hidden: 6,
        classes: 4,
        weight_scale: 0.5,
        pool: 2,
    };
    check_network(config, 11);
}

#[test]
fn simple_conv_net_gradients_with_default_stride_and_pad() {
    let config = SimpleConvNetConfig {
        input: (1, 6, 6),
        filter_num: 2,
        filter_size: 3,
        hidden: 5,
        classes: 3,
        weight_scale: 0.5,
        ..Default::default()
    };
    check_network(config, 12);
}
