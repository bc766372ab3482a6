//! The book's SimpleConvNet (CNN の実装): Convolution - ReLU - Pooling - Affine - ReLU -
//! Affine - Softmax, with its parameters, loss, accuracy and backpropagated gradient.

use std::fmt;

use ndarray::{
    Array1, Array2, Array4, ArrayView1, ArrayView4, ArrayViewD, ArrayViewMutD, Axis, Ix4, s,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::{Affine, Convolution, Pooling, Relu, SoftmaxWithLoss};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// The hyperparameters of a [`SimpleConvNet`]. [`Default`] gives the book's network:
///
/// ```
/// use cnn_from_scratch::full_cnn::simple_conv_net::SimpleConvNetConfig;
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

/// The sizes every layer works with, derived from a config by equation (7.1).
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
    /// use cnn_from_scratch::full_cnn::simple_conv_net::SimpleConvNetConfig;
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
}

/// The network's parameters under the book's names (`W1 b1 W2 b2 W3 b3`); the same struct
/// holds their gradients and an optimiser's per-parameter state.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Convolution filters `(FN, C, FH, FW)`.
    pub w1: Array4<f32>,
    /// Convolution bias `(FN)`.
    pub b1: Array1<f32>,
    /// Hidden Affine weights `(FN*PH*PW, hidden)`.
    pub w2: Array2<f32>,
    /// Hidden Affine bias `(hidden)`.
    pub b2: Array1<f32>,
    /// Output Affine weights `(hidden, classes)`.
    pub w3: Array2<f32>,
    /// Output Affine bias `(classes)`.
    pub b3: Array1<f32>,
}

impl Params {
    /// The six tensors with their book names, in the order `W1 b1 W2 b2 W3 b3`.
    ///
    /// ```
    /// use cnn_from_scratch::full_cnn::simple_conv_net::{SimpleConvNet, SimpleConvNetConfig};
    /// let net = SimpleConvNet::new(SimpleConvNetConfig::default(), 0).unwrap();
    /// let shapes: Vec<_> = net.params().named().iter().map(|(n, t)| (*n, t.shape().to_vec())).collect();
    /// assert_eq!(shapes[0], ("W1", vec![30, 1, 5, 5]));
    /// assert_eq!(shapes[2], ("W2", vec![4320, 100]));
    /// ```
    pub fn named(&self) -> [(&'static str, ArrayViewD<'_, f32>); 6] {
        [
            ("W1", self.w1.view().into_dyn()),
            ("b1", self.b1.view().into_dyn()),
            ("W2", self.w2.view().into_dyn()),
            ("b2", self.b2.view().into_dyn()),
            ("W3", self.w3.view().into_dyn()),
            ("b3", self.b3.view().into_dyn()),
        ]
    }

    /// Mutable views of the six tensors, in the order of [`Params::named`].
    pub fn named_mut(&mut self) -> [(&'static str, ArrayViewMutD<'_, f32>); 6] {
        [
            ("W1", self.w1.view_mut().into_dyn()),
            ("b1", self.b1.view_mut().into_dyn()),
            ("W2", self.w2.view_mut().into_dyn()),
            ("b2", self.b2.view_mut().into_dyn()),
            ("W3", self.w3.view_mut().into_dyn()),
            ("b3", self.b3.view_mut().into_dyn()),
        ]
    }

    /// Zeros of the same shapes (a fresh gradient, or an optimiser's initial state).
    pub fn zeros_like(&self) -> Params {
        Params {
            w1: Array4::zeros(self.w1.raw_dim()),
            b1: Array1::zeros(self.b1.raw_dim()),
            w2: Array2::zeros(self.w2.raw_dim()),
            b2: Array1::zeros(self.b2.raw_dim()),
            w3: Array2::zeros(self.w3.raw_dim()),
            b3: Array1::zeros(self.b3.raw_dim()),
        }
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.named().iter().map(|(_, t)| t.len()).sum()
    }

    /// `true` if there are no parameters at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shapes a config asks for, to check loaded parameters against.
    pub fn expected_shapes(config: &SimpleConvNetConfig) -> Result<[Vec<usize>; 6], SettingError> {
        let c = config;
        let flat = c.layer_sizes()?.flat;
        Ok([
            vec![c.filter_num, c.input.0, c.filter_size, c.filter_size],
            vec![c.filter_num],
            vec![flat, c.hidden],
            vec![c.hidden],
            vec![c.hidden, c.classes],
            vec![c.classes],
        ])
    }
}

/// The book's three-layer convolutional network (Fig 7-23 of the book):
///
/// ```text
/// input (C, H, W)
///   -> Convolution (FN filters FxF, stride, pad) -> ReLU -> Pooling (max, pool x pool)
///   -> Affine (FN*PH*PW -> hidden) -> ReLU
///   -> Affine (hidden -> classes) -> Softmax with cross-entropy loss
/// ```
///
/// The parameters live in one [`Params`] (the book's `self.params`); the layers borrow them
/// for each pass. The forward pass computes scores and the loss; the backward pass walks
/// the layers in reverse, each one turning the gradient of its output into the gradient of
/// its input and of its weights.
///
/// ```
/// use cnn_from_scratch::full_cnn::simple_conv_net::{SimpleConvNet, SimpleConvNetConfig};
/// use ndarray::{Array1, Array4};
/// let config = SimpleConvNetConfig { input: (1, 8, 8), filter_num: 4, filter_size: 3, hidden: 10,
///                                    ..Default::default() };
/// let mut net = SimpleConvNet::new(config, 42).unwrap();
/// let x = Array4::<f32>::ones((2, 1, 8, 8));
/// let labels = Array1::from(vec![3u8, 7]);
/// assert_eq!(net.predict(x.view()).dim(), (2, 10));
/// let (loss, grads) = net.gradient(x.view(), labels.view());
/// assert!((loss - 10f32.ln()).abs() < 0.01); // tiny weights: every class about 1/10
/// assert_eq!(grads.w1.dim(), (4, 1, 3, 3));
/// println!("{net}");                          // the architecture table
/// ```
#[derive(Debug, Clone)]
pub struct SimpleConvNet {
    config: SimpleConvNetConfig,
    sizes: LayerSizes,
    params: Params,
    conv1: Convolution,
    /// Max pooling; with `conv1` it also applies the ReLU between them
    /// (`Convolution::forward_relu_pool`).
    pool1: Pooling,
    affine1: Affine,
    relu2: Relu,
    affine2: Affine,
    last_layer: SoftmaxWithLoss,
}

impl SimpleConvNet {
    /// A network with the book's initialisation: weights `weight_scale * N(0, 1)` drawn
    /// from a generator seeded with `seed` (same seed, same weights), biases zero.
    ///
    /// Returns a [`SettingError`] if the convolution or pooling does not fit the input.
    /// Panics if `filter_num`, `hidden` or `classes` is zero.
    pub fn new(config: SimpleConvNetConfig, seed: u64) -> Result<Self, SettingError> {
        let shapes = Params::expected_shapes(&config)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut normal = |shape: &[usize]| {
            ndarray::ArrayD::from_shape_simple_fn(shape, || {
                config.weight_scale * rng.sample::<f32, _>(StandardNormal)
            })
        };
        let to4 = |a: ndarray::ArrayD<f32>| a.into_dimensionality::<Ix4>().expect("4 axes");
        let to2 =
            |a: ndarray::ArrayD<f32>| a.into_dimensionality::<ndarray::Ix2>().expect("2 axes");
        let params = Params {
            w1: to4(normal(&shapes[0])),
            b1: Array1::zeros(shapes[1][0]),
            w2: to2(normal(&shapes[2])),
            b2: Array1::zeros(shapes[3][0]),
            w3: to2(normal(&shapes[4])),
            b3: Array1::zeros(shapes[5][0]),
        };
        Self::from_params(config, params)
    }

    /// A network with the given parameters (trained ones, loaded from a file).
    ///
    /// Returns a [`SettingError`] if the convolution or pooling does not fit the input;
    /// panics if a parameter's shape is not the one the config asks for.
    pub fn from_params(config: SimpleConvNetConfig, params: Params) -> Result<Self, SettingError> {
        assert!(
            config.filter_num > 0 && config.hidden > 0 && config.classes > 0 && config.input.0 > 0,
            "SimpleConvNet: filter_num ({}), hidden ({}), classes ({}) and input channels ({}) must be at least 1",
            config.filter_num,
            config.hidden,
            config.classes,
            config.input.0
        );
        let sizes = config.layer_sizes()?;
        let expected = Params::expected_shapes(&config)?;
        for ((name, tensor), want) in params.named().iter().zip(&expected) {
            assert_eq!(
                tensor.shape(),
                want.as_slice(),
                "SimpleConvNet: parameter {name} has shape {:?} but the config asks for {:?}",
                tensor.shape(),
                want
            );
        }
        // The layers start empty; `swap_weights` lends them the parameters for each pass.
        let empty4 = || Array4::<f32>::zeros((0, 0, 0, 0));
        let empty2 = || Array2::<f32>::zeros((0, 0));
        let empty1 = || Array1::<f32>::zeros(0);
        Ok(Self {
            config,
            sizes,
            params,
            conv1: Convolution::new(empty4(), empty1(), config.stride, config.pad),
            pool1: Pooling::new(config.pool, config.pool, config.pool, 0),
            affine1: Affine::new(empty2(), empty1()),
            relu2: Relu::new(),
            affine2: Affine::new(empty2(), empty1()),
            last_layer: SoftmaxWithLoss::new(),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &SimpleConvNetConfig {
        &self.config
    }

    /// The parameters (the book's `self.params`).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The parameters, to update them (an optimiser) or replace them (loading).
    /// Changing a tensor's shape makes the next pass panic.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// Consume the network, keeping its parameters.
    pub fn into_params(self) -> Params {
        self.params
    }

    /// Move the parameters into the layers, or back: a swap of array handles, no copying.
    /// Called in pairs around every pass.
    fn swap_weights(&mut self) {
        std::mem::swap(&mut self.params.w1, &mut self.conv1.w);
        std::mem::swap(&mut self.params.b1, &mut self.conv1.b);
        std::mem::swap(&mut self.params.w2, &mut self.affine1.w);
        std::mem::swap(&mut self.params.b2, &mut self.affine1.b);
        std::mem::swap(&mut self.params.w3, &mut self.affine2.w);
        std::mem::swap(&mut self.params.b3, &mut self.affine2.b);
    }

    fn check_input(&self, x: &ArrayView4<f32>) {
        let (_, c, h, w) = x.dim();
        assert_eq!(
            (c, h, w),
            self.config.input,
            "SimpleConvNet: input batch has shape {:?} but the network takes (N, {}, {}, {})",
            x.shape(),
            self.config.input.0,
            self.config.input.1,
            self.config.input.2
        );
    }

    /// Forward through every layer but the last, with the weights already lent.
    fn forward_lent(&mut self, x: ArrayView4<f32>) -> Array2<f32> {
        // Convolution, ReLU and max pooling in one pass, image by image: the full-size
        // (N, FN, OH, OW) feature maps are never stored, only their pooled maxima.
        let h = self
            .conv1
            .forward_relu_pool(x, &mut self.pool1)
            .expect("settings checked in new");
        let h = self.affine1.forward(h);
        let h = self.relu2.forward(h);
        self.affine2.forward(h)
    }

    /// Class scores (before softmax) for a batch `(N, C, H, W)`: `(N, classes)`.
    /// Panics if the images' shape is not the config's `input`.
    pub fn predict(&mut self, x: ArrayView4<f32>) -> Array2<f32> {
        self.check_input(&x);
        self.swap_weights();
        let scores = self.forward_lent(x);
        self.swap_weights();
        scores
    }

    /// Mean cross-entropy loss of the batch against `labels`.
    pub fn loss(&mut self, x: ArrayView4<f32>, labels: ArrayView1<u8>) -> f32 {
        let scores = self.predict(x);
        self.last_layer.forward(scores.view(), labels)
    }

    /// Fraction of images whose highest score is the label, computed `batch_size` images
    /// at a time (so a whole test set fits in memory).
    pub fn accuracy(
        &mut self,
        x: ArrayView4<f32>,
        labels: ArrayView1<u8>,
        batch_size: usize,
    ) -> f32 {
        let n = x.dim().0;
        assert_eq!(
            labels.len(),
            n,
            "SimpleConvNet::accuracy: images have shape {:?} but labels have shape {:?}",
            x.shape(),
            labels.shape()
        );
        if n == 0 {
            return 0.0;
        }
        let batch_size = batch_size.max(1);
        let mut correct = 0usize;
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            let scores = self.predict(x.slice(s![start..end, .., .., ..]));
            correct += argmax_rows(&scores)
                .iter()
                .zip(labels.slice(s![start..end]))
                .filter(|&(&p, &t)| p == t as usize)
                .count();
        }
        correct as f32 / n as f32
    }

    /// Loss and gradients of the loss with respect to every parameter, by backpropagation:
    /// forward through all layers, then backward through them in reverse order.
    pub fn gradient(&mut self, x: ArrayView4<f32>, labels: ArrayView1<u8>) -> (f32, Params) {
        self.check_input(&x);
        self.swap_weights();
        let scores = self.forward_lent(x);
        let loss = self.last_layer.forward(scores.view(), labels);

        let dout = self.last_layer.backward();
        let dout = self.affine2.backward(dout.view());
        let dout = self.relu2.backward(dout);
        let dout = self.affine1.backward(
            dout.into_dimensionality::<ndarray::Ix2>()
                .expect("ReLU keeps the Affine output's (N, hidden) shape")
                .view(),
        );
        let dout = dout
            .into_dimensionality::<Ix4>()
            .expect("Affine restores the pooled (N, FN, PH, PW) shape");
        // Back through pooling, ReLU and the convolution's weights in one pass (dL/dx of
        // the images is not needed).
        self.conv1.backward_params_pooled(&self.pool1, dout.view());
        self.swap_weights();

        let take4 = |a: &mut Array4<f32>| std::mem::replace(a, Array4::zeros((0, 0, 0, 0)));
        let take2 = |a: &mut Array2<f32>| std::mem::replace(a, Array2::zeros((0, 0)));
        let take1 = |a: &mut Array1<f32>| std::mem::replace(a, Array1::zeros(0));
        let grads = Params {
            w1: take4(&mut self.conv1.dw),
            b1: take1(&mut self.conv1.db),
            w2: take2(&mut self.affine1.dw),
            b2: take1(&mut self.affine1.db),
            w3: take2(&mut self.affine2.dw),
            b3: take1(&mut self.affine2.db),
        };
        (loss, grads)
    }

    /// The architecture as a table: each layer, its output shape for one image and its
    /// number of parameters (the same text as `format!("{net}")`).
    ///
    /// ```
    /// use cnn_from_scratch::full_cnn::simple_conv_net::{SimpleConvNet, SimpleConvNetConfig};
    /// let net = SimpleConvNet::new(SimpleConvNetConfig::default(), 0).unwrap();
    /// let table = net.architecture();
    /// assert!(table.contains("(30, 24, 24)"));
    /// assert!(table.contains("432100"));   // Affine 4320 x 100 + 100
    /// ```
    pub fn architecture(&self) -> String {
        let c = &self.config;
        let s = &self.sizes;
        let (fnum, fs) = (c.filter_num, c.filter_size);
        let conv = format!("({fnum}, {}, {})", s.conv.0, s.conv.1);
        let pool = format!("({fnum}, {}, {})", s.pool.0, s.pool.1);
        let rows: Vec<(String, String, usize)> = vec![
            ("Input".into(), format!("{:?}", c.input), 0),
            (
                format!(
                    "Convolution {fnum}x{fs}x{fs}, stride {}, pad {}",
                    c.stride, c.pad
                ),
                conv.clone(),
                self.params.w1.len() + self.params.b1.len(),
            ),
            ("ReLU".into(), conv, 0),
            (format!("Pooling max {0}x{0}, stride {0}", c.pool), pool, 0),
            (
                format!("Affine {} -> {}", s.flat, c.hidden),
                format!("({})", c.hidden),
                self.params.w2.len() + self.params.b2.len(),
            ),
            ("ReLU".into(), format!("({})", c.hidden), 0),
            (
                format!("Affine {} -> {}", c.hidden, c.classes),
                format!("({})", c.classes),
                self.params.w3.len() + self.params.b3.len(),
            ),
            ("SoftmaxWithLoss".into(), format!("({})", c.classes), 0),
        ];
        let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let mut out = format!(
            "{:<width$}  {:<14}  {:>10}\n",
            "layer", "output shape", "parameters"
        );
        for (name, shape, count) in &rows {
            out += &format!("{name:<width$}  {shape:<14}  {count:>10}\n");
        }
        out += &format!(
            "{:<width$}  {:<14}  {:>10}\n",
            "total",
            "",
            self.params.len()
        );
        out
    }
}

impl fmt::Display for SimpleConvNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.architecture())
    }
}

/// Index of the largest entry in each row (the predicted class).
pub fn argmax_rows(scores: &Array2<f32>) -> Vec<usize> {
    scores
        .axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::{Adam, Optimizer};

    fn small_config() -> SimpleConvNetConfig {
        SimpleConvNetConfig {
            input: (1, 8, 8),
            filter_num: 4,
            filter_size: 3,
            pad: 1,
            stride: 1,
            hidden: 16,
            classes: 2,
            weight_scale: 0.1,
            pool: 2,
        }
    }

    #[test]
    fn same_seed_same_weights_and_the_books_initialisation() {
        let config = SimpleConvNetConfig::default();
        let a = SimpleConvNet::new(config, 7).unwrap();
        let b = SimpleConvNet::new(config, 7).unwrap();
        let c = SimpleConvNet::new(config, 8).unwrap();
        assert_eq!(a.params(), b.params());
        assert_ne!(a.params().w1, c.params().w1);
        // Weights ~ 0.01 * N(0, 1): the sample std of W2's 432,000 entries is close to 0.01.
        let w2 = &a.params().w2;
        let std = (w2.mapv(|v| (v as f64).powi(2)).sum() / w2.len() as f64).sqrt();
        assert!((std - 0.01).abs() < 1e-4, "std {std}");
        assert!(
            a.params()
                .b1
                .iter()
                .chain(&a.params().b2)
                .chain(&a.params().b3)
                .all(|&v| v == 0.0)
        );
    }

    #[test]
    fn parameter_counts_and_architecture_of_the_books_network() {
        let net = SimpleConvNet::new(SimpleConvNetConfig::default(), 0).unwrap();
        // By hand: conv 30*1*5*5 + 30, affine 4320*100 + 100, affine 100*10 + 10.
        assert_eq!(net.params().len(), 780 + 432_100 + 1_010);
        let table = net.architecture();
        for expected in [
            "(30, 24, 24)",
            "(30, 12, 12)",
            "780",
            "432100",
            "1010",
            "433890",
        ] {
            assert!(table.contains(expected), "{expected} missing from\n{table}");
        }
        assert_eq!(table, format!("{net}"));
    }

    #[test]
    fn settings_that_do_not_fit_are_errors_naming_the_values() {
        let config = SimpleConvNetConfig {
            input: (1, 28, 28),
            stride: 2,
            ..Default::default()
        };
        // (28 - 5) / 2 is not whole.
        let err = SimpleConvNet::new(config, 0).unwrap_err();
        assert_eq!(
            err,
            SettingError::NotWhole {
                input: 28,
                filter: 5,
                pad: 0,
                stride: 2,
                numerator: 23
            }
        );
        let too_big = SimpleConvNetConfig {
            filter_size: 29,
            ..Default::default()
        };
        assert!(matches!(
            SimpleConvNet::new(too_big, 0),
            Err(SettingError::FilterTooLarge { filter: 29, .. })
        ));
        let no_hidden = SimpleConvNetConfig {
            hidden: 0,
            ..Default::default()
        };
        assert_eq!(
            SimpleConvNet::new(no_hidden, 0).unwrap_err(),
            SettingError::ZeroSize { what: "hidden" }
        );
        let no_filters = SimpleConvNetConfig {
            filter_num: 0,
            ..Default::default()
        };
        let err = SimpleConvNet::new(no_filters, 0).unwrap_err();
        assert_eq!(err.to_string(), "filter_num must be at least 1, got 0");
    }

    #[test]
    fn untrained_loss_is_log_of_the_class_count() {
        // Tiny weights give near-equal scores, so every class has probability ~1/10.
        let mut net = SimpleConvNet::new(SimpleConvNetConfig::default(), 3).unwrap();
        let x = Array4::from_shape_fn((4, 1, 28, 28), |(n, _, i, j)| {
            ((n + i * j) % 7) as f32 / 7.0
        });
        let loss = net.loss(x.view(), Array1::from(vec![0u8, 1, 2, 3]).view());
        assert!((loss - 10f32.ln()).abs() < 1e-2, "loss {loss}");
    }

    #[test]
    fn accuracy_counts_correct_predictions_across_uneven_batches() {
        let mut net = SimpleConvNet::new(small_config(), 5).unwrap();
        let x = Array4::from_shape_fn((7, 1, 8, 8), |(n, _, i, j)| {
            ((n * 3 + i + 2 * j) % 5) as f32
        });
        let predicted = argmax_rows(&net.predict(x.view()));
        // Right for the first 4 images, wrong for the other 3: 4/7 whatever the batch size.
        let labels: Array1<u8> = predicted
            .iter()
            .enumerate()
            .map(|(i, &p)| if i < 4 { p as u8 } else { 1 - p as u8 })
            .collect();
        for batch_size in [1, 3, 7, 100] {
            assert_eq!(net.accuracy(x.view(), labels.view(), batch_size), 4.0 / 7.0);
        }
    }

    /// Vertical bars (class 0) and horizontal bars (class 1) at random positions.
    fn bars(n: usize, seed: u64) -> (Array4<f32>, Array1<u8>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = Array4::<f32>::zeros((n, 1, 8, 8));
        let labels: Array1<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        for (i, &t) in labels.iter().enumerate() {
            let at = rng.random_range(1..7);
            for k in 0..8 {
                let (y, x0) = if t == 0 { (k, at) } else { (at, k) };
                x[[i, 0, y, x0]] = 1.0;
            }
        }
        (x, labels)
    }

    #[test]
    fn adam_trains_the_network_to_tell_bars_apart_deterministically() {
        let run = || {
            let mut net = SimpleConvNet::new(small_config(), 1).unwrap();
            let (x, t) = bars(32, 2);
            let mut adam = Adam::new(0.01, 0.9, 0.999);
            let mut losses = Vec::new();
            for _ in 0..30 {
                let (loss, grads) = net.gradient(x.view(), t.view());
                adam.update(net.params_mut(), &grads);
                losses.push(loss);
            }
            let (test_x, test_t) = bars(50, 3);
            (losses, net.accuracy(test_x.view(), test_t.view(), 16))
        };
        let (losses, accuracy) = run();
        assert!(losses[29] < 0.1 * losses[0], "losses {losses:?}");
        assert_eq!(accuracy, 1.0);
        assert_eq!(run(), (losses, accuracy)); // same seeds, same history
    }
}
