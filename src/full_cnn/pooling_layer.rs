//! The Pooling layer (プーリング層) with its backward pass: max pooling (and average
//! pooling) over windows of each channel.

use ndarray::{Array2, Array4, ArrayView4, s};
use rayon::prelude::*;

use crate::batching::col2im;
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;
use crate::pooling::{
    BLOCKED, avg_pool, check_pad_below_window, max_pool_planes, max_pool_with_argmax,
};

/// Which statistic of each window a [`Pooling`] layer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (the book's and the usual choice).
    Max,
    /// The mean of the window (padding counts as zeros in the mean).
    Average,
}

/// A pooling layer: each channel of a batch `(N, C, H, W)` is cut into
/// `pool_h x pool_w` windows (with a stride and padding) and each window becomes one
/// number, giving `(N, C, OH, OW)`. No parameters; the channel count is kept. The forward
/// pass is [`crate::pooling`]'s, with its padding rules (padding never wins a max; it
/// counts as zeros in an average).
///
/// ## Backward
///
/// Max pooling: `y = max(x_1, ..., x_k)` has derivative 1 for the winning input and 0 for
/// the others, so each output's gradient is routed to the position that won and nowhere
/// else (the layer remembers the winners, the book's `arg_max`):
///
/// ```text
/// dL/dx_i = dL/dy  if x_i was the window's maximum, else 0   (summed where windows overlap)
/// ```
///
/// Average pooling: `y = (x_1 + ... + x_k) / k`, so every input of the window receives
/// `dL/dy / k`.
///
/// ```
/// use cnn_from_scratch::full_cnn::Pooling;
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f32, 4.0, 3.0, 2.0]).unwrap();
/// let mut pool = Pooling::new(2, 2, 2, 0);
/// assert_eq!(pool.forward(x.view()).unwrap()[[0, 0, 0, 0]], 4.0);
/// let dx = pool.backward(Array4::from_elem((1, 1, 1, 1), 1.0).view());
/// assert_eq!(dx.into_raw_vec_and_offset().0, vec![0.0, 1.0, 0.0, 0.0]); // only the winner
/// ```
#[derive(Debug, Clone)]
pub struct Pooling {
    /// Window height.
    pub pool_h: usize,
    /// Window width.
    pub pool_w: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on each side of the input.
    pub pad: usize,
    /// Max or average.
    pub kind: PoolKind,
    /// The forward input's shape.
    x_shape: [usize; 4],
    /// For max pooling: for each output, the flat index `y*W + x` of the winning pixel in
    /// its `(n, c)` input plane (the book's `arg_max`).
    arg_max: Option<Array4<u32>>,
}

impl Pooling {
    /// Max pooling with a `pool_h x pool_w` window (the book's `Pooling(pool_h, pool_w,
    /// stride, pad)`).
    pub fn new(pool_h: usize, pool_w: usize, stride: usize, pad: usize) -> Self {
        Self::with_kind(PoolKind::Max, pool_h, pool_w, stride, pad)
    }

    /// Average pooling with a `pool_h x pool_w` window.
    pub fn average(pool_h: usize, pool_w: usize, stride: usize, pad: usize) -> Self {
        Self::with_kind(PoolKind::Average, pool_h, pool_w, stride, pad)
    }

    /// Pooling of the given kind.
    pub fn with_kind(
        kind: PoolKind,
        pool_h: usize,
        pool_w: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        Self {
            pool_h,
            pool_w,
            stride,
            pad,
            kind,
            x_shape: [0; 4],
            arg_max: None,
        }
    }

    /// Output shape `(N, C, OH, OW)` for an input `(N, C, H, W)`, or the setting error.
    pub fn output_shape(
        &self,
        (n, c, h, w): (usize, usize, usize, usize),
    ) -> Result<(usize, usize, usize, usize), SettingError> {
        if self.pool_h == 0 || self.pool_w == 0 {
            return Err(SettingError::EmptyFilter {
                filter_h: self.pool_h,
                filter_w: self.pool_w,
            });
        }
        Ok((
            n,
            c,
            conv_output_size(h, self.pool_h, self.pad, self.stride)?,
            conv_output_size(w, self.pool_w, self.pad, self.stride)?,
        ))
    }

    /// Pool a batch `(N, C, H, W)` into `(N, C, OH, OW)` with
    /// [`max_pool_with_argmax`] or [`avg_pool`]; remembers what backward needs.
    ///
    /// Returns a [`SettingError`] if window, stride and padding do not fit the input.
    /// Max pooling panics if `pad` is not smaller than the window (see [`crate::pooling`]).
    pub fn forward(&mut self, x: ArrayView4<f32>) -> Result<Array4<f32>, SettingError> {
        self.output_shape(x.dim())?;
        let (ph, pw, stride, pad) = (self.pool_h, self.pool_w, self.stride, self.pad);
        let out = match self.kind {
            PoolKind::Max => {
                let (out, arg_max) = max_pool_with_argmax(x, ph, pw, stride, pad)?;
                self.arg_max = Some(arg_max);
                out
            }
            PoolKind::Average => avg_pool(x, ph, pw, stride, pad)?,
        };
        self.x_shape = [x.dim().0, x.dim().1, x.dim().2, x.dim().3];
        Ok(out)
    }

    /// ReLU followed by this (max) pooling in one pass, as a "Conv -> ReLU -> Pool" block
    /// needs: `forward(relu(x))` without the full-size ReLU tensor, its mask, or a second
    /// sweep over memory. [`Pooling::backward`] then gives `dL/dx` through both layers
    /// (windows whose maximum ReLU clipped to 0 pass no gradient, as ReLU's mask would).
    ///
    /// Falls back to a separate ReLU for average pooling.
    pub(crate) fn forward_relu(&mut self, x: Array4<f32>) -> Result<Array4<f32>, SettingError> {
        let (n, c, oh, ow) = self.output_shape(x.dim())?;
        if self.kind != PoolKind::Max {
            return self.forward(x.mapv(|v| if v > 0.0 { v } else { 0.0 }).view());
        }
        // The same checks as max_pool_with_argmax.
        let (ph, pw, stride, pad) = (self.pool_h, self.pool_w, self.stride, self.pad);
        check_pad_below_window(pad, ph, pw)?;
        let (h, w) = (x.dim().2, x.dim().3);
        let x = x.as_standard_layout();
        let mut out = Array4::<f32>::zeros((n, c, oh, ow));
        let mut arg_max = self.reuse_arg_max((n, c, oh, ow));
        let (Some(src), Some(values), Some(arg)) =
            (x.as_slice(), out.as_slice_mut(), arg_max.as_slice_mut())
        else {
            unreachable!("standard-layout arrays are contiguous")
        };
        max_pool_planes(
            src,
            (h, w),
            (ph, pw, stride, pad),
            (oh, ow),
            values,
            arg,
            true,
        );
        self.arg_max = Some(arg_max);
        self.x_shape = [n, c, h, w];
        Ok(out)
    }

    /// The arg-max array of the last pass if it has the right shape (it is overwritten
    /// entirely), else a new one: no allocation per training step.
    fn reuse_arg_max(&mut self, shape: (usize, usize, usize, usize)) -> Array4<u32> {
        match self.arg_max.take() {
            Some(a) if a.dim() == shape && a.is_standard_layout() => a,
            _ => Array4::zeros(shape),
        }
    }

    /// Given `dL/dout` `(N, C, OH, OW)`, returns `dL/dx` `(N, C, H, W)`.
    /// Panics if called before forward or with a wrong shape.
    pub fn backward(&mut self, dout: ArrayView4<f32>) -> Array4<f32> {
        let [n, c, h, w] = self.x_shape;
        let expected = self
            .output_shape((n, c, h, w))
            .expect("Pooling::backward called before a successful Pooling::forward");
        assert_eq!(
            dout.dim(),
            expected,
            "Pooling::backward: dout has shape {:?} but the forward output had shape {:?}",
            dout.shape(),
            expected
        );
        match self.kind {
            PoolKind::Max => {
                let arg_max = self
                    .arg_max
                    .as_ref()
                    .expect("Pooling::backward called before Pooling::forward");
                let mut dx = Array4::<f32>::zeros((n, c, h, w));
                let dout = dout.as_standard_layout();
                let (Some(dx_flat), Some(winners), Some(grads)) =
                    (dx.as_slice_mut(), arg_max.as_slice(), dout.as_slice())
                else {
                    unreachable!("standard-layout arrays are contiguous")
                };
                let plane_out = expected.2 * expected.3;
                if plane_out == 0 || h * w == 0 {
                    return dx;
                }
                // Route each output's gradient to its winner in the same (n, c) plane;
                // a pixel that wins overlapping windows receives the sum. A BLOCKED
                // winner (from forward_relu) passes nothing. Planes run in parallel.
                dx_flat
                    .par_chunks_mut(h * w)
                    .zip(winners.par_chunks(plane_out))
                    .zip(grads.par_chunks(plane_out))
                    .for_each(|((plane, winners), grads)| {
                        for (&i, &g) in winners.iter().zip(grads) {
                            if i != BLOCKED {
                                plane[i as usize] += g;
                            }
                        }
                    });
                dx
            }
            PoolKind::Average => {
                // Each window's gradient, shared equally by its pool_h * pool_w cells, laid
                // out as im2col rows (n, oh, ow) x (c, fy, fx); col2im adds the shares up
                // and drops those that fell on padding.
                let (_, _, oh, ow) = expected;
                let window = self.pool_h * self.pool_w;
                let share = 1.0 / window as f32;
                let mut dcol = Array2::<f32>::zeros((n * oh * ow, c * window));
                for ((i, j, y, x), &g) in dout.indexed_iter() {
                    let row = (i * oh + y) * ow + x;
                    dcol.slice_mut(s![row, j * window..(j + 1) * window])
                        .fill(g * share);
                }
                col2im(
                    dcol.view(),
                    self.x_shape,
                    self.pool_h,
                    self.pool_w,
                    self.stride,
                    self.pad,
                )
                .expect("the same settings fitted in forward")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::Relu;

    /// ReLU then pooling fused in one pass must give what the two layers give one after
    /// the other, forward and backward, including ties, all-negative windows and NaN.
    #[test]
    fn forward_relu_equals_relu_then_pooling() {
        // Values in -3..=3 (many ties and zeros), a NaN and an all-negative corner.
        let mut x = Array4::from_shape_fn((2, 3, 8, 8), |(n, c, i, j)| {
            ((n * 13 + c * 7 + i * 5 + j * 3) % 7) as f32 - 3.0
        });
        x[[1, 2, 3, 4]] = f32::NAN;
        x.slice_mut(s![0, 0, ..2, ..2]).fill(-1.0);
        let dout_of = |shape| {
            Array4::from_shape_fn(shape, |(n, c, i, j): (usize, usize, usize, usize)| {
                1.0 + (n * 11 + c * 5 + i * 3 + j) as f32
            })
        };
        for (ph, pw, stride, pad) in [
            (2, 2, 2, 0),
            (3, 3, 1, 1),
            (2, 2, 1, 0),
            (3, 2, 1, 0),
            (4, 4, 4, 0),
        ] {
            let mut relu = Relu::new();
            let mut pool = Pooling::new(ph, pw, stride, pad);
            let expected = pool.forward(relu.forward(x.clone()).view()).unwrap();
            let dout = dout_of(expected.dim());
            let expected_dx = relu.backward(pool.backward(dout.view()));

            let mut fused = Pooling::new(ph, pw, stride, pad);
            for _ in 0..2 {
                // twice: the second pass reuses the arg-max buffer
                let y = fused.forward_relu(x.clone()).unwrap();
                assert_eq!(
                    y, expected,
                    "forward, window {ph}x{pw} stride {stride} pad {pad}"
                );
                let dx = fused.backward(dout.view());
                assert_eq!(
                    dx, expected_dx,
                    "backward, window {ph}x{pw} stride {stride} pad {pad}"
                );
            }
        }
    }
}
