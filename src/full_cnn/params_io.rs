//! Saving and loading a trained network (CNN の実装: 学習したパラメータの保存).
//!
//! Training takes minutes; predicting takes milliseconds. So a trained network is saved to
//! a file and loaded again later, here or in Python. The file format is
//! [safetensors](https://huggingface.co/docs/safetensors): a small JSON header that names
//! each tensor with its dtype and shape, followed by the raw little-endian numbers. The
//! tensors carry the book's names, `W1 b1 W2 b2 ...` (the k-th layer with weights gives
//! `Wk` and `bk`), so Python reads them with
//!
//! ```text
//! from safetensors.numpy import load_file
//! params = load_file("simple_conv_net.safetensors")   # params["W1"].shape == (30, 1, 5, 5)
//! ```
//!
//! and `tools/check_params.py` runs its own numpy forward pass on a SimpleConvNet's. The
//! header's `__metadata__` also records the network's architecture under the key `config`,
//! as a line of JSON ([`Network::config`]), because the shapes alone do not tell the
//! stride, the padding or the pooling window. For SimpleConvNet that is the book's
//! configuration,
//!
//! ```text
//! {"input":[1,28,28],"filter_num":30,"filter_size":5,"pad":0,"stride":1,"pool":2,"hidden":100,"classes":10}
//! ```
//!
//! and for any other network its input shape and the list of its layers,
//!
//! ```text
//! {"input":[784],"layers":["Affine 784 -> 100","ReLU","Affine 100 -> 10"]}
//! ```
//!
//! (One metadata entry rather than several keeps the file's bytes reproducible: the same
//! parameters always give the same file.)
//!
//! Loading checks everything it can: a file that is not safetensors, a missing tensor, a
//! tensor of another dtype or shape, a file saved from another architecture each give a
//! [`ParamsError`] that names the file and the tensor, never a panic (a test feeds the
//! loader ten thousand damaged files). Numbers go through the file unchanged, so a
//! save/load round trip is bit-exact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use thiserror::Error;

use super::{Network, Params};

/// What can go wrong reading or writing a parameter file.
#[derive(Debug, Error)]
pub enum ParamsError {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The bytes are not a valid safetensors file (truncated, not JSON, bad offsets...).
    #[error("{path} is not a valid safetensors file: {source}")]
    Corrupt {
        path: PathBuf,
        source: SafeTensorError,
    },

    /// One of the network's tensors (W1, b1, ...) is not in the file.
    #[error("{path} has no tensor named {name} (found: {found})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        found: String,
    },

    /// A tensor is stored with another number type than f32.
    #[error("tensor {name} in {path} has dtype {found}, expected F32")]
    WrongDtype {
        path: PathBuf,
        name: String,
        found: String,
    },

    /// A tensor has another shape than the network's.
    #[error(
        "tensor {name} in {path} has shape {found:?}, but the network's {name} is {expected:?}"
    )]
    WrongShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// The tensors fit but the metadata says the file was saved from a network of
    /// another architecture (e.g. another padding and input size giving the same shapes).
    #[error(
        "{path} was saved from a network with config {found}, but the config asked for is {expected}"
    )]
    WrongConfig {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// The tensors' bytes as safetensors stores them: f32, little-endian, row-major.
fn f32_to_le_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

fn le_bytes_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Saves the network's parameters to a safetensors file, tensors named `W1 b1 W2 b2 ...`,
/// dtype F32, with the architecture ([`Network::config`]) in the metadata.
///
/// ```
/// use cnn_from_scratch::full_cnn::params_io::{load_params, save_params};
/// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
///
/// let config = SimpleConvNetConfig::default();
/// let net = simple_conv_net(&config, 7).unwrap();
/// let path = std::env::temp_dir().join("params_io_doc.safetensors");
/// save_params(&path, &net)?;
/// let mut other = simple_conv_net(&config, 8).unwrap();
/// load_params(&path, &mut other)?;
/// assert_eq!(other.params(), net.params()); // bit for bit
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), cnn_from_scratch::full_cnn::params_io::ParamsError>(())
/// ```
pub fn save_params(path: impl AsRef<Path>, net: &Network) -> Result<(), ParamsError> {
    let path = path.as_ref();
    let params = net.params();
    let named = params.named();
    let bytes: Vec<Vec<u8>> = named
        .iter()
        .map(|(_, tensor)| f32_to_le_bytes(tensor.iter().copied()))
        .collect();
    let views = named.iter().zip(&bytes).map(|((name, tensor), data)| {
        let view = TensorView::new(Dtype::F32, tensor.shape().to_vec(), data)
            .expect("4 bytes per element of the tensor's own shape");
        (name.to_string(), view)
    });
    let metadata = HashMap::from([("config".to_string(), net.config().to_string())]);
    let file = safetensors::serialize(views, Some(metadata)).expect("F32 tensors of valid shapes");
    std::fs::write(path, file).map_err(|source| ParamsError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Loads parameters saved by [`save_params`] (or by Python's `safetensors`) into `net`,
/// after checking them against it: every tensor present, F32, of the network's shape; and,
/// if the file records its architecture (files written by other programs may not), the
/// same architecture. On an error `net` is left unchanged.
///
/// ```
/// use cnn_from_scratch::full_cnn::params_io::{load_params, ParamsError};
/// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
///
/// let path = std::env::temp_dir().join("params_io_doc_corrupt.safetensors");
/// std::fs::write(&path, b"not a safetensors file")?;
/// let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 0).unwrap();
/// let err = load_params(&path, &mut net).unwrap_err();
/// assert!(matches!(err, ParamsError::Corrupt { .. }));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn load_params(path: impl AsRef<Path>, net: &mut Network) -> Result<(), ParamsError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let params = params_from_bytes(&bytes, path, net)?;
    net.set_params(&params)
        .expect("names and shapes were checked against the network");
    Ok(())
}

/// The network's tensors from a file's bytes, checked against `net`.
fn params_from_bytes(bytes: &[u8], path: &Path, net: &Network) -> Result<Params, ParamsError> {
    let corrupt = |source| ParamsError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
    let file = SafeTensors::deserialize(bytes).map_err(corrupt)?;

    let mut params = Params::new();
    for (name, expected) in net.params().named() {
        let view = file.tensor(name).map_err(|_| {
            let mut found = file.names();
            found.sort();
            ParamsError::MissingTensor {
                path: path.to_path_buf(),
                name: name.to_string(),
                found: found.join(", "),
            }
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(ParamsError::WrongDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                found: view.dtype().to_string(),
            });
        }
        if view.shape() != expected.shape() {
            return Err(ParamsError::WrongShape {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: expected.shape().to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values = le_bytes_to_f32(view.data());
        let tensor = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
            .expect("safetensors checked the data length against the shape");
        params.push(name, tensor);
    }

    if let Some(found) = header.metadata().as_ref().and_then(|m| m.get("config"))
        && found != net.config()
    {
        return Err(ParamsError::WrongConfig {
            path: path.to_path_buf(),
            expected: net.config().to_string(),
            found: found.clone(),
        });
    }
    Ok(params)
}
