//! The chapter's three claims, measured with trained networks (see the module
//! `cnn_from_scratch::experiments` and the README section "The chapter's claims, measured").
//!
//! ```text
//! MNIST_DIR=../shared/data/mnist cargo run --release --example experiments   # the full run
//! cargo run --release --example experiments -- --quick                         # under a minute (CI)
//! cargo run --release --example experiments -- --only 3 --out somewhere
//! ```
//!
//! 1. Shuffled pixels (§1): the fully connected net and SimpleConvNet on digits as they are
//!    and with one fixed pixel permutation, 3 seeds.
//! 2. Shifted test digits (§8): four networks, test digits moved 0-4 pixels, 3 seeds.
//! 3. Robustness learned from data (§8): SimpleConvNet trained with and without random
//!    shifts of up to 2 pixels: 10 epochs on all 60,000 MNIST training digits, and 40 epochs
//!    on the 4,000-digit sample, both tested on the 10,000 MNIST test digits; one seed
//!    (`--exp3-seeds` for more).
//!
//! Full MNIST is used when it is on disk (`$MNIST_DIR`, `./data/mnist`, the cache folder),
//! otherwise the embedded sample; the first line says which. Experiments 1 and 2 train on
//! the first `--train-images` training digits (default 20,000) for `--epochs` (default 3)
//! and test on every test digit. Prints each table as it is done and writes into `--out`
//! (default `target/experiments/`): a PNG per experiment, `results.tsv` with every number,
//! `tables.md` with the tables.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use cnn_from_scratch::data::{Dataset, Source};
use cnn_from_scratch::experiments::report::{TSV_HEADER, chart_lines};
use cnn_from_scratch::experiments::{
    Net, ShiftCurves, Training, learned_robustness, shifted_test_digits, shuffled_pixels, subset,
    train_on_sample,
};

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum DatasetArg {
    /// The 5,000-digit sample inside the crate.
    Sample,
    /// Full MNIST (60,000 / 10,000), from disk or downloaded once.
    Mnist,
}

/// Measure the chapter's three claims with trained networks: FC vs CNN on shuffled pixels,
/// pooling vs shifted digits, shift robustness learned from shifted training digits.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the pictures, results.tsv and tables.md.
    #[arg(long, value_name = "DIR", default_value = "target/experiments")]
    out: PathBuf,
    /// Data set [default: full MNIST if it is on disk, else the sample].
    #[arg(long, value_enum)]
    dataset: Option<DatasetArg>,
    /// Small subsets, one seed, 2 epochs: finishes in under a minute (CI).
    #[arg(long)]
    quick: bool,
    /// Run only these experiments, e.g. `--only 1,2`.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=3))]
    only: Vec<u8>,
    /// Experiments 1 and 2: train on the first N training digits.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = at_least_one())]
    train_images: usize,
    /// Experiments 1 and 2: passes over those digits.
    #[arg(long, value_name = "E", default_value_t = 3, value_parser = at_least_one())]
    epochs: usize,
    /// Experiments 1 and 2: seeds 0..S.
    #[arg(long, value_name = "S", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Experiment 3: largest random shift of the training digits, in pixels.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one())]
    augment_shift: usize,
    /// Experiment 3: passes over the 60,000 digits of full MNIST.
    #[arg(long, value_name = "E", default_value_t = 10, value_parser = at_least_one())]
    full_epochs: usize,
    /// Experiment 3: seeds 0..S (each trains two networks on each training set).
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    exp3_seeds: u64,
    /// Experiment 3: passes over the 4,000 digits of the sample.
    #[arg(long, value_name = "E", default_value_t = 40, value_parser = at_least_one())]
    sample_epochs: usize,
}

/// A count of at least 1: no digits, no epochs or no shift would measure nothing.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
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
        Err(message) => {
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

/// Everything written, gathered as the experiments run.
struct Outputs {
    dir: PathBuf,
    tsv: Vec<String>,
    tables: String,
    files: Vec<(String, String)>,
}

impl Outputs {
    fn table(&mut self, heading: &str, table: &str) {
        println!("\n{heading}\n\n{table}");
        let _ = write!(self.tables, "### {heading}\n\n{table}\n");
    }

    fn picture(
        &mut self,
        name: &str,
        what: &str,
        picture: cnn_from_scratch::viz::Picture,
    ) -> Result {
        picture
            .save(self.dir.join(name))
            .map_err(|e| e.to_string())?;
        self.files.push((name.into(), what.into()));
        Ok(())
    }

    fn text(&mut self, name: &str, what: &str, text: &str) -> Result {
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.files.push((name.into(), what.into()));
        Ok(())
    }
}

fn run(args: &Args) -> Result {
    let started = Instant::now();
    let (source, why) = match args.dataset {
        Some(DatasetArg::Sample) => (Source::Sample, "--dataset sample".to_string()),
        Some(DatasetArg::Mnist) => (Source::Mnist, "--dataset mnist".to_string()),
        None => Source::best_available(),
    };
    let data = Dataset::load(source).map_err(|e| e.to_string())?;
    println!(
        "data: {} ({} training, {} test digits): {why}",
        data.name,
        thousands(data.train_labels.len()),
        thousands(data.test_labels.len())
    );
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut out = Outputs {
        dir: args.out.clone(),
        tsv: vec![TSV_HEADER.to_string()],
        tables: String::new(),
        files: Vec::new(),
    };
    let wanted = |n: u8| args.only.is_empty() || args.only.contains(&n);

    // Experiments 1 and 2: a subset of the training digits, every test digit.
    let (small, training) = if args.quick {
        let training = Training {
            epochs: 2,
            seeds: vec![0],
            show_progress: true,
            ..Training::default()
        };
        (subset(&data, 2000, 1000), training)
    } else {
        let training = Training {
            epochs: args.epochs,
            seeds: (0..args.seeds).collect(),
            show_progress: true,
            ..Training::default()
        };
        (subset(&data, args.train_images, usize::MAX), training)
    };
    let setting = format!(
        "{} training digits, {} epoch{}, {} test digits, seeds {:?}",
        thousands(small.train_labels.len()),
        training.epochs,
        if training.epochs == 1 { "" } else { "s" },
        thousands(small.test_labels.len()),
        training.seeds
    );

    if wanted(1) {
        let t = Instant::now();
        println!("\n=== 1. Shuffled pixels (§1): {setting}");
        let permutation_seed = 7;
        let r = shuffled_pixels(&small, &training, permutation_seed).map_err(|e| e.to_string())?;
        out.table(
            &format!(
                "1. Test accuracy (%), pixels as they are and shuffled (permutation seed \
                 {permutation_seed}); {setting}"
            ),
            &r.markdown(),
        );
        out.tsv.extend(r.tsv_rows());
        out.picture(
            "exp1_shuffled_pixels.png",
            "experiment 1: test accuracy of FC and CNN, pixels as they are and shuffled",
            r.chart("Shuffled pixels: can the network still tell the digits apart?")
                .map_err(|e| e.to_string())?,
        )?;
        println!("experiment 1: {:.0} s", t.elapsed().as_secs_f64());
    }

    if wanted(2) {
        let t = Instant::now();
        println!("\n=== 2. Shifted test digits (§8): {setting}");
        let r = shifted_test_digits(&small, &training, &Net::ALL, 4).map_err(|e| e.to_string())?;
        out.table(
            &format!(
                "2. Test accuracy (%) with every test digit moved k pixels (mean of right, left, \
                 down, up; ± sd over seeds); {setting}"
            ),
            &r.markdown(),
        );
        out.tsv.extend(r.tsv_rows("2_shifted_digits"));
        out.picture(
            "exp2_shifted_digits.png",
            "experiment 2: test accuracy against shift for FC, CNN without pooling, max and average pooling",
            r.chart("Test digits moved by k pixels: which network copes?")
                .map_err(|e| e.to_string())?,
        )?;
        println!("experiment 2: {:.0} s", t.elapsed().as_secs_f64());
    }

    if wanted(3) {
        let t = Instant::now();
        experiment3(args, &data, source, &mut out)?;
        println!("experiment 3: {:.0} s", t.elapsed().as_secs_f64());
    }

    let tsv = out.tsv.join("\n") + "\n";
    out.text("results.tsv", "every number measured, one per row", &tsv)?;
    let tables = out.tables.clone();
    out.text("tables.md", "the tables above, as Markdown", &tables)?;
    println!("\n=== files written to {} ===", args.out.display());
    for (name, what) in &out.files {
        println!("  {name:<26}  {what}");
    }
    println!(
        "=== end of files ===\nall experiments: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Experiment 3 on the full training set and on the 4,000-digit sample (when the data is
/// full MNIST; on the sample alone the two are the same, so it runs once).
fn experiment3(args: &Args, data: &Dataset, source: Source, out: &mut Outputs) -> Result {
    let n = args.augment_shift;
    let (full_epochs, sample_epochs, full_set, sample_set) = if args.quick {
        (
            2,
            2,
            subset(data, 2000, 1000),
            (source != Source::Sample).then(|| subset(&train_on_sample(data), 2000, 1000)),
        )
    } else {
        let sample = (source != Source::Sample).then(|| train_on_sample(data));
        (args.full_epochs, args.sample_epochs, data.clone(), sample)
    };
    let mut lines = Vec::new();
    let mut parts: Vec<(&str, ShiftCurves, String)> = Vec::new();
    for (name, set, epochs) in [
        ("full", Some(full_set), full_epochs),
        ("sample", sample_set, sample_epochs),
    ] {
        let Some(set) = set else { continue };
        let seeds = if args.quick { 1 } else { args.exp3_seeds };
        let training = Training {
            epochs,
            seeds: (0..seeds).collect(),
            show_progress: true,
            ..Training::default()
        };
        let setting = format!(
            "{} training digits, {epochs} epochs, {} test digits, seeds {:?}",
            thousands(set.train_labels.len()),
            thousands(set.test_labels.len()),
            training.seeds
        );
        println!("\n=== 3. Robustness learned from data (§8), shifts up to {n} px: {setting}");
        let r = learned_robustness(&set, &training, n, 4).map_err(|e| e.to_string())?;
        out.table(
            &format!(
                "3{}. SimpleConvNet with and without shift augmentation, test accuracy (%) with \
                 test digits moved k pixels; {setting}",
                if name == "full" { "a" } else { "b" }
            ),
            &r.markdown(),
        );
        out.tsv
            .extend(r.tsv_rows(&format!("3_learned_robustness_{name}")));
        for augment in [0, n] {
            let points = r
                .mean_curve(Net::ConvMaxPooling, augment)
                .iter()
                .enumerate()
                .map(|(k, &a)| (k as f32, 100.0 * a))
                .collect();
            let how = if augment > 0 {
                format!("shifts ≤ {augment} px")
            } else {
                "no shifts".into()
            };
            let digits = thousands(set.train_labels.len());
            lines.push((
                format!("{digits} training digits, {epochs} epochs, {how}"),
                points,
            ));
        }
        parts.push((name, r, setting));
    }
    let (test_set, test_images) = parts
        .first()
        .map(|(_, r, _)| (r.test_set.clone(), r.test_images))
        .unwrap_or_default();
    out.picture(
        "exp3_learned_robustness.png",
        "experiment 3: SimpleConvNet trained with and without random shifts, accuracy against shift",
        chart_lines(
            "SimpleConvNet trained on shifted digits learns to ignore small shifts",
            &test_set,
            test_images,
            &lines,
        )
        .map_err(|e| e.to_string())?,
    )?;
    if !args.quick {
        print_targets(n, &parts);
    }
    Ok(())
}

/// `60000` as `60,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The issue's targets for N = 2 on full MNIST, met or not.
fn print_targets(n: usize, parts: &[(&str, ShiftCurves, String)]) {
    println!(
        "\nTargets (shift augmentation N = {n}; the targets are set for N = 2, 10 epochs full / up to 40 epochs sample):"
    );
    for (name, r, setting) in parts {
        let with = r.mean_curve(Net::ConvMaxPooling, n);
        let without = r.mean_curve(Net::ConvMaxPooling, 0);
        let checks: Vec<(usize, f32)> = if *name == "full" {
            vec![(0, 0.988), (2, 0.98), (3, 0.95)]
        } else {
            vec![(0, 0.97)]
        };
        for (k, at_least) in checks {
            let met = with[k] >= at_least;
            println!(
                "  {setting}: {k} px {:.2}% (without shifts {:.2}%), target >= {:.1}%: {}",
                100.0 * with[k],
                100.0 * without[k],
                100.0 * at_least,
                if met { "met" } else { "NOT met" }
            );
        }
    }
}
