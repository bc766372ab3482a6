//! Where each data set is looked for on disk.

use std::env;
use std::path::{Path, PathBuf};

#[cfg(feature = "download")]
use super::download::{DownloadPlan, download_files};
use super::{DataError, Dataset, FASHION_CLASS_NAMES, STANDARD_FILE_NAMES, Source};

/// Debian's `dataset-fashion-mnist` package installs the four files here.
const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Folders searched for full MNIST, in order: `$MNIST_DIR`, `./data/mnist`, then the
/// per-user cache folder ([`mnist_cache_dir`]).
pub fn mnist_search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push(PathBuf::from("data/mnist"));
    dirs.extend(mnist_cache_dir());
    dirs
}

/// Where full MNIST is downloaded to: `$XDG_CACHE_HOME/cnn-from-scratch/mnist`, or
/// `$HOME/.cache/cnn-from-scratch/mnist`; `None` if neither variable is set.
pub fn mnist_cache_dir() -> Option<PathBuf> {
    let cache = env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(cache.join("cnn-from-scratch").join("mnist"))
}

/// Folders searched for Fashion-MNIST, in order: `$FASHION_MNIST_DIR`, then
/// `/usr/share/datasets/fashion-mnist` (Debian package `dataset-fashion-mnist`).
pub fn fashion_mnist_search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("FASHION_MNIST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push(PathBuf::from(DEBIAN_FASHION_DIR));
    dirs
}

/// The paths of the four standard files in `dir` (train images, train labels, test images,
/// test labels), each as `name.gz` if that exists, else the raw `name`.
///
/// ```
/// use cnn_from_scratch::data::{DataError, mnist_standard_files};
///
/// let err = mnist_standard_files("nowhere").unwrap_err();
/// assert!(err.to_string().contains("train-images-idx3-ubyte.gz"));
/// ```
pub fn mnist_standard_files(dir: impl AsRef<Path>) -> Result<[PathBuf; 4], DataError> {
    let dir = dir.as_ref();
    let find = |name: &str| {
        let gz = dir.join(format!("{name}.gz"));
        let raw = dir.join(name);
        if gz.is_file() {
            Ok(gz)
        } else if raw.is_file() {
            Ok(raw)
        } else {
            Err(DataError::Missing {
                tried: vec![gz, raw],
            })
        }
    };
    Ok([
        find(STANDARD_FILE_NAMES[0])?,
        find(STANDARD_FILE_NAMES[1])?,
        find(STANDARD_FILE_NAMES[2])?,
        find(STANDARD_FILE_NAMES[3])?,
    ])
}

fn first_complete(dirs: &[PathBuf]) -> Option<&PathBuf> {
    dirs.iter().find(|dir| mnist_standard_files(dir).is_ok())
}

pub(crate) fn load_mnist() -> Result<Dataset, DataError> {
    let searched = mnist_search_dirs();
    if let Some(dir) = first_complete(&searched) {
        return Dataset::load_dir(dir, "MNIST");
    }
    download_mnist(searched)
}

/// Not on disk: download the four files into the cache folder, then load them.
#[cfg(feature = "download")]
fn download_mnist(searched: Vec<PathBuf>) -> Result<Dataset, DataError> {
    let target = mnist_cache_dir().unwrap_or_else(|| PathBuf::from("data/mnist"));
    std::fs::create_dir_all(&target).map_err(|source| DataError::Io {
        path: target.clone(),
        source,
    })?;
    download_files(&DownloadPlan::mnist(), &target).map_err(|error| match error {
        DataError::Download {
            file,
            dir,
            attempts,
            ..
        } => DataError::Download {
            file,
            dir,
            attempts,
            searched: searched.clone(),
        },
        other => other,
    })?;
    Dataset::load_dir(&target, "MNIST")
}

/// Not on disk, and this build has no HTTPS client: say so, and how to supply the files.
#[cfg(not(feature = "download"))]
fn download_mnist(searched: Vec<PathBuf>) -> Result<Dataset, DataError> {
    Err(DataError::MnistNotFound { searched })
}

pub(crate) fn load_fashion_mnist() -> Result<Dataset, DataError> {
    let searched = fashion_mnist_search_dirs();
    let dir = first_complete(&searched).ok_or_else(|| DataError::FashionMnistNotFound {
        searched: searched.clone(),
    })?;
    let mut data = Dataset::load_dir(dir, "Fashion-MNIST")?;
    data.class_names = FASHION_CLASS_NAMES;
    Ok(data)
}

/// The end of [`best_available`]'s reason when it falls back to the sample.
#[cfg(feature = "download")]
const HOW_TO_GET_MNIST: &str = "Dataset::load(Source::Mnist) downloads it once when online";
#[cfg(not(feature = "download"))]
const HOW_TO_GET_MNIST: &str = "this build cannot download it, its `download` feature is off: \
     put the four files in a folder and set MNIST_DIR to it";

pub(crate) fn best_available() -> (Source, String) {
    let searched = mnist_search_dirs();
    match first_complete(&searched) {
        Some(dir) => (
            Source::Mnist,
            format!("using full MNIST found in {}", dir.display()),
        ),
        None => {
            let shown: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
            (
                Source::Sample,
                format!(
                    "using the 5,000-digit MNIST sample built into the crate: full MNIST is not \
                     in {} ({})",
                    shown.join(", "),
                    HOW_TO_GET_MNIST
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a build without the `download` feature returns must say that the files were
    /// not found, where they were looked for, and both ways out: the feature, or the files
    /// by hand. (Built in every configuration; only returned without the feature.)
    #[test]
    fn not_found_without_download_says_why_and_what_to_do() {
        let searched = vec![PathBuf::from("/nowhere/mnist"), PathBuf::from("data/mnist")];
        let message = DataError::MnistNotFound { searched }.to_string();
        for needle in [
            "full MNIST not found",
            "`download` is off",
            "features = [\"download\"]",
            "MNIST_DIR",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "/nowhere/mnist, data/mnist",
            "Source::Sample",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
    }
}
