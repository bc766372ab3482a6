//! The MNIST sample compiled into the crate.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::{DIGIT_CLASS_NAMES, Dataset, idx};

// Made by `examples/make_sample.rs` from `mnist_5k.csv.gz` (see data/README.md).
// `include_bytes!` puts them inside the library, so they load from any working
// directory and from a published crate.
const TRAIN_IMAGES: &[u8] = include_bytes!("../../data/mnist-sample/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../data/mnist-sample/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../data/mnist-sample/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../data/mnist-sample/t10k-labels-idx1-ubyte.gz");

fn corrupt(problem: impl Display) -> ! {
    panic!("the MNIST sample embedded in the crate is corrupt ({problem}); rebuild the crate")
}

/// Decompresses one embedded file; the path is only for messages.
fn unpack(gz: &[u8], name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new("embedded data/mnist-sample").join(name);
    let bytes = idx::gunzip(gz, &path).unwrap_or_else(|e| corrupt(e));
    (path, bytes)
}

pub(crate) fn embedded_sample() -> Dataset {
    let images = |gz, name| {
        let (path, bytes) = unpack(gz, name);
        idx::decode_images(&bytes, &path).unwrap_or_else(|e| corrupt(e))
    };
    let labels = |gz, name| {
        let (path, bytes) = unpack(gz, name);
        idx::decode_labels(&bytes, &path).unwrap_or_else(|e| corrupt(e))
    };
    let train_images = images(TRAIN_IMAGES, "train-images-idx3-ubyte.gz");
    let train_labels = labels(TRAIN_LABELS, "train-labels-idx1-ubyte.gz");
    let test_images = images(TEST_IMAGES, "t10k-images-idx3-ubyte.gz");
    let test_labels = labels(TEST_LABELS, "t10k-labels-idx1-ubyte.gz");
    if train_images.shape()[0] != train_labels.len() || test_images.shape()[0] != test_labels.len()
    {
        corrupt("image and label counts differ");
    }
    Dataset {
        name: "MNIST sample".to_string(),
        train_images,
        train_labels,
        test_images,
        test_labels,
        class_names: DIGIT_CLASS_NAMES,
    }
}
