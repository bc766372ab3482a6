//! The Pooling layer (プーリング層) with its backward pass: max pooling (and average
//! pooling) over windows of each channel.

use std::mem::MaybeUninit;

use ndarray::{Array2, Array4, ArrayView4, s};
use rayon::prelude::*;

use crate::batching::col2im;
use crate::error::SettingError;
use crate::full_cnn::kernels::simd::{Simd, as_output, zeroed};
use crate::padding_stride::conv_output_size;
#[cfg(target_arch = "x86_64")]
use crate::pooling::avx512::{
    max_pool_grad_by_position_2x2, max_pool_grad_plane_2x2, relu_pool_rows_2x2,
};
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

    /// ReLU then max pooling of a batch `(N, C, H, W)` in one pass, as a network runs a
    /// ReLU layer followed by max pooling: `max(relu(x))` over each window, the same output
    /// as the two layers one after the other, and [`Pooling::backward`] then gives what
    /// the two layers' backward passes give (a window whose maximum ReLU clipped to 0
    /// passes no gradient, as ReLU's mask would not). The ReLU's pass over the full-size
    /// tensor, and its mask, are not needed.
    ///
    /// Returns a [`SettingError`] if window, stride and padding do not fit the input.
    /// Panics for average pooling.
    pub(crate) fn forward_relu(&mut self, x: ArrayView4<f32>) -> Result<Array4<f32>, SettingError> {
        let shape = x.dim();
        let (mut pooled, mut arg_max) = self.begin_relu_pool(shape)?;
        let x = x.as_standard_layout();
        let (Some(src), Some(values), Some(arg)) =
            (x.as_slice(), pooled.as_slice_mut(), arg_max.as_slice_mut())
        else {
            unreachable!("standard-layout arrays are contiguous")
        };
        // Every plane of the batch: relu_pool_image pools whatever planes it is given.
        self.relu_pool_image(src, (shape.1, shape.2, shape.3), zeroed(values), arg);
        self.finish_relu_pool(arg_max, shape, true);
        // SAFETY: zeroed above, in full.
        Ok(unsafe { pooled.assume_init() })
    }

    /// Start a fused "ReLU then max pooling" of convolution output of shape `conv_shape`
    /// (see `Convolution::forward_relu_pool`): checks the settings and returns the pooled
    /// output and arg-max arrays for [`Pooling::relu_pool_image`] to fill, image by image.
    /// The pooled output is not initialised: the caller sets its every entry ([`zeroed`],
    /// where it is about to be written: zeroed here, at once and on one thread, it was
    /// 1.4% of a SimpleConvNet training run's CPU time while the other core waited).
    ///
    /// Panics for average pooling (the fused path is max pooling's).
    pub(crate) fn begin_relu_pool(
        &mut self,
        conv_shape: (usize, usize, usize, usize),
    ) -> Result<(Array4<MaybeUninit<f32>>, Array4<u32>), SettingError> {
        assert_eq!(
            self.kind,
            PoolKind::Max,
            "the fused ReLU + pooling is max pooling"
        );
        let shape = self.output_shape(conv_shape)?;
        check_pad_below_window(self.pad, self.pool_h, self.pool_w)?;
        Ok((Array4::uninit(shape), self.reuse_arg_max(shape)))
    }

    /// `max(relu(x))` over the windows of one image's feature maps `conv_n` `(C, H, W)`,
    /// into its chunks of the pooled output and the arg-max (windows whose maximum ReLU
    /// clipped to 0 get [`BLOCKED`]: no gradient, as ReLU's mask would give).
    pub(crate) fn relu_pool_image(
        &self,
        conv_n: &[f32],
        (_, h, w): (usize, usize, usize),
        values: &mut [f32],
        arg: &mut [u32],
    ) {
        let (oh, ow) = (
            (h + 2 * self.pad - self.pool_h) / self.stride + 1,
            (w + 2 * self.pad - self.pool_w) / self.stride + 1,
        );
        let settings = (self.pool_h, self.pool_w, self.stride, self.pad);
        max_pool_planes(conv_n, (h, w), settings, (oh, ow), values, arg, true);
    }

    /// Whether [`Pooling::relu_pool_scratch`] can pool this layer's windows: 2x2 with
    /// stride 2 and no padding, on a processor with AVX-512.
    pub(crate) fn pools_scratch(&self) -> bool {
        self.windows_2x2() && Simd::best() == Simd::Avx512
    }

    /// Whether this layer's windows are 2x2 with stride 2 and no padding (the networks'
    /// pooling, which the fused passes compute without the full-size feature maps).
    pub(crate) fn windows_2x2(&self) -> bool {
        (self.pool_h, self.pool_w, self.stride, self.pad) == (2, 2, 2, 0)
    }

    /// [`Pooling::relu_pool_image`] of feature maps still in a convolution kernel's
    /// scratch rows, before its bias: plane `f`'s row `y` starts at `f * scratch_row + y *
    /// row_stride`, and each pixel is `scratch + bias[f]`. Saves copying the maps out of
    /// the scratch rows (with the bias) only to read them again. Every entry of `values`
    /// and of `arg` is written (`values` need not be initialised); without `arg` (a pass in
    /// inference mode) the winners are not stored. Where [`Pooling::pools_scratch`] says
    /// so.
    pub(crate) fn relu_pool_scratch(
        &self,
        scratch: &[f32],
        (row_stride, scratch_row): (usize, usize),
        bias: &[f32],
        (_, h, w): (usize, usize, usize),
        values: &mut [MaybeUninit<f32>],
        arg: Option<&mut [u32]>,
    ) {
        assert!(
            self.pools_scratch() && arg.as_ref().is_none_or(|arg| arg.len() == values.len()),
            "Pooling: no scratch pooling for {self:?} into {} values",
            values.len()
        );
        let (oh, ow) = (h / 2, w / 2);
        if oh * ow == 0 {
            return;
        }
        let mut arg_planes = arg.map(|arg| arg.chunks_exact_mut(oh * ow));
        for ((plane, &b), out) in scratch
            .chunks(scratch_row)
            .zip(bias)
            .zip(values.chunks_exact_mut(oh * ow))
        {
            let idx = arg_planes
                .as_mut()
                .map(|planes| planes.next().expect("as many winners as values"));
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the processor has AVX-512 (`pools_scratch`).
            unsafe {
                relu_pool_rows_2x2(plane, (w, row_stride), b, ow, out, idx)
            };
        }
    }

    /// Finish a fused pass: remember the convolution output's shape, and the winners if
    /// `winners_kept` (a pass in training mode wrote them all). A pass in inference mode
    /// leaves them out: a backward pass after it panics, as one before any forward pass.
    pub(crate) fn finish_relu_pool(
        &mut self,
        arg_max: Array4<u32>,
        (n, c, h, w): (usize, usize, usize, usize),
        winners_kept: bool,
    ) {
        (self.arg_max, self.spare_arg_max) = if winners_kept {
            (Some(arg_max), None)
        } else {
            (None, Some(arg_max))
        };
        self.x_shape = [n, c, h, w];
    }

    /// Panics unless `dout` has the shape of the last fused pass's pooled output and that
    /// pass pooled `conv_shape`; returns the number of pooled values per image.
    pub(crate) fn check_relu_pool_dout(
        &self,
        dout: (usize, usize, usize, usize),
        (n, c, h, w): (usize, usize, usize, usize),
    ) -> usize {
        assert_eq!(
            self.x_shape,
            [n, c, h, w],
            "Pooling: the fused pass pooled another shape"
        );
        let expected = self.output_shape((n, c, h, w)).expect("fitted in forward");
        assert_eq!(
            dout, expected,
            "Pooling::backward: dout has shape {dout:?} but the forward output had shape {expected:?}"
        );
        assert!(self.arg_max.is_some(), "{NO_WINNERS}");
        expected.1 * expected.2 * expected.3
    }

    /// The max-pooling backward of one image: `dx_n` `(C, H, W)` gets image `img`'s pooled
    /// gradients `dout_n` `(C, OH, OW)` at the winners, zeros elsewhere.
    pub(crate) fn backward_image(&self, dout_n: &[f32], img: usize, dx_n: &mut [f32]) {
        let arg_max = self
            .arg_max
            .as_ref()
            .expect("checked in check_relu_pool_dout");
        let winners = arg_max.as_slice().expect("kept in standard layout");
        let [_, c, h, w] = self.x_shape;
        let plane_out = dout_n.len() / c.max(1);
        let winners = &winners[img * dout_n.len()..(img + 1) * dout_n.len()];
        if plane_out == 0 {
            dx_n.fill(0.0);
            return;
        }
        if let Some(ow) = self.fast_grad_width() {
            for ((plane, winners), grads) in dx_n
                .chunks_exact_mut(h * w)
                .zip(winners.chunks_exact(plane_out))
                .zip(dout_n.chunks_exact(plane_out))
            {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the processor has AVX-512 (`fast_grad_width`); the kernel
                // writes floats only.
                unsafe {
                    max_pool_grad_plane_2x2(winners, grads, (h, w), ow, as_output(plane));
                }
            }
            return;
        }
        dx_n.fill(0.0);
        for ((plane, winners), grads) in dx_n
            .chunks_exact_mut(h * w)
            .zip(winners.chunks_exact(plane_out))
            .zip(dout_n.chunks_exact(plane_out))
        {
            for (&i, &g) in winners.iter().zip(grads) {
                if i != BLOCKED {
                    plane[i as usize] += g;
                }
            }
        }
    }

    /// [`Pooling::backward_image`] for a fused first block whose convolution's `dW` kernel
    /// reads the gradient a row of `row_len = lane_sums.len()` filters per position:
    /// written that way into `out` `(H*W, row_len)` (zeros past the planes), with each
    /// plane's lane sums for the bias gradient (see
    /// `pooling::avx512::max_pool_grad_by_position_2x2`), instead of `(C, H, W)` transposed
    /// afterwards. Only where that kernel applies (2x2 windows, stride 2, no padding,
    /// AVX-512, an even height and a width a multiple of 8, `row_len` 16 or 32); returns
    /// `false`, having written nothing, elsewhere.
    pub(crate) fn backward_image_by_position(
        &self,
        dout_n: &[f32],
        img: usize,
        out: &mut [f32],
        lane_sums: &mut [[f32; 8]],
    ) -> bool {
        let [_, c, h, w] = self.x_shape;
        let row_len = lane_sums.len();
        let fits = self.fast_grad_width().is_some()
            && h.is_multiple_of(2)
            && w.is_multiple_of(8)
            && (1..=row_len).contains(&c)
            && matches!(row_len, 16 | 32);
        if !fits {
            return false;
        }
        let arg_max = self
            .arg_max
            .as_ref()
            .expect("checked in check_relu_pool_dout");
        let winners = arg_max.as_slice().expect("kept in standard layout");
        let winners = &winners[img * dout_n.len()..(img + 1) * dout_n.len()];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the processor has AVX-512 (`fast_grad_width`); the kernel writes floats
        // only.
        unsafe {
            max_pool_grad_by_position_2x2(winners, dout_n, c, (h, w), as_output(out), lane_sums)
        };
        // (Elsewhere `fast_grad_width` is `None`: not reached.)
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (winners, out);
        true
    }

    /// The winners of the last forward pass, `(N, C, windows)` flat: for each window the
    /// flat index `y*W + x` of its winner in the input plane, or [`BLOCKED`] where a fused
    /// ReLU clipped the window's maximum to 0. For max pooling without padding, after a
    /// pass in training mode; `None` otherwise.
    pub(crate) fn winners(&self) -> Option<&[u32]> {
        let arg_max = self.arg_max.as_ref()?;
        (self.kind == PoolKind::Max && self.pad == 0 && arg_max.dim().0 == self.x_shape[0])
            .then(|| arg_max.as_slice())
            .flatten()
    }

    /// The winners of the last pass, if the windows are 2x2 with stride 2 over inputs of
    /// even height and width (so that every input pixel is in exactly one window): the
    /// gradient then goes back to the input by
    /// [`Images::Unpooled`](super::kernels::conv_kernel::Images).
    pub(crate) fn winners_2x2(&self) -> Option<&[u32]> {
        let [_, _, h, w] = self.x_shape;
        let two_by_two = (self.pool_h, self.pool_w, self.stride) == (2, 2, 2);
        (two_by_two && h.is_multiple_of(2) && w.is_multiple_of(2))
            .then(|| self.winners())
            .flatten()
    }

    /// The output width if the gradient can go through the AVX-512 kernel
    /// (`pooling::avx512::max_pool_grad_plane_2x2`): 2x2 windows with stride 2 and no
    /// padding (each input pixel in at most one window), on a processor with AVX-512.
    fn fast_grad_width(&self) -> Option<usize> {
        let two_by_two = (self.pool_h, self.pool_w, self.stride, self.pad) == (2, 2, 2, 0);
        let ow = self.x_shape[3] / 2;
        (two_by_two && ow > 0 && Simd::best() == Simd::Avx512).then_some(ow)
    }

    /// The arg-max array of the last pass if it has the right shape (it is overwritten
    /// entirely), else a new one: no allocation per pass. (The winners of the last pass
    /// are gone either way: the caller writes the new ones.)
    fn reuse_arg_max(&mut self, shape: (usize, usize, usize, usize)) -> Array4<u32> {
        match self.arg_max.take().or(self.spare_arg_max.take()) {
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
