//! "Filters are learned from data": a single convolution trained on (image, Sobel-x
//! filtered image) pairs recovers the Sobel-x kernel.

use cnn_from_scratch::full_cnn::learn_filter::learn_sobel_x;
use ndarray::array;

/// The textbook Sobel-x kernel, written out here independently of `convolution::sobel_x`.
fn sobel_x() -> ndarray::Array2<f32> {
    array![[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
}

#[test]
fn gradient_descent_recovers_sobel_x() {
    let history = learn_sobel_x(60, 0.2, 0);
    assert_eq!(history.kernels.len(), 61);
    assert_eq!(history.losses.len(), 60);
    let start = &history.kernels[0];
    let learned = history.kernels.last().unwrap();
    let max_error = (learned - &sobel_x())
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()));
    eprintln!(
        "learned kernel after 60 steps:\n{learned:.4}\nmax |learned - Sobel-x| = {max_error:.2e}"
    );
    assert!(
        max_error < 1e-2,
        "learned kernel {learned} is not within 1e-2 of Sobel-x"
    );
    assert!(
        history.biases.last().unwrap().abs() < 1e-2,
        "the bias should vanish"
    );
    // It really was learned: the start was far from Sobel-x.
    assert!((start - &sobel_x()).iter().any(|d| d.abs() > 0.5));
    // And the loss went down along the way.
    assert!(history.losses[59] < 1e-3 * history.losses[0]);
}

#[test]
fn same_seed_same_history() {
    assert_eq!(learn_sobel_x(5, 0.2, 3), learn_sobel_x(5, 0.2, 3));
    assert_ne!(learn_sobel_x(5, 0.2, 3), learn_sobel_x(5, 0.2, 4));
}
