//! Downloading the full MNIST files once, safely.
//!
//! Each file is streamed into a hidden temporary file next to its destination while its
//! SHA-256 is computed; only when the checksum matches is it renamed to its real name.
//! So an interrupted or corrupt download never leaves a file that looks valid: the next
//! run simply tries again. Mirrors are tried in order until one delivers the right bytes.
//!
//! The download itself ([`download_files`]) needs the cargo feature `download`, which is on by
//! default. It brings an HTTPS client (ureq with rustls), the largest part of the crate's build;
//! the notebooks turn it off (`default-features = false`) to compile faster. Without it, the
//! plan and error types below still exist, and `Dataset::load(Source::Mnist)` explains how to
//! put the files on disk by hand.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
#[cfg(feature = "download")]
use std::{
    fs,
    io::{Read, Write},
    path::Path,
};

#[cfg(feature = "download")]
use indicatif::{ProgressBar, ProgressStyle};
#[cfg(feature = "download")]
use sha2::{Digest, Sha256};

#[cfg(feature = "download")]
use super::DataError;
use super::STANDARD_FILE_NAMES;

/// Public mirrors of the four MNIST `.gz` files, tried in order: PyTorch's (the one
/// torchvision uses) and the Common Visual Data Foundation's on Google Cloud (the one
/// TensorFlow uses). Yann LeCun's original site no longer serves the files reliably.
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

// SHA-256 of the four standard MNIST .gz files (9,912,422 / 28,881 / 1,648,877 / 4,542
// bytes). This machine has no network to download and hash them, so they are taken from
// public code that pins them, where the same four values appear independently, e.g.
// pytorch/vision `torchvision/prototype/datasets/_builtin/mnist.py` (`_CHECKSUMS`), the
// Haskell/Guild AI/TensorFlow-style MNIST fetchers found by code search, and scripts
// that download from both mirrors above. The md5 of the first file,
// f68b3c2dcbeaaa9fbdd348bbdeb94873 (torchvision's `resources`), is listed next to this
// SHA-256 in the same sources.
const MNIST_SHA256: [&str; 4] = [
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
];

/// A file to download and the SHA-256 (lower-case hex) it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, appended to each mirror's base URL and used on disk.
    pub name: String,
    /// Expected SHA-256 of the downloaded bytes, lower-case hex.
    pub sha256: String,
}

/// What to download from where: [`DownloadPlan::mnist`] for the real thing; tests build
/// their own plan pointing at a local server.
#[derive(Debug, Clone)]
pub struct DownloadPlan {
    /// Base URLs, tried in order; each file's URL is base + `/` + name.
    pub mirrors: Vec<String>,
    /// The files, each with its checksum.
    pub files: Vec<RemoteFile>,
    /// Limit for connecting, for the response headers and for each read of the body.
    pub timeout: Duration,
    /// Draw a progress bar on the terminal.
    pub show_progress: bool,
}

impl DownloadPlan {
    /// The four MNIST files from [`MNIST_MIRRORS`], with their known SHA-256.
    ///
    /// ```
    /// let plan = cnn_from_scratch::data::DownloadPlan::mnist();
    /// assert_eq!(plan.files[0].name, "train-images-idx3-ubyte.gz");
    /// assert_eq!(plan.mirrors.len(), 2);
    /// ```
    pub fn mnist() -> DownloadPlan {
        DownloadPlan {
            mirrors: MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
            files: STANDARD_FILE_NAMES
                .iter()
                .zip(MNIST_SHA256)
                .map(|(name, sha256)| RemoteFile {
                    name: format!("{name}.gz"),
                    sha256: sha256.to_string(),
                })
                .collect(),
            timeout: Duration::from_secs(30),
            show_progress: true,
        }
    }
}

/// One URL that did not deliver its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The URL tried.
    pub url: String,
    /// What went wrong.
    pub reason: FailureReason,
}

/// Why a download attempt failed. Nothing is left on disk after any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// No response: no network, name not resolved, connection refused, HTTP error status.
    Unreachable(String),
    /// The transfer stopped before the whole file arrived.
    Interrupted {
        /// Bytes received.
        received: u64,
        /// Bytes announced by the server, if it said.
        expected: Option<u64>,
        /// What the connection reported, if anything.
        detail: String,
    },
    /// The whole file arrived but its SHA-256 is not the expected one.
    ChecksumMismatch {
        /// Expected SHA-256.
        expected: String,
        /// SHA-256 of what arrived.
        found: String,
    },
}

impl fmt::Display for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.url)?;
        match &self.reason {
            FailureReason::Unreachable(why) => write!(f, "unreachable ({why})"),
            FailureReason::Interrupted {
                received,
                expected,
                detail,
            } => {
                write!(f, "interrupted after {received} bytes")?;
                if let Some(total) = expected {
                    write!(f, " of {total}")?;
                }
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            FailureReason::ChecksumMismatch { expected, found } => {
                write!(f, "wrong SHA-256 {found}, expected {expected}")
            }
        }
    }
}

/// The "how to do it by hand" part of a download error.
pub(crate) fn by_hand_hint(searched: &[PathBuf]) -> String {
    let names: Vec<String> = STANDARD_FILE_NAMES
        .iter()
        .map(|n| format!("{n}.gz"))
        .collect();
    let mut hint = format!(
        "To use full MNIST without a network, copy the four files ({}; raw or .gz) from {} \
         (or any copy of MNIST) into a folder and set MNIST_DIR to it, or put them in ./data/mnist",
        names.join(", "),
        MNIST_MIRRORS.join(" or ")
    );
    if !searched.is_empty() {
        let dirs: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
        hint.push_str(&format!(" (folders searched: {})", dirs.join(", ")));
    }
    hint.push_str(". Dataset::load(Source::Sample) works offline.");
    hint
}

#[cfg(feature = "download")]
/// Downloads every file of `plan` into `dir` (which must exist), skipping files already
/// there. Returns [`DataError::Download`] listing every URL tried if no mirror delivers a
/// file with the right checksum, and [`DataError::Io`] if the disk refuses to write.
///
/// Only with the cargo feature `download` (on by default).
///
/// ```no_run
/// use cnn_from_scratch::data::{DownloadPlan, download_files};
///
/// std::fs::create_dir_all("data/mnist")?;
/// download_files(&DownloadPlan::mnist(), "data/mnist".as_ref())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn download_files(plan: &DownloadPlan, dir: &Path) -> Result<(), DataError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(plan.timeout))
        .timeout_recv_response(Some(plan.timeout))
        .timeout_per_read(Some(plan.timeout))
        // The files are gzip already: ask for the bytes as stored, so the checksum applies.
        .accept_encoding("identity")
        .build()
        .into();
    for file in &plan.files {
        let destination = dir.join(&file.name);
        if destination.is_file() {
            continue;
        }
        let mut attempts = Vec::new();
        for mirror in &plan.mirrors {
            let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
            match fetch(&agent, &url, &destination, &file.sha256, plan.show_progress)? {
                None => break,
                Some(reason) => attempts.push(FailedAttempt { url, reason }),
            }
        }
        if !destination.is_file() {
            return Err(DataError::Download {
                file: file.name.clone(),
                dir: dir.to_path_buf(),
                attempts,
                searched: Vec::new(),
            });
        }
    }
    Ok(())
}

#[cfg(feature = "download")]
/// Deletes the temporary file when dropped, unless it was renamed into place.
struct PartialFile {
    path: PathBuf,
    done: bool,
}

#[cfg(feature = "download")]
impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(feature = "download")]
/// Tries one URL. `Ok(None)`: the file is in place. `Ok(Some(reason))`: try the next
/// mirror. `Err`: the local disk failed, no point trying other mirrors.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    destination: &Path,
    sha256: &str,
    show_progress: bool,
) -> Result<Option<FailureReason>, DataError> {
    let mut response = match agent.get(url).call() {
        Ok(response) => response,
        Err(e) => return Ok(Some(FailureReason::Unreachable(e.to_string()))),
    };
    let expected_len = response.body().content_length();

    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut partial = PartialFile {
        path: destination.with_file_name(format!(".{name}.{}.part", std::process::id())),
        done: false,
    };
    let io_error = |source| DataError::Io {
        path: partial.path.clone(),
        source,
    };
    let mut out = fs::File::create(&partial.path).map_err(io_error)?;

    let bar = progress_bar(show_progress, expected_len, &name);
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut buffer = vec![0u8; 1 << 16];
    let mut reader = response.body_mut().as_reader();
    let mut broken = String::new();
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                out.write_all(&buffer[..n]).map_err(io_error)?;
                received += n as u64;
                bar.inc(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                broken = e.to_string();
                break;
            }
        }
    }
    bar.finish_and_clear();
    if !broken.is_empty() || expected_len.is_some_and(|len| len != received) {
        return Ok(Some(FailureReason::Interrupted {
            received,
            expected: expected_len,
            detail: broken,
        }));
    }
    let found: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if !found.eq_ignore_ascii_case(sha256) {
        return Ok(Some(FailureReason::ChecksumMismatch {
            expected: sha256.to_string(),
            found,
        }));
    }
    out.sync_all().map_err(io_error)?;
    drop(out);
    fs::rename(&partial.path, destination).map_err(|source| DataError::Io {
        path: destination.to_path_buf(),
        source,
    })?;
    partial.done = true;
    Ok(None)
}

#[cfg(feature = "download")]
fn progress_bar(show: bool, len: Option<u64>, name: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.with_style(style).with_message(name.to_string())
}
