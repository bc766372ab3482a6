//! How fast is the from-scratch CNN? Times the book's SimpleConvNet and its convolution
//! layer and prints one line per measurement, in the format of
//! `benches/reference/README.md`, so the output can be read next to the PyTorch
//! reference `benches/reference/torch_simpleconvnet.py`.
//!
//! ```text
//! cargo run --release --example bench -- --threads 2
//! cargo run --release --example bench -- --threads 1 --what train_step,infer
//! ```
//!
//! Measurements (`--what`):
//!
//! - `train_step`: forward, softmax-with-loss, backward, one Adam update (batch `--batch`);
//! - `infer`: forward to the scores and the arg-max class, at `--batch` and at batch 1;
//! - `train_step_deep`, `infer_deep`: the same for the book's DeepConvNet
//!   ([`deep_conv_net`]: six 3x3 convolutions, three poolings, two Affine layers, Dropout);
//! - `conv_forward`, `conv_backward`: the Convolution layer alone (backward gives dx, dW, db);
//! - `conv_naive`: the chapter's lesson, the same convolution as seven nested loops, with
//!   the im2col speed-up (`speedup=`) next to it;
//! - `layers`, `layers_deep` (not in the default set): where a training step's time goes,
//!   one line per layer of SimpleConvNet or DeepConvNet, its forward and backward time and,
//!   for layers with weights, the rate of their multiply-adds in GFLOP/s (2 per
//!   multiply-add; backward does twice the forward's, `dW` and `dx`, except in the first
//!   layer, which needs no `dx`). The multiply-adds counted are the definition's: a layer run
//!   by Winograd's algorithm does fewer, so its rate can pass the machine's peak. The layers
//!   run one by one here, without the network's fused passes (convolution, ReLU and pooling
//!   in one), so their sum is more than a step.
//!
//! `--threads N` sets the one pool the crate uses, rayon's (`ThreadPoolBuilder`): the work
//! is split over images, and each matrix product runs on one thread (ndarray's
//! `matrixmultiply` without its `threading` feature; nested threads made training ten times
//! slower on a busy machine). Timing: `--warmup` untimed steps, then `--repeats` runs of `--steps` steps;
//! the median run is reported. Data are seeded random images: loading is not measured.
//!
//! Each line also says how busy the cores were while it was measured: `cpu_s` (user + system
//! CPU seconds of the whole process, from `/proc/self/stat`), `wall_s` and `cores_busy =
//! cpu_s / wall_s` (2.0 = both cores busy all the time; on a loaded machine it is lower
//! because the process waits for a core), and `cpu_ms_per_step`, the CPU time of one step
//! summed over the threads: the work a step takes, which other processes on the machine
//! change much less than the wall time. Left out when the timed runs took under 0.5 s.
//! Both count the time a worker spends looking for work between two parallel loops of a
//! pass, which it does instead of sleeping (`full_cnn::kernels::threads`): `cores_busy` near 2.0
//! says that no core sleeps during a step, not that both compute all the time.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cnn_from_scratch::full_cnn::{
    Adam, Convolution, Network, Optimizer, SimpleConvNetConfig, argmax_rows, deep_conv_net,
    simple_conv_net,
};
use ndarray::{Array1, Array4, ArrayD, Ix1, Ix4, s};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const MEASUREMENTS: [&str; 9] = [
    "train_step",
    "infer",
    "train_step_deep",
    "infer_deep",
    "conv_forward",
    "conv_backward",
    "conv_naive",
    "layers",
    "layers_deep",
];

/// Time SimpleConvNet and its convolution; one line per measurement.
#[derive(Debug, Parser)]
struct Args {
    /// Worker threads of the rayon pool (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Timed steps per repeat.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Comma-separated subset of train_step,infer,train_step_deep,infer_deep,conv_forward,
    /// conv_backward,conv_naive (the default), plus layers,layers_deep.
    #[arg(
        long,
        default_value = "train_step,infer,train_step_deep,infer_deep,conv_forward,conv_backward,conv_naive"
    )]
    what: String,
    /// Seed for weights and data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The timing settings shared by all measurements.
#[derive(Debug, Clone, Copy)]
struct Timing {
    steps: usize,
    warmup: usize,
    repeats: usize,
    threads: usize,
}

/// User + system CPU seconds used so far by this process (all threads), from
/// `/proc/self/stat` (Linux; `None` elsewhere).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces):
    // state is field 3, utime field 14, stime field 15, in clock ticks (100 per second
    // on Linux).
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

/// CPU and wall time of the timed runs of the last measurement, for the report line.
#[derive(Debug, Clone, Copy, Default)]
struct Busy {
    cpu_s: Option<f64>,
    wall_s: f64,
    steps: usize,
}

impl Busy {
    fn keys(&self) -> String {
        match self.cpu_s {
            // /proc counts CPU time in 10 ms ticks: too coarse for a short measurement.
            Some(cpu) if self.wall_s >= 0.5 => format!(
                " cpu_s={cpu:.2} wall_s={:.2} cores_busy={:.2} cpu_ms_per_step={:.3}",
                self.wall_s,
                cpu / self.wall_s.max(1e-9),
                cpu * 1e3 / self.steps.max(1) as f64
            ),
            _ => String::new(),
        }
    }
}

impl Timing {
    /// Median over the repeats of the mean seconds of one call of `step`, and how busy
    /// the cores were during the timed runs.
    fn seconds_per_step(&self, mut step: impl FnMut()) -> (f64, Busy) {
        for _ in 0..self.warmup {
            step();
        }
        let (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
        let mut times: Vec<f64> = (0..self.repeats)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..self.steps {
                    step();
                }
                start.elapsed().as_secs_f64() / self.steps as f64
            })
            .collect();
        let busy = Busy {
            cpu_s: process_cpu_seconds()
                .zip(cpu0)
                .map(|(end, start)| end - start),
            wall_s: wall0.elapsed().as_secs_f64(),
            steps: self.repeats * self.steps,
        };
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], busy)
    }

    /// One result line (format: benches/reference/README.md), with optional extra keys.
    fn report(&self, name: &str, batch: usize, (seconds, busy): (f64, Busy), extra: &str) {
        println!(
            "{name} impl=rust layout=nchw batch={batch} threads={} images_per_s={:.1} \
             ms_per_step={:.3} steps={} repeats={}{extra}{}",
            self.threads,
            batch as f64 / seconds,
            seconds * 1e3,
            self.steps,
            self.repeats,
            busy.keys(),
        );
    }
}

/// The seven nested loops of the definition (stride 1, no padding): the slow way.
fn naive_conv(x: &Array4<f32>, w: &Array4<f32>, b: &Array1<f32>) -> Array4<f32> {
    let (n, c, h, wd) = x.dim();
    let (fnum, _, fh, fw) = w.dim();
    let (oh, ow) = (h - fh + 1, wd - fw + 1);
    Array4::from_shape_fn((n, fnum, oh, ow), |(i, f, oy, ox)| {
        let mut acc = b[f];
        for ch in 0..c {
            for ky in 0..fh {
                for kx in 0..fw {
                    acc += x[[i, ch, oy + ky, ox + kx]] * w[[f, ch, ky, kx]];
                }
            }
        }
        acc
    })
}

/// Builds the global rayon pool; must run before the first parallel call.
fn set_threads(threads: Option<usize>) -> Result<usize, String> {
    let threads = match threads {
        Some(0) => return Err("--threads must be at least 1".into()),
        Some(t) => t,
        None => std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("cannot build the rayon pool: {e}"))?;
    Ok(threads)
}

/// Times a training step (forward, loss, backward, Adam) of a copy of `net`, so the
/// weights the other measurements use stay as they are.
fn train_step(
    timing: &Timing,
    name: &str,
    net: &Network,
    images: &Array4<f32>,
    labels: &Array1<u8>,
) {
    let mut train_net = net.clone();
    let mut adam = Adam::new(0.001, 0.9, 0.999);
    let mut losses = Vec::new();
    let measured = timing.seconds_per_step(|| {
        let (loss, grads) = train_net.gradient(images.view(), labels.view());
        adam.update(train_net.params_mut(), &grads);
        losses.push(loss);
    });
    timing.report(name, images.dim().0, measured, "");
    // Random labels: the loss starts near ln 10 = 2.303 and falls as the network
    // memorises this one batch; a sanity check, not a result.
    println!(
        "# {name} loss first={:.4} last={:.4}",
        losses[0],
        losses[losses.len() - 1]
    );
}

/// Times each layer of `net` alone, forward (training mode) and backward, through whole
/// passes of the batch: one line per layer, the median over the repeats of its mean time
/// per pass.
fn layer_times(timing: &Timing, name: &str, net: &Network, images: &Array4<f32>) {
    let shapes = net.output_shapes().to_vec();
    let mut layers = net.clone().into_layers();
    let batch = images.dim().0;
    // Per repeat, per layer: (forward, backward) seconds summed over the steps.
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    for repeat in 0..=timing.repeats {
        // Repeat 0 is the warm-up, not kept.
        let steps = if repeat == 0 {
            timing.warmup.max(1)
        } else {
            timing.steps
        };
        let mut sums = vec![(0.0, 0.0); layers.len()];
        for _ in 0..steps {
            let mut x: ArrayD<f32> = images.clone().into_dyn();
            for (layer, sum) in layers.iter_mut().zip(&mut sums) {
                let start = Instant::now();
                x = layer.forward(x, true);
                sum.0 += start.elapsed().as_secs_f64();
            }
            // Any upstream gradient will do for timing; the scores' own values, scaled.
            let mut dout = x.mapv(|v| v * 1e-2);
            for (i, (layer, sum)) in layers.iter_mut().zip(&mut sums).enumerate().rev() {
                let start = Instant::now();
                if i == 0 {
                    // As in training: the first layer computes no gradient for the images.
                    layer.backward_params(std::mem::take(&mut dout));
                } else {
                    dout = layer.backward(dout);
                }
                sum.1 += start.elapsed().as_secs_f64();
            }
        }
        if repeat > 0 {
            runs.push(
                sums.iter()
                    .map(|&(f, b)| (f / steps as f64, b / steps as f64))
                    .collect(),
            );
        }
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("# {name}: each layer alone (no fused passes), ms per pass of {batch} images");
    for (i, layer) in layers.iter().enumerate() {
        let forward = median(runs.iter().map(|r| r[i].0).collect());
        let backward = median(runs.iter().map(|r| r[i].1).collect());
        // Multiply-adds: every weight meets every output position once per image (a
        // convolution's OH*OW positions; an Affine layer's one).
        let weights: usize = layer.params().first().map_or(0, |(_, w)| w.len());
        let positions: usize = shapes[i].iter().skip(1).product();
        let flop = 2.0 * (weights * positions * batch) as f64;
        let rates = if weights > 0 {
            let backward_flop = if i == 0 { flop } else { 2.0 * flop };
            format!(
                " forward_gflop_per_s={:.1} backward_gflop_per_s={:.1}",
                flop / forward / 1e9,
                backward_flop / backward / 1e9
            )
        } else {
            String::new()
        };
        println!(
            "{name} impl=rust index={i} layer={} batch={batch} threads={} forward_ms={:.3} \
             backward_ms={:.3}{rates}",
            layer.describe().replace(", ", ",").replace(' ', "_"),
            timing.threads,
            forward * 1e3,
            backward * 1e3,
        );
    }
}

/// Times inference (scores and arg-max) at the batch size and at batch 1.
fn infer(timing: &Timing, name: &str, net: &mut Network, images: &Array4<f32>) {
    let batch = images.dim().0;
    let sizes = if batch == 1 { vec![1] } else { vec![batch, 1] };
    for n in sizes {
        let x = images.slice(s![..n, .., .., ..]).to_owned();
        let measured = timing.seconds_per_step(|| {
            let scores = net.predict(x.view());
            std::hint::black_box(argmax_rows(&scores));
        });
        timing.report(name, n, measured, "");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let what: Vec<&str> = args.what.split(',').map(str::trim).collect();
    if let Some(bad) = what.iter().find(|w| !MEASUREMENTS.contains(w)) {
        eprintln!(
            "bench: unknown --what {bad}; choose from {}",
            MEASUREMENTS.join(",")
        );
        return ExitCode::from(2);
    }
    let threads = match set_threads(args.threads) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let timing = Timing {
        steps: args.steps as usize,
        warmup: args.warmup as usize,
        repeats: args.repeats as usize,
        threads,
    };
    let batch = args.batch as usize;
    println!(
        "# impl=rust crate=cnn-from-scratch-{} threads={threads} layout=nchw profile={} machine={}",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::env::consts::ARCH,
    );

    let config = SimpleConvNetConfig::default();
    let (c, h, w) = config.input;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let images = Array4::from_shape_simple_fn((batch, c, h, w), || rng.random_range(0.0f32..1.0));
    let labels = Array1::from_shape_simple_fn(batch, || rng.random_range(0..config.classes as u8));
    let mut net = simple_conv_net(&config, args.seed).expect("the book's network fits");

    if what.contains(&"train_step") {
        train_step(&timing, "train_step", &net, &images, &labels);
    }
    if what.contains(&"infer") {
        infer(&timing, "infer", &mut net, &images);
    }
    if what.contains(&"layers") {
        layer_times(&timing, "layers", &net, &images);
    }
    if ["train_step_deep", "infer_deep", "layers_deep"]
        .iter()
        .any(|m| what.contains(m))
    {
        let mut deep = deep_conv_net(args.seed).expect("the book's DeepConvNet fits");
        if what.contains(&"layers_deep") {
            layer_times(&timing, "layers_deep", &deep, &images);
        }
        if what.contains(&"train_step_deep") {
            train_step(&timing, "train_step_deep", &deep, &images, &labels);
        }
        if what.contains(&"infer_deep") {
            infer(&timing, "infer_deep", &mut deep, &images);
        }
    }

    let params = net.params();
    let w1 = params["W1"]
        .clone()
        .into_dimensionality::<Ix4>()
        .expect("filters");
    let b1 = params["b1"]
        .clone()
        .into_dimensionality::<Ix1>()
        .expect("biases");
    let mut conv = Convolution::new(w1.clone(), b1.clone(), config.stride, config.pad);
    if what.contains(&"conv_forward") {
        let measured = timing.seconds_per_step(|| {
            std::hint::black_box(conv.forward(images.view()).expect("fits"));
        });
        timing.report("conv_forward", batch, measured, "");
    }
    if what.contains(&"conv_backward") {
        let out_shape = conv.output_shape(images.dim()).expect("fits");
        let dout = Array4::from_shape_simple_fn(out_shape, || rng.sample::<f32, _>(StandardNormal));
        conv.forward(images.view()).expect("fits");
        let measured = timing.seconds_per_step(|| {
            std::hint::black_box(conv.backward(dout.view()));
        });
        timing.report("conv_backward", batch, measured, "");
    }
    if what.contains(&"conv_naive") {
        // The seven loops are slow: a few steps are plenty.
        let naive_timing = Timing {
            steps: timing.steps.min(3),
            warmup: timing.warmup.min(1),
            ..timing
        };
        let (weights, bias) = (&w1, &b1);
        let fast = conv.forward(images.view()).expect("fits");
        let slow = naive_conv(&images, weights, bias);
        let max_diff = fast
            .iter()
            .zip(&slow)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let t_naive = naive_timing.seconds_per_step(|| {
            std::hint::black_box(naive_conv(&images, weights, bias));
        });
        let t_im2col = timing.seconds_per_step(|| {
            std::hint::black_box(conv.forward(images.view()).expect("fits"));
        });
        naive_timing.report(
            "conv_naive",
            batch,
            t_naive,
            &format!(" speedup_im2col={:.1}", t_naive.0 / t_im2col.0),
        );
        println!("# conv_naive max_abs_diff_vs_im2col={max_diff:.2e}");
    }
    ExitCode::SUCCESS
}
