//! Reading and writing IDX files, raw or gzip-compressed.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::GzBuilder;
use flate2::read::GzDecoder;
use ndarray::{Array1, Array4};

use super::{DataError, IMAGE_SIZE};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub(crate) const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub(crate) const LABELS_MAGIC: u32 = 0x0000_0801;

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const PIXELS: usize = IMAGE_SIZE * IMAGE_SIZE;

pub(crate) fn describe_magic(magic: u32) -> &'static str {
    match magic {
        IMAGES_MAGIC => "an IDX images file: unsigned bytes, 3 dimensions",
        LABELS_MAGIC => "an IDX labels file: unsigned bytes, 1 dimension",
        _ => "an IDX file",
    }
}

/// Reads an IDX images file (gzip if the name ends in `.gz`) into `(N, 1, 28, 28)` with
/// pixels scaled to `[0, 1]`.
///
/// ```
/// use cnn_from_scratch::data::{read_idx_images, write_idx_images};
/// use ndarray::Array4;
///
/// let path = std::env::temp_dir().join("doc-read-idx-images.gz");
/// let one_white_image = Array4::<f32>::ones((1, 1, 28, 28));
/// write_idx_images(&path, &one_white_image)?;
/// assert_eq!(read_idx_images(&path)?, one_white_image);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), cnn_from_scratch::data::DataError>(())
/// ```
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Array4<f32>, DataError> {
    let path = path.as_ref();
    decode_images(&read_file(path)?, path)
}

/// Reads an IDX labels file (gzip if the name ends in `.gz`); every label must be 0-9.
///
/// ```
/// use cnn_from_scratch::data::{read_idx_labels, write_idx_labels};
/// use ndarray::array;
///
/// let path = std::env::temp_dir().join("doc-read-idx-labels");
/// write_idx_labels(&path, &array![3, 1, 4])?;
/// assert_eq!(read_idx_labels(&path)?, array![3, 1, 4]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), cnn_from_scratch::data::DataError>(())
/// ```
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Array1<u8>, DataError> {
    let path = path.as_ref();
    decode_labels(&read_file(path)?, path)
}

/// Writes `(N, 1, 28, 28)` images with pixels in `[0, 1]` as an IDX file, gzip-compressed
/// if the name ends in `.gz`. Pixels are stored as `round(255 · x)`, clamped to 0-255, so
/// images read from IDX files round-trip exactly.
///
/// # Panics
///
/// If `images` is not `(N, 1, 28, 28)`.
pub fn write_idx_images(path: impl AsRef<Path>, images: &Array4<f32>) -> Result<(), DataError> {
    let shape = images.shape();
    assert!(
        shape[1..] == [1, IMAGE_SIZE, IMAGE_SIZE],
        "write_idx_images: images have shape {shape:?}, expected (N, 1, 28, 28)"
    );
    let mut bytes = header(IMAGES_MAGIC, &[shape[0], IMAGE_SIZE, IMAGE_SIZE]);
    bytes.extend(
        images
            .iter()
            .map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as u8),
    );
    write_file(path.as_ref(), &bytes)
}

/// Writes labels as an IDX file, gzip-compressed if the name ends in `.gz`.
pub fn write_idx_labels(path: impl AsRef<Path>, labels: &Array1<u8>) -> Result<(), DataError> {
    let mut bytes = header(LABELS_MAGIC, &[labels.len()]);
    bytes.extend(labels.iter());
    write_file(path.as_ref(), &bytes)
}

/// Reads an images file and its labels file and checks they hold the same number of items.
pub(crate) fn read_pair(
    images_path: &Path,
    labels_path: &Path,
) -> Result<(Array4<f32>, Array1<u8>), DataError> {
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    check_counts(images_path, &images, labels_path, &labels)?;
    Ok((images, labels))
}

pub(crate) fn check_counts(
    images_path: &Path,
    images: &Array4<f32>,
    labels_path: &Path,
    labels: &Array1<u8>,
) -> Result<(), DataError> {
    if images.shape()[0] == labels.len() {
        Ok(())
    } else {
        Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.shape()[0],
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        })
    }
}

fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            tried: vec![path.to_path_buf()],
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if is_gzip_name(path) {
        gunzip(&bytes, path)
    } else {
        Ok(bytes)
    }
}

pub(crate) fn gunzip(compressed: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    // The gzip trailer's last four bytes hold the uncompressed size (mod 2^32): reserve it
    // up front, capped so a corrupt trailer cannot ask for gigabytes.
    let hint = compressed
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(compressed[at..].try_into().expect("4 bytes")) as usize)
        .unwrap_or(0)
        .min(256 << 20);
    let mut out = Vec::with_capacity(hint);
    GzDecoder::new(compressed)
        .read_to_end(&mut out)
        .map_err(|source| DataError::BadGzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let io_error = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    if is_gzip_name(path) {
        // No time stamp in the header: the same data always gives the same file.
        let file = fs::File::create(path).map_err(io_error)?;
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(file, Compression::default());
        gz.write_all(bytes).map_err(io_error)?;
        gz.finish().map_err(io_error)?;
        Ok(())
    } else {
        fs::write(path, bytes).map_err(io_error)
    }
}

fn header(magic: u32, dims: &[usize]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimensions must fit in a u32");
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Checks the magic number and the length of the header; returns the header's dimensions.
fn check_header(
    bytes: &[u8],
    path: &Path,
    magic: u32,
    header_len: usize,
) -> Result<Vec<u32>, DataError> {
    let truncated = || DataError::Truncated {
        path: path.to_path_buf(),
        expected_bytes: header_len as u64,
        found_bytes: bytes.len() as u64,
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::WrongMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    if bytes.len() < header_len {
        return Err(truncated());
    }
    Ok((4..header_len)
        .step_by(4)
        .map(|at| be_u32(bytes, at))
        .collect())
}

/// Checks that the data after the header is exactly `count × item_len` bytes.
fn check_length(
    bytes: &[u8],
    path: &Path,
    header_len: usize,
    count: u32,
    item_len: usize,
) -> Result<(), DataError> {
    let expected = header_len as u64 + u64::from(count) * item_len as u64;
    let found = bytes.len() as u64;
    let path = path.to_path_buf();
    if found < expected {
        Err(DataError::Truncated {
            path,
            expected_bytes: expected,
            found_bytes: found,
        })
    } else if found > expected {
        Err(DataError::TrailingBytes {
            path,
            expected_bytes: expected,
            found_bytes: found,
        })
    } else {
        Ok(())
    }
}

/// Decodes the bytes of an (uncompressed) IDX images file; `path` is for messages.
pub(crate) fn decode_images(bytes: &[u8], path: &Path) -> Result<Array4<f32>, DataError> {
    let dims = check_header(bytes, path, IMAGES_MAGIC, IMAGES_HEADER)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if (rows as usize, cols as usize) != (IMAGE_SIZE, IMAGE_SIZE) {
        return Err(DataError::WrongDimensions {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    check_length(bytes, path, IMAGES_HEADER, count, PIXELS)?;
    // One pass from bytes to scaled floats: this is the whole cost of loading 70,000 images.
    let pixels: Vec<f32> = bytes[IMAGES_HEADER..]
        .iter()
        .map(|&b| f32::from(b) / 255.0)
        .collect();
    let shape = (count as usize, 1, IMAGE_SIZE, IMAGE_SIZE);
    Ok(Array4::from_shape_vec(shape, pixels).expect("length checked against the header"))
}

/// Decodes the bytes of an (uncompressed) IDX labels file; `path` is for messages.
pub(crate) fn decode_labels(bytes: &[u8], path: &Path) -> Result<Array1<u8>, DataError> {
    let count = check_header(bytes, path, LABELS_MAGIC, LABELS_HEADER)?[0];
    check_length(bytes, path, LABELS_HEADER, count, 1)?;
    let labels = &bytes[LABELS_HEADER..];
    if let Some(index) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index],
        });
    }
    Ok(Array1::from(labels.to_vec()))
}
