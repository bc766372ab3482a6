//! The ReLU layer (活性化関数のレイヤ): `y = max(0, x)`, element by element.

use ndarray::{Array, ArrayD, Dimension};

/// ReLU, `y = max(0, x)`, for a tensor of any shape: `(N, C, H, W)` after a convolution,
/// `(N, hidden)` after an Affine layer.
///
/// ## Backward
///
/// The derivative of `max(0, x)` is 1 where `x > 0` and 0 elsewhere, so by the chain rule
/// the gradient passes through unchanged where the input was positive and is blocked
/// where it was not:
///
/// ```text
/// dL/dx = dL/dy ⊙ [x > 0]
/// ```
///
/// The layer keeps that mask (the book's `self.mask`, here `true` where the gradient passes).
/// Both passes take their tensor by value and work in place, so nothing is copied.
///
/// ```
/// use cnn_from_scratch::full_cnn::Relu;
/// use ndarray::array;
/// let mut relu = Relu::new();
/// let y = relu.forward(array![[-1.0f32, 2.0], [3.0, -4.0]]);
/// assert_eq!(y, array![[0.0, 2.0], [3.0, 0.0]]);
/// let dx = relu.backward(array![[10.0f32, 10.0], [10.0, 10.0]]);
/// assert_eq!(dx, array![[0.0, 10.0], [10.0, 0.0]]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Relu {
    /// `true` where the forward input was positive, i.e. where the gradient flows.
    mask: Option<ArrayD<bool>>,
}

impl Relu {
    /// A ReLU layer; it has no parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// `max(0, x)` element by element; remembers where `x > 0` for the backward pass.
    pub fn forward<D: Dimension>(&mut self, mut x: Array<f32, D>) -> Array<f32, D> {
        let mask = x.mapv(|v| v > 0.0);
        x.mapv_inplace(|v| if v > 0.0 { v } else { 0.0 });
        self.mask = Some(mask.into_dyn());
        x
    }

    /// `dout ⊙ [x > 0]`. Panics if called before [`Relu::forward`] or with a shape other
    /// than the forward input's.
    pub fn backward<D: Dimension>(&self, mut dout: Array<f32, D>) -> Array<f32, D> {
        let mask = self
            .mask
            .as_ref()
            .expect("Relu::backward called before Relu::forward");
        assert_eq!(
            mask.shape(),
            dout.shape(),
            "Relu::backward: dout has shape {:?} but the forward input had shape {:?}",
            dout.shape(),
            mask.shape()
        );
        let mask = mask
            .view()
            .into_dimensionality::<D>()
            .expect("same shape, so the same number of axes");
        dout.zip_mut_with(&mask, |g, &pass| {
            if !pass {
                *g = 0.0;
            }
        });
        dout
    }
}
