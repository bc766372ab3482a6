//! Tests for `fc_limits`: flatten/unflatten round trips, parameter counts against the
//! Affine matrix a convolution really is, and the permutation demonstration.

use cnn_from_scratch::convolution::conv_as_affine;
use cnn_from_scratch::fc_limits::{
    affine_param_count, compare_param_counts, conv_param_count, flatten, permutation_demo,
    permute_pixels, pixel_permutation, unflatten,
};
use ndarray::{Array1, Array2, Array3, array};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A digit-like picture: a thick "7" on a dark 28x28 background.
fn seven() -> Array2<f32> {
    Array2::from_shape_fn((28, 28), |(i, j)| {
        let top_bar = (5..9).contains(&i) && (6..22).contains(&j);
        let stroke = (9..24).contains(&i) && {
            let centre = 21.0 - (i as f32 - 9.0) * 0.6;
            (j as f32 - centre).abs() < 2.0
        };
        if top_bar || stroke { 1.0 } else { 0.0 }
    })
}

#[test]
fn flatten_and_unflatten_round_trip() {
    let mut rng = StdRng::seed_from_u64(31);
    for _ in 0..20 {
        let shape = (
            rng.random_range(1..4),
            rng.random_range(1..9),
            rng.random_range(1..9),
        );
        let image = Array3::from_shape_simple_fn(shape, || rng.random::<f32>());
        let v = flatten(&image);
        assert_eq!(v.len(), shape.0 * shape.1 * shape.2);
        // Row-major order: pixel (c, i, j) sits at (c*H + i)*W + j.
        let (_, h, w) = shape;
        for ((c, i, j), &p) in image.indexed_iter() {
            assert_eq!(v[(c * h + i) * w + j], p);
        }
        assert_eq!(unflatten(&v, shape), image);
    }
    // A transposed view flattens in its logical order, not its memory order.
    let x = array![[1.0_f32, 2.0], [3.0, 4.0]];
    assert_eq!(flatten(&x.t()), array![1.0, 3.0, 2.0, 4.0]);
}

#[test]
#[should_panic(expected = "vector of shape [10] into an image of shape [1, 3, 3]")]
fn unflatten_wrong_length_panics() {
    let _ = unflatten(&Array1::zeros(10), (1, 3, 3));
}

#[test]
fn parameter_counts() {
    // SimpleConvNet: conv 30x1x5x5 + 30 biases, Affine 4320 -> 100 and 100 -> 10.
    assert_eq!(conv_param_count(1, 30, 5, 5), 30 * 25 + 30);
    assert_eq!(affine_param_count(4320, 100), 4320 * 100 + 100);
    assert_eq!(affine_param_count(100, 10), 1010);
    // A colour picture: 3 channels, 64 filters of 3x3.
    let counts = compare_param_counts((3, 32, 32), 64, 3, 3).unwrap();
    assert_eq!(counts.output, (64, 30, 30));
    assert_eq!(counts.conv, 64 * 27 + 64);
    assert_eq!(counts.affine, 3072 * 57_600 + 57_600);

    // The Affine layer a single-filter convolution equals (conv_as_affine) has exactly as
    // many weights as the fully connected count says, but only FH*FW distinct values.
    let mut rng = StdRng::seed_from_u64(32);
    for _ in 0..10 {
        let (h, w) = (rng.random_range(3..10), rng.random_range(3..10));
        let (fh, fw) = (rng.random_range(1..=3), rng.random_range(1..=3));
        let filter = Array2::from_shape_simple_fn((fh, fw), || rng.random_range(0.5..1.5));
        let matrix = conv_as_affine(&filter, h, w).unwrap();
        let counts = compare_param_counts((1, h, w), 1, fh, fw).unwrap();
        let outputs = matrix.ncols();
        assert_eq!(counts.affine, matrix.len() + outputs);
        assert_eq!(counts.conv, fh * fw + 1);
    }
    assert!(compare_param_counts((1, 4, 4), 2, 5, 3).is_err());
    assert!(compare_param_counts((1, 4, 4), 2, 0, 3).is_err());
}

#[test]
fn permutation_is_fixed_and_invertible() {
    let n = 28 * 28;
    let p = pixel_permutation(n, 5);
    assert_eq!(p, pixel_permutation(n, 5));
    assert_ne!(p, pixel_permutation(n, 6));
    let mut sorted = p.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());

    // Undo the permutation with its inverse: every pixel comes back.
    let image = seven();
    let shuffled = permute_pixels(&image, &p);
    let mut inverse = vec![0; n];
    for (k, &source) in p.iter().enumerate() {
        inverse[source] = k;
    }
    assert_eq!(permute_pixels(&shuffled, &inverse), image);
    assert_ne!(shuffled, image);
}

#[test]
#[should_panic(expected = "must hold each of 0..4 once")]
fn permute_pixels_rejects_a_non_permutation() {
    let _ = permute_pixels(&Array2::zeros((2, 2)), &[0, 1, 1, 3]);
}

#[test]
fn fully_connected_cannot_see_the_shuffle_convolution_can() {
    for seed in 0..5 {
        let demo = permutation_demo(&seven(), seed).unwrap();
        assert!(demo.fc_output_max_abs > 0.1, "{demo:?}");
        assert!(demo.fc_max_abs_diff < 1e-5, "{demo:?}");
        // Sobel responses on the 7 reach 4; on the scrambled 7 the map is different at
        // many places, and even its sorted values differ.
        assert!(demo.conv_output_max_abs >= 3.0, "{demo:?}");
        assert!(demo.conv_max_abs_diff > 2.0, "{demo:?}");
        assert!(demo.conv_sorted_max_abs_diff > 0.5, "{demo:?}");
    }
}

#[test]
fn fc_invariance_by_explicit_sums() {
    // Independent of permutation_demo: one Affine output written as a plain sum over pixels.
    let mut rng = StdRng::seed_from_u64(33);
    let image = Array2::from_shape_simple_fn((6, 5), || rng.random::<f32>());
    let weights: Vec<f32> = (0..30).map(|_| rng.random_range(-1.0..1.0)).collect();
    let p = pixel_permutation(30, 9);
    let shuffled = flatten(&permute_pixels(&image, &p));
    let original = flatten(&image);
    let y: f32 = (0..30).map(|k| original[k] * weights[k]).sum();
    let y_shuffled: f32 = (0..30).map(|k| shuffled[k] * weights[p[k]]).sum();
    assert!((y - y_shuffled).abs() < 1e-5);
}
