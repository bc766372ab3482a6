//! Tests for `convolution`: hand-computed cases, classic filters on images whose response
//! is known in closed form, and the convolution = sparse weight-shared Affine equivalence.

use cnn_from_scratch::SettingError;
use cnn_from_scratch::convolution::{
    box_filter, conv_as_affine, conv2d, conv2d_via_affine, laplacian, sharpen, sobel_x, sobel_y,
};
use ndarray::{Array2, array};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn book_input() -> Array2<f32> {
    array![
        [1., 2., 3., 0.],
        [0., 1., 2., 3.],
        [3., 0., 1., 2.],
        [2., 3., 0., 1.]
    ]
}

fn book_filter() -> Array2<f32> {
    array![[2., 0., 1.], [0., 1., 2.], [1., 0., 2.]]
}

fn random_array(rng: &mut StdRng, shape: (usize, usize)) -> Array2<f32> {
    Array2::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

#[test]
fn book_example_fig_7_3_and_7_4() {
    // Fig 7-3: [[15, 16], [6, 15]]; Fig 7-4 adds the bias 3 to every element.
    assert_eq!(
        conv2d(&book_input(), &book_filter(), 0.0).unwrap(),
        array![[15., 16.], [6., 15.]]
    );
    assert_eq!(
        conv2d(&book_input(), &book_filter(), 3.0).unwrap(),
        array![[18., 19.], [9., 18.]]
    );
}

#[test]
fn hand_computed_rectangular_case() {
    // x is 2x3, filter 1x2: out[i, j] = x[i, j] * 1 + x[i, j+1] * 10, worked out by hand.
    let x = array![[1., 2., 3.], [4., 5., 6.]];
    let w = array![[1., 10.]];
    assert_eq!(
        conv2d(&x, &w, -1.0).unwrap(),
        array![
            [1. + 20. - 1., 2. + 30. - 1.],
            [4. + 50. - 1., 5. + 60. - 1.]
        ]
    );
}

#[test]
fn cross_correlation_does_not_flip_the_filter() {
    // A filter with a single 1 at (0, 0) picks the top-left pixel of each window; a true
    // (flipped) convolution would pick the bottom-right one.
    let x = Array2::from_shape_fn((4, 4), |(i, j)| (10 * i + j) as f32);
    let w = array![[1., 0.], [0., 0.]];
    let y = conv2d(&x, &w, 0.0).unwrap();
    assert_eq!(
        y,
        Array2::from_shape_fn((3, 3), |(i, j)| (10 * i + j) as f32)
    );
}

#[test]
fn filters_on_images_with_known_responses() {
    // Brightness x(i, j) = 3j: Sobel x gives (1+2+1) * (3*2) = 24, Sobel y gives 0.
    let ramp = Array2::from_shape_fn((5, 6), |(_, j)| 3.0 * j as f32);
    assert!(
        conv2d(&ramp, &sobel_x(), 0.0)
            .unwrap()
            .iter()
            .all(|&v| v == 24.0)
    );
    assert!(
        conv2d(&ramp, &sobel_y(), 0.0)
            .unwrap()
            .iter()
            .all(|&v| v == 0.0)
    );

    // x(i, j) = i^2 + j^2 has Laplacian 2 + 2 = 4 everywhere (exact for the 5-point stencil).
    let bowl = Array2::from_shape_fn((6, 7), |(i, j)| (i * i + j * j) as f32);
    assert!(
        conv2d(&bowl, &laplacian(), 0.0)
            .unwrap()
            .iter()
            .all(|&v| v == 4.0)
    );
    // Sharpen = identity - Laplacian, so on the bowl it gives x - 4 at the centre pixel.
    let sharp = conv2d(&bowl, &sharpen(), 0.0).unwrap();
    assert_eq!(sharp[[2, 3]], bowl[[3, 4]] - 4.0);

    // A 3x3 box filter gives the mean of each 3x3 window, computed here by slicing.
    let mut rng = StdRng::seed_from_u64(1);
    let x = random_array(&mut rng, (6, 5));
    let blurred = conv2d(&x, &box_filter(3).unwrap(), 0.0).unwrap();
    for ((i, j), &v) in blurred.indexed_iter() {
        let mean = x.slice(ndarray::s![i..i + 3, j..j + 3]).mean().unwrap();
        assert!(
            (v - mean).abs() < 1e-6,
            "box blur at ({i}, {j}): {v} vs {mean}"
        );
    }
}

#[test]
fn settings_that_do_not_fit_are_errors() {
    let x = Array2::<f32>::zeros((3, 5));
    assert_eq!(
        conv2d(&x, &Array2::zeros((4, 2)), 0.0),
        Err(SettingError::FilterTooLarge {
            input: 3,
            filter: 4,
            pad: 0,
            padded: 3
        })
    );
    assert_eq!(
        conv2d(&x, &Array2::zeros((0, 2)), 0.0),
        Err(SettingError::EmptyFilter {
            filter_h: 0,
            filter_w: 2
        })
    );
    assert_eq!(
        box_filter(0),
        Err(SettingError::EmptyFilter {
            filter_h: 0,
            filter_w: 0
        })
    );
    assert!(conv_as_affine(&Array2::zeros((2, 6)), 3, 5).is_err());
}

#[test]
fn sparse_affine_equals_convolution_on_random_shapes() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..50 {
        let (h, w) = (rng.random_range(1..12), rng.random_range(1..12));
        let (fh, fw) = (rng.random_range(1..=h), rng.random_range(1..=w));
        let x = random_array(&mut rng, (h, w));
        let filter = random_array(&mut rng, (fh, fw));
        let bias = rng.random_range(-1.0..1.0);

        let direct = conv2d(&x, &filter, bias).unwrap();
        let affine = conv2d_via_affine(&x, &filter, bias).unwrap();
        assert_eq!(direct.dim(), (h - fh + 1, w - fw + 1));
        assert_eq!(direct.dim(), affine.dim());
        for (a, b) in direct.iter().zip(&affine) {
            assert!(
                (a - b).abs() < 1e-5,
                "{h}x{w} image, {fh}x{fw} filter: {a} vs {b}"
            );
        }
    }
}

#[test]
fn affine_matrix_is_sparse_and_weight_shared() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20 {
        let (h, w) = (rng.random_range(2..10), rng.random_range(2..10));
        let (fh, fw) = (rng.random_range(1..=h), rng.random_range(1..=w));
        // Entries in [0.5, 1.5): none is zero, so zeros in the matrix are structural.
        let filter = Array2::from_shape_simple_fn((fh, fw), || rng.random_range(0.5..1.5));
        let matrix = conv_as_affine(&filter, h, w).unwrap();
        let (oh, ow) = (h - fh + 1, w - fw + 1);
        assert_eq!(matrix.dim(), (h * w, oh * ow));

        let mut filter_values: Vec<f32> = filter.iter().copied().collect();
        filter_values.sort_by(f32::total_cmp);
        for column in matrix.columns() {
            // Sparse: only FH*FW connections per output. Shared: they are the filter's values.
            let mut nonzero: Vec<f32> = column.iter().copied().filter(|&v| v != 0.0).collect();
            nonzero.sort_by(f32::total_cmp);
            assert_eq!(nonzero, filter_values);
        }
        // Column (i, j) connects exactly to the pixels of the window at (i, j).
        let (i, j) = (oh - 1, ow - 1);
        let column = matrix.column(i * ow + j);
        for (pixel, &v) in column.iter().enumerate() {
            let (r, c) = (pixel / w, pixel % w);
            let inside = (i..i + fh).contains(&r) && (j..j + fw).contains(&c);
            assert_eq!(v != 0.0, inside, "pixel ({r}, {c}) of output ({i}, {j})");
        }
    }
}
