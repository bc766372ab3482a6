//! The passes a [`Network`](crate::full_cnn::Network) runs through a Convolution and
//! the layers after it in one go: a ReLU taken inside the convolution's pass, forward
//! and backward, and Convolution, ReLU and max pooling as one pass (each image's feature
//! maps pooled while they are still in the cache, never stored whole). Each gives what
//! the layers one by one give (the tests below).

use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;

use super::weight_grads::Gradient;
use super::{Convolution, FORWARD_BUFFERS};
use crate::error::SettingError;
use crate::full_cnn::Pooling;
use crate::full_cnn::kernels::conv_kernel::{ConvKernel, Images, Then};
use crate::full_cnn::kernels::direct_conv::first_of;
use crate::full_cnn::kernels::simd::{as_output, zeroed};
use crate::full_cnn::kernels::winograd::GROUP;

impl Convolution {
    /// [`Convolution::forward`] of a batch the layer may keep as it is (no copy), as a
    /// network's layers hand their outputs on.
    pub(crate) fn forward_owned(&mut self, x: Array4<f32>) -> Result<Array4<f32>, SettingError> {
        self.forward_owned_then(x, Then::Keep)
    }

    /// [`Convolution::forward_owned`] followed by a ReLU, `max(0, y)`, applied to each
    /// group of images' outputs as soon as they are written (still in the cache), not in
    /// a pass of its own over the whole tensor. A network runs a Convolution, ReLU,
    /// Convolution this way; the second convolution's
    /// [`Convolution::backward_through_relu`] takes the gradient back through the ReLU.
    pub(crate) fn forward_owned_relu(
        &mut self,
        x: Array4<f32>,
    ) -> Result<Array4<f32>, SettingError> {
        self.forward_owned_then(x, Then::Relu)
    }

    /// [`Convolution::forward_owned`], with `then` applied to the outputs.
    fn forward_owned_then(
        &mut self,
        x: Array4<f32>,
        then: Then,
    ) -> Result<Array4<f32>, SettingError> {
        self.output_shape(x.dim())?;
        self.keep_input(x);
        Ok(self.forward_kept(then))
    }

    /// Keeps `x` as the input, as it is if it is in standard layout (no copy).
    fn keep_input(&mut self, x: Array4<f32>) {
        self.x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        self.x_shape = self.x.dim().into();
        self.x_ready = true;
    }

    /// Convolution, ReLU and max pooling of a batch in one pass over the images: each
    /// image's `(FN, OH, OW)` feature maps live only in a small per-worker buffer (in cache)
    /// and go straight into `pool`, instead of a full-size tensor written, read by ReLU,
    /// written again and read by the pooling. With the direct kernel and 2x2 pooling on
    /// AVX-512 that buffer is the kernel's own scratch rows, pooled with the bias added on
    /// the way (`Pooling::relu_pool_scratch`): the maps are not even copied out of them
    /// (on an Intel Xeon the copy was 5% of a SimpleConvNet training step's profile; the
    /// step +9%, inference at batch 100 +13%, 8 interleaved rounds on 2 threads). With
    /// Winograd's kernel (DeepConvNet's three such blocks) each group of 8 images is pooled
    /// inside the kernel's pass, while its outputs are still interleaved, 8 images a vector
    /// (`WinogradPlan::run_relu_pool`): a quarter of the outputs copied out, and no pass of
    /// the pooling over them (on a Zen 4, DeepConvNet's inference at batch 100 1.04 times
    /// as fast).
    ///
    /// Same result as `forward`, ReLU, then [`Pooling::forward`];
    /// [`Convolution::backward_pooled`] (or `pool.backward` and
    /// [`Convolution::backward_params_pooled`], for a first layer) take the gradient back
    /// through all three. Unless `train`, the pooling keeps no winners (no backward pass
    /// follows one in inference mode; not storing them made DeepConvNet's inference at
    /// batch 100 1.04 times as fast and SimpleConvNet's 1.03, on a Zen 4).
    pub(crate) fn forward_relu_pool(
        &mut self,
        x: ArrayView4<f32>,
        pool: &mut Pooling,
        train: bool,
    ) -> Result<Array4<f32>, SettingError> {
        self.relu_pool_with(x.dim(), |conv| conv.keep_input_copy(x), pool, train)
    }

    /// [`Convolution::forward_relu_pool`] of a batch the layer may keep as it is (no
    /// copy), as a network's layers hand their outputs on.
    pub(crate) fn forward_relu_pool_owned(
        &mut self,
        x: Array4<f32>,
        pool: &mut Pooling,
        train: bool,
    ) -> Result<Array4<f32>, SettingError> {
        self.relu_pool_with(x.dim(), |conv| conv.keep_input(x), pool, train)
    }

    /// [`Convolution::forward_relu_pool`] of an input of shape `x_shape`, which `keep`
    /// keeps (once the settings are checked).
    fn relu_pool_with(
        &mut self,
        x_shape: (usize, usize, usize, usize),
        keep: impl FnOnce(&mut Self),
        pool: &mut Pooling,
        train: bool,
    ) -> Result<Array4<f32>, SettingError> {
        let conv_shape = self.output_shape(x_shape)?;
        let (mut pooled, mut arg_max) = pool.begin_relu_pool(conv_shape)?;
        keep(self);
        let (_, fnum, oh, ow) = conv_shape;
        // Not initialised yet: each path below sets every entry (see `begin_relu_pool`).
        let pooled_flat = pooled.as_slice_mut().expect("a fresh array is contiguous");
        let arg_flat = arg_max.as_slice_mut().expect("a fresh array is contiguous");
        let pool_ref = &*pool;
        let n = conv_shape.0;
        let kernel = self
            .direct_plan()
            .map(|plan| ConvKernel::forward(plan, self.winograd, n));
        let direct = kernel.filter(|kernel| kernel.is_direct() && pool.pools_scratch());
        let winograd = kernel.filter(|kernel| kernel.relu_pools() && pool.windows_2x2());
        match (direct, winograd) {
            // The direct kernel's outputs pooled straight out of its scratch rows, the bias
            // added there (not copied out with the bias first, then pooled). An empty
            // output (no window fits) takes the other path: it has no chunks to cut.
            (Some(kernel), _) if !pooled_flat.is_empty() => {
                let packed = self.packed_filters(&kernel);
                let bias = self.b.as_slice().expect("a 1-d array of its own");
                let x_flat = self.x.as_slice().expect("kept in standard layout");
                let per_image = pooled_flat.len() / n;
                pooled_flat
                    .par_chunks_mut(per_image)
                    .zip(arg_flat.par_chunks_mut(per_image))
                    .zip(x_flat.par_chunks(x_flat.len() / n))
                    .for_each(|((pooled_n, arg_n), image)| {
                        // Not zeroed first: the pooling writes every entry.
                        kernel.run_direct_then(image, &packed, |scratch, layout| {
                            let shape = (fnum, oh, ow);
                            let arg_n = train.then_some(arg_n);
                            pool_ref
                                .relu_pool_scratch(scratch, layout, bias, shape, pooled_n, arg_n)
                        })
                    });
            }
            // No filter elements: nothing to compute, and the outputs are zeros.
            _ if self.w.is_empty() => {
                zeroed(pooled_flat);
            }
            // Winograd's kernel pools each group of images inside its pass, while its
            // outputs are still interleaved; the images left over (fewer than a group, by
            // the direct kernel) are pooled from a per-worker buffer, one by one.
            (_, Some(kernel)) => {
                let packed = self.packed_filters(&kernel);
                let bias = self.b.as_slice().expect("a 1-d array of its own");
                let x_flat = self.x.as_slice().expect("kept in standard layout");
                let (per_image, image_len) = (pooled_flat.len() / n, x_flat.len() / n);
                let in_groups = n / GROUP * GROUP;
                let (pooled_groups, pooled_left) = pooled_flat.split_at_mut(in_groups * per_image);
                let (arg_groups, arg_left) = arg_flat.split_at_mut(in_groups * per_image);
                let (x_groups, x_left) = x_flat.split_at(in_groups * image_len);
                let group_len = GROUP * per_image;
                pooled_groups
                    .par_chunks_mut(group_len)
                    .zip(arg_groups.par_chunks_mut(group_len))
                    .zip(x_groups.par_chunks(GROUP * image_len))
                    .chain(
                        pooled_left
                            .par_chunks_mut(per_image)
                            .zip(arg_left.par_chunks_mut(per_image))
                            .zip(x_left.par_chunks(image_len)),
                    )
                    .for_each(|((pooled_run, arg_run), images)| {
                        if images.len() == GROUP * image_len {
                            kernel.run_relu_pool(
                                images,
                                &packed,
                                Some(bias),
                                (pooled_run, train.then_some(arg_run)),
                            );
                            return;
                        }
                        FORWARD_BUFFERS.with_borrow_mut(|(_, maps)| {
                            let maps = first_of(maps, fnum * oh * ow);
                            // SAFETY: the kernel writes floats.
                            kernel.run(images, &packed, Some(bias), unsafe { as_output(maps) });
                            let pooled_n = zeroed(pooled_run);
                            pool_ref.relu_pool_image(maps, (fnum, oh, ow), pooled_n, arg_run);
                        });
                    });
            }
            // Each image's pooled outputs zeroed by its worker just before the pooling sets
            // them (not all at once on this thread first, while the other core waited).
            _ => self.forward_images(pooled_flat, arg_flat, |conv_n, pooled_n, arg_n| {
                let pooled_n = zeroed(pooled_n);
                pool_ref.relu_pool_image(conv_n, (fnum, oh, ow), pooled_n, arg_n)
            }),
        }
        // In inference the paths without a fast pooling (the images left over from
        // Winograd's groups, or no fast kernel) still wrote winners: not all of them, so
        // the pooling sets the array aside instead of keeping it as winners.
        pool.finish_relu_pool(arg_max, conv_shape, train);
        // SAFETY: the first path's pooling wrote every image's chunk (the chunks cover the
        // array), the last path zeroed each before pooling it, the other zeroed all of it.
        Ok(unsafe { pooled.assume_init() })
    }

    /// [`Convolution::backward`] of a convolution whose input came out of a ReLU (a
    /// network's Convolution, ReLU, Convolution, run forward by
    /// [`Convolution::forward_owned_relu`]): `dL/dx` is taken back through that ReLU too,
    /// zeroed where the kept input (the ReLU's output) is not positive, group of images by
    /// group while each is in the cache (the ReLU's own backward pass, which the network
    /// then skips, went over the whole tensor again).
    pub(crate) fn backward_through_relu(&mut self, dout: ArrayView4<f32>) -> Array4<f32> {
        self.backward_then(dout, true)
    }

    /// The backward pass of a Convolution, ReLU and max Pooling run forward by
    /// [`Convolution::forward_relu_pool_owned`], from the gradient of the *pooled* output
    /// (`dL/dx` through the ReLU before the layer too if `through_relu`, as
    /// [`Convolution::backward_through_relu`]). With 2x2 windows and stride 2 the
    /// full-size gradient of the convolution's output is never made: `dW` and `dx` each
    /// rebuild it from the pooling's winners a group of images at a time, straight into
    /// their kernels' layout (the pooling's own backward wrote a tensor as large as the
    /// feature maps, which both then read). Otherwise the pooling's backward runs first.
    pub(crate) fn backward_pooled(
        &mut self,
        pool: &mut Pooling,
        dout_pooled: ArrayView4<f32>,
        through_relu: bool,
    ) -> Array4<f32> {
        let conv_shape = self.kept_output_shape();
        pool.check_relu_pool_dout(dout_pooled.dim(), conv_shape);
        let Some(winners) = pool.winners_2x2() else {
            let dout = pool.backward(dout_pooled);
            return self.backward_then(dout.view(), through_relu);
        };
        let dout_pooled = dout_pooled.as_standard_layout();
        let grads = dout_pooled.as_slice().expect("standard layout");
        self.gradients(Images::Unpooled { grads, winners }, through_relu)
    }

    /// [`Convolution::backward_params`] after [`Convolution::forward_relu_pool`], from the
    /// gradient of the *pooled* output: each image's `dL/dout` is rebuilt from `pool`'s
    /// winners in a small buffer, so the full-size gradient tensor is never made. Where
    /// the `dW` kernel reads it a row of filters per position (AVX-512, 2x2 pooling), it
    /// is rebuilt straight in that layout, not rebuilt and then transposed.
    pub(crate) fn backward_params_pooled(&mut self, pool: &Pooling, dout_pooled: ArrayView4<f32>) {
        assert!(
            self.x_ready,
            "Convolution::backward called before Convolution::forward"
        );
        let conv_shape = self.kept_output_shape();
        let dout_pooled = dout_pooled.as_standard_layout();
        let grads = dout_pooled.as_slice().expect("standard layout");
        let per_image = pool.check_relu_pool_dout(dout_pooled.dim(), conv_shape);
        self.backward_images(Gradient::Pooled(pool, grads, per_image));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    /// Convolution, ReLU and 2x2 max pooling in inference mode: the same pooled outputs as
    /// the three layers one after the other, by the direct kernel (one image) and by
    /// Winograd's (a group of 8 images and 3 left over); no winners kept; and a pass in
    /// training mode after it keeps the same winners as one after a training pass.
    #[test]
    fn inference_pooling_gives_the_same_outputs_and_keeps_no_winners() {
        use crate::full_cnn::Relu;
        for (n, c) in [(1, 3), (11, 8)] {
            let x = Array4::from_shape_fn((n, c, 8, 8), |(i, ch, y, x)| {
                ((i * 7 + ch * 5 + y * 3 + x) % 11) as f32 / 5.0 - 1.0
            });
            let w = Array4::from_shape_fn((8, c, 3, 3), |(f, ch, i, j)| {
                ((f * 5 + ch * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.45
            });
            let b = Array1::from_shape_fn(8, |f| f as f32 * 0.1 - 0.3);
            let layers = || {
                (
                    Convolution::new(w.clone(), b.clone(), 1, 1),
                    Pooling::new(2, 2, 2, 0),
                )
            };
            let ((mut train, mut train_pool), (mut infer, mut infer_pool)) = (layers(), layers());
            let trained = train
                .forward_relu_pool(x.view(), &mut train_pool, true)
                .unwrap();
            let inferred = infer
                .forward_relu_pool(x.view(), &mut infer_pool, false)
                .unwrap();
            let (mut conv, mut relu, mut pool) = (layers().0, Relu::new(), layers().1);
            let expected = pool
                .forward(relu.forward(conv.forward(x.view()).unwrap()).view())
                .unwrap();
            assert_eq!(inferred, expected, "inference, {n} images of {c} channels");
            assert_eq!(trained, expected, "training, {n} images of {c} channels");
            assert!(train_pool.winners().is_some() && infer_pool.winners().is_none());
            infer
                .forward_relu_pool(x.view(), &mut infer_pool, true)
                .unwrap();
            assert_eq!(infer_pool.winners(), train_pool.winners(), "{n} images");
        }
    }

    /// A backward pass through a pooling whose last pass was in inference mode panics (it
    /// has no winners to send the gradient to), as one before any forward pass.
    #[test]
    #[should_panic(expected = "before a forward pass in training mode")]
    fn backward_after_an_inference_pass_panics() {
        let x = Array4::from_elem((2, 1, 4, 4), 1.0);
        let mut conv =
            Convolution::new(Array4::from_elem((2, 1, 3, 3), 0.5), Array1::zeros(2), 1, 1);
        let mut pool = Pooling::new(2, 2, 2, 0);
        let y = conv.forward_relu_pool(x.view(), &mut pool, false).unwrap();
        conv.backward_pooled(&mut pool, Array4::ones(y.raw_dim()).view(), false);
    }

    /// The fused Convolution + ReLU + max pooling (SimpleConvNet's first block) must give
    /// what the three layers give one after the other, forward and backward (dW, db),
    /// including ties, windows with no positive value, and NaN.
    #[test]
    fn fused_conv_relu_pool_equals_the_three_layers() {
        use crate::full_cnn::Relu;
        // Integer-valued data and filters: sums are exact, so ties survive the convolution.
        let mut x = Array4::from_shape_fn((3, 2, 9, 9), |(n, c, i, j)| {
            ((n * 13 + c * 7 + i * 5 + j * 3) % 5) as f32 - 2.0
        });
        x[[1, 1, 4, 4]] = f32::NAN;
        let w = Array4::from_shape_fn((4, 2, 2, 2), |(f, c, i, j)| {
            ((f * 5 + c * 3 + i * 2 + j) % 3) as f32 - 1.0
        });
        let b = Array1::from(vec![0.0, -1.0, 1.0, -20.0]); // filter 3: all windows negative
        for (stride, pad, pool_size, pool_stride) in [(1, 0, 2, 2), (1, 1, 3, 1), (1, 2, 2, 1)] {
            let mut conv = Convolution::new(w.clone(), b.clone(), stride, pad);
            let mut relu = Relu::new();
            let mut pool = Pooling::new(pool_size, pool_size, pool_stride, 0);
            let h = relu.forward(conv.forward(x.view()).unwrap());
            let expected = pool.forward(h.view()).unwrap();
            let dout = Array4::from_shape_fn(expected.dim(), |(n, c, i, j)| {
                1.0 + (n * 11 + c * 5 + i * 3 + j) as f32
            });
            conv.backward_params(relu.backward(pool.backward(dout.view())).view());

            let mut fused = Convolution::new(w.clone(), b.clone(), stride, pad);
            let mut fused_pool = Pooling::new(pool_size, pool_size, pool_stride, 0);
            for _ in 0..2 {
                // twice: the second pass reuses the buffers
                let y = fused
                    .forward_relu_pool(x.view(), &mut fused_pool, true)
                    .unwrap();
                let same = |a: &[f32], b: &[f32]| {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
                };
                let case = format!("stride {stride} pad {pad} pool {pool_size}/{pool_stride}");
                assert!(
                    same(y.as_slice().unwrap(), expected.as_slice().unwrap()),
                    "forward, {case}"
                );
                fused.backward_params_pooled(&fused_pool, dout.view());
                assert!(
                    same(fused.dw.as_slice().unwrap(), conv.dw.as_slice().unwrap()),
                    "dW, {case}"
                );
                assert!(
                    same(fused.db.as_slice().unwrap(), conv.db.as_slice().unwrap()),
                    "db, {case}"
                );
            }
        }
    }
}
