//! The IDX reader: round trips through the writer, bytes written by hand, and one test per
//! way a file can be wrong, each asserting its specific error.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cnn_from_scratch::data::{
    DataError, Dataset, read_idx_images, read_idx_labels, write_idx_images, write_idx_labels,
};
use ndarray::{Array1, Array4};

/// A fresh, empty folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-data-idx-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// IDX bytes built by hand: magic, big-endian dimensions, data.
fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Images whose pixels are all of the form k/255, so they survive the byte encoding.
fn test_images(n: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, 1, 28, 28), |(i, _, r, c)| {
        ((i * 31 + r * 7 + c * 3) % 256) as f32 / 255.0
    })
}

#[test]
fn round_trip_raw_and_gz_for_any_count() {
    let dir = scratch("round-trip");
    for n in [0, 1, 7] {
        let images = test_images(n);
        let labels = Array1::from_shape_fn(n, |i| (i * 3 % 10) as u8);
        for ext in ["", ".gz"] {
            let image_path = dir.join(format!("images-{n}{ext}"));
            let label_path = dir.join(format!("labels-{n}{ext}"));
            write_idx_images(&image_path, &images).unwrap();
            write_idx_labels(&label_path, &labels).unwrap();
            assert_eq!(read_idx_images(&image_path).unwrap(), images);
            assert_eq!(read_idx_labels(&label_path).unwrap(), labels);
        }
        // The .gz file really is gzip, the other really is raw IDX of the expected size.
        let gz = fs::read(dir.join(format!("images-{n}.gz"))).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let raw = fs::read(dir.join(format!("images-{n}"))).unwrap();
        assert_eq!(raw.len(), 16 + n * 784);
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reads_hand_written_bytes_scaled_to_unit_interval() {
    let dir = scratch("by-hand");
    let mut pixels = vec![0u8; 2 * 784];
    pixels[0] = 255; // image 0, row 0, column 0
    pixels[784 + 28 * 3 + 5] = 51; // image 1, row 3, column 5
    let path = dir.join("images.gz");
    fs::write(&path, gzip(&idx_bytes(2051, &[2, 28, 28], &pixels))).unwrap();
    let images = read_idx_images(&path).unwrap();
    assert_eq!(images.shape(), &[2, 1, 28, 28]);
    assert_eq!(images[[0, 0, 0, 0]], 1.0);
    assert_eq!(images[[1, 0, 3, 5]], 0.2);
    assert!((images.sum() - 1.2).abs() < 1e-6);

    let path = dir.join("labels");
    fs::write(&path, idx_bytes(2049, &[4], &[9, 0, 3, 3])).unwrap();
    assert_eq!(read_idx_labels(&path).unwrap().to_vec(), [9, 0, 3, 3]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writer_clamps_and_rounds() {
    let dir = scratch("clamp");
    let mut images = Array4::<f32>::zeros((1, 1, 28, 28));
    images[[0, 0, 0, 0]] = -0.5;
    images[[0, 0, 0, 1]] = 1.5;
    images[[0, 0, 0, 2]] = 0.5; // 127.5 rounds to 128
    let path = dir.join("images");
    write_idx_images(&path, &images).unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(&bytes[16..19], &[0, 255, 128]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_dir_reads_the_four_standard_files_mixing_raw_and_gz() {
    let dir = scratch("load-dir");
    write_idx_images(dir.join("train-images-idx3-ubyte.gz"), &test_images(5)).unwrap();
    write_idx_labels(
        dir.join("train-labels-idx1-ubyte"),
        &Array1::from(vec![1, 2, 3, 4, 5]),
    )
    .unwrap();
    write_idx_images(dir.join("t10k-images-idx3-ubyte"), &test_images(2)).unwrap();
    write_idx_labels(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        &Array1::from(vec![0, 9]),
    )
    .unwrap();
    let data = Dataset::load_dir(&dir, "tiny").unwrap();
    assert_eq!(data.name, "tiny");
    assert_eq!(data.train_images, test_images(5));
    assert_eq!(data.train_labels.to_vec(), [1, 2, 3, 4, 5]);
    assert_eq!(data.test_images, test_images(2));
    assert_eq!(data.test_labels.to_vec(), [0, 9]);
    fs::remove_dir_all(dir).unwrap();
}

// ---- one test per error kind ----

fn message(error: &DataError) -> String {
    error.to_string()
}

fn assert_names(error: &DataError, path: &Path, expected: &str) {
    let text = message(error);
    assert!(
        text.contains(&path.display().to_string()),
        "message does not name the file: {text}"
    );
    assert!(
        text.contains(expected),
        "message does not say {expected:?}: {text}"
    );
}

#[test]
fn error_missing_file() {
    let dir = scratch("missing");
    let path = dir.join("train-images-idx3-ubyte.gz");
    let error = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(&error, DataError::Missing { tried } if tried.as_slice() == std::slice::from_ref(&path)),
        "{error:?}"
    );
    assert_names(&error, &path, "not found");

    // A folder without the standard files: both spellings are reported.
    match Dataset::load_dir(&dir, "empty").unwrap_err() {
        DataError::Missing { tried } => assert_eq!(
            tried,
            [
                dir.join("train-images-idx3-ubyte.gz"),
                dir.join("train-images-idx3-ubyte")
            ]
        ),
        other => panic!("expected Missing, got {other:?}"),
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_bad_gzip() {
    let dir = scratch("bad-gzip");
    // Raw IDX under a .gz name.
    let path = dir.join("images.gz");
    fs::write(&path, idx_bytes(2051, &[1, 28, 28], &[0; 784])).unwrap();
    let error = read_idx_images(&path).unwrap_err();
    assert!(matches!(error, DataError::BadGzip { .. }), "{error:?}");
    assert_names(&error, &path, "gzip");

    // A real gzip stream cut in half.
    let path = dir.join("labels.gz");
    let gz = gzip(&idx_bytes(2049, &[1000], &[1; 1000]));
    fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let error = read_idx_labels(&path).unwrap_err();
    assert!(matches!(error, DataError::BadGzip { .. }), "{error:?}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_wrong_magic_number() {
    let dir = scratch("magic");
    // A labels file given where images are expected, and vice versa.
    let labels = dir.join("labels");
    fs::write(&labels, idx_bytes(2049, &[1], &[3])).unwrap();
    let error = read_idx_images(&labels).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::WrongMagic {
                expected: 2051,
                found: 2049,
                ..
            }
        ),
        "{error:?}"
    );
    assert_names(&error, &labels, "2051");

    let images = dir.join("images");
    fs::write(&images, idx_bytes(2051, &[1, 28, 28], &[0; 784])).unwrap();
    let error = read_idx_labels(&images).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::WrongMagic {
                expected: 2049,
                found: 2051,
                ..
            }
        ),
        "{error:?}"
    );

    // Not IDX at all.
    let text = dir.join("notes.txt");
    fs::write(&text, "hello, world").unwrap();
    let error = read_idx_images(&text).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::WrongMagic {
                found: 0x6865_6c6c,
                ..
            }
        ),
        "{error:?}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_wrong_dimensions() {
    let dir = scratch("dims");
    let path = dir.join("images");
    fs::write(&path, idx_bytes(2051, &[2, 32, 32], &[0; 2 * 32 * 32])).unwrap();
    let error = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::WrongDimensions {
                rows: 32,
                cols: 32,
                ..
            }
        ),
        "{error:?}"
    );
    assert_names(&error, &path, "28x28");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_truncated_data() {
    let dir = scratch("truncated");
    // Header promises 3 images, data holds 2.5.
    let path = dir.join("images.gz");
    fs::write(
        &path,
        gzip(&idx_bytes(2051, &[3, 28, 28], &[0; 784 * 5 / 2])),
    )
    .unwrap();
    let error = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::Truncated { expected_bytes, found_bytes, .. }
                if expected_bytes == 16 + 3 * 784 && found_bytes == 16 + 1960
        ),
        "{error:?}"
    );
    assert_names(&error, &path, &(16 + 3 * 784).to_string());

    // A header cut short.
    let path = dir.join("labels");
    fs::write(&path, &idx_bytes(2049, &[10], &[])[..6]).unwrap();
    let error = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::Truncated {
                expected_bytes: 8,
                found_bytes: 6,
                ..
            }
        ),
        "{error:?}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_trailing_bytes() {
    let dir = scratch("trailing");
    let path = dir.join("labels");
    fs::write(&path, idx_bytes(2049, &[2], &[1, 2, 3])).unwrap();
    let error = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::TrailingBytes {
                expected_bytes: 10,
                found_bytes: 11,
                ..
            }
        ),
        "{error:?}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_image_label_count_mismatch() {
    let dir = scratch("count");
    write_idx_images(dir.join("train-images-idx3-ubyte"), &test_images(3)).unwrap();
    write_idx_labels(
        dir.join("train-labels-idx1-ubyte"),
        &Array1::from(vec![1, 2]),
    )
    .unwrap();
    write_idx_images(dir.join("t10k-images-idx3-ubyte"), &test_images(1)).unwrap();
    write_idx_labels(dir.join("t10k-labels-idx1-ubyte"), &Array1::from(vec![1])).unwrap();
    let error = Dataset::load_dir(&dir, "bad").unwrap_err();
    match &error {
        DataError::CountMismatch {
            images_path,
            images: 3,
            labels_path,
            labels: 2,
        } => {
            assert_eq!(images_path, &dir.join("train-images-idx3-ubyte"));
            assert_eq!(labels_path, &dir.join("train-labels-idx1-ubyte"));
        }
        other => panic!("expected CountMismatch, got {other:?}"),
    }
    assert_names(&error, &dir.join("train-labels-idx1-ubyte"), "2 labels");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn error_label_out_of_range() {
    let dir = scratch("label-range");
    let path = dir.join("labels.gz");
    fs::write(&path, gzip(&idx_bytes(2049, &[5], &[0, 9, 4, 10, 200]))).unwrap();
    let error = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::LabelOutOfRange {
                index: 3,
                label: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert_names(&error, &path, "0-9");
    fs::remove_dir_all(dir).unwrap();
}
