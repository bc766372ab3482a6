//! Loads all 70,000 Fashion-MNIST images through the public API and checks them.
//!
//! ```text
//! sudo apt-get install -y dataset-fashion-mnist
//! cargo run --release --example load_fashion
//! ```
//!
//! Checks 60,000 training and 10,000 test images of 28×28 pixels in [0, 1], 6,000 and 1,000
//! of each class; prints the counts and exits with status 1 on any mismatch. CI runs it.

use std::process::ExitCode;
use std::time::Instant;

use cnn_from_scratch::data::{Dataset, Source};
use ndarray::Array1;

fn histogram(labels: &Array1<u8>) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in labels {
        counts[usize::from(label)] += 1;
    }
    counts
}

fn main() -> ExitCode {
    let start = Instant::now();
    let data = match Dataset::load(Source::FashionMnist) {
        Ok(data) => data,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} loaded in {:.2?}", data.name, start.elapsed());

    let mut ok = true;
    for (split, images, labels, count) in [
        ("train", &data.train_images, &data.train_labels, 60_000),
        ("test", &data.test_images, &data.test_labels, 10_000),
    ] {
        let shape = images.shape();
        let counts = histogram(labels);
        let (min, max) = images
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &p| {
                (lo.min(p), hi.max(p))
            });
        println!(
            "{split}: images {shape:?}, pixels {min}..{max}, mean {:.4}",
            images.mean().unwrap_or(f32::NAN)
        );
        for (class, n) in counts.iter().enumerate() {
            println!("  {class} {:<12} {n}", data.class_names[class]);
        }
        if shape != [count, 1, 28, 28] || labels.len() != count {
            eprintln!(
                "error: {split} has {shape:?} images and {} labels, expected {count}",
                labels.len()
            );
            ok = false;
        }
        if counts != [count / 10; 10] {
            eprintln!(
                "error: {split} label histogram {counts:?}, expected {} per class",
                count / 10
            );
            ok = false;
        }
        if min < 0.0 || max > 1.0 {
            eprintln!("error: {split} pixels outside [0, 1]: {min}..{max}");
            ok = false;
        }
    }
    if data.class_names[9] != "Ankle boot" {
        eprintln!("error: class names {:?}", data.class_names);
        ok = false;
    }
    if ok {
        println!("Fashion-MNIST OK");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
