//! Tests for `multichannel`: the multichannel convolution is the sum of single-channel
//! convolutions (computed with `padding_stride::conv2d_pad_stride`, separate code that pads
//! by copying rather than by bounds checks), hand-computed cases, shape panics, and the
//! example filter bank on a colour picture and on a digit.

use cnn_from_scratch::SettingError;
use cnn_from_scratch::convolution::{conv2d, sobel_x};
use cnn_from_scratch::multichannel::{conv_filter_bank, conv_multichannel, example_filter_bank};
use cnn_from_scratch::padding_stride::conv2d_pad_stride;
use ndarray::{Array1, Array2, Array3, Array4, Axis, array, s};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sum over channels of single-channel convolutions, plus the bias once.
fn sum_of_single_channel(
    x: &Array3<f32>,
    filter: &Array3<f32>,
    bias: f32,
    pad: usize,
    stride: usize,
) -> Array2<f32> {
    let mut total = conv2d_pad_stride(
        &x.index_axis(Axis(0), 0),
        &filter.index_axis(Axis(0), 0),
        bias,
        pad,
        stride,
    )
    .unwrap();
    for c in 1..x.dim().0 {
        total += &conv2d_pad_stride(
            &x.index_axis(Axis(0), c),
            &filter.index_axis(Axis(0), c),
            0.0,
            pad,
            stride,
        )
        .unwrap();
    }
    total
}

fn random3(rng: &mut StdRng, shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

#[test]
fn hand_computed_two_channel_case() {
    // Channel 0 is the book's 4x4 example with its filter (result [[15, 16], [6, 15]]);
    // channel 1 is all ones with a filter of ones (each window sums to 9).
    let x0 = array![
        [1., 2., 3., 0.],
        [0., 1., 2., 3.],
        [3., 0., 1., 2.],
        [2., 3., 0., 1.]
    ];
    let f0 = array![[2., 0., 1.], [0., 1., 2.], [1., 0., 2.]];
    let x = ndarray::stack![Axis(0), x0, Array2::ones((4, 4))];
    let f = ndarray::stack![Axis(0), f0, Array2::ones((3, 3))];
    assert_eq!(
        conv_multichannel(&x, &f, 1.0, 0, 1).unwrap(),
        array![[25., 26.], [16., 25.]]
    );
}

#[test]
fn multichannel_is_sum_of_per_channel_convolutions() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut checked = 0;
    while checked < 40 {
        let c = rng.random_range(1..=3);
        let (h, w) = (rng.random_range(1..10), rng.random_range(1..10));
        let (fh, fw) = (rng.random_range(1..5), rng.random_range(1..5));
        let (pad, stride) = (rng.random_range(0..3), rng.random_range(1..4));
        let x = random3(&mut rng, (c, h, w));
        let f = random3(&mut rng, (c, fh, fw));
        let bias = rng.random_range(-1.0..1.0);
        let Ok(y) = conv_multichannel(&x, &f, bias, pad, stride) else {
            // A setting that does not fit must also be rejected by the single-channel code.
            assert!(
                conv2d_pad_stride(
                    &x.index_axis(Axis(0), 0),
                    &f.index_axis(Axis(0), 0),
                    0.0,
                    pad,
                    stride
                )
                .is_err()
            );
            continue;
        };
        let expected = sum_of_single_channel(&x, &f, bias, pad, stride);
        assert_eq!(y.dim(), expected.dim());
        for (a, b) in y.iter().zip(&expected) {
            assert!(
                (a - b).abs() < 1e-5,
                "c={c} {h}x{w} f={fh}x{fw} P={pad} S={stride}: {a} vs {b}"
            );
        }
        checked += 1;
    }
}

#[test]
fn filter_bank_stacks_one_map_per_filter() {
    let mut rng = StdRng::seed_from_u64(22);
    let x = random3(&mut rng, (3, 9, 7));
    let filters = Array4::from_shape_simple_fn((4, 3, 3, 3), || rng.random_range(-1.0..1.0));
    let bias = array![0.1, -0.2, 0.3, 0.0];
    let maps = conv_filter_bank(&x, &filters, &bias, 1, 2).unwrap();
    // (9 + 2 - 3)/2 + 1 = 5, (7 + 2 - 3)/2 + 1 = 4
    assert_eq!(maps.dim(), (4, 5, 4));
    for n in 0..4 {
        let expected = sum_of_single_channel(
            &x,
            &filters.index_axis(Axis(0), n).to_owned(),
            bias[n],
            1,
            2,
        );
        for (a, b) in maps.index_axis(Axis(0), n).iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "filter {n}: {a} vs {b}");
        }
    }
    assert!(matches!(
        conv_filter_bank(&x, &filters, &bias, 0, 3),
        Err(SettingError::NotWhole { .. })
    ));
}

#[test]
#[should_panic(expected = "filter shape [2, 3, 3], input shape [3, 5, 5]")]
fn channel_mismatch_panics_naming_both_shapes() {
    let _ = conv_multichannel(
        &Array3::zeros((3, 5, 5)),
        &Array3::zeros((2, 3, 3)),
        0.0,
        0,
        1,
    );
}

#[test]
#[should_panic(expected = "filter bank shape [4, 1, 3, 3], input shape [3, 5, 5]")]
fn bank_channel_mismatch_panics_naming_both_shapes() {
    let _ = conv_filter_bank(
        &Array3::zeros((3, 5, 5)),
        &Array4::zeros((4, 1, 3, 3)),
        &Array1::zeros(4),
        0,
        1,
    );
}

#[test]
#[should_panic(expected = "bias shape [3], filter bank shape [4, 1, 3, 3]")]
fn bias_length_mismatch_panics_naming_both_shapes() {
    let _ = conv_filter_bank(
        &Array3::zeros((1, 5, 5)),
        &Array4::zeros((4, 1, 3, 3)),
        &Array1::zeros(3),
        0,
        1,
    );
}

#[test]
fn example_bank_on_a_digit_and_on_a_colour_picture() {
    // Digit (1 channel): the bank's filters are the classic 2-D filters themselves, so its
    // maps equal single-channel convolutions with them; check "vertical edges" = Sobel x.
    let digit = Array2::from_shape_fn((10, 10), |(i, j)| {
        if (2..8).contains(&i) && (4..6).contains(&j) {
            1.0_f32
        } else {
            0.0
        }
    });
    let bank = example_filter_bank(1);
    assert_eq!(bank.names.len(), bank.filters.dim().0);
    let maps = conv_filter_bank(
        &digit.view().insert_axis(Axis(0)),
        &bank.filters,
        &bank.bias,
        0,
        1,
    )
    .unwrap();
    assert_eq!(
        maps.index_axis(Axis(0), 0),
        conv2d(&digit, &sobel_x(), 0.0).unwrap()
    );

    // Colour picture: a red square on a green background. The shape filters act on the mean
    // of the channels; "red - green" is +1 inside the square and -1 outside.
    let (h, w) = (12, 12);
    let inside = |i: usize, j: usize| (4..8).contains(&i) && (4..8).contains(&j);
    let rgb = Array3::from_shape_fn((3, h, w), |(c, i, j)| match (c, inside(i, j)) {
        (0, true) | (1, false) => 1.0_f32,
        _ => 0.0,
    });
    let bank = example_filter_bank(3);
    assert_eq!(bank.filters.dim(), (7, 3, 3, 3));
    let maps = conv_filter_bank(&rgb, &bank.filters, &bank.bias, 1, 1).unwrap();
    assert_eq!(maps.dim(), (7, h, w));
    let red_minus_green = maps.index_axis(Axis(0), 6);
    for ((i, j), &v) in red_minus_green.indexed_iter() {
        assert_eq!(v, if inside(i, j) { 1.0 } else { -1.0 });
    }
    // Mean brightness is 1/3 everywhere (one channel on), so no shape filter sees an edge
    // in the interior: the square is visible by colour only.
    let interior = maps.slice(s![0..6, 1..h - 1, 1..w - 1]);
    for (n, map) in interior.axis_iter(Axis(0)).enumerate() {
        let expected = if n == 4 { 1.0 / 3.0 } else { 0.0 }; // the blur keeps the mean
        assert!(
            map.iter().all(|&v| (v - expected).abs() < 1e-6),
            "filter {}",
            bank.names[n]
        );
    }
}
