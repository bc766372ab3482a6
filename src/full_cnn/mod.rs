//! (module to be written: CNN の全体アーキテクチャ / CNN の実装)

mod affine;
mod convolution_layer;
mod pooling_layer;
mod relu;
mod softmax_with_loss;

pub mod gradient_check;
pub mod learn_filter;
pub mod optimizer;
pub mod params_io;
pub mod simple_conv_net;
pub mod trainer;
