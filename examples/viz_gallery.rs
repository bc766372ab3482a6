//! Draws one of every picture `viz` makes, from small synthetic data and the bundled cat,
//! into a folder (default `target/viz-gallery`):
//!
//! ```text
//! cargo run --example viz_gallery -- target/viz-gallery
//! ```
//!
//! The filtering here is a plain loop written for the gallery only; the crate's own
//! convolution lives in `convolution`, `multichannel` and `batching`.

use std::path::PathBuf;

use cnn_from_scratch::viz::{self, Panel};
use ndarray::{Array2, Array3, Array4, ArrayView2, s};

/// Cross-correlation of a grey image with a kernel, zero padding `pad`, step `stride`.
fn filter2d(
    image: ArrayView2<f32>,
    kernel: ArrayView2<f32>,
    pad: usize,
    stride: usize,
) -> Array2<f32> {
    let (h, w) = image.dim();
    let (kh, kw) = kernel.dim();
    let mut padded = Array2::zeros((h + 2 * pad, w + 2 * pad));
    padded
        .slice_mut(s![pad..pad + h, pad..pad + w])
        .assign(&image);
    let (oh, ow) = (
        (h + 2 * pad - kh) / stride + 1,
        (w + 2 * pad - kw) / stride + 1,
    );
    Array2::from_shape_fn((oh, ow), |(i, j)| {
        let window = padded.slice(s![i * stride..i * stride + kh, j * stride..j * stride + kw]);
        (&window * &kernel).sum()
    })
}

fn pool(image: ArrayView2<f32>, max: bool) -> Array2<f32> {
    let (h, w) = image.dim();
    Array2::from_shape_fn((h / 2, w / 2), |(i, j)| {
        let window = image.slice(s![2 * i..2 * i + 2, 2 * j..2 * j + 2]);
        if max {
            window.fold(f32::MIN, |m, &v| m.max(v))
        } else {
            window.mean().unwrap_or(0.0)
        }
    })
}

/// A made-up 28x28 "digit": a ring, a bar or a cross, a little different for each n.
fn fake_digit(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((28, 28), |(i, j)| {
        let (y, x) = (i as f32 - 14.0, j as f32 - 14.0 + (n % 3) as f32 - 1.0);
        let r = (x * x + y * y).sqrt();
        let on = match n % 4 {
            0 => (r - 8.0).abs() < 2.0,
            1 => x.abs() < 2.0 && y.abs() < 10.0,
            2 => r < 10.0 && ((x - y).abs() < 2.5 || (x + y).abs() < 2.5),
            _ => (r - 5.0).abs() < 2.0 || (x.abs() < 2.0 && y > 0.0 && y < 11.0),
        };
        if on { 1.0 } else { 0.0 }
    })
}

/// Deterministic normal numbers (Box-Muller over a tiny linear congruential generator).
fn normals(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            ((-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos()) as f32
        })
        .collect()
}

/// 30 oriented edge/stripe filters, the kind a trained first layer ends up with.
fn gabor_bank() -> Array4<f32> {
    Array4::from_shape_fn((30, 1, 5, 5), |(f, _, i, j)| {
        let theta = (f % 6) as f32 * std::f32::consts::PI / 6.0;
        let freq = 0.6 + 0.25 * (f / 6) as f32;
        let (y, x) = (i as f32 - 2.0, j as f32 - 2.0);
        let u = x * theta.cos() + y * theta.sin();
        (-(x * x + y * y) / 6.0).exp() * (freq * u + (f / 6) as f32).sin()
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/viz-gallery".into()),
    );

    let digits = Array4::from_shape_fn((20, 1, 28, 28), |(n, _, i, j)| fake_digit(n)[[i, j]]);
    let labels: Vec<String> = (0..20).map(|n| format!("label {}", n % 4)).collect();
    viz::image_grid("Sample digits (synthetic)", digits.view(), &labels, 10)?
        .save(out.join("digits.png"))?;
    let wrong: Vec<String> = (0..8)
        .map(|n| format!("true {} → pred {}", n % 4, (n + 1) % 4))
        .collect();
    viz::image_grid(
        "Misclassified digits",
        digits.slice(s![..8, .., .., ..]),
        &wrong,
        4,
    )?
    .save(out.join("misclassified.png"))?;

    let before = Array4::from_shape_vec((30, 1, 5, 5), normals(750, 7))?.mapv(|v| 0.01 * v);
    viz::filter_grid("Conv1 filters before training (N(0, 0.01²))", before.view())?
        .save(out.join("filters_before.png"))?;
    let bank = gabor_bank();
    viz::filter_grid("Conv1 filters after training (edge-like)", bank.view())?
        .save(out.join("filters_after.png"))?;
    let rgb_bank = Array4::from_shape_fn((4, 3, 3, 3), |(f, c, i, j)| {
        let edge = [-1.0, 0.0, 1.0][if f % 2 == 0 { j } else { i }];
        if c == f % 3 { edge } else { -0.5 * edge }
    });
    viz::filter_grid("Four RGB filters", rgb_bank.view())?.save(out.join("filters_rgb.png"))?;

    let digit = fake_digit(3);
    let maps = Array3::from_shape_fn((30, 24, 24), |(f, i, j)| {
        let k = bank.slice(s![f, 0, .., ..]);
        let window = digit.slice(s![i..i + 5, j..j + 5]);
        (&window * &k).sum().max(0.0)
    });
    viz::feature_maps("Conv1 + ReLU feature maps of one digit", maps.view())?
        .save(out.join("feature_maps.png"))?;

    let cat = viz::chelsea();
    let grey = viz::rgb_to_grey(cat.view());
    let sobel_x = ndarray::array![[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]];
    let sobel_y = sobel_x.t().to_owned();
    let average = Array2::from_elem((5, 5), 1.0 / 25.0);
    viz::side_by_side(
        "Filtering a grey image",
        &[
            Panel::grey(grey.view(), "input 150x226"),
            Panel::grey(
                filter2d(grey.view(), sobel_x.view(), 1, 1).view(),
                "Sobel x (vertical edges)",
            ),
            Panel::grey(
                filter2d(grey.view(), sobel_y.view(), 1, 1).view(),
                "Sobel y (horizontal edges)",
            ),
            Panel::grey(
                filter2d(grey.view(), average.view(), 2, 1).view(),
                "5x5 average (blur)",
            ),
        ],
    )?
    .save(out.join("filters_grey.png"))?;

    let blurred = Array3::from_shape_fn(cat.dim(), |(c, i, j)| {
        let (h, w) = (cat.dim().1 as isize, cat.dim().2 as isize);
        let mut sum = 0.0;
        for di in -2..=2isize {
            for dj in -2..=2isize {
                let (y, x) = (
                    (i as isize + di).clamp(0, h - 1),
                    (j as isize + dj).clamp(0, w - 1),
                );
                sum += cat[[c, y as usize, x as usize]];
            }
        }
        sum / 25.0
    });
    // A 3-channel filter: Sobel x on red minus Sobel x on blue, summed into one map.
    let red_edges = filter2d(cat.slice(s![0, .., ..]), sobel_x.view(), 1, 1);
    let blue_edges = filter2d(cat.slice(s![2, .., ..]), sobel_x.view(), 1, 1);
    viz::side_by_side(
        "Filtering a colour image",
        &[
            Panel::rgb(cat.view(), "input (3, 150, 226)"),
            Panel::rgb(blurred.view(), "5x5 average per channel\n→ (3, 150, 226)"),
            Panel::grey(
                (&red_edges - &blue_edges).view(),
                "3-channel filter (Sobel x on R − on B)\n→ one map (150, 226)",
            ),
        ],
    )?
    .save(out.join("filters_rgb_image.png"))?;

    let d = fake_digit(0);
    let settings = [(0, 1), (1, 1), (1, 2), (0, 3)];
    let mut panels = vec![Panel::grey(d.view(), "input 28x28")];
    for (pad, stride) in settings {
        let o = filter2d(d.view(), sobel_x.view(), pad, stride);
        panels.push(Panel::grey(
            o.view(),
            format!(
                "Sobel x, pad {pad}, stride {stride}\n→ {}x{}",
                o.dim().0,
                o.dim().1
            ),
        ));
    }
    viz::side_by_side("Padding and stride change the output size", &panels)?
        .save(out.join("padding_stride.png"))?;

    let small = grey.slice(s![40..104, 60..124]).to_owned();
    viz::side_by_side(
        "Max vs average pooling (2x2, stride 2)",
        &[
            Panel::grey(small.view(), "input 64x64"),
            Panel::grey(pool(small.view(), true).view(), "max pooling → 32x32"),
            Panel::grey(pool(small.view(), false).view(), "average pooling → 32x32"),
        ],
    )?
    .save(out.join("pooling.png"))?;

    // The shift experiment: shift a digit right by k pixels and compare outputs.
    let relative_change = |f: &dyn Fn(ArrayView2<f32>) -> Array2<f32>, k: usize| {
        let mut shifted = Array2::zeros((28, 28));
        shifted
            .slice_mut(s![.., k..])
            .assign(&d.slice(s![.., ..28 - k]));
        let (a, b) = (f(d.view()), f(shifted.view()));
        (&a - &b).mapv(f32::abs).sum() / a.mapv(f32::abs).sum()
    };
    let conv = |x: ArrayView2<f32>| filter2d(x, sobel_x.view(), 1, 1).mapv(|v| v.max(0.0));
    let conv_pool = |x: ArrayView2<f32>| pool(conv(x).view(), true);
    let conv_pts: Vec<(f32, f32)> = (0..5)
        .map(|k| (k as f32, relative_change(&conv, k)))
        .collect();
    let pool_pts: Vec<(f32, f32)> = (0..5)
        .map(|k| (k as f32, relative_change(&conv_pool, k)))
        .collect();
    viz::line_chart(
        "Shifting the input: how much does the output change?",
        "shift to the right (pixels)",
        "relative change |Δ output| / |output|",
        &[
            ("Sobel x + ReLU", &conv_pts[..]),
            ("… then 2x2 max pooling", &pool_pts[..]),
        ],
    )?
    .save(out.join("shift.png"))?;

    let noise = normals(1200, 3);
    let losses: Vec<f32> = (0..1200)
        .map(|s| (2.3 * (-(s as f32) / 150.0).exp() + 0.05 + 0.08 * noise[s].abs()).max(0.0))
        .collect();
    let train = [0.912, 0.957, 0.971, 0.979, 0.984, 0.988, 0.991, 0.993];
    let test = [0.925, 0.958, 0.968, 0.974, 0.978, 0.980, 0.981, 0.982];
    viz::training_curves(
        "SimpleConvNet training (synthetic numbers)",
        &losses,
        &train,
        &test,
    )?
    .save(out.join("training.png"))?;

    let counts = Array2::from_shape_fn((10, 10), |(i, j)| {
        if i == j {
            90 + (i * 7) % 9
        } else {
            ((i * 3 + j * 5) % 7).saturating_sub(4)
        }
    });
    let names = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    viz::confusion_matrix("Confusion matrix (synthetic counts)", counts.view(), &names)?
        .save(out.join("confusion.png"))?;

    println!("pictures written to {}", out.display());
    Ok(())
}
