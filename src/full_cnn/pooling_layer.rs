//! The Pooling layer (プーリング層) with its backward pass: max pooling (and average
//! pooling) over windows of each channel.
//!
//! What a network's fused passes (ReLU + pooling, Convolution + ReLU + pooling) need of
//! the layer is in `pooling_layer/fused.rs`, beside it: a first reading can skip it.

use ndarray::{Array2, Array4, ArrayView4, s};
use rayon::prelude::*;

use crate::batching::col2im;
use crate::error::SettingError;
use crate::full_cnn::kernels::simd::Simd;
use crate::padding_stride::conv_output_size;
#[cfg(target_arch = "x86_64")]
use crate::pooling::avx512::max_pool_grad_plane_2x2;
use crate::pooling::{BLOCKED, avg_pool, max_pool_with_argmax};

mod fused;

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
    /// The arg-max array of a fused pass in inference mode, whose winners were not all
    /// written: not winners, only memory for the next pass to reuse.
    spare_arg_max: Option<Array4<u32>>,
}

/// Why a max pooling's backward pass has no winners to send its gradient to.
const NO_WINNERS: &str = "Pooling::backward called before a forward pass in training mode (a \
                          network's passes in inference mode, `train = false`, keep no winners)";

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
            spare_arg_max: None,
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

    /// The output width if the gradient can go through the AVX-512 kernel
    /// (`pooling::avx512::max_pool_grad_plane_2x2`): 2x2 windows with stride 2 and no
    /// padding (each input pixel in at most one window), on a processor with AVX-512.
    fn fast_grad_width(&self) -> Option<usize> {
        let two_by_two = (self.pool_h, self.pool_w, self.stride, self.pad) == (2, 2, 2, 0);
        let ow = self.x_shape[3] / 2;
        (two_by_two && ow > 0 && Simd::best() == Simd::Avx512).then_some(ow)
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
                let arg_max = self.arg_max.as_ref().expect(NO_WINNERS);
                let plane_out = expected.2 * expected.3;
                if plane_out == 0 || h * w == 0 {
                    return Array4::zeros((n, c, h, w));
                }
                // Not zeroed by the allocation (a pass over the whole tensor on one
                // thread): each plane is zeroed below, in parallel.
                let mut dx = Array4::<f32>::uninit((n, c, h, w));
                let dout = dout.as_standard_layout();
                let (Some(dx_flat), Some(winners), Some(grads)) =
                    (dx.as_slice_mut(), arg_max.as_slice(), dout.as_slice())
                else {
                    unreachable!("standard-layout arrays are contiguous")
                };
                // Route each output's gradient to its winner in the same (n, c) plane;
                // a pixel that wins overlapping windows receives the sum. A BLOCKED
                // winner (from forward_relu) passes nothing. Planes run in parallel.
                let zeros = vec![0.0f32; h * w];
                let fast_grad = self.fast_grad_width();
                dx_flat
                    .par_chunks_mut(h * w)
                    .zip(winners.par_chunks(plane_out))
                    .zip(grads.par_chunks(plane_out))
                    .for_each(|((plane, winners), grads)| {
                        if let Some(ow) = fast_grad {
                            // Every pixel written once, no zeros first.
                            #[cfg(target_arch = "x86_64")]
                            // SAFETY: the processor has AVX-512 (`fast_grad_width`).
                            unsafe {
                                max_pool_grad_plane_2x2(winners, grads, (h, w), ow, plane);
                            }
                            return;
                        }
                        let plane = plane.write_copy_of_slice(&zeros);
                        for (&i, &g) in winners.iter().zip(grads) {
                            if i != BLOCKED {
                                plane[i as usize] += g;
                            }
                        }
                    });
                // SAFETY: every plane, together all of dx, was written (by the kernel, or
                // zeros, then sums).
                unsafe { dx.assume_init() }
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
