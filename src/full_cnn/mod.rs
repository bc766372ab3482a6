//! # The whole CNN: layers, backpropagation and SimpleConvNet (CNN の全体アーキテクチャ, CNN の実装)
//!
//! *Tutorial: [page 7](crate::tutorial::_07_full_cnn) · notebook: `notebooks/07_full_cnn.ipynb` ·
//! your own network: [page 8](crate::tutorial::_08_build_your_own), `notebooks/08_build_your_own.ipynb`*
//!
//! A CNN stacks "Convolution - Activation - Pooling" blocks in front of the usual
//! "Affine - Activation" layers of a fully connected net and ends with Softmax (book
//! Fig 7-2). A plain fully connected net looks like
//!
//! ```text
//! x -> [Affine -> ReLU] -> [Affine -> ReLU] -> [Affine -> ReLU] -> [Affine -> Softmax] -> y
//! ```
//!
//! and a CNN replaces the first blocks:
//!
//! ```text
//! x -> [Conv -> ReLU -> Pooling] -> [Conv -> ReLU -> Pooling] -> [Affine -> ReLU] -> [Affine -> Softmax] -> y
//! ```
//!
//! (Goodfellow et al.: a CNN is a network that uses convolution instead of general matrix
//! multiplication in at least one layer.) The book's SimpleConvNet (Fig 7-23) has one
//! convolution block:
//!
//! ```text
//! (1,28,28) -> Conv 30x5x5 -> ReLU -> Pool 2x2 -> Affine 4320->100 -> ReLU -> Affine 100->10 -> Softmax
//!                (30,24,24)             (30,12,12)      (100)                     (10)
//! ```
//!
//! The note stops here ("from scratch you would derive backprop by hand and handle the
//! tensors efficiently; I'll use PyTorch"). This module does what the note gave up on:
//!
//! - **Layers** that mirror the book's: [`Convolution`] (im2col-based), [`Pooling`] (max or
//!   average), [`Relu`], [`Affine`], [`Dropout`] and [`SoftmaxWithLoss`]. Each has a `forward` that
//!   keeps what the backward pass needs and a hand-derived `backward`; each doc comment
//!   derives it with one step of the chain rule. Layers with weights expose their
//!   gradients as `dw` and `db`.
//! - **A numerical gradient check**, [`gradient_check`], that compares those hand-derived
//!   gradients with central differences, for any layer or the whole network.
//! - **Networks as lists of layers**, [`Network`]: every layer implements [`Layer`]
//!   (forward, backward, its weights by name), and a network is an ordered list of them,
//!   looped forward and then in reverse, as in the book's `simple_convnet.py`. Its shapes
//!   are checked when it is built; it prints its architecture table.
//! - **The chapter's networks**, [`networks`]: the fully connected net of §1 ([`mlp`]),
//!   the book's SimpleConvNet ([`simple_conv_net`]), a two-block CNN in the shape of
//!   Fig 7-2 ([`two_block_cnn`]) and the book's DeepConvNet ([`deep_conv_net`]), all from
//!   the same layers, with the book's, He or Xavier initialisation ([`Init`]).
//! - **Optimisers**, [`optimizer`]: SGD, Momentum, AdaGrad, Adam with the book's defaults.
//! - **"Filters are learned from data"**, [`learn_filter`]: a single convolution trained by
//!   gradient descent recovers the Sobel filter that made its targets.
//! - Training on MNIST ([`trainer`]) and saving the trained parameters ([`params_io`]).
//!
//! Each layer's file is the book's layer: its forward pass, its backward pass and the
//! plain code (im2col and a matrix product for the Convolution) that the tests take as the
//! definition. Where the processor and the shapes allow, the layers hand their loops to
//! the fast kernels in the folder `src/full_cnn/kernels/` (Winograd's convolution, the
//! direct one, an AVX-512 matrix product, ...), each tested against the plain code: a
//! first reading can skip that folder, and the folders `convolution_layer/` and
//! `pooling_layer/`, where a network's fused passes (Convolution + ReLU + pooling, ReLU +
//! pooling) and the Convolution's `dW` by those kernels live.
//!
//! Every layer in a few lines, forward and backward:
//!
//! ```
//! use cnn_from_scratch::full_cnn::{Affine, Convolution, Pooling, Relu, SoftmaxWithLoss};
//! use ndarray::{Array1, Array2, Array4, Ix4};
//! let x = Array4::<f32>::from_shape_fn((2, 1, 6, 6), |(n, _, i, j)| (n + i * j) as f32 / 10.0);
//! let mut conv = Convolution::new(Array4::from_elem((3, 1, 3, 3), 0.1), Array1::zeros(3), 1, 0);
//! let mut relu = Relu::new();
//! let mut pool = Pooling::new(2, 2, 2, 0);
//! let mut affine = Affine::new(Array2::from_elem((12, 4), 0.1), Array1::zeros(4));
//! let mut last = SoftmaxWithLoss::new();
//!
//! let h = conv.forward(x.view()).unwrap();         // (2, 3, 4, 4)
//! let h = relu.forward(h);
//! let h = pool.forward(h.view()).unwrap();         // (2, 3, 2, 2)
//! let scores = affine.forward(h);                  // (2, 4)
//! let loss = last.forward(scores.view(), Array1::from(vec![0u8, 3]).view());
//!
//! let d = last.backward();
//! let d = affine.backward(d.view()).into_dimensionality::<Ix4>().unwrap();
//! let d = pool.backward(d.view());
//! let d = relu.backward(d);
//! let dx = conv.backward(d.view());
//! assert!(loss > 0.0);
//! assert_eq!(dx.dim(), x.dim());
//! assert_eq!(conv.dw.dim(), (3, 1, 3, 3));
//! ```

mod affine;
mod convolution_layer;
mod dropout;
pub(crate) mod kernels;
mod layer;
mod network;
mod params;
mod pooling_layer;
mod relu;
mod softmax_with_loss;

pub mod gradient_check;
pub mod learn_filter;
pub mod memory;
pub mod networks;
pub mod optimizer;
pub mod params_io;
pub mod trainer;

pub use affine::Affine;
pub use convolution_layer::Convolution;
pub use dropout::Dropout;
pub use layer::{CloneLayer, Layer};
pub use network::{Network, NetworkError, argmax_rows};
pub use networks::{
    Init, LayerSizes, SimpleConvNetConfig, deep_conv_net, mlp, simple_conv_net, two_block_cnn,
};
pub use optimizer::{AdaGrad, Adam, Momentum, Optimizer, Sgd};
pub use params::{Params, ParamsMut};
pub use pooling_layer::{PoolKind, Pooling};
pub use relu::Relu;
pub use softmax_with_loss::{SoftmaxWithLoss, softmax};
