//! The chapter's networks, each an ordered list of the same layers (CNN の全体アーキテクチャ):
//!
//! ```text
//! mlp(&[784, 100, 100, 10])  x -> [Affine -> ReLU] -> [Affine -> ReLU] -> Affine -> Softmax       (§1)
//! simple_conv_net            x -> [Conv -> ReLU -> Pool] -> [Affine -> ReLU] -> Affine -> Softmax  (Fig 7-23)
//! two_block_cnn              x -> [Conv -> ReLU -> Pool] x 2 -> [Affine -> ReLU] -> Affine -> Softmax (Fig 7-2)
//! deep_conv_net              x -> [Conv -> ReLU -> Conv -> ReLU -> Pool] x 3
//!                              -> Affine -> ReLU -> Dropout -> Affine -> Dropout -> Softmax     (book ch 8)
//! ```
//!
//! Weights start as random normal numbers times a scale ([`Init`]): the book's fixed
//! 0.01, He's `sqrt(2 / n)` for ReLU networks or Xavier's `sqrt(1 / n)` for sigmoid ones,
//! where `n` is the number of inputs each output sums over (`C*FH*FW` for a convolution).
//! Biases start at zero. The same seed gives the same weights.

use std::str::FromStr;

use ndarray::{Array1, ArrayD, Ix2, Ix4};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::{Affine, Convolution, Dropout, Layer, Network, NetworkError, Pooling, Relu};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// How the weights start: `scale * N(0, 1)`, with the scale chosen by name.
///
/// ```
/// use cnn_from_scratch::full_cnn::Init;
/// assert_eq!("he".parse::<Init>().unwrap(), Init::He);
/// assert_eq!("0.01".parse::<Init>().unwrap(), Init::Scale(0.01));
/// assert_eq!(Init::He.scale(50), 0.2);                 // sqrt(2 / 50)
/// assert!("gauss".parse::<Init>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// A fixed scale, the same for every layer (the book's `weight_init_std = 0.01`).
    Scale(f32),
    /// He: `sqrt(2 / n)`, for layers followed by ReLU (`"he"` or `"relu"`).
    He,
    /// Xavier: `sqrt(1 / n)`, for layers followed by sigmoid or tanh (`"xavier"` or
    /// `"sigmoid"`).
    Xavier,
}

impl Init {
    /// The standard deviation for a layer whose outputs each sum `fan_in` inputs.
    pub fn scale(&self, fan_in: usize) -> f32 {
        match *self {
            Init::Scale(s) => s,
            Init::He => (2.0 / fan_in.max(1) as f32).sqrt(),
            Init::Xavier => (1.0 / fan_in.max(1) as f32).sqrt(),
        }
    }
}

impl FromStr for Init {
    type Err = NetworkError;

    /// `"he"`/`"relu"`, `"xavier"`/`"sigmoid"`, `"book"` (0.01) or a positive number.
    fn from_str(name: &str) -> Result<Init, NetworkError> {
        match name.to_ascii_lowercase().as_str() {
            "he" | "relu" => Ok(Init::He),
            "xavier" | "sigmoid" => Ok(Init::Xavier),
            "book" => Ok(Init::Scale(0.01)),
            other => match other.parse::<f32>() {
                Ok(s) if s > 0.0 && s.is_finite() => Ok(Init::Scale(s)),
                _ => Err(NetworkError::BadValue {
                    what: "initialisation",
                    value: name.to_string(),
                    expected: "he, xavier, book or a positive number".into(),
                }),
            },
        }
    }
}

/// Random weights `scale * N(0, 1)` of `shape`, drawn from `rng` in row-major order.
fn normal(rng: &mut StdRng, shape: &[usize], scale: f32) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(shape, || scale * rng.sample::<f32, _>(StandardNormal))
}

/// A convolution layer of `fnum` filters `size x size` over `channels`, He/Xavier scaled by
/// its `channels * size * size` inputs.
fn conv(
    rng: &mut StdRng,
    init: Init,
    (fnum, channels, size): (usize, usize, usize),
    stride: usize,
    pad: usize,
) -> Box<dyn Layer> {
    let fan_in = channels * size * size;
    let w = normal(rng, &[fnum, channels, size, size], init.scale(fan_in));
    let w = w.into_dimensionality::<Ix4>().expect("4 axes");
    Box::new(Convolution::new(w, Array1::zeros(fnum), stride, pad))
}

/// An Affine layer `inputs -> outputs`.
fn affine(rng: &mut StdRng, init: Init, inputs: usize, outputs: usize) -> Box<dyn Layer> {
    let w = normal(rng, &[inputs, outputs], init.scale(inputs));
    let w = w.into_dimensionality::<Ix2>().expect("2 axes");
    Box::new(Affine::new(w, Array1::zeros(outputs)))
}

fn nonzero(what: &'static str, size: usize) -> Result<usize, NetworkError> {
    if size == 0 {
        Err(SettingError::ZeroSize { what }.into())
    } else {
        Ok(size)
    }
}

/// The plain fully connected network of §1: Affine layers of the given sizes with ReLU
/// between them, e.g. `&[784, 100, 100, 10]` (the book's `MultiLayerNet`). It takes
/// flattened examples `(N, sizes[0])`, and `(N, 1, 28, 28)` digits too (each is
/// flattened, which is exactly what §1 criticises).
///
/// ```
/// use cnn_from_scratch::full_cnn::{Init, mlp};
/// let net = mlp(&[784, 100, 100, 10], Init::He, 0).unwrap();
/// assert_eq!(net.num_params(), 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10);
/// assert!(mlp(&[784], Init::He, 0).is_err());     // needs an input and an output size
/// ```
pub fn mlp(sizes: &[usize], init: Init, seed: u64) -> Result<Network, NetworkError> {
    if sizes.len() < 2 {
        return Err(NetworkError::BadValue {
            what: "mlp sizes",
            value: format!("{sizes:?}"),
            expected: "at least an input and an output size, e.g. [784, 100, 10]".into(),
        });
    }
    for &size in sizes {
        nonzero("every mlp size", size)?;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    for (i, pair) in sizes.windows(2).enumerate() {
        layers.push(affine(&mut rng, init, pair[0], pair[1]));
        if i + 2 < sizes.len() {
            layers.push(Box::new(Relu::new()));
        }
    }
    Network::new(&sizes[..1], layers)
}

/// The hyperparameters of the book's SimpleConvNet. [`Default`] gives the book's network:
///
/// ```
/// use cnn_from_scratch::full_cnn::SimpleConvNetConfig;
/// let config = SimpleConvNetConfig::default();
/// assert_eq!((config.filter_num, config.filter_size, config.hidden), (30, 5, 100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimpleConvNetConfig {
    /// One input image, `(C, H, W)`: `(1, 28, 28)` for MNIST.
    pub input: (usize, usize, usize),
    /// Number of filters `FN` of the convolution layer.
    pub filter_num: usize,
    /// Filters are `filter_size x filter_size`.
    pub filter_size: usize,
    /// Zero padding of the convolution.
    pub pad: usize,
    /// Stride of the convolution.
    pub stride: usize,
    /// Width of the hidden Affine layer.
    pub hidden: usize,
    /// Number of classes (outputs).
    pub classes: usize,
    /// Weights start as `weight_scale * N(0, 1)`; biases start at zero.
    pub weight_scale: f32,
    /// Max pooling window and stride, `pool x pool` (the book: 2).
    pub pool: usize,
}

impl Default for SimpleConvNetConfig {
    fn default() -> Self {
        Self {
            input: (1, 28, 28),
            filter_num: 30,
            filter_size: 5,
            pad: 0,
            stride: 1,
            hidden: 100,
            classes: 10,
            weight_scale: 0.01,
            pool: 2,
        }
    }
}

/// The sizes every layer of a SimpleConvNet works with, by equation (7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSizes {
    /// Convolution output `(OH, OW)`.
    pub conv: (usize, usize),
    /// Pooling output `(PH, PW)`.
    pub pool: (usize, usize),
    /// Inputs of the first Affine layer, `FN * PH * PW`.
    pub flat: usize,
}

impl SimpleConvNetConfig {
    /// The layer sizes, or the [`SettingError`] naming the convolution or pooling setting
    /// that does not fit (equation 7.1 must give a whole, positive size).
    ///
    /// ```
    /// use cnn_from_scratch::full_cnn::SimpleConvNetConfig;
    /// let sizes = SimpleConvNetConfig::default().layer_sizes().unwrap();
    /// assert_eq!((sizes.conv, sizes.pool, sizes.flat), ((24, 24), (12, 12), 4320));
    /// // A 5x5 filter on 27x27 gives 23x23, which 2x2 pooling cannot halve:
    /// let odd = SimpleConvNetConfig { input: (1, 27, 27), ..Default::default() };
    /// assert!(odd.layer_sizes().is_err());
    /// ```
    pub fn layer_sizes(&self) -> Result<LayerSizes, SettingError> {
        let (channels, h, w) = self.input;
        for (what, size) in [
            ("input channels", channels),
            ("filter_num", self.filter_num),
            ("hidden", self.hidden),
            ("classes", self.classes),
        ] {
            if size == 0 {
                return Err(SettingError::ZeroSize { what });
            }
        }
        let conv = (
            conv_output_size(h, self.filter_size, self.pad, self.stride)?,
            conv_output_size(w, self.filter_size, self.pad, self.stride)?,
        );
        let pool = (
            conv_output_size(conv.0, self.pool, 0, self.pool)?,
            conv_output_size(conv.1, self.pool, 0, self.pool)?,
        );
        Ok(LayerSizes {
            conv,
            pool,
            flat: self.filter_num * pool.0 * pool.1,
        })
    }

    /// The configuration as one line of JSON, saved with the parameters under the
    /// metadata key `config` (`weight_scale` is left out: it only matters before
    /// training). `tools/check_params.py` reads the stride, padding and pooling from it.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"input":[{},{},{}],"filter_num":{},"filter_size":{},"pad":{},"stride":{},"pool":{},"hidden":{},"classes":{}}}"#,
            self.input.0,
            self.input.1,
            self.input.2,
            self.filter_num,
            self.filter_size,
            self.pad,
            self.stride,
            self.pool,
            self.hidden,
            self.classes
        )
    }
}

/// The book's SimpleConvNet (Fig 7-23) as a list of layers:
///
/// ```text
/// input (C, H, W)
///   -> Convolution (FN filters FxF, stride, pad) -> ReLU -> Pooling (max, pool x pool)
///   -> Affine (FN*PH*PW -> hidden) -> ReLU
///   -> Affine (hidden -> classes) -> Softmax with cross-entropy loss
/// ```
///
/// with the book's initialisation: weights `weight_scale * N(0, 1)` drawn from a generator
/// seeded with `seed` (W1, then W2, then W3), biases zero. Its parameters carry the book's
/// names `W1 b1 W2 b2 W3 b3`. Returns an error if the convolution or pooling does not fit
/// the input, or a size is zero.
///
/// ```
/// use cnn_from_scratch::full_cnn::{SimpleConvNetConfig, simple_conv_net};
/// use ndarray::{Array1, Array4};
/// let config = SimpleConvNetConfig { input: (1, 8, 8), filter_num: 4, filter_size: 3, hidden: 10,
///                                    ..Default::default() };
/// let mut net = simple_conv_net(&config, 42).unwrap();
/// let x = Array4::<f32>::ones((2, 1, 8, 8));
/// let labels = Array1::from(vec![3u8, 7]);
/// assert_eq!(net.predict(x.view()).dim(), (2, 10));
/// let (loss, grads) = net.gradient(x.view(), labels.view());
/// assert!((loss - 10f32.ln()).abs() < 0.01); // tiny weights: every class about 1/10
/// assert_eq!(grads["W1"].shape(), &[4, 1, 3, 3]);
/// println!("{net}");                          // the architecture table
/// ```
pub fn simple_conv_net(config: &SimpleConvNetConfig, seed: u64) -> Result<Network, NetworkError> {
    let c = config;
    let sizes = c.layer_sizes()?;
    let init = Init::Scale(c.weight_scale);
    let mut rng = StdRng::seed_from_u64(seed);
    let layers: Vec<Box<dyn Layer>> = vec![
        conv(
            &mut rng,
            init,
            (c.filter_num, c.input.0, c.filter_size),
            c.stride,
            c.pad,
        ),
        Box::new(Relu::new()),
        Box::new(Pooling::new(c.pool, c.pool, c.pool, 0)),
        affine(&mut rng, init, sizes.flat, c.hidden),
        Box::new(Relu::new()),
        affine(&mut rng, init, c.hidden, c.classes),
    ];
    let input = [c.input.0, c.input.1, c.input.2];
    Ok(Network::new(&input, layers)?.with_config(c.to_json()))
}

/// A CNN in the shape of Fig 7-2, two "Conv - ReLU - Pool" blocks before the Affine
/// layers, for `(1, 28, 28)` digits and 10 classes:
///
/// ```text
/// Conv 16x3x3 pad 1 -> ReLU -> Pool 2x2    (16, 14, 14)
/// Conv 32x3x3 pad 1 -> ReLU -> Pool 2x2    (32, 7, 7)
/// Affine 1568 -> 100 -> ReLU -> Affine 100 -> 10 -> Softmax
/// ```
///
/// ```
/// use cnn_from_scratch::full_cnn::{Init, two_block_cnn};
/// let net = two_block_cnn(Init::He, 0).unwrap();
/// assert_eq!(net.output_shapes()[5], vec![32, 7, 7]);
/// ```
pub fn two_block_cnn(init: Init, seed: u64) -> Result<Network, NetworkError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let layers: Vec<Box<dyn Layer>> = vec![
        conv(&mut rng, init, (16, 1, 3), 1, 1),
        Box::new(Relu::new()),
        Box::new(Pooling::new(2, 2, 2, 0)),
        conv(&mut rng, init, (32, 16, 3), 1, 1),
        Box::new(Relu::new()),
        Box::new(Pooling::new(2, 2, 2, 0)),
        affine(&mut rng, init, 32 * 7 * 7, 100),
        Box::new(Relu::new()),
        affine(&mut rng, init, 100, 10),
    ];
    Network::new(&[1, 28, 28], layers)
}

/// The book's DeepConvNet (chapter 8, `deep_convnet.py`) for `(1, 28, 28)` digits: six 3x3
/// convolutions of 16, 16, 32, 32, 64, 64 filters with max pooling after each pair, then
/// Affine 50, ReLU, Dropout 0.5, Affine 10, Dropout 0.5; He initialisation.
///
/// ```text
/// Conv 16 pad 1 -> ReLU -> Conv 16 pad 1 -> ReLU -> Pool    (16, 14, 14)
/// Conv 32 pad 1 -> ReLU -> Conv 32 pad 2 -> ReLU -> Pool    (32, 8, 8)
/// Conv 64 pad 1 -> ReLU -> Conv 64 pad 1 -> ReLU -> Pool    (64, 4, 4)
/// Affine 1024 -> 50 -> ReLU -> Dropout 0.5 -> Affine 50 -> 10 -> Dropout 0.5 -> Softmax
/// ```
///
/// ```
/// use cnn_from_scratch::full_cnn::deep_conv_net;
/// let net = deep_conv_net(0).unwrap();
/// assert_eq!(net.output_shapes()[14], vec![64, 4, 4]);
/// assert_eq!(net.params().names().len(), 16);         // W1 b1 ... W8 b8
/// ```
pub fn deep_conv_net(seed: u64) -> Result<Network, NetworkError> {
    let init = Init::He;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    // (filters, input channels, pad) of the six convolutions; a pool after each pair.
    let convs = [
        (16, 1, 1),
        (16, 16, 1),
        (32, 16, 1),
        (32, 32, 2),
        (64, 32, 1),
        (64, 64, 1),
    ];
    for (i, &(fnum, channels, pad)) in convs.iter().enumerate() {
        layers.push(conv(&mut rng, init, (fnum, channels, 3), 1, pad));
        layers.push(Box::new(Relu::new()));
        if i % 2 == 1 {
            layers.push(Box::new(Pooling::new(2, 2, 2, 0)));
        }
    }
    layers.push(affine(&mut rng, init, 64 * 4 * 4, 50));
    layers.push(Box::new(Relu::new()));
    layers.push(Box::new(Dropout::new(0.5, seed.wrapping_add(1))));
    layers.push(affine(&mut rng, init, 50, 10));
    layers.push(Box::new(Dropout::new(0.5, seed.wrapping_add(2))));
    Network::new(&[1, 28, 28], layers)
}
