//! What a network's fused passes ask of a max [`Pooling`] layer: ReLU and pooling as one
//! pass (`Pooling::forward_relu`), the pooling of a convolution's feature maps image by
//! image while they are still in the cache (`Convolution::forward_relu_pool`), and each
//! image's gradient sent back to its winners for the convolution's backward pass. Each
//! gives what the ReLU and Pooling layers one by one give (tested with the networks and
//! the Convolution's fused passes).

use std::mem::MaybeUninit;

use ndarray::{Array4, ArrayView4};

use super::{NO_WINNERS, PoolKind, Pooling};
use crate::error::SettingError;
use crate::full_cnn::kernels::simd::{Simd, as_output, zeroed};
#[cfg(target_arch = "x86_64")]
use crate::pooling::avx512::{max_pool_grad_by_position_2x2, max_pool_grad_plane_2x2};
#[cfg(target_arch = "x86_64")]
use crate::pooling::relu_pool_rows_2x2;
use crate::pooling::{BLOCKED, check_pad_below_window, max_pool_planes};

impl Pooling {
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
    /// stride 2 and no padding, on a processor with AVX2 or AVX-512.
    pub(crate) fn pools_scratch(&self) -> bool {
        self.windows_2x2() && Simd::best() >= Simd::Avx2
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
            // The processor has AVX2 or AVX-512 (`pools_scratch`), so a kernel runs.
            #[cfg(target_arch = "x86_64")]
            relu_pool_rows_2x2(Simd::best(), plane, (w, row_stride), b, ow, out, idx);
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
    /// [`Images::Unpooled`](crate::full_cnn::kernels::conv_kernel::Images).
    pub(crate) fn winners_2x2(&self) -> Option<&[u32]> {
        let [_, _, h, w] = self.x_shape;
        let two_by_two = (self.pool_h, self.pool_w, self.stride) == (2, 2, 2);
        (two_by_two && h.is_multiple_of(2) && w.is_multiple_of(2))
            .then(|| self.winners())
            .flatten()
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
}
