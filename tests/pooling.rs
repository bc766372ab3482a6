//! Pooling against hand-computed cases and naive loops, argmax against the values it
//! points at, the settings that must fail, and the shift experiment against its definition.

use cnn_from_scratch::SettingError;
use cnn_from_scratch::pooling::{avg_pool, max_pool, max_pool_with_argmax, shift_experiment};
use ndarray::{Array3, Array4};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Naive pooling: visit every cell of every window, padded cells included, testing
/// each against the image bounds. Padding is `-inf` for max, `0` for average; the average
/// divides by the full window size.
fn naive_pool(
    x: &Array4<f32>,
    ph: usize,
    pw: usize,
    stride: usize,
    pad: usize,
    max: bool,
) -> Array4<f32> {
    let (n, c, h, w) = x.dim();
    let oh = (h + 2 * pad - ph) / stride + 1;
    let ow = (w + 2 * pad - pw) / stride + 1;
    let mut out = Array4::<f32>::zeros((n, c, oh, ow));
    for i in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = if max { f32::NEG_INFINITY } else { 0.0 };
                    for ky in 0..ph {
                        for kx in 0..pw {
                            let y = (oy * stride + ky) as isize - pad as isize;
                            let xx = (ox * stride + kx) as isize - pad as isize;
                            let inside = y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w;
                            let v = if inside {
                                x[[i, ch, y as usize, xx as usize]]
                            } else if max {
                                f32::NEG_INFINITY
                            } else {
                                0.0
                            };
                            acc = if max { acc.max(v) } else { acc + v };
                        }
                    }
                    out[[i, ch, oy, ox]] = if max { acc } else { acc / (ph * pw) as f32 };
                }
            }
        }
    }
    out
}

fn book_fig_7_14() -> Array4<f32> {
    Array4::from_shape_vec(
        (1, 1, 4, 4),
        vec![
            1., 2., 1., 0., //
            0., 1., 2., 3., //
            3., 0., 1., 2., //
            2., 4., 0., 1.,
        ],
    )
    .unwrap()
}

#[test]
fn book_example_by_hand() {
    let x = book_fig_7_14();
    // Max of each 2x2 block (Fig 7-14).
    let m = max_pool(x.view(), 2, 2, 2, 0).unwrap();
    assert_eq!(m.into_raw_vec_and_offset().0, vec![2., 3., 4., 2.]);
    // Means of the same blocks: 4/4, 6/4, 9/4, 4/4.
    let a = avg_pool(x.view(), 2, 2, 2, 0).unwrap();
    assert_eq!(a.into_raw_vec_and_offset().0, vec![1.0, 1.5, 2.25, 1.0]);
    // 3x3 windows, stride 1: four overlapping windows, maxima by eye.
    let m3 = max_pool(x.view(), 3, 3, 1, 0).unwrap();
    assert_eq!(m3.into_raw_vec_and_offset().0, vec![3., 3., 4., 4.]);
    // Argmax of the 2x2 case: 2 at (0,1), 3 at (1,3), 4 at (3,1), 2 at (2,3).
    let (_, idx) = max_pool_with_argmax(x.view(), 2, 2, 2, 0).unwrap();
    assert_eq!(idx.into_raw_vec_and_offset().0, vec![1, 7, 13, 11]);
}

#[test]
fn padding_by_hand() {
    // All-negative 2x2 image, pad 1, 2x2 windows, stride 2: each window covers one pixel
    // and three padded cells. Max: padding never wins, so the pixel itself (a zero pad
    // would give 0). Average: the three zeros count, so pixel / 4.
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![-1., -2., -3., -4.]).unwrap();
    let m = max_pool(x.view(), 2, 2, 2, 1).unwrap();
    assert_eq!(m.into_raw_vec_and_offset().0, vec![-1., -2., -3., -4.]);
    let a = avg_pool(x.view(), 2, 2, 2, 1).unwrap();
    assert_eq!(
        a.into_raw_vec_and_offset().0,
        vec![-0.25, -0.5, -0.75, -1.0]
    );
    let (_, idx) = max_pool_with_argmax(x.view(), 2, 2, 2, 1).unwrap();
    assert_eq!(idx.into_raw_vec_and_offset().0, vec![0, 1, 2, 3]);
}

#[test]
fn pooling_equals_naive_loops_and_argmax_points_at_the_max() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut checked = 0;
    while checked < 400 {
        let (n, c) = (rng.random_range(1..=3), rng.random_range(1..=4));
        let (h, w) = (rng.random_range(1..=10), rng.random_range(1..=10));
        let (ph, pw) = (rng.random_range(1..=4), rng.random_range(1..=4));
        let stride = rng.random_range(1..=3);
        let pad = rng.random_range(0..ph.min(pw)); // max pooling needs pad < window
        let fits =
            |i: usize, f: usize| i + 2 * pad >= f && (i + 2 * pad - f).is_multiple_of(stride);
        if !(fits(h, ph) && fits(w, pw)) {
            continue;
        }
        checked += 1;
        let x = Array4::from_shape_fn((n, c, h, w), |_| rng.random_range(-1.0f32..1.0));
        let setting = format!("{:?} window {ph}x{pw} stride {stride} pad {pad}", x.dim());

        let expected_max = naive_pool(&x, ph, pw, stride, pad, true);
        assert_eq!(
            max_pool(x.view(), ph, pw, stride, pad).unwrap(),
            expected_max,
            "{setting}"
        );

        let avg = avg_pool(x.view(), ph, pw, stride, pad).unwrap();
        let expected_avg = naive_pool(&x, ph, pw, stride, pad, false);
        for (a, e) in avg.iter().zip(&expected_avg) {
            assert!((a - e).abs() <= 1e-6, "{setting}: {a} vs {e}");
        }

        let (vals, idx) = max_pool_with_argmax(x.view(), ph, pw, stride, pad).unwrap();
        assert_eq!(vals, expected_max, "{setting}");
        for ((i, ch, oy, ox), &k) in idx.indexed_iter() {
            let (y, xx) = (k as usize / w, k as usize % w);
            assert!(y < h, "{setting}: index {k} outside the plane");
            // The index names a pixel holding the maximum, inside this output's window.
            assert_eq!(
                x[[i, ch, y, xx]],
                expected_max[[i, ch, oy, ox]],
                "{setting}"
            );
            let (py, px) = (y + pad, xx + pad);
            assert!(py >= oy * stride && py < oy * stride + ph, "{setting}");
            assert!(px >= ox * stride && px < ox * stride + pw, "{setting}");
        }
    }
}

#[test]
fn argmax_takes_the_first_of_tied_maxima() {
    let x = Array4::<f32>::from_elem((1, 2, 4, 4), 1.0);
    let (_, idx) = max_pool_with_argmax(x.view(), 2, 2, 2, 0).unwrap();
    // Top-left cell of each window in row-major order.
    let expected: Vec<u32> = [0, 2, 8, 10].repeat(2);
    assert_eq!(idx.into_raw_vec_and_offset().0, expected);
}

#[test]
fn non_standard_layout_input() {
    let x = Array4::from_shape_fn((2, 3, 6, 8), |(n, c, y, x)| {
        ((n * 31 + c * 17 + y * 7 + x * 3) % 11) as f32
    });
    let view = x.view().permuted_axes([1, 0, 2, 3]); // (3, 2, 6, 8), not standard layout
    let copy = view.to_owned();
    assert_eq!(
        max_pool(view, 2, 2, 2, 0).unwrap(),
        max_pool(copy.view(), 2, 2, 2, 0).unwrap()
    );
    assert_eq!(
        avg_pool(view, 3, 2, 3, 0).unwrap(),
        avg_pool(copy.view(), 3, 2, 3, 0).unwrap()
    );
}

#[test]
fn pooling_keeps_channels() {
    let x = Array4::<f32>::zeros((5, 7, 8, 8));
    assert_eq!(max_pool(x.view(), 2, 2, 2, 0).unwrap().dim(), (5, 7, 4, 4));
    assert_eq!(avg_pool(x.view(), 3, 3, 1, 1).unwrap().dim(), (5, 7, 8, 8));
}

#[test]
fn bad_settings_return_the_error() {
    let x = Array4::<f32>::zeros((1, 2, 5, 5));
    type Pool = fn(
        ndarray::ArrayView4<f32>,
        usize,
        usize,
        usize,
        usize,
    ) -> Result<Array4<f32>, SettingError>;
    fn max_only(
        x: ndarray::ArrayView4<f32>,
        a: usize,
        b: usize,
        s: usize,
        p: usize,
    ) -> Result<Array4<f32>, SettingError> {
        max_pool_with_argmax(x, a, b, s, p).map(|(m, _)| m)
    }
    let pools: [(&str, Pool); 3] = [("max", max_pool), ("avg", avg_pool), ("argmax", max_only)];
    for (name, pool) in pools {
        assert!(
            matches!(
                pool(x.view(), 2, 2, 0, 0),
                Err(SettingError::ZeroStride { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                pool(x.view(), 0, 2, 1, 0),
                Err(SettingError::EmptyFilter { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                pool(x.view(), 6, 6, 1, 0),
                Err(SettingError::FilterTooLarge { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                pool(x.view(), 2, 2, 2, 0),
                Err(SettingError::NotWhole { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn max_pool_padding_as_large_as_the_window_is_an_error() {
    let x = Array4::<f32>::zeros((1, 1, 4, 4));
    let err = max_pool(x.view(), 2, 2, 2, 2).unwrap_err();
    assert_eq!(
        err,
        SettingError::PadNotBelowWindow {
            pad: 2,
            pool_h: 2,
            pool_w: 2
        }
    );
    assert!(
        err.to_string()
            .contains("pad=2 must be smaller than the 2x2 window")
    );
}

#[test]
fn avg_pool_allows_windows_of_only_padding() {
    // pad 2 >= window 2: the corner windows hold only zeros and average to 0.
    let x = Array4::<f32>::ones((1, 1, 2, 2));
    let a = avg_pool(x.view(), 2, 2, 2, 2).unwrap();
    assert_eq!(a, naive_pool(&x, 2, 2, 2, 2, false));
    assert_eq!(a[[0, 0, 0, 0]], 0.0);
}

/// Relative change recomputed from its definition with independent loops.
#[test]
fn shift_experiment_matches_its_definition() {
    let zero = Array3::from_shape_fn((1, 12, 12), |(_, y, x)| {
        let r = ((y as f32 - 5.5).powi(2) + (x as f32 - 5.5).powi(2)).sqrt();
        (-(r - 3.5).powi(2) / 2.0).exp()
    });
    // A vertical-edge filter (3x3, Sobel-like).
    let filter = [[-1.0f32, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]];
    let filters = Array4::from_shape_fn((1, 1, 3, 3), |(_, _, y, x)| filter[y][x]);
    let e = shift_experiment(zero.view(), filters.view(), 2).unwrap();

    let img = |dy: usize, dx: usize| {
        Array3::from_shape_fn((12, 12, 1), |(y, x, _)| {
            if y >= dy && x >= dx {
                zero[[0, y - dy, x - dx]]
            } else {
                0.0
            }
        })
    };
    let conv = |im: &Array3<f32>| {
        ndarray::Array2::from_shape_fn((10, 10), |(oy, ox)| {
            let mut acc = 0.0f32;
            for ky in 0..3 {
                for kx in 0..3 {
                    acc += im[[oy + ky, ox + kx, 0]] * filter[ky][kx];
                }
            }
            acc
        })
    };
    let pool = |m: &ndarray::Array2<f32>| {
        ndarray::Array2::from_shape_fn((5, 5), |(py, px)| {
            let mut best = f32::NEG_INFINITY;
            for y in 2 * py..2 * py + 2 {
                for x in 2 * px..2 * px + 2 {
                    best = best.max(m[[y, x]]);
                }
            }
            best
        })
    };
    let rel = |a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let n: f32 = a.iter().map(|x| x * x).sum();
        (d / n).sqrt()
    };
    let (c0, cx, cy) = (conv(&img(0, 0)), conv(&img(0, 1)), conv(&img(1, 0)));
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
    assert!(close(e.conv_change_x, rel(&c0, &cx)), "{e:?}");
    assert!(close(e.conv_change_y, rel(&c0, &cy)), "{e:?}");
    assert!(
        close(e.pooled_change_x, rel(&pool(&c0), &pool(&cx))),
        "{e:?}"
    );
    assert!(
        close(e.pooled_change_y, rel(&pool(&c0), &pool(&cy))),
        "{e:?}"
    );
}

#[test]
fn shift_experiment_rejects_a_pool_that_does_not_tile() {
    let img = Array3::<f32>::ones((1, 10, 10));
    let filters = Array4::<f32>::ones((2, 1, 3, 3)); // 8x8 maps; 3 does not tile 8
    assert!(matches!(
        shift_experiment(img.view(), filters.view(), 3),
        Err(SettingError::NotWhole { .. })
    ));
}
