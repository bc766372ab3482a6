//! The ReLU layer (活性化関数のレイヤ): `y = max(0, x)`, element by element.

use ndarray::{Array, ArrayD, Dimension, Zip};
use rayon::prelude::*;

/// Activations at least this large (DeepConvNet's first are 1.25 million numbers a batch)
/// are split over the threads in pieces of this many numbers; smaller ones are not worth it.
const CHUNK: usize = 1 << 15;

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
        let mut mask = Array::from_elem(x.raw_dim(), false);
        let relu = |v: &mut f32, pass: &mut bool| {
            *pass = *v > 0.0;
            relu_in_place(v);
        };
        match (x.as_slice_mut(), mask.as_slice_mut()) {
            (Some(xs), Some(passes)) if xs.len() >= CHUNK => xs
                .par_chunks_mut(CHUNK)
                .zip(passes.par_chunks_mut(CHUNK))
                .for_each(|(xs, passes)| xs.iter_mut().zip(passes).for_each(|(v, p)| relu(v, p))),
            _ => Zip::from(&mut x).and(&mut mask).for_each(relu),
        }
        self.mask = Some(mask.into_dyn());
        x
    }

    /// `max(0, x)` element by element without the mask, for inference, where no backward
    /// pass follows (DeepConvNet's inference at batch 100 was 1.02-1.07x as fast without
    /// allocating and filling the masks, steps alternating in one process). Forgets the
    /// last mask: [`Relu::backward`] then panics. Networks call it for `train = false`.
    pub fn forward_inference<D: Dimension>(&mut self, mut x: Array<f32, D>) -> Array<f32, D> {
        self.mask = None;
        match x.as_slice_mut() {
            Some(xs) if xs.len() >= CHUNK => xs
                .par_chunks_mut(CHUNK)
                .for_each(|xs| xs.iter_mut().for_each(relu_in_place)),
            _ => x.map_inplace(relu_in_place),
        }
        x
    }

    /// `dout ⊙ [x > 0]`. Panics if called before [`Relu::forward`] (or after
    /// [`Relu::forward_inference`]) or with a shape other than the forward input's.
    pub fn backward<D: Dimension>(&self, mut dout: Array<f32, D>) -> Array<f32, D> {
        let mask = self
            .mask
            .as_ref()
            .expect("Relu::backward called before Relu::forward (in training mode)");
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
        let block = |g: &mut f32, &pass: &bool| *g = if pass { *g } else { 0.0 };
        match (dout.as_slice_mut(), mask.as_slice()) {
            (Some(gs), Some(passes)) if gs.len() >= CHUNK => gs
                .par_chunks_mut(CHUNK)
                .zip(passes.par_chunks(CHUNK))
                .for_each(|(gs, passes)| gs.iter_mut().zip(passes).for_each(|(g, p)| block(g, p))),
            _ => Zip::from(&mut dout).and(&mask).for_each(block),
        }
        dout
    }
}

/// `v = max(0, v)` (NaN and -0 become +0: only numbers above 0 pass).
#[inline(always)]
fn relu_in_place(v: &mut f32) {
    *v = if *v > 0.0 { *v } else { 0.0 };
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// A batch large enough to be split over the threads (and one that is not contiguous),
    /// against the definition: `max(0, x)` forward, the gradient only where `x > 0`.
    #[test]
    fn large_and_strided_batches_follow_the_definition() {
        let x = Array4::from_shape_fn((3, 16, 28, 28), |(n, c, i, j)| {
            ((n * 7 + c * 5 + i * 3 + j) % 11) as f32 - 5.0
        });
        let mut with_nan = x.clone();
        with_nan[[2, 15, 27, 27]] = f32::NAN;
        let dout = Array4::from_shape_fn(x.raw_dim(), |(n, c, i, j)| (n + c + i + j) as f32);
        for x in [with_nan.clone(), with_nan.permuted_axes([0, 1, 3, 2])] {
            let mut relu = Relu::new();
            let y = relu.forward(x.clone());
            let dout = dout.clone().permuted_axes(if x.is_standard_layout() {
                [0, 1, 2, 3]
            } else {
                [0, 1, 3, 2]
            });
            let dx = relu.backward(dout.clone());
            // Inference: the same outputs, bit for bit, and the mask forgotten.
            let y_inference = relu.forward_inference(x.clone());
            assert!(
                y.iter()
                    .zip(&y_inference)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "inference differs from training's forward"
            );
            assert!(relu.mask.is_none(), "a mask kept after inference");
            for ((index, &v), (&out, &g)) in x.indexed_iter().zip(y.iter().zip(dx.iter())) {
                // NaN is not > 0: blocked, like every number that is not positive.
                let expected = if v > 0.0 { v } else { 0.0 };
                assert_eq!(out, expected, "forward at {index:?}");
                let expected_g = if v > 0.0 { dout[index] } else { 0.0 };
                assert_eq!(g, expected_g, "backward at {index:?}");
            }
        }
    }
}
