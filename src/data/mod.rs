//! Handwritten digits to learn from: MNIST, a sample of it inside the crate, and
//! Fashion-MNIST (データ: MNIST).
//!
//! **MNIST** is 70,000 small grey pictures of handwritten digits, 60,000 for training and
//! 10,000 for testing, collected by Yann LeCun, Corinna Cortes and Christopher Burges. Each
//! picture is 28×28 pixels, each pixel a byte from 0 (background) to 255 (ink), and comes
//! with its label, the digit 0-9. It is the data set the book trains its CNN on.
//! **Fashion-MNIST** (Zalando Research) has the same shape and file format with ten kinds
//! of clothing instead of digits; it is harder, so it shows what a CNN adds.
//!
//! ## Where the data comes from
//!
//! | [`Source`] | what | needs |
//! |---|---|---|
//! | [`Source::Sample`] | 5,000 real MNIST digits (4,000 train / 1,000 test, stratified), compiled into the crate | nothing |
//! | [`Source::Mnist`] | full MNIST, 60,000 / 10,000 | the four files on disk, or a network to download them once |
//! | [`Source::FashionMnist`] | full Fashion-MNIST, 60,000 / 10,000 | `apt-get install dataset-fashion-mnist`, or `$FASHION_MNIST_DIR` |
//!
//! [`Dataset::load`] is the one entry point; [`Source::best_available`] picks full MNIST
//! when it is already on disk and otherwise the sample, and says why.
//!
//! ```
//! use cnn_from_scratch::data::{Dataset, Source};
//!
//! let digits = Dataset::load(Source::Sample)?;
//! assert_eq!(digits.train_images.shape(), &[4000, 1, 28, 28]);
//! assert_eq!(digits.test_labels.len(), 1000);
//! // Pixels are scaled to [0, 1]; most of a digit picture is background.
//! let mean = digits.train_images.mean().unwrap();
//! assert!(0.1 < mean && mean < 0.16);
//! # Ok::<(), cnn_from_scratch::data::DataError>(())
//! ```
//!
//! ## The IDX file format
//!
//! MNIST is stored in four IDX files, usually gzip-compressed (`.gz`):
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`. An IDX file is a tiny header followed by raw bytes:
//!
//! - a 4-byte *magic number*: two zero bytes, a type code (`0x08` = unsigned byte) and the
//!   number of dimensions; so `0x00000803` (2051) for images, `0x00000801` (2049) for labels;
//! - one big-endian `u32` per dimension: `N, 28, 28` for images, `N` for labels;
//! - the data, row by row: `N × 28 × 28` pixel bytes, or `N` label bytes.
//!
//! [`read_idx_images`] and [`read_idx_labels`] read such a file (raw, or gzip when the name
//! ends in `.gz`) and check every part of it; each way a file can be wrong has its own
//! [`DataError`] variant whose message names the file and what was expected.
//!
//! ## Mini-batches
//!
//! Training looks at a few dozen images at a time. [`mini_batches`] shuffles the
//! training set with a seeded random number generator and hands out `(images, labels)`
//! batches that together cover every image once: one epoch.
//!
//! ```
//! use cnn_from_scratch::data::{Dataset, mini_batches};
//! use rand::{SeedableRng, rngs::StdRng};
//!
//! let digits = Dataset::sample();
//! let mut rng = StdRng::seed_from_u64(0);
//! let (images, labels) = mini_batches(&digits.train_images, &digits.train_labels, 32, &mut rng)
//!     .next()
//!     .unwrap();
//! assert_eq!(images.shape(), &[32, 1, 28, 28]);
//! assert_eq!(labels.len(), 32);
//! ```
//!
//! ## Moving digits
//!
//! [`shift_images`] moves every image of a batch by `(dx, dy)` pixels, zeros shifted in: the
//! shifted test digits of the pooling experiment. [`random_shifts`] moves each image by its
//! own random shift, for shift augmentation during training
//! ([`Trainer::augment_shift`](crate::full_cnn::trainer::Trainer::augment_shift)).
//!
//! ## Getting full MNIST by hand
//!
//! [`Dataset::load`]`(Source::Mnist)` looks for the four files (raw or `.gz`) in
//! `$MNIST_DIR`, then `./data/mnist`, then `$XDG_CACHE_HOME/cnn-from-scratch/mnist`
//! (default `~/.cache/cnn-from-scratch/mnist`). If none has them it downloads them into the
//! cache folder from public mirrors and checks each file's SHA-256. Without a network,
//! fetch the four `.gz` files on another machine, for example from
//! <https://ossci-datasets.s3.amazonaws.com/mnist/> or
//! <https://storage.googleapis.com/cvdf-datasets/mnist/>, and copy them into one of
//! those folders.
//!
//! The download needs the cargo feature `download`, on by default. It is the HTTPS client,
//! the largest part of the build, so the notebooks leave it out
//! (`cnn-from-scratch = { path = "..", default-features = false }`); without it
//! `Dataset::load(Source::Mnist)` still reads the files from those folders, and if they are
//! not there returns [`DataError::MnistNotFound`], which says where to put them.

mod batches;
mod download;
mod idx;
mod sample;
mod shift;
mod sources;

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4};

pub use batches::{MiniBatches, mini_batches};
#[cfg(feature = "download")]
pub use download::download_files;
pub use download::{DownloadPlan, FailedAttempt, FailureReason, MNIST_MIRRORS, RemoteFile};
pub use idx::{read_idx_images, read_idx_labels, write_idx_images, write_idx_labels};
pub use shift::{random_shifts, shift_image_into, shift_images};
pub use sources::{
    fashion_mnist_search_dirs, mnist_cache_dir, mnist_search_dirs, mnist_standard_files,
};

/// Side length of every picture, in pixels.
pub const IMAGE_SIZE: usize = 28;

/// Names of the ten MNIST classes, index = label.
pub const DIGIT_CLASS_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Names of the ten Fashion-MNIST classes, index = label (as published by Zalando Research).
pub const FASHION_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The four standard file names, without `.gz`, in the order
/// train images, train labels, test images, test labels.
pub const STANDARD_FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Which data set to load with [`Dataset::load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// 5,000 real MNIST digits compiled into the crate: always available, loads in
    /// milliseconds, enough to watch a CNN learn.
    Sample,
    /// Full MNIST (60,000 / 10,000), from disk or downloaded once.
    Mnist,
    /// Full Fashion-MNIST (60,000 / 10,000), from Debian's `dataset-fashion-mnist` package
    /// or `$FASHION_MNIST_DIR`.
    FashionMnist,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Sample => "MNIST sample (embedded)",
            Source::Mnist => "MNIST",
            Source::FashionMnist => "Fashion-MNIST",
        })
    }
}

/// Images and labels for training and testing.
///
/// Images are `(N, 1, 28, 28)` with pixels in `[0, 1]` (byte / 255); labels are class
/// indices 0-9, whose names are in `class_names`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Human-readable name, e.g. `"MNIST"`.
    pub name: String,
    /// Training images, `(N, 1, 28, 28)`.
    pub train_images: Array4<f32>,
    /// Training labels, `(N)`.
    pub train_labels: Array1<u8>,
    /// Test images, `(M, 1, 28, 28)`.
    pub test_images: Array4<f32>,
    /// Test labels, `(M)`.
    pub test_labels: Array1<u8>,
    /// Name of each class, index = label (for plots and printouts).
    pub class_names: [&'static str; 10],
}

impl Dataset {
    /// Loads a data set. `Source::Sample` never fails in practice; the others return an
    /// error saying where they looked and how to supply the files.
    ///
    /// ```
    /// use cnn_from_scratch::data::{Dataset, Source};
    ///
    /// let (source, why) = Source::best_available();
    /// println!("{why}");
    /// # let source = Source::Sample; // keep the doctest offline and fast
    /// let data = Dataset::load(source)?;
    /// println!("{}: {} training images", data.name, data.train_images.shape()[0]);
    /// # Ok::<(), cnn_from_scratch::data::DataError>(())
    /// ```
    pub fn load(source: Source) -> Result<Dataset, DataError> {
        match source {
            Source::Sample => Ok(Dataset::sample()),
            Source::Mnist => sources::load_mnist(),
            Source::FashionMnist => sources::load_fashion_mnist(),
        }
    }

    /// Loads the four standard files (see [`STANDARD_FILE_NAMES`]; each raw or `.gz`) from
    /// one folder. Class names are the digits; set `class_names` for other data.
    ///
    /// ```
    /// use cnn_from_scratch::data::{Dataset, DataError};
    ///
    /// match Dataset::load_dir("no/such/folder", "MNIST") {
    ///     Err(DataError::Missing { tried }) => assert_eq!(tried.len(), 2), // .gz and raw
    ///     other => panic!("expected a missing-file error, got {other:?}"),
    /// }
    /// ```
    pub fn load_dir(dir: impl AsRef<Path>, name: &str) -> Result<Dataset, DataError> {
        let dir = dir.as_ref();
        let [train_x, train_y, test_x, test_y] = mnist_standard_files(dir)?;
        let (train_images, train_labels) = idx::read_pair(&train_x, &train_y)?;
        let (test_images, test_labels) = idx::read_pair(&test_x, &test_y)?;
        Ok(Dataset {
            name: name.to_string(),
            train_images,
            train_labels,
            test_images,
            test_labels,
            class_names: DIGIT_CLASS_NAMES,
        })
    }

    /// The 5,000-digit MNIST sample compiled into the crate: 4,000 training and 1,000 test
    /// images, 400 and 100 of each digit. See `data/README.md` for how it was made.
    ///
    /// ```
    /// use cnn_from_scratch::data::Dataset;
    ///
    /// let digits = Dataset::sample();
    /// // The files are stored round-robin by class: the first ten labels are 0..=9.
    /// assert_eq!(digits.train_labels.slice(ndarray::s![..10]).to_vec(), (0..10).collect::<Vec<u8>>());
    /// ```
    ///
    /// # Panics
    ///
    /// Only if the embedded bytes were corrupted when the crate was built (a test proves
    /// the shipped files load).
    pub fn sample() -> Dataset {
        sample::embedded_sample()
    }
}

impl Source {
    /// Full MNIST if its files are already on disk, otherwise the embedded sample; the
    /// string says which was chosen and why. Never touches the network.
    ///
    /// ```
    /// use cnn_from_scratch::data::Source;
    ///
    /// let (source, why) = Source::best_available();
    /// assert!(matches!(source, Source::Mnist | Source::Sample));
    /// assert!(!why.is_empty());
    /// ```
    pub fn best_available() -> (Source, String) {
        sources::best_available()
    }
}

/// Everything that can go wrong while finding, downloading or reading data files.
/// Each message names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No file at any of the paths tried.
    #[error("file not found; tried {}", list_paths(.tried))]
    Missing {
        /// Every path that was looked at.
        tried: Vec<PathBuf>,
    },

    /// The file exists but could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The name ends in `.gz` but the contents are not valid gzip (or are cut short).
    #[error("{}: not valid gzip data ({source}); expected a gzip-compressed IDX file because the name ends in .gz", .path.display())]
    BadGzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor said.
        source: std::io::Error,
    },

    /// The first four bytes are not the IDX magic number for this kind of file.
    #[error("{}: magic number {found:#010x} ({found}), expected {expected:#010x} ({expected}, {})", .path.display(), idx::describe_magic(*.expected))]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// 2051 for images, 2049 for labels.
        expected: u32,
        /// What the file starts with.
        found: u32,
    },

    /// Images whose size is not 28×28.
    #[error("{}: images are {rows}x{cols} pixels, expected 28x28", .path.display())]
    WrongDimensions {
        /// The file.
        path: PathBuf,
        /// Rows in the header.
        rows: u32,
        /// Columns in the header.
        cols: u32,
    },

    /// The file is shorter than its header promises.
    #[error("{}: truncated: expected {expected_bytes} bytes (header included), found {found_bytes}", .path.display())]
    Truncated {
        /// The file (its uncompressed contents).
        path: PathBuf,
        /// Length the header promises.
        expected_bytes: u64,
        /// Length found.
        found_bytes: u64,
    },

    /// The file is longer than its header promises: probably not the file it claims to be.
    #[error("{}: {found_bytes} bytes, expected exactly {expected_bytes} from its header", .path.display())]
    TrailingBytes {
        /// The file (its uncompressed contents).
        path: PathBuf,
        /// Length the header promises.
        expected_bytes: u64,
        /// Length found.
        found_bytes: u64,
    },

    /// An images file and its labels file disagree on how many items there are.
    #[error("{} has {images} images but {} has {labels} labels; expected the same number", .images_path.display(), .labels_path.display())]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },

    /// A label that is not a class index 0-9.
    #[error("{}: label {label} at index {index}, expected 0-9", .path.display())]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// Position of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },

    /// No mirror delivered a file with the expected checksum.
    #[error("could not download {file} into {}:\n{}\n{}", .dir.display(), list_attempts(.attempts), download::by_hand_hint(.searched))]
    Download {
        /// The file that failed.
        file: String,
        /// Folder it was to be written to.
        dir: PathBuf,
        /// Each URL tried and why it failed.
        attempts: Vec<FailedAttempt>,
        /// Folders that were searched for the files before downloading.
        searched: Vec<PathBuf>,
    },

    /// Full MNIST is not on disk and this build cannot download it: the crate was compiled
    /// without its `download` feature (as in the notebooks). With the feature a missing file
    /// is downloaded instead, and a failed download is [`DataError::Download`].
    #[error("full MNIST not found, and this build of cnn-from-scratch cannot download it: its cargo feature `download` is off (turn it on with `features = [\"download\"]` on the dependency, or drop `default-features = false`). {}", download::by_hand_hint(.searched))]
    MnistNotFound {
        /// Folders searched for the four files.
        searched: Vec<PathBuf>,
    },

    /// Fashion-MNIST is not installed.
    #[error("Fashion-MNIST not found; looked in {}. Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or set FASHION_MNIST_DIR to a folder holding the four IDX files ({})", list_paths(.searched), STANDARD_FILE_NAMES.join(", "))]
    FashionMnistNotFound {
        /// Folders looked in.
        searched: Vec<PathBuf>,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn list_attempts(attempts: &[FailedAttempt]) -> String {
    let lines: Vec<String> = attempts.iter().map(|a| format!("  {a}")).collect();
    lines.join("\n")
}
