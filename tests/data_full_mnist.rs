//! The full-data path on the real MNIST files: all four loaded through the public API, their
//! counts, labels and pixels checked against facts about MNIST found independently of this
//! crate (the published class counts, the SHA-256 of the raw files in
//! `../shared/data/README.md`, the bytes decoded here by hand), and `Source::best_available`
//! choosing them.
//!
//! The files are not part of the repository (11 MB), so the test runs only where they are:
//! wherever `Dataset::load(Source::Mnist)` finds them (`$MNIST_DIR`, `./data/mnist`, the cache
//! folder) or in `../shared/data/mnist` next to the repository (CI exports `MNIST_DIR` for it).
//! Elsewhere it prints why it was skipped and passes. It never downloads anything.
//!
//! Environment variables are process-wide, so the one test that may set `MNIST_DIR` is alone in
//! this test binary.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cnn_from_scratch::data::{
    DIGIT_CLASS_NAMES, Dataset, STANDARD_FILE_NAMES, Source, mnist_search_dirs,
    mnist_standard_files,
};
use flate2::read::GzDecoder;
use ndarray::{Array1, Array4, Axis};
use sha2::{Digest, Sha256};

/// SHA-256 of the *uncompressed* files, in the order of `STANDARD_FILE_NAMES`, as listed in
/// `../shared/data/README.md` (the same for any genuine copy, however it is compressed).
const RAW_SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];

/// How many images of each digit 0-9 MNIST has, as published with the data set and repeated
/// by every framework that ships it.
const TRAIN_PER_DIGIT: [usize; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const TEST_PER_DIGIT: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

/// Prints a line even though the test harness captures the output of passing tests
/// (`print!` is captured; a direct write to stderr is not), so CI logs show what ran.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "data_full_mnist: {line}");
}

/// Where the four files are: where the crate itself finds them, else next to the repository.
/// `Err` when `$MNIST_DIR` is set but holds no complete set (a mistake worth failing on).
fn find_mnist() -> Result<Option<PathBuf>, String> {
    if let Some(dir) = std::env::var_os("MNIST_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return match mnist_standard_files(&dir) {
            Ok(_) => Ok(Some(dir)),
            Err(e) => Err(format!(
                "MNIST_DIR={} is set but is not a complete MNIST folder: {e}",
                dir.display()
            )),
        };
    }
    let next_to_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    Ok(mnist_search_dirs()
        .into_iter()
        .chain([next_to_repo])
        .find(|dir| mnist_standard_files(dir).is_ok()))
}

/// A file's bytes, gunzipped here (not by the crate) when its name ends in `.gz`.
fn raw_bytes(path: &Path) -> Vec<u8> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut raw = Vec::new();
        GzDecoder::new(&bytes[..])
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        raw
    } else {
        bytes
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn count_per_digit(labels: &Array1<u8>) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in labels {
        counts[usize::from(label)] += 1;
    }
    counts
}

/// The images and labels as stored in the files: the header read by hand (magic number,
/// big-endian sizes), then one byte per pixel or label.
fn check_against_raw(
    images: &Array4<f32>,
    labels: &Array1<u8>,
    images_raw: &[u8],
    labels_raw: &[u8],
) {
    let be_u32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let n = images.shape()[0];
    assert_eq!(be_u32(images_raw, 0), 2051, "images magic number");
    assert_eq!(be_u32(images_raw, 4) as usize, n);
    assert_eq!((be_u32(images_raw, 8), be_u32(images_raw, 12)), (28, 28));
    assert_eq!(be_u32(labels_raw, 0), 2049, "labels magic number");
    assert_eq!(be_u32(labels_raw, 4) as usize, n);
    assert_eq!(images_raw.len(), 16 + n * 784);
    assert_eq!(labels_raw.len(), 8 + n);
    assert_eq!(labels.as_slice().unwrap(), &labels_raw[8..]);
    // Every pixel is its byte divided by 255.
    for (i, (&x, &byte)) in images.iter().zip(&images_raw[16..]).enumerate() {
        assert!(
            x == f32::from(byte) / 255.0,
            "pixel {i} (image {}) is {x}, the file says {byte}/255",
            i / 784
        );
    }
}

#[test]
fn full_mnist_loads_checks_out_and_is_chosen() {
    let dir = match find_mnist() {
        Ok(Some(dir)) => dir,
        Ok(None) => {
            say(&format!(
                "skipped: full MNIST is not on this machine (looked in {} and ../shared/data/mnist); \
                 set MNIST_DIR to a folder with the four files to run this test",
                mnist_search_dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return;
        }
        Err(why) => panic!("{why}"),
    };
    say(&format!(
        "testing the full MNIST files in {}",
        dir.display()
    ));
    if std::env::var_os("MNIST_DIR").is_none() {
        // SAFETY: this test binary has this one test, so no other thread reads the environment.
        unsafe { std::env::set_var("MNIST_DIR", &dir) };
    }

    // best_available picks the files up, naming the folder; then the one entry point loads them.
    let (source, why) = Source::best_available();
    assert_eq!(source, Source::Mnist, "{why}");
    assert!(why.contains(&dir.display().to_string()), "{why}");
    let data = Dataset::load(Source::Mnist).unwrap();
    assert_eq!(data.name, "MNIST");
    assert_eq!(data.class_names, DIGIT_CLASS_NAMES);
    assert_eq!(data.train_images.shape(), &[60_000, 1, 28, 28]);
    assert_eq!(data.train_labels.len(), 60_000);
    assert_eq!(data.test_images.shape(), &[10_000, 1, 28, 28]);
    assert_eq!(data.test_labels.len(), 10_000);

    // Labels: only 0-9, in MNIST's published numbers per digit; the training set famously
    // starts with a 5 and the test set with a 7.
    assert_eq!(count_per_digit(&data.train_labels), TRAIN_PER_DIGIT);
    assert_eq!(count_per_digit(&data.test_labels), TEST_PER_DIGIT);
    assert_eq!((data.train_labels[0], data.test_labels[0]), (5, 7));

    // Pixels: in [0, 1], with pure background and full ink both present, and the mean that
    // every MNIST normalisation uses (0.1307 for training, 0.1325 for test).
    for (images, mean) in [(&data.train_images, 0.1307), (&data.test_images, 0.1325)] {
        let (lo, hi) = images
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert_eq!((lo, hi), (0.0, 1.0));
        let found = images.iter().map(|&x| f64::from(x)).sum::<f64>() / images.len() as f64;
        assert!(
            (found - mean).abs() < 5e-4,
            "mean pixel {found}, expected {mean}"
        );
    }

    // The files are genuine MNIST (raw SHA-256 from the data README), and what was loaded is
    // exactly their bytes, decoded here independently of the crate's reader.
    let paths = mnist_standard_files(&dir).unwrap();
    let raw: Vec<Vec<u8>> = paths.iter().map(|p| raw_bytes(p)).collect();
    for ((bytes, expected), name) in raw.iter().zip(RAW_SHA256).zip(STANDARD_FILE_NAMES) {
        assert_eq!(
            sha256_hex(bytes),
            expected,
            "{name}: not the genuine MNIST contents"
        );
    }
    check_against_raw(&data.train_images, &data.train_labels, &raw[0], &raw[1]);
    check_against_raw(&data.test_images, &data.test_labels, &raw[2], &raw[3]);

    // load_dir on the same folder gives the same data set.
    let again = Dataset::load_dir(&dir, "MNIST").unwrap();
    assert_eq!(again.train_images, data.train_images);
    assert_eq!(again.test_labels, data.test_labels);

    // The embedded sample is 5,000 of these training digits, each with its label.
    let position: HashMap<&[u8], usize> = raw[0][16..]
        .chunks_exact(784)
        .enumerate()
        .map(|(i, pixels)| (pixels, i))
        .collect();
    let sample = Dataset::sample();
    for (images, labels) in [
        (&sample.train_images, &sample.train_labels),
        (&sample.test_images, &sample.test_labels),
    ] {
        for (image, &label) in images.axis_iter(Axis(0)).zip(labels) {
            let bytes: Vec<u8> = image.iter().map(|&x| (x * 255.0).round() as u8).collect();
            let i = *position
                .get(&bytes[..])
                .expect("every sample digit is one of full MNIST's training images");
            assert_eq!(data.train_labels[i], label);
        }
    }
}
