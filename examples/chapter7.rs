//! Chapter 7 from start to finish: every section of the note, in order, with its numbers and
//! its pictures, then SimpleConvNet trained and looked at.
//!
//! ```text
//! cargo run --release --example chapter7                      # everything, into target/chapter7
//! cargo run --release --example chapter7 -- --out pictures    # somewhere else
//! cargo run --release --example chapter7 -- --dataset mnist --epochs 3
//! cargo run --release --example chapter7 -- --quick           # 1 short epoch (CI)
//! ```
//!
//! Sections 1-10 (これまでのシンプルな NN の限界 ... CNN の全体アーキテクチャ) each print a
//! heading, the numbers that make their point and write their pictures. Section 11
//! (CNN の実装) trains the book's SimpleConvNet with a progress bar and draws what it learned.
//! The run ends with a table of every file written (also saved as `files.tsv` in the output
//! folder): `.ci/check_chapter7.sh` reads it and checks each file.
//!
//! Sections 1-10 always use the 5,000-digit MNIST sample inside the crate and Chelsea the cat,
//! so their pictures do not depend on `--dataset`; section 11 trains on the data set chosen.

#[path = "chapter7/output.rs"]
mod output;
#[path = "chapter7/sections.rs"]
mod sections;
#[path = "chapter7/training.rs"]
mod training;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use cnn_from_scratch::data::{Dataset, Source};

use output::Output;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatasetArg {
    /// The 5,000-digit MNIST sample inside the crate (4,000 train / 1,000 test).
    Sample,
    /// Full MNIST (60,000 / 10,000), from disk or downloaded once.
    Mnist,
    /// Full Fashion-MNIST (60,000 / 10,000), from disk.
    Fashion,
}

/// Walk through chapter 7 of Deep Learning from Scratch: numbers and pictures for every
/// section, then SimpleConvNet trained and its filters, feature maps and mistakes drawn.
#[derive(Debug, Parser)]
pub struct Args {
    /// Folder for the pictures, the trained parameters and files.tsv.
    #[arg(long, value_name = "DIR", default_value = "target/chapter7")]
    out: PathBuf,
    /// Data set for training in section 11 [default: the best one available].
    #[arg(long, value_enum)]
    dataset: Option<DatasetArg>,
    /// Passes over the training set [default: 10 on the sample, 2 on full MNIST/Fashion].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// Seed of every random choice (weights, shuffling, permutation, random filters).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One epoch on 2,000 training and 500 test images, for a quick check (CI).
    #[arg(long)]
    quick: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help
        Err(e) => {
            let message = e.to_string();
            eprintln!(
                "{}",
                message.lines().next().unwrap_or("error: bad arguments")
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    // Fail before any work if the pictures cannot be written.
    let mut out = Output::create(&args.out)?;
    println!(
        "Chapter 7, Convolutional neural networks (畳み込みニューラルネットワーク)\n\
         writing to {}\n",
        out.dir().display()
    );

    let source = match args.dataset {
        Some(DatasetArg::Sample) => Source::Sample,
        Some(DatasetArg::Mnist) => Source::Mnist,
        Some(DatasetArg::Fashion) => Source::FashionMnist,
        None => {
            let (source, reason) = Source::best_available();
            println!("data set: {source}. {reason}");
            source
        }
    };
    if args.dataset.is_some() {
        println!("data set: {source} (chosen with --dataset)");
    }
    // Load the training data first: a missing data set fails now, not after §1-10.
    let data = Dataset::load(source)?;
    let epochs = match (args.quick, args.epochs) {
        (_, Some(e)) => e as usize,
        (true, None) => 1,
        (false, None) if source == Source::Sample => 20,
        (false, None) => 2,
    };
    sections::section1_fc_limits(&mut out, args.seed)?;
    sections::section2_filters(&mut out)?;
    sections::section3_conv_layer(&mut out, args.seed)?;
    sections::section4_padding_stride(&mut out)?;
    sections::section5_colour(&mut out)?;
    sections::section6_filter_bank(&mut out)?;
    sections::section7_batching(args.seed)?;
    sections::section8_pooling(&mut out)?;
    sections::section9_conv_vs_pool(&mut out)?;
    sections::section10_architecture(args.seed)?;

    training::section11_train(&mut out, data, source, epochs, args.seed, args.quick)?;

    out.finish()?;
    println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
}
