//! # cnn-from-scratch
//!
//! A convolutional neural network built step by step, in the order of chapter 7 of
//! *Deep Learning from Scratch* (ゼロから作るDeep Learning, 「７章 畳み込みニューラルネットワーク」).
//! Every idea of the chapter is a function you can run, a picture you can look at and a
//! test that checks it against an independent computation.
//!
//! **Start here: [the tutorial](tutorial)**, nine pages in the order of the chapter, each
//! with the idea, the book's equation, code you can run and the picture it makes.
//!
//! ## The chapter map
//!
//! | module | section of the chapter |
//! |---|---|
//! | [`fc_limits`] | why a fully connected net loses the shape of an image (これまでのシンプルな NN の限界) |
//! | [`convolution`] | a filter slid over an image: the convolution layer (フィルタリングするための畳み込み層) |
//! | [`padding_stride`] | output size, equation (7.1), zero padding and stride (フィルタリング後の画像サイズ) |
//! | [`multichannel`] | colour images and banks of filters (カラー画像のフィルタリング) |
//! | [`batching`] | batches of images, `im2col` and convolution as one matrix product (バッチ処理) |
//! | [`pooling`] | max and average pooling, robustness to small shifts (プーリング層も使う) |
//! | [`full_cnn`] | layers with backward passes, SimpleConvNet and its training (CNN の全体アーキテクチャ, CNN の実装) |
//! | [`experiments`] | the chapter's claims measured with trained networks: shuffled pixels (§1), shifted digits and shift augmentation (§8) |
//! | [`data`] | MNIST and Fashion-MNIST; a real 5,000-digit sample ships inside the crate |
//! | [`viz`] | PNG pictures of filters, feature maps, curves |
//!
//! ## One scalar type: `f32`
//!
//! Every tensor in the crate holds [`f32`]. A CNN spends almost all its time in matrix
//! products and memory-bound loops (im2col, pooling); `f32` halves the memory traffic of
//! `f64` and is what every framework trains with, so the numbers a learner sees here match
//! PyTorch's. The price is paid in one place only, the numerical gradient check, whose
//! tolerance is documented there and still catches a wrong sign or a missing term.
//!
//! ## Shapes
//!
//! Tensors follow the book: an image is `(C, H, W)`, a batch is `(N, C, H, W)`, a filter
//! bank is `(FN, C, FH, FW)`. Settings a caller chooses (filter size, stride, padding,
//! file paths) are checked and return an `Err` that names the values; a shape mismatch
//! between two tensors is a programming error and panics with a message naming both shapes.

pub mod error;

pub mod batching;
pub mod convolution;
pub mod fc_limits;
pub mod full_cnn;
pub mod multichannel;
pub mod padding_stride;
pub mod pooling;

pub mod data;
pub mod experiments;
pub mod viz;

pub mod tutorial;

pub use error::SettingError;

/// The array crate every tensor here comes from, re-exported so notebooks and examples use
/// exactly the version the crate was built with.
pub use ndarray;
