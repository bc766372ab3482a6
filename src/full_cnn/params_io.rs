//! Saving and loading a trained SimpleConvNet (CNN の実装: 学習したパラメータの保存).
//!
//! Training takes minutes; predicting takes milliseconds. So a trained network is saved to
//! a file and loaded again later, here or in Python. The file format is
//! [safetensors](https://huggingface.co/docs/safetensors): a small JSON header that names
//! each tensor with its dtype and shape, followed by the raw little-endian numbers. The
//! tensors carry the book's names, `W1 b1 W2 b2 W3 b3`, so Python reads them with
//!
//! ```text
//! from safetensors.numpy import load_file
//! params = load_file("simple_conv_net.safetensors")   # params["W1"].shape == (30, 1, 5, 5)
//! ```
//!
//! and `tools/check_params.py` runs its own numpy forward pass on them. The header's
//! `__metadata__` also records the network's configuration under the key `config`, as a
//! line of JSON, because the shapes alone do not tell the stride, the padding or the
//! pooling window:
//!
//! ```text
//! {"input":[1,28,28],"filter_num":30,"filter_size":5,"pad":0,"stride":1,"pool":2,"hidden":100,"classes":10}
//! ```
//!
//! (One metadata entry rather than several keeps the file's bytes reproducible: the same
//! parameters always give the same file.)
//!
//! Loading checks everything it can: a file that is not safetensors, a missing tensor, a
//! tensor of another dtype or shape each give a [`ParamsError`] that names the file and the
//! tensor, never a panic. Numbers go through the file unchanged, so a save/load round trip
//! is bit-exact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array4};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use thiserror::Error;

use super::simple_conv_net::{Params, SimpleConvNetConfig};
use crate::error::SettingError;

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

    /// One of W1 ... b3 is not in the file.
    #[error("{path} has no tensor named {name} (found: {found})")]
    MissingTensor {
        path: PathBuf,
        name: &'static str,
        found: String,
    },

    /// A tensor is stored with another number type than f32.
    #[error("tensor {name} in {path} has dtype {found}, expected F32")]
    WrongDtype {
        path: PathBuf,
        name: &'static str,
        found: String,
    },

    /// A tensor has another shape than the network configuration expects.
    #[error("tensor {name} in {path} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        path: PathBuf,
        name: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// The configuration itself does not fit (its convolution or pooling settings).
    #[error("the network configuration does not fit: {0}")]
    Setting(#[from] SettingError),

    /// The tensors fit but the metadata says the file was saved from a network with
    /// another configuration (e.g. another padding and input size giving the same shapes).
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

/// The configuration as one line of JSON, stored under the metadata key `config`.
/// (`weight_scale` is left out: it only matters before training.)
fn config_json(c: &SimpleConvNetConfig) -> String {
    format!(
        r#"{{"input":[{},{},{}],"filter_num":{},"filter_size":{},"pad":{},"stride":{},"pool":{},"hidden":{},"classes":{}}}"#,
        c.input.0,
        c.input.1,
        c.input.2,
        c.filter_num,
        c.filter_size,
        c.pad,
        c.stride,
        c.pool,
        c.hidden,
        c.classes
    )
}

/// Saves the parameters to a safetensors file, tensors named `W1 b1 W2 b2 W3 b3`, dtype
/// F32, with the configuration in the metadata.
///
/// ```
/// use cnn_from_scratch::full_cnn::params_io::{load_params, save_params};
/// use cnn_from_scratch::full_cnn::{SimpleConvNet, SimpleConvNetConfig};
///
/// let config = SimpleConvNetConfig::default();
/// let net = SimpleConvNet::new(config, 7).unwrap();
/// let path = std::env::temp_dir().join("params_io_doc.safetensors");
/// save_params(&path, net.params(), &config)?;
/// let loaded = load_params(&path, &config)?;
/// assert_eq!(&loaded, net.params()); // bit for bit
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), cnn_from_scratch::full_cnn::params_io::ParamsError>(())
/// ```
pub fn save_params(
    path: impl AsRef<Path>,
    params: &Params,
    config: &SimpleConvNetConfig,
) -> Result<(), ParamsError> {
    let path = path.as_ref();
    let named = params.named();
    let bytes: Vec<Vec<u8>> = named
        .iter()
        .map(|(_, tensor)| f32_to_le_bytes(tensor.iter().copied()))
        .collect();
    let views = named.iter().zip(&bytes).map(|((name, tensor), data)| {
        let view = TensorView::new(Dtype::F32, tensor.shape().to_vec(), data)
            .expect("4 bytes per element of the tensor's own shape");
        (*name, view)
    });
    let metadata = HashMap::from([("config".to_string(), config_json(config))]);
    let file = safetensors::serialize(views, Some(metadata)).expect("F32 tensors of valid shapes");
    std::fs::write(path, file).map_err(|source| ParamsError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Loads parameters saved by [`save_params`] (or by Python's `safetensors`) and checks them
/// against `config`: every tensor present, F32, of the shape the config asks for; and, if
/// the file records its configuration (files written by other programs may not), the same
/// configuration.
///
/// ```
/// use cnn_from_scratch::full_cnn::params_io::{load_params, ParamsError};
/// use cnn_from_scratch::full_cnn::SimpleConvNetConfig;
///
/// let path = std::env::temp_dir().join("params_io_doc_corrupt.safetensors");
/// std::fs::write(&path, b"not a safetensors file")?;
/// let err = load_params(&path, &SimpleConvNetConfig::default()).unwrap_err();
/// assert!(matches!(err, ParamsError::Corrupt { .. }));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn load_params(
    path: impl AsRef<Path>,
    config: &SimpleConvNetConfig,
) -> Result<Params, ParamsError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |source| ParamsError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
    let file = SafeTensors::deserialize(&bytes).map_err(corrupt)?;

    let expected = Params::expected_shapes(config)?;
    let names = ["W1", "b1", "W2", "b2", "W3", "b3"];
    let mut tensors: Vec<Vec<f32>> = Vec::with_capacity(6);
    for (name, shape) in names.into_iter().zip(&expected) {
        let view = file.tensor(name).map_err(|_| {
            let mut found = file.names();
            found.sort();
            ParamsError::MissingTensor {
                path: path.to_path_buf(),
                name,
                found: found.join(", "),
            }
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(ParamsError::WrongDtype {
                path: path.to_path_buf(),
                name,
                found: view.dtype().to_string(),
            });
        }
        if view.shape() != shape.as_slice() {
            return Err(ParamsError::WrongShape {
                path: path.to_path_buf(),
                name,
                expected: shape.clone(),
                found: view.shape().to_vec(),
            });
        }
        tensors.push(le_bytes_to_f32(view.data()));
    }

    if let Some(found) = header.metadata().as_ref().and_then(|m| m.get("config")) {
        let expected = config_json(config);
        if *found != expected {
            return Err(ParamsError::WrongConfig {
                path: path.to_path_buf(),
                expected,
                found: found.clone(),
            });
        }
    }

    // Shapes and lengths are checked above, so building the arrays cannot fail.
    let mut tensors = tensors.into_iter();
    let mut next = || tensors.next().expect("six tensors");
    let [s1, s2, s3, s4, s5, s6] = &expected;
    let bad = "length checked against the shape";
    Ok(Params {
        w1: Array4::from_shape_vec((s1[0], s1[1], s1[2], s1[3]), next()).expect(bad),
        b1: Array1::from_shape_vec(s2[0], next()).expect(bad),
        w2: Array2::from_shape_vec((s3[0], s3[1]), next()).expect(bad),
        b2: Array1::from_shape_vec(s4[0], next()).expect(bad),
        w3: Array2::from_shape_vec((s5[0], s5[1]), next()).expect(bad),
        b3: Array1::from_shape_vec(s6[0], next()).expect(bad),
    })
}
