//! Sections 1-10 of the note: one function each, printing the numbers that make the point
//! and writing the section's pictures.

use std::error::Error;
use std::time::Instant;

use cnn_from_scratch::batching::{conv_forward_im2col, im2col};
use cnn_from_scratch::convolution::{
    box_filter, conv_as_affine, conv2d, conv2d_via_affine, sobel_x, sobel_y,
};
use cnn_from_scratch::data::Dataset;
use cnn_from_scratch::fc_limits::{
    compare_param_counts, conv_param_count, flatten, permutation_demo, permute_pixels,
    pixel_permutation,
};
use cnn_from_scratch::full_cnn::learn_filter::learn_sobel_x;
use cnn_from_scratch::full_cnn::{
    Affine, Convolution, Init, Layer, Network, Pooling, Relu, SimpleConvNetConfig, mlp,
    simple_conv_net,
};
use cnn_from_scratch::multichannel::{conv_filter_bank, conv_multichannel, example_filter_bank};
use cnn_from_scratch::padding_stride::{conv2d_pad_stride, output_size_table};
use cnn_from_scratch::pooling::{avg_pool, max_pool, shift_experiment};
use cnn_from_scratch::viz::{self, Panel};
use ndarray::{Array1, Array2, Array3, Array4, ArrayView3, Axis, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::output::Output;

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// Prints a section heading: number, English title and the note's Japanese heading.
pub fn heading(number: usize, english: &str, japanese: &str) {
    let line = format!("§{number} {english} ({japanese})");
    println!("\n{line}\n{}", "─".repeat(line.chars().count()));
}

/// Test digit `index` of the embedded sample as a `(28, 28)` image, and its label.
fn sample_digit(data: &Dataset, index: usize) -> (Array2<f32>, u8) {
    (
        data.test_images.slice(s![index, 0, .., ..]).to_owned(),
        data.test_labels[index],
    )
}

/// `‖after − before‖ / ‖before‖` over all entries.
fn relative_change(before: ArrayView3<f32>, after: ArrayView3<f32>) -> f32 {
    let diff: f32 = before
        .iter()
        .zip(after.iter())
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let norm: f32 = before.iter().map(|a| a * a).sum();
    (diff / norm).sqrt()
}

fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

pub fn section1_fc_limits(out: &mut Output, seed: u64) -> Result {
    heading(
        1,
        "The limits of a plain fully connected net",
        "これまでのシンプルな NN の限界 / 何が問題か？",
    );
    let data = Dataset::sample();
    let (digit, label) = sample_digit(&data, 0);
    let image = digit.clone().insert_axis(Axis(0));
    println!(
        "An image of shape {:?} is flattened into a vector of {} numbers for an Affine layer:\n\
         the vector no longer says which pixels were neighbours.",
        image.shape(),
        flatten(&image).len()
    );
    let counts = compare_param_counts((1, 28, 28), 30, 5, 5)?;
    println!(
        "To make {:?} features from one (1, 28, 28) digit:\n  \
         convolution, 30 filters 5x5: {:>11} parameters\n  \
         fully connected (Affine):    {:>11} parameters ({:.0}x as many)",
        counts.output,
        counts.conv,
        counts.affine,
        counts.affine as f64 / counts.conv as f64
    );

    let demo = permutation_demo(&digit, seed)?;
    println!(
        "Shuffle the 784 pixels with one fixed permutation (seed {seed}):\n  \
         Affine layer (weights shuffled alike): outputs change by at most {:.1e} (outputs up to {:.2}) -> blind to pixel positions\n  \
         Sobel x convolution: outputs change by up to {:.2} (outputs up to {:.2}); even sorted they differ by {:.2}",
        demo.fc_max_abs_diff,
        demo.fc_output_max_abs,
        demo.conv_max_abs_diff,
        demo.conv_output_max_abs,
        demo.conv_sorted_max_abs_diff
    );
    println!(
        "Trained networks on shuffled digits (FC vs CNN, 3 seeds): experiment 1 of\n  \
         `cargo run --release --example experiments` (README: \"The chapter's claims, measured\")."
    );

    let digits = data.train_images.slice(s![..20, .., .., ..]);
    let captions: Vec<String> = data
        .train_labels
        .iter()
        .take(20)
        .map(|l| l.to_string())
        .collect();
    out.picture(
        "01_digits.png",
        "§1 twenty training digits of the embedded MNIST sample with their labels",
        viz::image_grid(
            "MNIST digits: each one is a 28x28 image, not a vector",
            digits,
            &captions,
            10,
        ),
    )?;

    let shuffled = permute_pixels(&digit, &pixel_permutation(digit.len(), seed));
    let edges = conv2d(&digit, &sobel_x(), 0.0)?;
    let shuffled_edges = conv2d(&shuffled, &sobel_x(), 0.0)?;
    out.picture(
        "01_permuted_digit.png",
        "§1 a digit and its pixel-shuffled copy: same to an Affine layer, different to a convolution",
        viz::side_by_side(
            "What a fully connected layer sees: the shuffled digit is just as good",
            &[
                Panel::grey(digit.view(), format!("a test digit ({label})")),
                Panel::grey(shuffled.view(), format!("pixels shuffled\nAffine outputs: same\n(max diff {:.0e})", demo.fc_max_abs_diff)),
                Panel::grey(edges.view(), "Sobel x of the digit\n(convolution)"),
                Panel::grey(shuffled_edges.view(), "Sobel x of the shuffled digit:\nnoise, no edges"),
            ],
        ),
    )
}

pub fn section2_filters(out: &mut Output) -> Result {
    heading(
        2,
        "So what do we do? Filters made of nearby pixels",
        "じゃあどうするか？",
    );
    let cat = viz::rgb_to_grey(viz::chelsea().view());
    let blur = box_filter(5)?;
    let cat_x = conv2d(&cat, &sobel_x(), 0.0)?;
    let cat_y = conv2d(&cat, &sobel_y(), 0.0)?;
    let cat_blur = conv2d(&cat, &blur, 0.0)?;
    println!(
        "Sobel x (vertical edges):\n{:}\nSobel y (horizontal edges) is its transpose; the box filter averages a 5x5 window.",
        sobel_x()
    );
    println!(
        "Chelsea {:?} -> Sobel {:?}, box 5x5 {:?} (no padding: the output shrinks, see §4)",
        cat.dim(),
        cat_x.dim(),
        cat_blur.dim()
    );
    out.picture(
        "02_sobel_chelsea.png",
        "§2 Chelsea (grey) through Sobel x, Sobel y and a 5x5 box filter",
        viz::side_by_side(
            "Hand-made filters on Chelsea: each output pixel uses only a small neighbourhood",
            &[
                Panel::grey(cat.view(), format!("Chelsea, grey {:?}", cat.dim())),
                Panel::grey(cat_x.view(), "Sobel x: vertical edges"),
                Panel::grey(cat_y.view(), "Sobel y: horizontal edges"),
                Panel::grey(cat_blur.view(), "5x5 box filter: blur"),
            ],
        ),
    )?;

    let (digit, label) = sample_digit(&Dataset::sample(), 1);
    out.picture(
        "02_sobel_digit.png",
        "§2 a digit through Sobel x, Sobel y and a 3x3 box filter",
        viz::side_by_side(
            "The same filters on a digit (grey = 0, white = positive, black = negative)",
            &[
                Panel::grey(digit.view(), format!("digit {label} (28, 28)")),
                Panel::grey(conv2d(&digit, &sobel_x(), 0.0)?.view(), "Sobel x (26, 26)"),
                Panel::grey(conv2d(&digit, &sobel_y(), 0.0)?.view(), "Sobel y (26, 26)"),
                Panel::grey(
                    conv2d(&digit, &box_filter(3)?, 0.0)?.view(),
                    "3x3 box (26, 26)",
                ),
            ],
        ),
    )
}

pub fn section3_conv_layer(out: &mut Output, seed: u64) -> Result {
    heading(
        3,
        "The convolution layer: filtering inside the net",
        "フィルタリングするための畳み込み層",
    );
    let (digit, _) = sample_digit(&Dataset::sample(), 0);
    let direct = conv2d(&digit, &sobel_x(), 0.5)?;
    let via_affine = conv2d_via_affine(&digit, &sobel_x(), 0.5)?;
    let matrix = conv_as_affine(&sobel_x(), 28, 28)?;
    let nonzero = matrix.iter().filter(|&&v| v != 0.0).count();
    println!(
        "A 3x3 convolution of a 28x28 image written as an Affine layer: a {}x{} weight matrix,\n\
         {} of its {} entries non-zero ({:.1}%), all copies of the filter's 9 weights (partially connected, weights shared).\n\
         conv2d vs the same as an Affine product: max |difference| = {:.1e}",
        matrix.dim().0,
        matrix.dim().1,
        nonzero,
        matrix.len(),
        100.0 * nonzero as f64 / matrix.len() as f64,
        max_abs_diff(&direct, &via_affine)
    );

    const STEPS: usize = 60;
    let history = learn_sobel_x(STEPS, 0.2, seed);
    let snapshots = [0, 1, 2, 3, 5, 8, 13, STEPS];
    let mut bank = Array4::<f32>::zeros((snapshots.len() + 1, 1, 3, 3));
    for (k, &step) in snapshots.iter().enumerate() {
        bank.slice_mut(s![k, 0, .., ..])
            .assign(&history.kernels[step]);
    }
    let target = sobel_x();
    bank.slice_mut(s![snapshots.len(), 0, .., ..])
        .assign(&target);
    let learned = &history.kernels[STEPS];
    println!(
        "A one-filter convolution layer learns Sobel x from 16 random images by gradient descent.\n\
         Loss (mean squared error) {:.3} at step 0 -> {:.2e} at step {}; learned kernel:\n{:.3}\n\
         largest |learned - Sobel x| = {:.1e}, learned bias {:.1e}",
        history.losses[0],
        history.losses[STEPS - 1],
        STEPS,
        learned,
        max_abs_diff(learned, &target),
        history.biases[STEPS]
    );
    out.picture(
        "03_learned_sobel.png",
        "§3 a convolution layer learning Sobel x: kernel after 0, 1, 2, 3, 5, 8, 13, 60 steps, then the target",
        viz::filter_grid(
            "Learning Sobel x: the kernel after 0, 1, 2, 3, 5, 8, 13, 60 steps, then the target",
            bank.view(),
        ),
    )?;
    let points: Vec<(f32, f32)> = history
        .losses
        .iter()
        .enumerate()
        .map(|(step, &loss)| (step as f32, loss.max(1e-30).log10()))
        .collect();
    out.picture(
        "03_learned_sobel_loss.png",
        "§3 the loss while learning Sobel x (log scale)",
        viz::line_chart(
            "Learning Sobel x: the error falls by orders of magnitude",
            "gradient-descent step",
            "log10 of the mean squared error",
            &[("one 3x3 filter, learning rate 0.2", &points[..])],
        ),
    )
}

pub fn section4_padding_stride(out: &mut Output) -> Result {
    heading(
        4,
        "The size after filtering: padding and stride",
        "フィルタリング後の画像サイズ",
    );
    println!(
        "OH = (H + 2P - FH) / S + 1  (equation 7.1); settings that give no whole number are errors:"
    );
    let settings = [
        (5, 0, 1),
        (5, 2, 1),
        (3, 0, 1),
        (3, 1, 1),
        (3, 2, 1),
        (3, 1, 3),
        (3, 1, 2),
        (2, 0, 2),
        (4, 0, 2),
        (7, 3, 1),
        (29, 0, 1),
    ];
    for row in output_size_table(28, &settings) {
        println!("  {row}");
    }
    let (digit, label) = sample_digit(&Dataset::sample(), 2);
    let blur = box_filter(3)?;
    let mut panels = vec![Panel::grey(
        digit.view(),
        format!("digit {label}: input 28x28"),
    )];
    for (pad, stride, note) in [(0, 1, ""), (1, 1, " (same)"), (1, 3, "")] {
        let y = conv2d_pad_stride(&digit, &blur, 0.0, pad, stride)?;
        panels.push(Panel::grey(
            y.view(),
            format!(
                "3x3 box, pad {pad}, stride {stride}\n-> {}x{}{note}",
                y.dim().0,
                y.dim().1
            ),
        ));
    }
    if let Err(e) = conv2d_pad_stride(&digit, &blur, 0.0, 1, 2) {
        println!("3x3 filter, pad 1, stride 2 on 28x28: error: {e}");
    }
    out.picture(
        "04_padding_stride.png",
        "§4 one digit through a 3x3 filter with different padding and stride; sizes from equation (7.1)",
        viz::side_by_side("Padding keeps the size, a larger stride shrinks it (same scale)", &panels),
    )
}

pub fn section5_colour(out: &mut Output) -> Result {
    heading(
        5,
        "Filtering a colour image",
        "カラー画像 (複数チャネル画像) のフィルタリング",
    );
    let cat = viz::chelsea();
    let bank = example_filter_bank(3);
    let index = bank
        .names
        .iter()
        .position(|&n| n == "red - green")
        .unwrap_or(bank.names.len() - 1);
    let filter = bank.filters.index_axis(Axis(0), index).to_owned();
    let map = conv_multichannel(&cat, &filter, 0.0, 1, 1)?;
    println!(
        "Chelsea is a rank-3 tensor {:?}. A filter for her has 3 channels too, {:?};\n\
         each channel is filtered and the 3 results summed into ONE feature map {:?}.",
        cat.dim(),
        filter.dim(),
        map.dim()
    );
    for (c, name) in ["red", "green", "blue"].iter().enumerate() {
        let rows: Vec<String> = filter
            .index_axis(Axis(0), c)
            .rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .map(|v| format!("{v:>2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        println!(
            "  {name:<5} channel of the \"{}\" filter: {}",
            bank.names[index],
            rows.join(" | ")
        );
    }
    out.picture(
        "05_rgb_filter_chelsea.png",
        "§5 colour Chelsea, her red and green channels, and one 3-channel filter's single feature map",
        viz::side_by_side(
            "A 3-channel filter sums over the channels: one feature map",
            &[
                Panel::rgb(cat.view(), format!("input {:?}", cat.dim())),
                Panel::grey(cat.index_axis(Axis(0), 0), "red channel"),
                Panel::grey(cat.index_axis(Axis(0), 1), "green channel"),
                Panel::grey(map.view(), format!("\"red - green\" filter {:?}\n-> one map {:?}", filter.dim(), map.dim())),
            ],
        ),
    )
}

pub fn section6_filter_bank(out: &mut Output) -> Result {
    heading(
        6,
        "Many filters, many features",
        "同じ画像に色んなフィルタをかけて色んな特徴取り出す",
    );
    let cat = viz::chelsea();
    let bank = example_filter_bank(3);
    let maps = conv_filter_bank(&cat, &bank.filters, &bank.bias, 1, 1)?;
    println!(
        "A bank of FN = {} filters is one rank-4 tensor {:?} (FN, C, FH, FW); on Chelsea {:?} it gives {:?}:",
        bank.names.len(),
        bank.filters.dim(),
        cat.dim(),
        maps.dim()
    );
    for (k, name) in bank.names.iter().enumerate() {
        println!("  map {k}: {name}");
    }
    let numbered: Vec<String> = bank
        .names
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let names = format!("{}\n{}", numbered[..4].join(", "), numbered[4..].join(", "));
    out.picture(
        "06_filter_bank.png",
        "§6 the bank of 7 classic 3x3x3 filters (blue negative, red positive), channels R, G, B side by side",
        viz::filter_grid(&format!("A filter bank (7, 3, 3, 3)\n{names}"), bank.filters.view()),
    )?;
    out.picture(
        "06_filter_bank_maps.png",
        "§6 the 7 feature maps the bank makes from Chelsea, stacked along the channel axis",
        viz::feature_maps(
            &format!("Chelsea through 7 filters: output (7, 150, 226)\n{names}"),
            maps.view(),
        ),
    )
}

pub fn section7_batching(seed: u64) -> Result {
    heading(
        7,
        "Batches: im2col turns convolution into one matrix product",
        "バッチ処理",
    );
    let data = Dataset::sample();
    let batch = data.test_images.slice(s![..100, .., .., ..]).to_owned();
    let normal = Normal::new(0.0f32, 0.1)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let filters = Array4::from_shape_simple_fn((30, 1, 5, 5), || normal.sample(&mut rng));
    let bias = Array1::from_shape_simple_fn(30, || normal.sample(&mut rng));

    let col = im2col(batch.view(), 5, 5, 1, 0)?;
    println!(
        "Input {:?} (N, C, H, W), filters {:?}: im2col makes a {:?} matrix (one row per output position,\n\
         one column per filter weight); times the (25, 30) filter matrix gives all 100 x 30 feature maps at once.",
        batch.dim(),
        filters.dim(),
        col.dim()
    );

    let naive = || -> Result<Array4<f32>> {
        let mut out = Array4::zeros((100, 30, 24, 24));
        for (n, image) in batch.outer_iter().enumerate() {
            out.slice_mut(s![n, .., .., ..])
                .assign(&conv_filter_bank(&image, &filters, &bias, 0, 1)?);
        }
        Ok(out)
    };
    let fast = || conv_forward_im2col(batch.view(), filters.view(), bias.view(), 1, 0);
    let (mut naive_best, mut fast_best) = (f64::INFINITY, f64::INFINITY);
    let (mut slow_out, mut fast_out) = (Array4::zeros((0, 0, 0, 0)), Array4::zeros((0, 0, 0, 0)));
    for _ in 0..3 {
        let t = Instant::now();
        slow_out = naive()?;
        naive_best = naive_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        fast_out = fast()?;
        fast_best = fast_best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "naive loops (image by image, filter by filter): {:7.2} ms\n\
         im2col + one matrix product:                   {:7.2} ms  ({:.1}x faster)\n\
         same result? max |difference| = {:.1e} (outputs up to {:.2})",
        naive_best * 1e3,
        fast_best * 1e3,
        naive_best / fast_best,
        max_abs_diff(&slow_out, &fast_out),
        slow_out.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    );
    Ok(())
}

pub fn section8_pooling(out: &mut Output) -> Result {
    heading(8, "Pooling: robust to small shifts", "プーリング層も使う");
    let data = Dataset::sample();
    let seven = data.test_labels.iter().position(|&l| l == 7).unwrap_or(0);
    let (digit, label) = sample_digit(&data, seven);
    let feature = conv2d(&digit, &sobel_x(), 0.0)?.mapv(|v| v.max(0.0));
    let batch = feature.clone().into_shape_with_order((1, 1, 26, 26))?;
    let max = max_pool(batch.view(), 2, 2, 2, 0)?;
    let avg = avg_pool(batch.view(), 2, 2, 2, 0)?;
    println!(
        "A feature map (26, 26) -> 2x2 pooling, stride 2 -> {:?}: max keeps the strongest response, average smooths.",
        (max.dim().2, max.dim().3)
    );
    out.picture(
        "08_pooling.png",
        "§8 a digit's edge feature map, its 2x2 max pooling and its 2x2 average pooling",
        viz::side_by_side(
            "Max and average pooling of a feature map (2x2 windows, stride 2)",
            &[
                Panel::grey(digit.view(), format!("digit {label} (28, 28)")),
                Panel::grey(feature.view(), "Sobel x + ReLU (26, 26)"),
                Panel::grey(max.slice(s![0, 0, .., ..]), "max pooling (13, 13)"),
                Panel::grey(avg.slice(s![0, 0, .., ..]), "average pooling (13, 13)"),
            ],
        ),
    )?;

    // The shift experiment: move the digit 0..4 pixels right, compare with the unshifted
    // outputs position by position.
    let bank = example_filter_bank(1).filters;
    let image = digit.clone().insert_axis(Axis(0));
    let shifts = 5;
    let mut moved = Array4::<f32>::zeros((shifts, 1, 28, 28));
    for k in 0..shifts {
        moved
            .slice_mut(s![k, 0, .., k..])
            .assign(&digit.slice(s![.., ..28 - k]));
    }
    let zero_bias = Array1::zeros(bank.dim().0);
    let conv = conv_forward_im2col(moved.view(), bank.view(), zero_bias.view(), 1, 0)?;
    let pooled = max_pool(conv.view(), 2, 2, 2, 0)?;
    let change = |t: &Array4<f32>, k: usize| {
        relative_change(t.index_axis(Axis(0), 0), t.index_axis(Axis(0), k))
    };
    let conv_points: Vec<(f32, f32)> = (0..shifts).map(|k| (k as f32, change(&conv, k))).collect();
    let pool_points: Vec<(f32, f32)> = (0..shifts)
        .map(|k| (k as f32, change(&pooled, k)))
        .collect();
    println!(
        "Shift the digit right by k pixels; relative change ‖after − before‖/‖before‖ of the 6 feature maps of the §6 bank:"
    );
    println!("  k   convolution   conv + 2x2 max pooling");
    for k in 0..shifts {
        println!(
            "  {k}   {:>11.3}   {:>22.3}",
            conv_points[k].1, pool_points[k].1
        );
    }
    let e = shift_experiment(image.view(), bank.view(), 2)?;
    println!(
        "pooling::shift_experiment (1 pixel): right {:.3} -> {:.3} pooled, down {:.3} -> {:.3} pooled",
        e.conv_change_x, e.pooled_change_x, e.conv_change_y, e.pooled_change_y
    );
    println!(
        "Test accuracy of trained networks on shifted digits, and shift robustness learned from\n  \
         shifted training digits: experiments 2 and 3 of `cargo run --release --example experiments`."
    );
    out.picture(
        "08_shift_experiment.png",
        "§8 how much the conv output and the max-pooled output change when the digit moves 0-4 pixels",
        viz::line_chart(
            "Move the digit right: max pooling changes less than the convolution",
            "shift to the right (pixels)",
            "relative change of the output",
            &[("convolution (6 filters)", &conv_points[..]), ("convolution + 2x2 max pooling", &pool_points[..])],
        ),
    )
}

pub fn section9_conv_vs_pool(out: &mut Output) -> Result {
    heading(
        9,
        "Convolution vs pooling",
        "Convolution レイヤと Pooling レイヤの比較",
    );
    let cat = viz::chelsea();
    let (c, h, w) = cat.dim();
    let batch = cat.clone().insert_axis(Axis(0));
    let bank = example_filter_bank(3);
    let conv = conv_forward_im2col(batch.view(), bank.filters.view(), bank.bias.view(), 1, 1)?;
    let pooled = max_pool(batch.view(), 2, 2, 2, 0)?;
    let (fn_, _, fh, fw) = bank.filters.dim();
    println!(
        "input {:?}\n  convolution, {fn_} filters {c}x{fh}x{fw}, pad 1: -> {:?}  parameters {:>4}  (channels: {c} -> {fn_}, each map sums all {c})\n  \
         max pooling 2x2, stride 2:           -> {:?}  parameters {:>4}  (channels kept: {c}, each pooled on its own)",
        batch.dim(),
        conv.dim(),
        conv_param_count(c, fn_, fh, fw),
        pooled.dim(),
        0
    );
    let pooled_rgb: Array3<f32> = pooled.index_axis(Axis(0), 0).to_owned();
    out.picture(
        "09_conv_vs_pool.png",
        "§9 pooling keeps Chelsea's 3 colour channels; a convolution sums them into one map per filter",
        viz::side_by_side(
            "Pooling works per channel; convolution mixes channels",
            &[
                Panel::rgb(cat.view(), format!("input ({c}, {h}, {w})")),
                Panel::rgb(pooled_rgb.view(), format!("2x2 max pooling\n-> {:?}: still colour", pooled_rgb.dim())),
                Panel::grey(conv.slice(s![0, 0, .., ..]), format!("convolution, map 0 of {fn_}\n-> ({fn_}, {h}, {w}): no colour")),
            ],
        ),
    )
}

pub fn section10_architecture(seed: u64) -> Result {
    heading(10, "The whole CNN", "CNN の全体アーキテクチャ");
    // The book's SimpleConvNet, written out as what it is: an ordered list of layers.
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 0.01)?; // the book's weight_init_std
    let mut weights =
        |shape: &[usize]| ndarray::ArrayD::from_shape_simple_fn(shape, || normal.sample(&mut rng));
    let w1 = weights(&[30, 1, 5, 5]).into_dimensionality()?;
    let w2 = weights(&[4320, 100]).into_dimensionality()?;
    let w3 = weights(&[100, 10]).into_dimensionality()?;
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Convolution::new(w1, Array1::zeros(30), 1, 0)),
        Box::new(Relu::new()),
        Box::new(Pooling::new(2, 2, 2, 0)),
        Box::new(Affine::new(w2, Array1::zeros(100))),
        Box::new(Relu::new()),
        Box::new(Affine::new(w3, Array1::zeros(10))),
    ];
    let net = Network::new(&[1, 28, 28], layers)?;
    let built = simple_conv_net(&SimpleConvNetConfig::default(), seed)?;
    println!(
        "The book's SimpleConvNet is a list of layers: Convolution - ReLU - Pooling, then\n\
         Affine - ReLU - Affine - Softmax. (Goodfellow et al.: a CNN is a net that uses\n\
         convolution in place of a general matrix product in at least one layer.)\n\n{net}\n\
         `simple_conv_net(&SimpleConvNetConfig::default(), seed)` builds the same list ({} parameters).",
        built.num_params()
    );
    let fc = mlp(&[784, 100, 100, 10], Init::He, seed)?;
    println!(
        "\nThe fully connected net of §1, from the same Affine and ReLU layers, for comparison:\n\n{fc}"
    );
    Ok(())
}
