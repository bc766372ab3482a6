//! Train one of the chapter's networks from the command line: the book's SimpleConvNet
//! (default), the fully connected net of §1, a two-block CNN (Fig 7-2) or the book's
//! DeepConvNet.
//!
//! ```text
//! cargo run --release --example train -- --dataset sample --epochs 10
//! cargo run --release --example train -- --net mlp --dataset mnist --epochs 20
//! MNIST_DIR=../shared/data/mnist cargo run --release --example train -- --net deep --dataset mnist
//! cargo run --release --example train -- --dataset fashion --epochs 1 --min-test-acc 0.81
//! cargo run --release --example train -- --dataset mnist --epochs 10 --augment-shift 2
//! cargo run --release --example train -- --dataset sample --epochs 10 \
//!     --save simple_conv_net.safetensors --predictions predictions.txt
//! python3 tools/check_params.py simple_conv_net.safetensors predictions.txt
//! ```
//!
//! Prints the network, then one line per epoch, as soon as the epoch ends, with the loss and
//! accuracy on the training and test images and the time the epoch's training steps took. `--save` writes the
//! trained parameters as safetensors; `--predictions` writes, for every test image, the
//! predicted label followed by the ten scores, for `tools/check_params.py` to compare with
//! its own forward pass. Bad flags or a data set that cannot be loaded end the program
//! with a one-line error and a non-zero exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use cnn_from_scratch::data::{Dataset, Source};
use cnn_from_scratch::full_cnn::params_io::save_params;
use cnn_from_scratch::full_cnn::trainer::Trainer;
use cnn_from_scratch::full_cnn::{
    Adam, Init, Network, SimpleConvNetConfig, argmax_rows, deep_conv_net, mlp, simple_conv_net,
    two_block_cnn,
};
use ndarray::s;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatasetArg {
    /// The 5,000-digit MNIST sample inside the crate (4,000 train / 1,000 test).
    Sample,
    /// Full MNIST (60,000 / 10,000), from disk or downloaded once.
    Mnist,
    /// Full Fashion-MNIST (60,000 / 10,000), e.g. from `apt-get install dataset-fashion-mnist`.
    Fashion,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum NetArg {
    /// The fully connected net of §1: Affine 784-100-100-10 with ReLU (He initialisation).
    Mlp,
    /// The book's SimpleConvNet: conv 30x5x5 - ReLU - pool 2x2 - affine 100 - ReLU - affine 10.
    Simple,
    /// Two Conv-ReLU-Pool blocks (16 and 32 filters of 3x3), affine 100, affine 10 (Fig 7-2).
    TwoBlock,
    /// The book's DeepConvNet: six 3x3 convolutions, affine 50, dropout (He initialisation).
    Deep,
}

/// Train one of the chapter's networks (default: the book's SimpleConvNet, conv 30x5x5 -
/// ReLU - pool 2x2 - affine 100 - ReLU - affine 10) with Adam (lr 0.001) on mini-batches
/// of 100.
#[derive(Debug, Parser)]
struct Args {
    /// Which network to train.
    #[arg(long, value_enum, default_value = "simple")]
    net: NetArg,
    /// Initial weights: he, xavier, book (0.01) or a number; default: book for simple,
    /// he for the others (DeepConvNet is always He, as in the book).
    #[arg(long)]
    init: Option<String>,
    /// Which data set to train and test on.
    #[arg(long, value_enum, default_value = "sample")]
    dataset: DatasetArg,
    /// Passes over the training set (the book: 20).
    #[arg(long, default_value_t = 20, value_parser = at_least_one())]
    epochs: usize,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per step.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001, value_parser = learning_rate)]
    lr: f32,
    /// After each epoch, measure on only the first N training and test images.
    #[arg(long, value_name = "N", value_parser = at_least_one())]
    eval_subset: Option<usize>,
    /// Write the trained parameters to FILE (safetensors).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write the predicted label and scores of every test image to FILE.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Fail (exit status 1) if the final test accuracy is below X, e.g. 0.81.
    #[arg(long, value_name = "X", value_parser = fraction)]
    min_test_acc: Option<f32>,
    /// Shift augmentation: move each training image by a random (dx, dy) of up to N
    /// pixels each way before every step (0: off).
    #[arg(long, value_name = "N", default_value_t = 0)]
    augment_shift: usize,
    /// Do not draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// A count of at least 1 (`--epochs 0` would train nothing and say nothing).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// A learning rate: finite and positive (a negative one climbs the loss instead of
/// descending it; NaN would only show as a NaN loss after the first step).
fn learning_rate(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        Ok(lr) => Err(format!("must be a positive number, e.g. 0.001 (got {lr})")),
        Err(e) => Err(e.to_string()),
    }
}

/// An accuracy between 0 and 1 (`--min-test-acc 98` would fail every run).
fn fraction(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!(
            "must be between 0 and 1, e.g. 0.98 for 98% (got {x})"
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let message = e.to_string();
            eprintln!("{}", message.lines().next().unwrap_or("bad arguments"));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let source = match args.dataset {
        DatasetArg::Sample => Source::Sample,
        DatasetArg::Mnist => Source::Mnist,
        DatasetArg::Fashion => Source::FashionMnist,
    };
    let data = Dataset::load(source).map_err(|e| e.to_string().replace('\n', " "))?;
    println!(
        "{}: {} training and {} test images",
        data.name,
        data.train_labels.len(),
        data.test_labels.len()
    );

    let mut net = build(args).map_err(|e| e.to_string())?;
    print!("{net}");
    let mut trainer = Trainer {
        epochs: args.epochs,
        batch_size: args.batch_size as usize,
        seed: args.seed,
        optimizer: Box::new(Adam::new(args.lr, 0.9, 0.999)),
        eval_subset: args.eval_subset,
        show_progress: !args.no_progress,
        augment_shift: args.augment_shift,
    };
    let history = trainer
        .fit_reporting(&mut net, &data, |e| {
            println!(
                "epoch {:>2}/{}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s/epoch",
                e.epoch, args.epochs, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.seconds
            );
            // Piped output (CI, `| tee`) is block-buffered: show each epoch as it ends.
            std::io::stdout().flush().ok();
        })
        .map_err(|e| e.to_string())?;
    let (seconds, steps) = (
        history.epochs.iter().map(|e| e.seconds).sum::<f64>(),
        history.step_losses.len(),
    );
    if steps > 0 {
        println!(
            "training: {seconds:.1} s for {steps} steps ({:.1} ms/step)",
            1000.0 * seconds / steps as f64
        );
    }

    if let Some(path) = &args.save {
        save_params(path, &net).map_err(|e| e.to_string())?;
        println!("saved parameters to {}", path.display());
    }
    if let Some(path) = &args.predictions {
        write_predictions(path, &mut net, &data)?;
        println!("wrote test predictions to {}", path.display());
    }

    if let (Some(min), Some(last)) = (args.min_test_acc, history.epochs.last()) {
        if last.test_acc < min {
            return Err(format!(
                "final test accuracy {:.4} is below --min-test-acc {min}",
                last.test_acc
            ));
        }
        println!("final test accuracy {:.4} >= {min}", last.test_acc);
    }
    Ok(())
}

/// The network `--net` names, with `--init` if given.
fn build(args: &Args) -> Result<Network, cnn_from_scratch::full_cnn::NetworkError> {
    let init = args.init.as_deref().map(str::parse::<Init>).transpose()?;
    let seed = args.seed;
    match args.net {
        NetArg::Mlp => mlp(&[784, 100, 100, 10], init.unwrap_or(Init::He), seed),
        NetArg::Simple => {
            let mut config = SimpleConvNetConfig::default();
            if let Some(init) = init {
                // SimpleConvNet's layers are sized from the config; He/Xavier give one
                // scale per layer, so only a fixed scale fits its `weight_scale`.
                match init {
                    Init::Scale(s) => config.weight_scale = s,
                    _ => {
                        return Err(cnn_from_scratch::full_cnn::NetworkError::BadValue {
                            what: "--init for --net simple",
                            value: format!("{init:?}"),
                            expected:
                                "book or a number (the book's SimpleConvNet uses one fixed scale)"
                                    .into(),
                        });
                    }
                }
            }
            simple_conv_net(&config, seed)
        }
        NetArg::TwoBlock => two_block_cnn(init.unwrap_or(Init::He), seed),
        NetArg::Deep => deep_conv_net(seed),
    }
}

/// One line per test image: the predicted label, then the scores (shortest decimal form
/// that reads back to the same f32).
fn write_predictions(path: &Path, net: &mut Network, data: &Dataset) -> Result<(), String> {
    let error = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(error)?);
    let n = data.test_labels.len();
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let scores = net.predict(data.test_images.slice(s![start..end, .., .., ..]));
        for (row, label) in scores.rows().into_iter().zip(argmax_rows(&scores)) {
            let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            writeln!(out, "{label} {}", values.join(" ")).map_err(error)?;
        }
    }
    out.flush().map_err(error)
}
