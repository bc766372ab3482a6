//! A network as an ordered list of layers (CNN の全体アーキテクチャ, Fig 7-2), ending in
//! SoftmaxWithLoss: the book's `self.layers = OrderedDict()` and `self.last_layer`.
//!
//! The forward pass loops over the layers in order; the backward pass starts at the loss
//! and loops over them in reverse, each layer turning the gradient of its output into the
//! gradient of its input (and storing the gradients of its weights on the way). Any stack
//! of [`Layer`]s works: the fully connected net of §1, SimpleConvNet, a deeper CNN, or a
//! design of your own. The shapes are checked when the network is built, so a design
//! whose neighbouring layers do not fit is a [`NetworkError`] naming both, not a panic in
//! the middle of training.

use std::any::Any;
use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView, ArrayView1, ArrayViewD, CowArray, Dimension, IxDyn, s};
use thiserror::Error;

use super::kernels::threads::on_worker;
use super::params::{Params, ParamsMut};
use super::{Convolution, Layer, PoolKind, Pooling, Relu, SoftmaxWithLoss};
use crate::error::SettingError;

/// Why a network could not be built, or why parameters do not fit it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NetworkError {
    /// Two neighbouring layers do not fit: the second cannot take the first one's output.
    #[error(
        "layer {index} ({layer}) cannot follow {previous}, whose output per example is \
         {input:?}: {reason}"
    )]
    LayersDoNotFit {
        /// Position of the layer that does not fit, 1 for the first.
        index: usize,
        /// That layer's description.
        layer: String,
        /// The layer before it (or "the input").
        previous: String,
        /// The shape it was given, one example.
        input: Vec<usize>,
        /// What the layer says is wrong.
        reason: String,
    },

    /// No layers at all.
    #[error("a network needs at least one layer")]
    NoLayers,

    /// The last layer does not give one score per class, as SoftmaxWithLoss needs.
    #[error(
        "the last layer ({layer}) gives {shape:?} per example, but SoftmaxWithLoss needs \
         a flat vector of class scores: end the network with an Affine layer"
    )]
    NotScores {
        /// The last layer's description.
        layer: String,
        /// Its output shape, one example.
        shape: Vec<usize>,
    },

    /// A builder's setting does not fit (a convolution or pooling size, a zero width).
    #[error(transparent)]
    Setting(#[from] SettingError),

    /// A builder was given a value it cannot use.
    #[error("{what}: {value} ({expected})")]
    BadValue {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: String,
        /// What would work.
        expected: String,
    },

    /// Parameters for [`Network::set_params`] lack a tensor the network has.
    #[error("no parameter named {name} among the ones given ({found})")]
    MissingParam {
        /// The network's name for it.
        name: String,
        /// The names given.
        found: String,
    },

    /// A parameter tensor has another shape than the network's.
    #[error("parameter {name} has shape {found:?}, but the network's {name} is {expected:?}")]
    WrongParamShape {
        /// Its name.
        name: String,
        /// The network's shape.
        expected: Vec<usize>,
        /// The shape given.
        found: Vec<usize>,
    },
}

/// An ordered list of layers ending in softmax with cross-entropy loss.
///
/// ```
/// use cnn_from_scratch::full_cnn::{Affine, Convolution, Layer, Network, Pooling, Relu};
/// use ndarray::{Array1, Array2, Array4};
/// // A tiny CNN for 1x6x6 images and 3 classes, layer by layer as in the book.
/// let layers: Vec<Box<dyn Layer>> = vec![
///     Box::new(Convolution::new(Array4::from_elem((2, 1, 3, 3), 0.1), Array1::zeros(2), 1, 0)),
///     Box::new(Relu::new()),
///     Box::new(Pooling::new(2, 2, 2, 0)),
///     Box::new(Affine::new(Array2::from_elem((8, 3), 0.1), Array1::zeros(3))),
/// ];
/// let mut net = Network::new(&[1, 6, 6], layers).unwrap();
/// println!("{net}");                              // the architecture table
/// assert_eq!(net.output_shapes()[2], vec![2, 2, 2]);
///
/// let x = Array4::<f32>::ones((5, 1, 6, 6));
/// let t = Array1::from(vec![0u8, 1, 2, 0, 1]);
/// assert_eq!(net.predict(x.view()).dim(), (5, 3));
/// let (loss, grads) = net.gradient(x.view(), t.view());
/// assert!((loss - 3f32.ln()).abs() < 1e-4);       // equal scores: ln 3
/// assert_eq!(grads.names(), ["W1", "b1", "W2", "b2"]);
///
/// // A design that does not fit is an error naming both layers:
/// let wrong: Vec<Box<dyn Layer>> = vec![
///     Box::new(Pooling::new(2, 2, 2, 0)),
///     Box::new(Affine::new(Array2::zeros((10, 3)), Array1::zeros(3))),
/// ];
/// let err = Network::new(&[1, 6, 6], wrong).unwrap_err();
/// assert!(err.to_string().contains("layer 2 (Affine 10 -> 3) cannot follow layer 1 (Pooling max 2x2, stride 2)"));
/// ```
#[derive(Debug, Clone)]
pub struct Network {
    /// One example's shape, e.g. `[1, 28, 28]`.
    input: Vec<usize>,
    layers: Vec<Box<dyn Layer>>,
    /// Each layer's output shape, one example.
    shapes: Vec<Vec<usize>>,
    last_layer: SoftmaxWithLoss,
    /// The layers in the order the forward pass runs them: one at a time, as the book's
    /// loop does, or a few neighbours as one fused pass ([`Pass`]). The backward pass
    /// runs the same passes in reverse.
    passes: Vec<Pass>,
    /// The architecture as one line of JSON, saved with the parameters.
    config: String,
}

/// `(30, 24, 24)`, as the architecture table writes a shape.
fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", dims.join(", "))
}

fn is<T: Any>(layer: &dyn Layer) -> bool {
    (layer as &dyn Any).is::<T>()
}

/// `layer` as the kind of layer `Network::new` found it to be (for a fused pass).
fn layer_as<T: Any>(layer: &mut dyn Layer) -> &mut T {
    (layer as &mut dyn Any)
        .downcast_mut::<T>()
        .expect("the layer's kind was checked in Network::new")
}

/// Whether `layer` is a max (not average) Pooling layer: the only kind that fuses with the
/// ReLU before it.
fn is_max_pooling(layer: &dyn Layer) -> bool {
    (layer as &dyn Any)
        .downcast_ref::<Pooling>()
        .is_some_and(|p| p.kind == PoolKind::Max)
}

/// One step of the forward pass, named by its first layer: that layer alone, as the
/// book's loop runs it, or a few neighbouring layers run as one fused pass. A fused pass
/// gives the same numbers as its layers one by one, bit for bit (tested), without a pass
/// over the full-size tensor between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// One layer's `forward`, and backwards its `backward`.
    Layer(usize),
    /// Convolution, ReLU and max Pooling: each group of images' feature maps pooled while
    /// still in the cache, never stored whole (`Convolution::forward_relu_pool`);
    /// backwards, the convolution takes the pooled gradient and rebuilds the full-size one
    /// from the pooling's winners a group of images at a time
    /// (`Convolution::backward_pooled`).
    ConvReluPool(usize),
    /// ReLU and max Pooling: `max(relu(x))` over each window (`Pooling::forward_relu`);
    /// backwards the pooling's gradient alone, which goes to no pixel the ReLU blocked.
    ReluPool(usize),
    /// A Convolution and the ReLU after it, with another Convolution next: the ReLU
    /// applied to each group of images' outputs as they are written
    /// (`Convolution::forward_owned_relu`); backwards, the next convolution takes its
    /// `dL/dx` through the ReLU (`Convolution::backward_through_relu`).
    ConvRelu(usize),
}

impl Pass {
    /// How many layers the pass runs.
    fn layer_count(self) -> usize {
        match self {
            Pass::Layer(_) => 1,
            Pass::ReluPool(_) | Pass::ConvRelu(_) => 2,
            Pass::ConvReluPool(_) => 3,
        }
    }
}

/// The passes that run `layers`: from the first layer on, each layer starts the first
/// fused pass that fits the layers from it, else runs alone.
fn plan_passes(layers: &[Box<dyn Layer>]) -> Vec<Pass> {
    let conv = |i: usize| layers.get(i).is_some_and(|l| is::<Convolution>(&**l));
    let relu = |i: usize| layers.get(i).is_some_and(|l| is::<Relu>(&**l));
    let max_pool = |i: usize| layers.get(i).is_some_and(|l| is_max_pooling(&**l));
    let mut passes = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let pass = if conv(i) && relu(i + 1) && max_pool(i + 2) {
            Pass::ConvReluPool(i)
        } else if relu(i) && max_pool(i + 1) {
            Pass::ReluPool(i)
        } else if conv(i) && relu(i + 1) && conv(i + 2) {
            Pass::ConvRelu(i)
        } else {
            Pass::Layer(i)
        };
        passes.push(pass);
        i += pass.layer_count();
    }
    passes
}

/// The Convolution at `i` and the Pooling at `i + 2` of a [`Pass::ConvReluPool`].
fn conv_and_pool(layers: &mut [Box<dyn Layer>], i: usize) -> (&mut Convolution, &mut Pooling) {
    let (head, tail) = layers.split_at_mut(i + 1);
    let conv = layer_as::<Convolution>(head[i].as_mut());
    let pool = layer_as::<Pooling>(tail[1].as_mut());
    (conv, pool)
}

/// The message of the checks that [`Network::new`] made already.
const SHAPES_CHECKED: &str = "the network checked the shapes when it was built";

/// One pass of [`Network::forward`]: `h` through the pass's layers.
fn forward_pass(
    layers: &mut [Box<dyn Layer>],
    pass: Pass,
    h: ArrayD<f32>,
    train: bool,
) -> ArrayD<f32> {
    let batch4 = "a convolution or pooling takes (N, C, H, W), checked in Network::new";
    match pass {
        Pass::Layer(i) => layers[i].forward(h, train),
        Pass::ConvReluPool(i) => {
            let (conv, pool) = conv_and_pool(layers, i);
            let h4 = h.into_dimensionality().expect(batch4);
            let pooled = conv.forward_relu_pool_owned(h4, pool, train);
            pooled.expect(SHAPES_CHECKED).into_dyn()
        }
        Pass::ReluPool(i) => {
            let pool = layer_as::<Pooling>(layers[i + 1].as_mut());
            let h4 = h.view().into_dimensionality().expect(batch4);
            pool.forward_relu(h4).expect(SHAPES_CHECKED).into_dyn()
        }
        Pass::ConvRelu(i) => {
            let conv = layer_as::<Convolution>(layers[i].as_mut());
            let h4 = h.into_dimensionality().expect(batch4);
            conv.forward_owned_relu(h4)
                .expect(SHAPES_CHECKED)
                .into_dyn()
        }
    }
}

/// One pass of the backward pass: `dout`, the gradient of the pass's output, back to the
/// gradient of its input, each layer storing its weights' gradients on the way; and
/// through the ReLU before the pass too if `through_relu` (the pass before is a
/// [`Pass::ConvRelu`], whose ReLU is taken here). `None` for the network's first pass,
/// which stores its weights' gradients only: nothing needs the gradient of the images.
fn backward_pass(
    layers: &mut [Box<dyn Layer>],
    pass: Pass,
    dout: ArrayD<f32>,
    through_relu: bool,
) -> Option<ArrayD<f32>> {
    let batch4 = "a convolution's or pooling's gradient is (N, C, H, W)";
    match pass {
        Pass::ConvReluPool(0) => {
            let (conv, pool) = conv_and_pool(layers, 0);
            let dout4 = dout.into_dimensionality().expect(batch4);
            conv.backward_params_pooled(pool, dout4.view());
            None
        }
        Pass::Layer(0) | Pass::ConvRelu(0) => {
            layers[0].backward_params(dout);
            None
        }
        Pass::ConvReluPool(i) => {
            let (conv, pool) = conv_and_pool(layers, i);
            let dout4 = dout.into_dimensionality().expect(batch4);
            Some(
                conv.backward_pooled(pool, dout4.view(), through_relu)
                    .into_dyn(),
            )
        }
        Pass::Layer(i) | Pass::ConvRelu(i) if through_relu => {
            let conv = layer_as::<Convolution>(layers[i].as_mut());
            let dout4 = dout.into_dimensionality().expect(batch4);
            Some(conv.backward_through_relu(dout4.view()).into_dyn())
        }
        // The ReLU of a ConvRelu pass is taken by the next pass, the next convolution.
        Pass::Layer(i) | Pass::ConvRelu(i) => Some(layers[i].backward(dout)),
        // The pooling's backward alone: it passes no gradient where the ReLU blocked it.
        Pass::ReluPool(i) => Some(layers[i + 1].backward(dout)),
    }
}

impl Network {
    /// A network of `layers` for examples of shape `input` (`[1, 28, 28]` for MNIST digits,
    /// `[784]` for flattened ones). Checks that each layer can take the previous one's
    /// output and that the last gives class scores.
    ///
    /// The first network of a process also sets glibc's `malloc` to keep freed memory for
    /// the next training step ([`memory::keep_freed_memory`](super::memory::keep_freed_memory):
    /// 20% of a SimpleConvNet step went to fresh pages without it).
    pub fn new(input: &[usize], layers: Vec<Box<dyn Layer>>) -> Result<Network, NetworkError> {
        super::memory::keep_freed_memory();
        if layers.is_empty() {
            return Err(NetworkError::NoLayers);
        }
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let previous = shapes.last().map_or(input, |s| s.as_slice());
            let shape =
                layer
                    .output_shape(previous)
                    .map_err(|reason| NetworkError::LayersDoNotFit {
                        index: i + 1,
                        layer: layer.describe(),
                        previous: if i == 0 {
                            "the input".to_string()
                        } else {
                            format!("layer {i} ({})", layers[i - 1].describe())
                        },
                        input: previous.to_vec(),
                        reason,
                    })?;
            shapes.push(shape);
        }
        let last = shapes.last().expect("at least one layer");
        if last.len() != 1 {
            return Err(NetworkError::NotScores {
                layer: layers.last().expect("at least one layer").describe(),
                shape: last.clone(),
            });
        }
        let passes = plan_passes(&layers);
        let descriptions: Vec<String> = layers
            .iter()
            .map(|l| format!("{:?}", l.describe()))
            .collect();
        let config = format!(
            r#"{{"input":[{}],"layers":[{}]}}"#,
            input
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
            descriptions.join(",")
        );
        Ok(Network {
            input: input.to_vec(),
            layers,
            shapes,
            last_layer: SoftmaxWithLoss::new(),
            passes,
            config,
        })
    }

    /// Replaces the architecture record saved with the parameters (SimpleConvNet keeps
    /// the book's configuration there, which `tools/check_params.py` reads).
    pub(crate) fn with_config(mut self, config: String) -> Network {
        self.config = config;
        self
    }

    /// The architecture as one line of JSON: the input shape and every layer's
    /// description, or (SimpleConvNet) the book's configuration.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// One example's input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, to take apart or rebuild (`Network::new` checks them again).
    pub fn into_layers(self) -> Vec<Box<dyn Layer>> {
        self.layers
    }

    /// Each layer's output shape for one example, in order.
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Number of classes (outputs of the last layer).
    pub fn classes(&self) -> usize {
        self.shapes.last().expect("at least one layer")[0]
    }

    /// `x` as a batch of the network's input shape: `(N, ...)` with the same number of
    /// values per example is reshaped (so a fully connected net takes `(N, 1, 28, 28)`
    /// digits as `(N, 784)`). Panics if the sizes differ.
    fn as_input<'a, D: Dimension>(&self, x: ArrayView<'a, f32, D>) -> CowArray<'a, f32, IxDyn> {
        let per_example: usize = self.input.iter().product();
        let n = x.shape().first().copied().unwrap_or(0);
        let got: usize = x.shape().iter().skip(1).product();
        assert!(
            x.ndim() >= 2 && got == per_example,
            "Network: input batch has shape {:?} but the network takes (N, {}) examples",
            x.shape(),
            self.input
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut shape = vec![n];
        shape.extend_from_slice(&self.input);
        let x = x.into_dyn();
        if x.is_standard_layout() {
            let view = x.into_shape_with_order(IxDyn(&shape));
            CowArray::from(view.expect("a standard-layout view reshapes without copying"))
        } else {
            let owned = x.as_standard_layout().into_owned();
            CowArray::from(
                owned
                    .into_shape_with_order(IxDyn(&shape))
                    .expect("standard layout"),
            )
        }
    }

    /// The forward pass through every layer: class scores `(N, classes)` before softmax.
    /// `train` switches Dropout on; without it (inference: [`Network::predict`],
    /// [`Network::accuracy`]) the fused poolings below keep no winners, which only a
    /// backward pass would read.
    ///
    /// Some neighbouring layers run as one pass, which gives the same numbers as the
    /// layers one by one, bit for bit (tested), without a pass over the full-size tensor
    /// between them:
    ///
    /// - Convolution, ReLU and max Pooling (SimpleConvNet's first block, DeepConvNet's
    ///   three): each image's feature maps (each group of 8 images', by Winograd's
    ///   kernel) pooled while they are still in the cache, never stored whole
    ///   (`Convolution::forward_relu_pool`); backwards, the convolution rebuilds the
    ///   full-size gradient from the pooling's winners a group of images at a time,
    ///   straight into its kernels' layout (`Convolution::backward_pooled`).
    /// - ReLU and max Pooling elsewhere: `max(relu(x))` over each window
    ///   (`Pooling::forward_relu`).
    /// - A ReLU between two convolutions (DeepConvNet has three): the first applies it to
    ///   its outputs as each group of images is written (`Convolution::forward_owned_relu`),
    ///   and backwards the second zeroes its `dL/dx` where its input, the ReLU's output,
    ///   is not positive (`Convolution::backward_through_relu`; no mask).
    pub fn forward<D: Dimension>(&mut self, x: ArrayView<'_, f32, D>, train: bool) -> Array2<f32> {
        on_worker(|| self.forward_layers(x, train))
    }

    /// [`Network::forward`], on the thread that calls it.
    fn forward_layers<D: Dimension>(
        &mut self,
        x: ArrayView<'_, f32, D>,
        train: bool,
    ) -> Array2<f32> {
        let x = self.as_input(x);
        // The book's loop, `for layer in self.layers.values(): x = layer.forward(x)`, pass
        // by pass (a pass is one layer, or a few run as one: `Pass`).
        let (mut h, passes) = match self.passes.split_first() {
            // A first Convolution, ReLU and max Pooling read the batch where it is: the
            // convolution copies it into the input it keeps (no new array).
            Some((&Pass::ConvReluPool(0), rest)) => {
                let (conv, pool) = conv_and_pool(&mut self.layers, 0);
                let x4 = x
                    .view()
                    .into_dimensionality()
                    .expect("images, checked in as_input");
                let pooled = conv.forward_relu_pool(x4, pool, train);
                (pooled.expect(SHAPES_CHECKED).into_dyn(), rest)
            }
            _ => (x.into_owned(), &self.passes[..]),
        };
        for &pass in passes {
            h = forward_pass(&mut self.layers, pass, h, train);
        }
        h.into_dimensionality()
            .expect("the last layer gives (N, classes), checked when built")
    }

    /// Class scores (before softmax) for a batch, in inference mode (the book's
    /// `predict(x, train_flg=False)`).
    pub fn predict<D: Dimension>(&mut self, x: ArrayView<'_, f32, D>) -> Array2<f32> {
        self.forward(x, false)
    }

    /// Mean cross-entropy loss of the batch against `labels`, in training mode (as the
    /// book's `loss`, which the gradient differentiates).
    pub fn loss<D: Dimension>(&mut self, x: ArrayView<'_, f32, D>, labels: ArrayView1<u8>) -> f32 {
        let scores = self.forward(x, true);
        self.last_layer.forward(scores.view(), labels)
    }

    /// Fraction of examples whose highest score is the label, computed `batch_size`
    /// examples at a time in inference mode (so a whole test set fits in memory).
    pub fn accuracy<D: Dimension>(
        &mut self,
        x: ArrayView<'_, f32, D>,
        labels: ArrayView1<u8>,
        batch_size: usize,
    ) -> f32 {
        let x = x.into_dyn();
        let n = x.shape().first().copied().unwrap_or(0);
        assert_eq!(
            labels.len(),
            n,
            "Network::accuracy: examples have shape {:?} but labels have shape {:?}",
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
            let scores = self.predict(x.slice_axis(ndarray::Axis(0), (start..end).into()));
            correct += argmax_rows(&scores)
                .iter()
                .zip(labels.slice(s![start..end]))
                .filter(|&(&p, &t)| p == t as usize)
                .count();
        }
        correct as f32 / n as f32
    }

    /// Loss and the gradient of the loss with respect to every parameter, by
    /// backpropagation: forward through all layers (training mode), then backward from the
    /// loss through them in reverse order. The gradients carry the parameters' names.
    pub fn gradient<D: Dimension>(
        &mut self,
        x: ArrayView<'_, f32, D>,
        labels: ArrayView1<u8>,
    ) -> (f32, Params) {
        on_worker(|| self.gradient_layers(x, labels))
    }

    /// [`Network::gradient`], on the thread that calls it.
    fn gradient_layers<D: Dimension>(
        &mut self,
        x: ArrayView<'_, f32, D>,
        labels: ArrayView1<u8>,
    ) -> (f32, Params) {
        let scores = self.forward_layers(x, true);
        let loss = self.last_layer.forward(scores.view(), labels);

        let mut dout = self.last_layer.backward().into_dyn();
        // The book's `layers.reverse(); for layer in layers: dout = layer.backward(dout)`,
        // pass by pass: the forward pass's passes in reverse order.
        for p in (0..self.passes.len()).rev() {
            // A ReLU between two convolutions is taken by the second one's backward pass.
            let through_relu = p > 0 && matches!(self.passes[p - 1], Pass::ConvRelu(_));
            match backward_pass(&mut self.layers, self.passes[p], dout, through_relu) {
                Some(dx) => dout = dx,
                None => break,
            }
        }

        let mut grads = Params::new();
        for (k, layer) in self.layers_with_params() {
            let names: Vec<&'static str> = layer.params().iter().map(|(n, _)| *n).collect();
            for (name, grad) in names.into_iter().zip(layer.take_grads()) {
                grads.push(format!("{name}{k}"), grad);
            }
        }
        (loss, grads)
    }

    /// The layers that have weights, numbered from 1 as the book names them (`W1`, `W2`...).
    fn layers_with_params(&mut self) -> impl Iterator<Item = (usize, &mut Box<dyn Layer>)> {
        self.layers
            .iter_mut()
            .filter(|l| !l.params().is_empty())
            .enumerate()
            .map(|(i, l)| (i + 1, l))
    }

    /// A copy of every parameter under the book's names, `W1 b1 W2 b2 ...` in layer order.
    pub fn params(&self) -> Params {
        let mut params = Params::new();
        for (k, layer) in self
            .layers
            .iter()
            .filter(|l| !l.params().is_empty())
            .enumerate()
        {
            for (name, tensor) in layer.params() {
                params.push(format!("{name}{}", k + 1), tensor.to_owned());
            }
        }
        params
    }

    /// One parameter, by its name (`"W1"`), without copying.
    pub fn param(&self, name: &str) -> Option<ArrayViewD<'_, f32>> {
        self.layers
            .iter()
            .filter(|l| !l.params().is_empty())
            .enumerate()
            .flat_map(|(k, layer)| {
                layer
                    .params()
                    .into_iter()
                    .map(move |(n, t)| (format!("{n}{}", k + 1), t))
            })
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// Every parameter as a mutable view into its layer, under the same names as
    /// [`Network::params`]: what an optimiser updates.
    pub fn params_mut(&mut self) -> ParamsMut<'_> {
        let mut tensors = Vec::new();
        for (k, layer) in self.layers_with_params() {
            for (name, tensor) in layer.params_mut() {
                tensors.push((format!("{name}{k}"), tensor));
            }
        }
        ParamsMut { tensors }
    }

    /// Copies `params` into the layers (loaded from a file, or from another network of
    /// the same design). Every tensor the network has must be there with its shape;
    /// nothing is changed otherwise.
    pub fn set_params(&mut self, params: &Params) -> Result<(), NetworkError> {
        let found = params.names().join(", ");
        let mut targets = self.params_mut().into_vec();
        for (name, target) in &targets {
            let source = params.get(name).ok_or_else(|| NetworkError::MissingParam {
                name: name.clone(),
                found: found.clone(),
            })?;
            if source.shape() != target.shape() {
                return Err(NetworkError::WrongParamShape {
                    name: name.clone(),
                    expected: target.shape().to_vec(),
                    found: source.shape().to_vec(),
                });
            }
        }
        for (name, target) in &mut targets {
            target.assign(&params[name.as_str()]);
        }
        Ok(())
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.params().into_iter().map(|(_, t)| t.len()))
            .sum()
    }

    /// The architecture as a table: each layer, its output shape for one example and its
    /// number of parameters, then the total (the same text as `format!("{net}")`).
    pub fn architecture(&self) -> String {
        let mut rows: Vec<(String, String, usize)> =
            vec![("Input".into(), shape_text(&self.input), 0)];
        for (layer, shape) in self.layers.iter().zip(&self.shapes) {
            let count = layer.params().iter().map(|(_, t)| t.len()).sum();
            rows.push((layer.describe(), shape_text(shape), count));
        }
        rows.push(("SoftmaxWithLoss".into(), shape_text(&[self.classes()]), 0));
        let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let shape_width = rows
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(0)
            .max(14);
        let mut out = format!(
            "{:<width$}  {:<shape_width$}  {:>10}\n",
            "layer", "output shape", "parameters"
        );
        for (name, shape, count) in &rows {
            out += &format!("{name:<width$}  {shape:<shape_width$}  {count:>10}\n");
        }
        out += &format!(
            "{:<width$}  {:<shape_width$}  {:>10}\n",
            "total",
            "",
            self.num_params()
        );
        out
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.architecture())
    }
}

/// Index of the largest entry in each row (the predicted class).
pub fn argmax_rows(scores: &Array2<f32>) -> Vec<usize> {
    scores
        .axis_iter(ndarray::Axis(0))
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
