//! im2col, col2im and the im2col convolution against independent computations: the seven
//! nested loops, the adjoint identity <im2col(x), y> = <x, col2im(y)>, and hand-built cases.

use cnn_from_scratch::SettingError;
use cnn_from_scratch::batching::{col2im, conv_forward_im2col, im2col};
use ndarray::{Array1, Array2, Array4, s};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_array4(rng: &mut StdRng, shape: (usize, usize, usize, usize)) -> Array4<f32> {
    Array4::from_shape_fn(shape, |_| rng.random_range(-1.0f32..1.0))
}

/// The seven nested loops of a batched cross-correlation, with padding tested per pixel.
fn naive_conv(
    x: &Array4<f32>,
    w: &Array4<f32>,
    b: &Array1<f32>,
    stride: usize,
    pad: usize,
) -> Array4<f32> {
    let (n, c, h, wd) = x.dim();
    let (fnum, _, fh, fw) = w.dim();
    let oh = (h + 2 * pad - fh) / stride + 1;
    let ow = (wd + 2 * pad - fw) / stride + 1;
    let mut out = Array4::<f32>::zeros((n, fnum, oh, ow));
    for i in 0..n {
        for f in 0..fnum {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[f] as f64;
                    for ch in 0..c {
                        for ky in 0..fh {
                            for kx in 0..fw {
                                let y = (oy * stride + ky) as isize - pad as isize;
                                let xx = (ox * stride + kx) as isize - pad as isize;
                                if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                                    acc += x[[i, ch, y as usize, xx as usize]] as f64
                                        * w[[f, ch, ky, kx]] as f64;
                                }
                            }
                        }
                    }
                    out[[i, f, oy, ox]] = acc as f32;
                }
            }
        }
    }
    out
}

/// A random setting that fits: (N, C, H, W), filter FH x FW, stride, pad with a whole
/// output size. Draws until (7.1) divides evenly.
fn random_setting(rng: &mut StdRng) -> ((usize, usize, usize, usize), usize, usize, usize, usize) {
    loop {
        let (n, c) = (rng.random_range(1..=4), rng.random_range(1..=3));
        let (h, w) = (rng.random_range(1..=9), rng.random_range(1..=9));
        let (fh, fw) = (rng.random_range(1..=4), rng.random_range(1..=4));
        let stride = rng.random_range(1..=3);
        let pad = rng.random_range(0..=2);
        let fits =
            |i: usize, f: usize| i + 2 * pad >= f && (i + 2 * pad - f).is_multiple_of(stride);
        if fits(h, fh) && fits(w, fw) {
            return ((n, c, h, w), fh, fw, stride, pad);
        }
    }
}

#[test]
fn im2col_rows_are_the_patches_of_the_book_layout() {
    // Build each expected row by hand from patch coordinates, including padding zeros.
    let x = Array4::from_shape_fn((2, 2, 3, 4), |(n, c, y, x)| {
        (1000 * n + 100 * c + 10 * y + x) as f32
    });
    let (fh, fw, stride, pad) = (2, 3, 1, 1);
    let col = im2col(x.view(), fh, fw, stride, pad).unwrap();
    let (oh, ow) = (3 + 2 - 2 + 1, 4 + 2 - 3 + 1);
    assert_eq!(col.dim(), (2 * oh * ow, 2 * fh * fw));
    for n in 0..2 {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = col.row(n * oh * ow + oy * ow + ox);
                let mut expected = Vec::new();
                for c in 0..2 {
                    for fy in 0..fh {
                        for fx in 0..fw {
                            let (y, xx) = (oy + fy, ox + fx); // padded coordinates
                            let inside = y >= pad && y < 3 + pad && xx >= pad && xx < 4 + pad;
                            expected.push(if inside {
                                x[[n, c, y - pad, xx - pad]]
                            } else {
                                0.0
                            });
                        }
                    }
                }
                assert_eq!(row.to_vec(), expected, "row n={n} oy={oy} ox={ox}");
            }
        }
    }
}

#[test]
fn im2col_convolution_equals_seven_nested_loops() {
    let mut rng = StdRng::seed_from_u64(7);
    for trial in 0..300 {
        let (shape, fh, fw, stride, pad) = random_setting(&mut rng);
        let fnum = rng.random_range(1..=4);
        let x = random_array4(&mut rng, shape);
        let w = random_array4(&mut rng, (fnum, shape.1, fh, fw));
        let b = Array1::from_shape_fn(fnum, |_| rng.random_range(-1.0f32..1.0));
        let fast = conv_forward_im2col(x.view(), w.view(), b.view(), stride, pad).unwrap();
        let slow = naive_conv(&x, &w, &b, stride, pad);
        assert_eq!(fast.dim(), slow.dim(), "trial {trial}");
        for (a, e) in fast.iter().zip(slow.iter()) {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "trial {trial}: shape {shape:?} filter {fh}x{fw} stride {stride} pad {pad}: {a} vs {e}"
            );
        }
    }
}

#[test]
fn im2col_accepts_non_standard_layouts() {
    // A transposed-and-back view and a sliced view must give the same as a fresh copy.
    let mut rng = StdRng::seed_from_u64(3);
    let big = random_array4(&mut rng, (3, 2, 9, 8));
    let view = big.slice(s![..;2, .., 1.., ..;2]);
    let copy = view.to_owned();
    assert_eq!(
        im2col(view, 3, 2, 1, 1).unwrap(),
        im2col(copy.view(), 3, 2, 1, 1).unwrap()
    );
    // Filters stored as (C, FN, FH, FW) and viewed as (FN, C, FH, FW): not standard layout.
    let stored = random_array4(&mut rng, (2, 4, 3, 2));
    let w = stored.view().permuted_axes([1, 0, 2, 3]);
    let b = Array1::from_vec(vec![0.1, -0.2, 0.3, 0.0]);
    assert_eq!(
        conv_forward_im2col(view, w, b.view(), 1, 1).unwrap(),
        conv_forward_im2col(copy.view(), w.to_owned().view(), b.view(), 1, 1).unwrap()
    );
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let mut rng = StdRng::seed_from_u64(11);
    for trial in 0..300 {
        let (shape, fh, fw, stride, pad) = random_setting(&mut rng);
        let x = random_array4(&mut rng, shape);
        let col_x = im2col(x.view(), fh, fw, stride, pad).unwrap();
        let y = Array2::from_shape_fn(col_x.dim(), |_| rng.random_range(-1.0f32..1.0));
        let back = col2im(
            y.view(),
            [shape.0, shape.1, shape.2, shape.3],
            fh,
            fw,
            stride,
            pad,
        )
        .unwrap();
        assert_eq!(back.dim(), x.dim());
        let lhs: f64 = col_x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let rhs: f64 = x
            .iter()
            .zip(&back)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let scale: f64 = col_x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (a as f64 * b as f64).abs())
            .sum();
        assert!(
            (lhs - rhs).abs() <= 1e-5 * (1.0 + scale),
            "trial {trial}: {shape:?} {fh}x{fw} s{stride} p{pad}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn col2im_of_ones_counts_how_often_each_pixel_is_covered() {
    // Independent count: for each pixel, the filter positions whose window contains it.
    let (h, w, fh, fw, stride, pad) = (5, 6, 3, 2, 2, 1);
    let (oh, ow) = (
        (h + 2 * pad - fh) / stride + 1,
        (w + 2 * pad - fw) / stride + 1,
    );
    let ones = Array2::<f32>::ones((oh * ow, fh * fw));
    let counts = col2im(ones.view(), [1, 1, h, w], fh, fw, stride, pad).unwrap();
    for y in 0..h {
        for x in 0..w {
            let covering = (0..oh)
                .flat_map(|oy| (0..ow).map(move |ox| (oy, ox)))
                .filter(|&(oy, ox)| {
                    let (py, px) = (y + pad, x + pad);
                    py >= oy * stride
                        && py < oy * stride + fh
                        && px >= ox * stride
                        && px < ox * stride + fw
                })
                .count();
            assert_eq!(counts[[0, 0, y, x]], covering as f32, "pixel ({y}, {x})");
        }
    }
}

#[test]
fn bad_settings_return_the_error() {
    let x = Array4::<f32>::zeros((2, 1, 5, 5));
    let w0 = Array4::<f32>::zeros((1, 1, 0, 3));
    let w6 = Array4::<f32>::zeros((1, 1, 6, 6));
    let w2 = Array4::<f32>::zeros((1, 1, 2, 2));
    let b = Array1::<f32>::zeros(1);
    assert!(matches!(
        im2col(x.view(), 3, 3, 0, 0),
        Err(SettingError::ZeroStride { .. })
    ));
    assert!(matches!(
        im2col(x.view(), 0, 3, 1, 0),
        Err(SettingError::EmptyFilter { .. })
    ));
    assert!(matches!(
        im2col(x.view(), 6, 6, 1, 0),
        Err(SettingError::FilterTooLarge { .. })
    ));
    assert!(matches!(
        im2col(x.view(), 2, 2, 2, 0),
        Err(SettingError::NotWhole { .. })
    ));
    // The same settings through col2im and the convolution.
    let col = Array2::<f32>::zeros((2 * 9, 9));
    assert!(matches!(
        col2im(col.view(), [2, 1, 5, 5], 3, 3, 0, 0),
        Err(SettingError::ZeroStride { .. })
    ));
    assert!(matches!(
        col2im(col.view(), [2, 1, 5, 5], 2, 2, 2, 0),
        Err(SettingError::NotWhole { .. })
    ));
    assert!(matches!(
        conv_forward_im2col(x.view(), w0.view(), b.view(), 1, 0),
        Err(SettingError::EmptyFilter { .. })
    ));
    assert!(matches!(
        conv_forward_im2col(x.view(), w6.view(), b.view(), 1, 0),
        Err(SettingError::FilterTooLarge { .. })
    ));
    assert!(matches!(
        conv_forward_im2col(x.view(), w2.view(), b.view(), 2, 0),
        Err(SettingError::NotWhole { .. })
    ));
    // Padding can make a too-large filter fit: 5 + 2*1 = 7 >= 6.
    assert!(im2col(x.view(), 6, 6, 1, 1).is_ok());
}

#[test]
#[should_panic(expected = "[1, 2, 3, 3]")]
fn channel_mismatch_panics_naming_both_shapes() {
    let x = Array4::<f32>::zeros((1, 3, 5, 5));
    let w = Array4::<f32>::zeros((1, 2, 3, 3));
    let _ = conv_forward_im2col(x.view(), w.view(), Array1::zeros(1).view(), 1, 0);
}

#[test]
#[should_panic(expected = "bias has shape [2]")]
fn bias_length_mismatch_panics() {
    let x = Array4::<f32>::zeros((1, 1, 5, 5));
    let w = Array4::<f32>::zeros((3, 1, 3, 3));
    let _ = conv_forward_im2col(x.view(), w.view(), Array1::zeros(2).view(), 1, 0);
}

#[test]
#[should_panic(expected = "col2im: col has shape")]
fn col2im_wrong_shape_panics() {
    let col = Array2::<f32>::zeros((4, 5));
    let _ = col2im(col.view(), [1, 1, 3, 3], 2, 2, 1, 0);
}
