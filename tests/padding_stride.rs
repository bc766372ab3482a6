//! Tests for `padding_stride`: each kind of bad setting gives its own error, zero padding
//! on every layout, and padded/strided convolution against hand-worked results (the book's
//! Fig 7-6) and against closed-form sums.

use cnn_from_scratch::SettingError;
use cnn_from_scratch::convolution::conv2d;
use cnn_from_scratch::padding_stride::{
    conv_output_size, conv2d_pad_stride, output_size_table, pad_zeros,
};
use ndarray::{Array2, Array3, Array4, array, s};
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

#[test]
fn each_bad_setting_has_its_own_error() {
    assert_eq!(
        conv_output_size(5, 3, 0, 0),
        Err(SettingError::ZeroStride { stride: 0 })
    );
    assert_eq!(
        conv_output_size(5, 0, 1, 1),
        Err(SettingError::EmptyFilter {
            filter_h: 0,
            filter_w: 0
        })
    );
    assert_eq!(
        conv_output_size(2, 5, 1, 1),
        Err(SettingError::FilterTooLarge {
            input: 2,
            filter: 5,
            pad: 1,
            padded: 4
        })
    );
    let not_whole = conv_output_size(6, 3, 0, 2);
    assert_eq!(
        not_whole,
        Err(SettingError::NotWhole {
            input: 6,
            filter: 3,
            pad: 0,
            stride: 2,
            numerator: 3
        })
    );
    // The message names the numbers the caller chose.
    let message = not_whole.unwrap_err().to_string();
    assert!(message.contains("(6 + 2*0 - 3) / 2"), "{message}");
}

#[test]
fn output_size_matches_counting_positions() {
    // Count by hand how many windows fit: start at 0, step by S while the window fits in the
    // padded input. Whenever (7.1) accepts a setting, the count must agree with it, and it
    // must reject exactly the settings that leave pixels uncovered at the end.
    for input in 1..12 {
        for filter in 1..6 {
            for pad in 0..3 {
                for stride in 1..4 {
                    let padded = input + 2 * pad;
                    let positions = (0..)
                        .map(|k| k * stride)
                        .take_while(|start| start + filter <= padded)
                        .count();
                    let exact = positions > 0 && (positions - 1) * stride + filter == padded;
                    match conv_output_size(input, filter, pad, stride) {
                        Ok(size) => {
                            assert!(exact);
                            assert_eq!(size, positions);
                        }
                        Err(_) => assert!(!exact, "{input} {filter} {pad} {stride}"),
                    }
                }
            }
        }
    }
}

#[test]
fn pad_zeros_on_every_layout() {
    assert_eq!(
        pad_zeros(&array![[5.0_f32]], 2),
        Array2::from_shape_fn((5, 5), |(i, j)| if (i, j) == (2, 2) { 5.0 } else { 0.0 })
    );
    let x = array![[1.0_f32, 2.0, 3.0]];
    assert_eq!(pad_zeros(&x, 0), x);

    let mut rng = StdRng::seed_from_u64(3);
    let image = Array3::from_shape_simple_fn((3, 4, 5), || rng.random_range(1.0..2.0));
    let padded = pad_zeros(&image, 2);
    assert_eq!(padded.dim(), (3, 8, 9));
    assert_eq!(padded.slice(s![.., 2..6, 2..7]), image);
    // Everything outside the middle is zero: the total is unchanged.
    assert!((padded.sum() - image.sum()).abs() < 1e-4);

    let batch = Array4::from_shape_simple_fn((2, 3, 4, 5), || rng.random_range(1.0..2.0));
    let padded = pad_zeros(&batch, 1);
    assert_eq!(padded.dim(), (2, 3, 6, 7));
    assert_eq!(padded.slice(s![.., .., 1..5, 1..6]), batch);
    assert!((padded.sum() - batch.sum()).abs() < 1e-3);
}

#[test]
fn book_example_with_padding_fig_7_6() {
    // Fig 7-6: padding 1 keeps the 4x4 size. Worked by hand, e.g. the corner (0, 0) sees
    // only the filter's bottom-right 2x2 over x's top-left 2x2: 1*1 + 2*2 + 0*0 + 2*1 = 7;
    // (0, 3): 0*3 + 1*0 + 1*2 + 0*3 = 2; (3, 3): 2*1 + 0*2 + 0*0 + 1*1 = 3.
    let expected = array![
        [7., 12., 10., 2.],
        [4., 15., 16., 10.],
        [10., 6., 15., 6.],
        [8., 10., 4., 3.]
    ];
    assert_eq!(
        conv2d_pad_stride(&book_input(), &book_filter(), 0.0, 1, 1).unwrap(),
        expected
    );
    // Stride 3 with padding 1 keeps only the four corners of that result.
    assert_eq!(
        conv2d_pad_stride(&book_input(), &book_filter(), 1.0, 1, 3).unwrap(),
        array![[8., 3.], [9., 4.]]
    );
    // Stride 2 with padding 1: (4 + 2 - 3) / 2 is not whole.
    assert!(matches!(
        conv2d_pad_stride(&book_input(), &book_filter(), 0.0, 1, 2),
        Err(SettingError::NotWhole { numerator: 3, .. })
    ));
}

#[test]
fn stride_two_against_closed_form() {
    // x(i, j) = 7i + j on a 7x7 grid; a 3x3 filter of ones with stride 2 sums the 3x3 block
    // starting at (2i, 2j), which is 9 times its centre value 7(2i+1) + (2j+1).
    let x = Array2::from_shape_fn((7, 7), |(i, j)| (7 * i + j) as f32);
    let y = conv2d_pad_stride(&x, &Array2::ones((3, 3)), 0.5, 0, 2).unwrap();
    let expected = Array2::from_shape_fn((3, 3), |(i, j)| {
        9.0 * (7 * (2 * i + 1) + 2 * j + 1) as f32 + 0.5
    });
    assert_eq!(y, expected);
}

#[test]
fn no_padding_stride_one_is_the_plain_convolution() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..30 {
        let (h, w) = (rng.random_range(1..10), rng.random_range(1..10));
        let (fh, fw) = (rng.random_range(1..=h), rng.random_range(1..=w));
        let x = Array2::from_shape_simple_fn((h, w), || rng.random_range(-1.0..1.0));
        let f = Array2::from_shape_simple_fn((fh, fw), || rng.random_range(-1.0..1.0));
        assert_eq!(
            conv2d_pad_stride(&x, &f, 0.25, 0, 1).unwrap(),
            conv2d(&x, &f, 0.25).unwrap()
        );
    }
}

#[test]
fn padded_strided_convolution_errors() {
    let x = Array2::<f32>::zeros((5, 5));
    let f = Array2::<f32>::zeros((3, 3));
    assert_eq!(
        conv2d_pad_stride(&x, &f, 0.0, 0, 0),
        Err(SettingError::ZeroStride { stride: 0 })
    );
    assert_eq!(
        conv2d_pad_stride(&x, &Array2::zeros((3, 0)), 0.0, 0, 1),
        Err(SettingError::EmptyFilter {
            filter_h: 3,
            filter_w: 0
        })
    );
    assert!(matches!(
        conv2d_pad_stride(&x, &Array2::zeros((8, 3)), 0.0, 1, 1),
        Err(SettingError::FilterTooLarge { padded: 7, .. })
    ));
}

#[test]
fn output_size_table_rows() {
    let settings = [
        (3, 0, 1),
        (3, 1, 1),
        (5, 2, 1),
        (3, 1, 2),
        (2, 0, 2),
        (3, 0, 0),
    ];
    let rows = output_size_table(32, &settings);
    assert_eq!(rows.len(), settings.len());
    // (32 - 3)/1 + 1 = 30, (32 + 2 - 3)/1 + 1 = 32, (32 + 4 - 5) + 1 = 32,
    // (32 + 2 - 3)/2 = 31/2 not whole, (32 - 2)/2 + 1 = 16, stride 0.
    let outputs: Vec<_> = rows.iter().map(|r| r.output.clone().ok()).collect();
    assert_eq!(
        outputs,
        vec![Some(30), Some(32), Some(32), None, Some(16), None]
    );
    assert_eq!((rows[3].filter, rows[3].pad, rows[3].stride), (3, 1, 2));
    assert!(rows[1].to_string().contains("OH=32"));
    assert!(rows[5].to_string().contains("stride must be at least 1"));
}
