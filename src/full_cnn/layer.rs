//! What every layer of a network can do (the book's `forward`/`backward` pair in
//! `common/layers.py`): the one interface that lets a [`Network`](super::Network) be an
//! ordered list of layers, looped forward and then in reverse.
//!
//! A layer takes a batch whose first axis is the example, `(N, ...)`, and gives one back.
//! It keeps what its backward pass needs (the book's `self.x`, `self.mask`, `self.arg_max`)
//! and, if it has weights, holds them and their gradients itself (`self.W`, `self.dW`).
//! The network asks each layer, before any data flows, what shape it makes of the shape it
//! is given, so a design whose layers do not fit is refused with an error that names them.

use std::any::Any;
use std::fmt;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Ix2, Ix4};

use super::{Affine, Convolution, Dropout, PoolKind, Pooling, Relu};
use crate::padding_stride::conv_output_size;
use crate::pooling::check_pad_below_window;

/// A layer of a network: forward, backward, and its parameters by name.
///
/// Shapes here are of *one example*: `[1, 28, 28]` for a digit, `[100]` after an Affine
/// layer of 100 outputs. The batch axis comes in front in `forward` and `backward`.
///
/// Implement it for your own layer; only `describe`, `output_shape`, `forward` and
/// `backward` are required (a layer without weights needs nothing else):
///
/// ```
/// use cnn_from_scratch::full_cnn::Layer;
/// use ndarray::ArrayD;
///
/// /// y = 2x: no weights, one line each way.
/// #[derive(Debug, Clone)]
/// struct Double;
///
/// impl Layer for Double {
///     fn describe(&self) -> String { "Double".into() }
///     fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> { Ok(input.to_vec()) }
///     fn forward(&mut self, x: ArrayD<f32>, _train: bool) -> ArrayD<f32> { x * 2.0 }
///     fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> { dout * 2.0 }
/// }
///
/// let mut layer = Double;
/// assert_eq!(layer.forward(ArrayD::ones(vec![1, 3]), true)[[0, 2]], 2.0);
/// ```
pub trait Layer: fmt::Debug + Send + Sync + Any + CloneLayer {
    /// One line for the architecture table, e.g. `"Convolution 30x5x5, stride 1, pad 0"`.
    fn describe(&self) -> String;

    /// The shape of one output example for one input example of shape `input`, or why
    /// this layer cannot take that shape (the network adds the layers' names).
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;

    /// The forward pass of a batch `(N, ...)`. `train` is `true` while learning (Dropout
    /// drops units only then). Keeps what `backward` needs.
    fn forward(&mut self, x: ArrayD<f32>, train: bool) -> ArrayD<f32>;

    /// Given `dL/dy` of the last forward output, stores the gradients of the weights and
    /// returns `dL/dx`.
    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32>;

    /// The backward pass of a network's first layer: stores the gradients of the weights,
    /// as [`Layer::backward`] does, but `dL/dx`, the gradient of the images themselves, is
    /// not needed. By default `backward` with its result dropped; a Convolution skips
    /// computing it (for DeepConvNet's first layer, 0.8 ms of a training step on one core).
    fn backward_params(&mut self, dout: ArrayD<f32>) {
        self.backward(dout);
    }

    /// The weights, as `(name, tensor)`: `[("W", …), ("b", …)]`, or none.
    fn params(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        Vec::new()
    }

    /// The weights as mutable views, in the order of [`Layer::params`].
    fn params_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, f32>)> {
        Vec::new()
    }

    /// Moves the gradients of the last backward pass out of the layer, in the order of
    /// [`Layer::params`] (moved rather than copied: a training step needs them once).
    fn take_grads(&mut self) -> Vec<ArrayD<f32>> {
        Vec::new()
    }
}

/// Lets a `Box<dyn Layer>` be cloned (so a whole network can be). Implemented for every
/// layer that derives `Clone`; nothing to write by hand.
pub trait CloneLayer {
    /// A boxed copy of the layer.
    fn clone_box(&self) -> Box<dyn Layer>;
}

impl<T: Layer + Clone> CloneLayer for T {
    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// `(C, H, W)` from an input shape, or why it is not an image.
fn image_shape(input: &[usize]) -> Result<(usize, usize, usize), String> {
    match *input {
        [c, h, w] => Ok((c, h, w)),
        _ => Err(format!(
            "it needs images (C, H, W), got {} axes {input:?}",
            input.len()
        )),
    }
}

fn as_batch4(x: ArrayD<f32>, layer: &str) -> ndarray::Array4<f32> {
    let shape = x.shape().to_vec();
    x.into_dimensionality::<Ix4>()
        .unwrap_or_else(|_| panic!("{layer}: needs a batch (N, C, H, W), got shape {shape:?}"))
}

impl Layer for Convolution {
    fn describe(&self) -> String {
        let (fnum, _, fh, fw) = self.w.dim();
        format!(
            "Convolution {fnum}x{fh}x{fw}, stride {}, pad {}",
            self.stride, self.pad
        )
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let (c, h, w) = image_shape(input)?;
        let (fnum, fc, fh, fw) = self.w.dim();
        if c != fc {
            return Err(format!(
                "its filters {:?} have {fc} channels but the input has {c}",
                self.w.shape()
            ));
        }
        let oh = conv_output_size(h, fh, self.pad, self.stride).map_err(|e| e.to_string())?;
        let ow = conv_output_size(w, fw, self.pad, self.stride).map_err(|e| e.to_string())?;
        Ok(vec![fnum, oh, ow])
    }

    fn forward(&mut self, x: ArrayD<f32>, _train: bool) -> ArrayD<f32> {
        let x = as_batch4(x, "Convolution");
        // The layer keeps its input for the backward pass: hand it over, no copy.
        self.forward_owned(x)
            .expect("the network checked the shapes when it was built")
            .into_dyn()
    }

    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        let dout = as_batch4(dout, "Convolution::backward");
        Convolution::backward(self, dout.view()).into_dyn()
    }

    fn backward_params(&mut self, dout: ArrayD<f32>) {
        let dout = as_batch4(dout, "Convolution::backward");
        Convolution::backward_params(self, dout.view());
    }

    fn params(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        vec![
            ("W", self.w.view().into_dyn()),
            ("b", self.b.view().into_dyn()),
        ]
    }

    fn params_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, f32>)> {
        vec![
            ("W", self.w.view_mut().into_dyn()),
            ("b", self.b.view_mut().into_dyn()),
        ]
    }

    fn take_grads(&mut self) -> Vec<ArrayD<f32>> {
        vec![
            std::mem::take(&mut self.dw).into_dyn(),
            std::mem::take(&mut self.db).into_dyn(),
        ]
    }
}

impl Layer for Relu {
    fn describe(&self) -> String {
        "ReLU".into()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: ArrayD<f32>, train: bool) -> ArrayD<f32> {
        if train {
            Relu::forward(self, x)
        } else {
            // No backward pass follows: no mask.
            self.forward_inference(x)
        }
    }

    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        Relu::backward(self, dout)
    }
}

impl Layer for Pooling {
    fn describe(&self) -> String {
        let kind = match self.kind {
            PoolKind::Max => "max",
            PoolKind::Average => "average",
        };
        let pad = if self.pad > 0 {
            format!(", pad {}", self.pad)
        } else {
            String::new()
        };
        format!(
            "Pooling {kind} {}x{}, stride {}{pad}",
            self.pool_h, self.pool_w, self.stride
        )
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let (c, h, w) = image_shape(input)?;
        if self.kind == PoolKind::Max {
            check_pad_below_window(self.pad, self.pool_h, self.pool_w)
                .map_err(|e| e.to_string())?;
        }
        let (_, c, oh, ow) =
            Pooling::output_shape(self, (1, c, h, w)).map_err(|e| e.to_string())?;
        Ok(vec![c, oh, ow])
    }

    fn forward(&mut self, x: ArrayD<f32>, _train: bool) -> ArrayD<f32> {
        let x = as_batch4(x, "Pooling");
        Pooling::forward(self, x.view())
            .expect("the network checked the shapes when it was built")
            .into_dyn()
    }

    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        let dout = as_batch4(dout, "Pooling::backward");
        Pooling::backward(self, dout.view()).into_dyn()
    }
}

impl Layer for Affine {
    fn describe(&self) -> String {
        format!("Affine {} -> {}", self.w.nrows(), self.w.ncols())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let features: usize = input.iter().product();
        if features != self.w.nrows() {
            return Err(format!(
                "its weights {:?} need {} inputs per example, but {input:?} holds {features}",
                self.w.shape(),
                self.w.nrows()
            ));
        }
        Ok(vec![self.w.ncols()])
    }

    fn forward(&mut self, x: ArrayD<f32>, _train: bool) -> ArrayD<f32> {
        Affine::forward(self, x).into_dyn()
    }

    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        let shape = dout.shape().to_vec();
        let dout = dout.into_dimensionality::<Ix2>().unwrap_or_else(|_| {
            panic!("Affine::backward: dout must be (N, out), got shape {shape:?}")
        });
        Affine::backward(self, dout.view())
    }

    fn params(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        vec![
            ("W", self.w.view().into_dyn()),
            ("b", self.b.view().into_dyn()),
        ]
    }

    fn params_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, f32>)> {
        vec![
            ("W", self.w.view_mut().into_dyn()),
            ("b", self.b.view_mut().into_dyn()),
        ]
    }

    fn take_grads(&mut self) -> Vec<ArrayD<f32>> {
        vec![
            std::mem::take(&mut self.dw).into_dyn(),
            std::mem::take(&mut self.db).into_dyn(),
        ]
    }
}

impl Layer for Dropout {
    fn describe(&self) -> String {
        format!("Dropout {}", self.ratio)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: ArrayD<f32>, train: bool) -> ArrayD<f32> {
        self.forward_dropout(x, train)
    }

    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        self.backward_dropout(dout)
    }
}
