//! Naive loops vs im2col: the same batched convolution, timed both ways.
//!
//! The book's first layer: a batch of 100 one-channel 28x28 images, 30 filters of 5x5,
//! stride 1, no padding -> (100, 30, 24, 24).
//!
//! ```text
//! cargo run --release --example im2col_speed
//! ```

use std::time::{Duration, Instant};

use cnn_from_scratch::batching::conv_forward_im2col;
use ndarray::{Array1, Array4};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seven nested loops, exactly as the definition reads (stride 1, no padding).
fn naive_conv(x: &Array4<f32>, w: &Array4<f32>, b: &Array1<f32>) -> Array4<f32> {
    let (n, c, h, wd) = x.dim();
    let (fnum, _, fh, fw) = w.dim();
    let (oh, ow) = (h - fh + 1, wd - fw + 1);
    let mut out = Array4::<f32>::zeros((n, fnum, oh, ow));
    for i in 0..n {
        for f in 0..fnum {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[f];
                    for ch in 0..c {
                        for ky in 0..fh {
                            for kx in 0..fw {
                                acc += x[[i, ch, oy + ky, ox + kx]] * w[[f, ch, ky, kx]];
                            }
                        }
                    }
                    out[[i, f, oy, ox]] = acc;
                }
            }
        }
    }
    out
}

/// Best of `runs` wall-clock times (the minimum is the least disturbed by other work).
fn best_time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..runs {
        let start = Instant::now();
        let r = f();
        best = best.min(start.elapsed());
        result = Some(r);
    }
    (best, result.expect("at least one run"))
}

fn main() {
    let mut rng = StdRng::seed_from_u64(0);
    let (n, c, h, w, fnum, k) = (100, 1, 28, 28, 30, 5);
    let x = Array4::from_shape_fn((n, c, h, w), |_| rng.random_range(0.0f32..1.0));
    let filters = Array4::from_shape_fn((fnum, c, k, k), |_| rng.random_range(-0.1f32..0.1));
    let bias = Array1::from_shape_fn(fnum, |_| rng.random_range(-0.1f32..0.1));

    println!("batch ({n}, {c}, {h}, {w}), {fnum} filters {k}x{k}, stride 1, pad 0");
    let (t_naive, slow) = best_time(3, || naive_conv(&x, &filters, &bias));
    let (t_im2col, fast) = best_time(10, || {
        conv_forward_im2col(x.view(), filters.view(), bias.view(), 1, 0)
            .expect("the book's setting fits")
    });
    let max_diff = fast
        .iter()
        .zip(&slow)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("output {:?}", fast.dim());
    println!(
        "naive 7 nested loops: {:>9.2} ms",
        t_naive.as_secs_f64() * 1e3
    );
    println!(
        "im2col + one GEMM:    {:>9.2} ms",
        t_im2col.as_secs_f64() * 1e3
    );
    println!(
        "speed-up: {:.1}x   largest difference: {max_diff:.2e}",
        t_naive.as_secs_f64() / t_im2col.as_secs_f64()
    );
}
