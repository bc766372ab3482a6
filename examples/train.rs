//! Train the book's SimpleConvNet from the command line.
//!
//! ```text
//! cargo run --release --example train -- --dataset sample --epochs 10
//! cargo run --release --example train -- --dataset fashion --epochs 1 --min-test-acc 0.81
//! cargo run --release --example train -- --dataset sample --epochs 10 \
//!     --save simple_conv_net.safetensors --predictions predictions.txt
//! python3 tools/check_params.py simple_conv_net.safetensors predictions.txt
//! ```
//!
//! Prints the network, then one line per epoch with the loss and accuracy on the training
//! and test images and the time the epoch's training steps took. `--save` writes the
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
use cnn_from_scratch::full_cnn::simple_conv_net::argmax_rows;
use cnn_from_scratch::full_cnn::trainer::Trainer;
use cnn_from_scratch::full_cnn::{Adam, SimpleConvNet, SimpleConvNetConfig};
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

/// Train the book's SimpleConvNet (conv 30x5x5 - ReLU - pool 2x2 - affine 100 - ReLU -
/// affine 10) with Adam (lr 0.001) on mini-batches of 100.
#[derive(Debug, Parser)]
struct Args {
    /// Which data set to train and test on.
    #[arg(long, value_enum, default_value = "sample")]
    dataset: DatasetArg,
    /// Passes over the training set (the book: 20).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per step.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001)]
    lr: f32,
    /// After each epoch, measure on only the first N training and test images.
    #[arg(long, value_name = "N")]
    eval_subset: Option<usize>,
    /// Write the trained parameters to FILE (safetensors).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write the predicted label and scores of every test image to FILE.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Fail (exit status 1) if the final test accuracy is below X, e.g. 0.81.
    #[arg(long, value_name = "X")]
    min_test_acc: Option<f32>,
    /// Do not draw the progress bar.
    #[arg(long)]
    no_progress: bool,
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

    let config = SimpleConvNetConfig::default();
    let mut net = SimpleConvNet::new(config, args.seed).map_err(|e| e.to_string())?;
    print!("{net}");
    let mut trainer = Trainer {
        epochs: args.epochs,
        batch_size: args.batch_size as usize,
        seed: args.seed,
        optimizer: Box::new(Adam::new(args.lr, 0.9, 0.999)),
        eval_subset: args.eval_subset,
        show_progress: !args.no_progress,
    };
    let history = trainer.fit(&mut net, &data).map_err(|e| e.to_string())?;
    for e in &history.epochs {
        println!(
            "epoch {:>2}/{}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s/epoch",
            e.epoch, args.epochs, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.seconds
        );
    }
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
        save_params(path, net.params(), &config).map_err(|e| e.to_string())?;
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

/// One line per test image: the predicted label, then the scores (shortest decimal form
/// that reads back to the same f32).
fn write_predictions(path: &Path, net: &mut SimpleConvNet, data: &Dataset) -> Result<(), String> {
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
