//! The Convolution layer (畳み込み層) with its backward pass, computed with
//! [`im2col`](crate::batching::im2col) as one matrix product each way.

use std::cell::RefCell;
use std::sync::Arc;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, ArrayViewMut2};
use rayon::prelude::*;

use super::Pooling;
use super::conv_kernel::{ConvKernel, Images, PackCache, PackedFilters, Then};
use super::direct_conv::{ForwardPlan, WeightGradPlan, first_of};
use super::simd::{Simd, all_finite, as_output, zeroed};
use super::winner_grad::WinnerGradPlan;
use super::winograd::{GROUP, Group, WinogradGradPlan};
use crate::batching::{col2im_t_image, im2col_image, im2col_t_image};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// A convolution layer: `FN` filters of shape `(C, FH, FW)` slid over a batch
/// `(N, C, H, W)` with a stride and zero padding, plus one bias per filter, giving
/// `(N, FN, OH, OW)`. As in the book it works through im2col:
///
/// ```text
/// col = im2col(x)                       (N*OH*OW, C*FH*FW)   one row per filter position
/// out = col · Wᵀ + b                    (N*OH*OW, FN)        W flattened to (FN, C*FH*FW)
///     -> reshape (N, OH, OW, FN) -> transpose (N, FN, OH, OW)
/// ```
///
/// (The code computes the same products one image at a time, `W · col_n` with each
/// image's im2col matrix built transposed, `(C*FH*FW, OH*OW)`: the product lands directly
/// in the `(FN, OH*OW)` layout of the output and saves the transposing copy. The images
/// run in parallel, each image's im2col matrix lives only in a small per-thread buffer
/// while it is used, and the layer keeps the input `x` rather than the `FH*FW` times
/// larger im2col matrix: the backward pass builds each image's matrix again, which costs
/// less than storing the whole batch's and reading it back from memory.)
///
/// With stride 1 (most CNNs) the layer skips im2col and its faster kernels compute the
/// same sums: the direct kernel reads each filter position's pixels straight from the
/// padded image (module `direct_conv`), and for 3x3 filters over 8 or more channels,
/// 8 images at a time, Winograd's F(4x4, 3x3) needs 4 times fewer multiplications and
/// F(2x2, 3x3) 2.25 times (module `winograd`: F(4x4, 3x3) forward and for `dx` where the
/// output's size suits it, F(2x2, 3x3) for the other sizes, and the same tile for `dW`
/// with 16 or more channels and filters (32 with F(2x2, 3x3)); the environment variable
/// `CNN_FROM_SCRATCH_WINOGRAD=0` turns it off, `=2` keeps to F(2x2, 3x3)). The results agree with im2col's to rounding; the tests
/// compare each kernel with the im2col path, forward and backward.
///
/// ## Backward
///
/// In im2col form the layer *is* an Affine layer, `out = col · Wᵀ + b`, so its gradients
/// are the Affine ones (see [`Affine`](crate::full_cnn::Affine)) with `dout` brought to
/// the same `(N*OH*OW, FN)` layout:
///
/// ```text
/// dW = doutᵀ · col      db = Σ_rows dout      dcol = dout · W      dx = col2im(dcol)
/// ```
///
/// The last step is the chain rule through im2col: im2col copied each pixel into every
/// row whose window covers it, so the pixel's gradient is the sum of those copies'
/// gradients, which is what [`col2im`](crate::batching::col2im) adds up.
///
/// ```
/// use cnn_from_scratch::full_cnn::Convolution;
/// use ndarray::{array, Array4};
/// // One 2x2 filter of ones, bias 1, on a 3x3 image of ones: every output is 4 + 1.
/// let mut conv = Convolution::new(Array4::ones((1, 1, 2, 2)), array![1.0], 1, 0);
/// let y = conv.forward(Array4::ones((1, 1, 3, 3)).view()).unwrap();
/// assert_eq!(y, Array4::from_elem((1, 1, 2, 2), 5.0));
/// let dx = conv.backward(Array4::ones((1, 1, 2, 2)).view());
/// assert_eq!(dx[[0, 0, 1, 1]], 4.0);   // the centre pixel is under all four windows
/// assert_eq!(conv.db, array![4.0]);     // four outputs, each with gradient 1
/// // A filter that does not fit is an error, not a panic:
/// assert!(conv.forward(Array4::ones((1, 1, 1, 1)).view()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Convolution {
    /// Filters `(FN, C, FH, FW)`.
    pub w: Array4<f32>,
    /// One bias per filter, `(FN)`.
    pub b: Array1<f32>,
    /// Step between filter positions.
    pub stride: usize,
    /// Zeros added on each side of the input.
    pub pad: usize,
    /// `dL/dW` from the last [`Convolution::backward`] (zeros before).
    pub dw: Array4<f32>,
    /// `dL/db` from the last [`Convolution::backward`] (zeros before).
    pub db: Array1<f32>,
    /// The forward input's shape `(N, C, H, W)`.
    x_shape: [usize; 4],
    /// The forward input, in standard layout (the book's `self.x`), for `dW` and `dx`.
    x: Array4<f32>,
    /// Whether `x` holds a forward pass (backward needs one).
    x_ready: bool,
    /// Use the direct (im2col-free) kernels when they apply; `false` only in tests that
    /// compare them with the im2col path.
    direct: bool,
    /// Use Winograd's kernel for 3x3 filters when it applies; `false` only in tests.
    winograd: bool,
    /// The backward pass's partial sums, one part per run of images (kept from step to
    /// step: fresh buffers each step cost page faults).
    partials: Vec<f32>,
    /// The filters the last forward pass packed for the fast kernels, reused while the
    /// weights stay the same (see [`PackCache`]).
    packed: PackCache,
}

impl Convolution {
    /// A convolution layer with filters `w` `(FN, C, FH, FW)`, bias `b` `(FN)`, a stride
    /// and a padding (the book's `Convolution(W, b, stride, pad)`).
    ///
    /// Panics if `b.len() != FN`. Whether stride and padding fit is checked against the
    /// input in [`Convolution::forward`].
    pub fn new(w: Array4<f32>, b: Array1<f32>, stride: usize, pad: usize) -> Self {
        assert_eq!(
            w.dim().0,
            b.len(),
            "Convolution::new: filters have shape {:?} (FN, C, FH, FW) but the bias has shape {:?}",
            w.shape(),
            b.shape()
        );
        // Standard layout lets the filters be viewed as a (FN, C*FH*FW) matrix for free.
        let w = if w.is_standard_layout() {
            w
        } else {
            w.as_standard_layout().into_owned()
        };
        let (dw, db) = (Array4::zeros(w.raw_dim()), Array1::zeros(b.raw_dim()));
        Self {
            w,
            b,
            stride,
            pad,
            dw,
            db,
            x_shape: [0; 4],
            x: Array4::zeros((0, 0, 0, 0)),
            x_ready: false,
            direct: true,
            winograd: true,
            partials: Vec::new(),
            packed: PackCache::default(),
        }
    }

    /// Output shape `(N, FN, OH, OW)` for an input of shape `(N, C, H, W)`, by equation
    /// (7.1), or the [`SettingError`] saying why the filter, stride and padding do not fit.
    ///
    /// Panics if `C` differs from the filters' channel count.
    pub fn output_shape(
        &self,
        (n, c, h, w): (usize, usize, usize, usize),
    ) -> Result<(usize, usize, usize, usize), SettingError> {
        let (fnum, fc, fh, fw) = self.w.dim();
        assert_eq!(
            c,
            fc,
            "Convolution: input of shape {:?} has {} channels but the filters have shape {:?}",
            (n, c, h, w),
            c,
            self.w.shape()
        );
        if fh == 0 || fw == 0 {
            return Err(SettingError::EmptyFilter {
                filter_h: fh,
                filter_w: fw,
            });
        }
        Ok((
            n,
            fnum,
            conv_output_size(h, fh, self.pad, self.stride)?,
            conv_output_size(w, fw, self.pad, self.stride)?,
        ))
    }

    /// The filters as the `(FN, C*FH*FW)` matrix that multiplies im2col's rows.
    fn w_matrix(&self) -> ndarray::ArrayView2<'_, f32> {
        let fnum = self.w.dim().0;
        let k = self.w.len() / fnum.max(1);
        self.w
            .view()
            .into_shape_with_order((fnum, k))
            .expect("the filters are kept in standard layout")
    }

    /// Convolve a batch `(N, C, H, W)` into `(N, FN, OH, OW)`. Keeps a copy of the input
    /// for the backward pass. Returns a [`SettingError`] if filter, stride and padding do
    /// not fit the input; panics if the channel counts differ.
    pub fn forward(&mut self, x: ArrayView4<f32>) -> Result<Array4<f32>, SettingError> {
        self.output_shape(x.dim())?;
        self.keep_input_copy(x);
        Ok(self.forward_kept(Then::Keep))
    }

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

    /// Copies `x` into the kept input, reusing its memory when the shape is the same.
    fn keep_input_copy(&mut self, x: ArrayView4<f32>) {
        if self.x.dim() == x.dim() {
            self.x.assign(&x);
        } else {
            self.x = x.as_standard_layout().into_owned();
        }
        self.x_shape = self.x.dim().into();
        self.x_ready = true;
    }

    /// The forward pass of the kept input into a fresh `(N, FN, OH, OW)` tensor, with
    /// `then` applied to it (`Then::Relu`: a ReLU's outputs).
    fn forward_kept(&self, then: Then) -> Array4<f32> {
        assert!(
            matches!(then, Then::Keep | Then::Relu),
            "Convolution: a forward pass keeps its outputs or takes their ReLU"
        );
        let [n, c, h, w] = self.x_shape;
        let shape = self
            .output_shape((n, c, h, w))
            .expect("checked by the caller");
        let ((_, fnum, oh, ow), (_, _, fh, fw)) = (shape, self.w.dim());
        if n * fnum * oh * ow == 0 || c * fh * fw == 0 {
            // An empty output, or no filter elements: forward_images writes nothing (and
            // zeros are their own ReLU).
            return Array4::zeros(shape);
        }
        // Not zeroed first: every image's chunk is written by its worker (zeroing 6.9 MB
        // on the calling thread, while the other core waited, was 4% of a DeepConvNet
        // inference).
        let mut out = Array4::<f32>::uninit(shape);
        let out_flat = out.as_slice_mut().expect("a fresh array is contiguous");
        if let Some((kernel, packed)) = self.fast_kernel(n) {
            // Stride 1: the fast kernels write each group of images' outputs straight into
            // `out` (not into a buffer first, then copied: 6% of this layer's work).
            let x_flat = self.x.as_slice().expect("kept in standard layout");
            let bias = self.b.as_slice().expect("a 1-d array of its own");
            kernel.run_batch(Images::Given(x_flat), &packed, Some(bias), out_flat, then);
        } else {
            let mut unit = vec![(); n]; // no second sink
            self.forward_images(out_flat, &mut unit, |conv_n, out_n, _| {
                // (Where the image's outputs start in the batch, the second argument,
                // matters only to `Then::ThroughRelu`, which is for gradients.)
                then.apply(out_n.write_copy_of_slice(conv_n), 0);
            });
        }
        // SAFETY: the output is not empty, so every image's chunk (together all of `out`)
        // went to a kernel, which writes every float of it, or to the sink, which wrote it
        // in full.
        unsafe { out.assume_init() }
    }

    /// The fast kernels for a batch of `n` kept images, with the filters packed for them,
    /// if the layer's shape has them (stride 1: see [`Convolution::direct_plan`]).
    fn fast_kernel(&self, n: usize) -> Option<(ConvKernel, Arc<PackedFilters>)> {
        let kernel = ConvKernel::forward(self.direct_plan()?, self.winograd, n);
        Some((kernel, self.packed_filters(&kernel)))
    }

    /// The filters packed for `kernel`, kept from the last forward pass if the weights
    /// have not changed since.
    fn packed_filters(&self, kernel: &ConvKernel) -> Arc<PackedFilters> {
        let w = self.w.as_slice().expect("kept in standard layout");
        self.packed.packed(kernel, w)
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

    /// The forward pass of the kept input, image by image and in parallel: builds the
    /// image's im2col matrix in a per-worker buffer, computes its `(FN, OH*OW)` feature
    /// maps into another and hands them to `sink` with this image's chunks of `out` and
    /// `extra` (each split evenly over the images; `extra` may be empty).
    fn forward_images<O: Send, E: Send>(
        &self,
        out: &mut [O],
        extra: &mut [E],
        sink: impl Fn(&[f32], &mut [O], &mut [E]) + Sync,
    ) {
        let [n, c, h, w] = self.x_shape;
        let (_, fnum, oh, ow) = self
            .output_shape((n, c, h, w))
            .expect("checked by the caller");
        let (_, _, fh, fw) = self.w.dim();
        let (positions, k) = (oh * ow, c * fh * fw);
        let settings = (fh, fw, self.stride, self.pad);
        let x_flat = self.x.as_slice().expect("kept in standard layout");
        if n * k * positions * fnum == 0 || out.is_empty() {
            return;
        }
        let w_matrix = self.w_matrix();
        let bias = self.b.as_slice().expect("a 1-d array of its own");
        let (out_len, extra_len) = (out.len() / n, extra.len() / n);
        assert!(
            out_len * n == out.len() && extra_len * n == extra.len() && extra_len > 0,
            "forward_images: sinks must split evenly over the {n} images"
        );
        let fast = self.fast_kernel(n);
        // Winograd's kernel takes a group of images at a time, the others one.
        let per_run = fast.as_ref().map_or(1, |(k, _)| k.images_per_run());
        let map_len = fnum * positions;
        let col_len = if fast.is_some() { 0 } else { k * positions };
        out.par_chunks_mut(per_run * out_len)
            .zip(extra.par_chunks_mut(per_run * extra_len))
            .zip(x_flat.par_chunks(per_run * c * h * w))
            .for_each(|((out_g, extra_g), images)| {
                FORWARD_BUFFERS.with_borrow_mut(|(col, maps)| {
                    let (col, maps) = (first_of(col, col_len), first_of(maps, per_run * map_len));
                    if let Some((kernel, packed)) = &fast {
                        // Stride 1: straight from the padded images (modules direct_conv and
                        // winograd).
                        let count = images.len() / (c * h * w);
                        let maps = &mut maps[..count * map_len];
                        // SAFETY: the kernel writes floats.
                        kernel.run(images, packed, Some(bias), unsafe { as_output(maps) });
                        for ((maps_n, out_n), extra_n) in maps
                            .chunks_exact(map_len)
                            .zip(out_g.chunks_exact_mut(out_len))
                            .zip(extra_g.chunks_exact_mut(extra_len))
                        {
                            sink(maps_n, out_n, extra_n);
                        }
                        return;
                    }
                    let (image, out_n, extra_n) = (images, out_g, extra_g);
                    im2col_t_image(image, (c, h, w), settings, (oh, ow), col);
                    let col_n = ArrayView2::from_shape((k, positions), &col[..])
                        .expect("buffer of C*FH*FW x OH*OW");
                    for (row, &b) in maps.chunks_exact_mut(positions).zip(bias) {
                        row.fill(b);
                    }
                    let mut maps_n = ArrayViewMut2::from_shape((fnum, positions), &mut maps[..])
                        .expect("buffer of FN x OH*OW");
                    // The book computes all images at once, `col · Wᵀ` (N*OH*OW, FN), and
                    // transposes it to (N, FN, OH, OW), a copy. Per image, with im2col's
                    // matrix built transposed, `W · col_n` is (FN, OH*OW): the output's layout.
                    general_mat_mul(1.0, &w_matrix, &col_n, 1.0, &mut maps_n);
                    sink(maps, out_n, extra_n);
                })
            });
    }

    /// The direct (im2col-free) computation's plan, if it applies to the kept input's
    /// shape: stride 1 (see the module `direct_conv`), unless switched off for a test.
    fn direct_plan(&self) -> Option<ForwardPlan> {
        let [_, _, h, w] = self.x_shape;
        if self.stride != 1 || !self.direct {
            return None;
        }
        ForwardPlan::new(self.w.dim(), (h, w), self.pad)
    }

    /// Given `dL/dout` `(N, FN, OH, OW)`, stores `dw` and `db` and returns `dL/dx`
    /// `(N, C, H, W)`. Panics if called before forward or with a wrong shape.
    pub fn backward(&mut self, dout: ArrayView4<f32>) -> Array4<f32> {
        self.backward_then(dout, false)
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

    /// [`Convolution::backward`], and through the ReLU before the layer if `through_relu`.
    fn backward_then(&mut self, dout: ArrayView4<f32>, through_relu: bool) -> Array4<f32> {
        self.check_dout(dout.dim());
        let dout = dout.as_standard_layout();
        let dout_flat = dout.as_slice().expect("standard layout");
        self.gradients(Images::Given(dout_flat), through_relu)
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
        let [n, c, h, w] = self.x_shape;
        let conv_shape = self
            .output_shape((n, c, h, w))
            .expect("the settings fitted in forward");
        pool.check_relu_pool_dout(dout_pooled.dim(), conv_shape);
        let Some(winners) = pool.winners_2x2() else {
            let dout = pool.backward(dout_pooled);
            return self.backward_then(dout.view(), through_relu);
        };
        let dout_pooled = dout_pooled.as_standard_layout();
        let grads = dout_pooled.as_slice().expect("standard layout");
        self.gradients(Images::Unpooled { grads, winners }, through_relu)
    }

    /// `dW`, `db` (stored) and `dL/dx` (returned, through the ReLU before the layer if
    /// `through_relu`) from the gradient `dout`, given or rebuilt from a pooling's.
    fn gradients(&mut self, dout: Images, through_relu: bool) -> Array4<f32> {
        // dW and dx read the same gradient and are independent: side by side, so that
        // neither waits for the last of the other's parallel pieces.
        let mut partials = std::mem::take(&mut self.partials);
        let ((dw, db), dx) = rayon::join(
            || self.weight_grads(&mut partials, Gradient::Images(dout)),
            || {
                let x = self.x.as_slice().expect("kept in standard layout");
                self.input_grad(
                    dout,
                    if through_relu {
                        Then::ThroughRelu(x)
                    } else {
                        Then::Keep
                    },
                )
            },
        );
        (self.partials, self.dw, self.db) = (partials, dw, db);
        dx
    }

    /// `dL/dx` `(N, C, H, W)` from `dL/dout` (flat, standard layout), image by image in
    /// parallel: `dx_n = col2im(Wᵀ · dout_n)`, or with stride 1 the convolution of `dout_n`
    /// (padded by `FH-1-pad`) with the filters flipped and their channel axes swapped, by
    /// the fast kernels (a group of images at a time for Winograd's).
    fn input_grad(&self, dout: Images, then: Then) -> Array4<f32> {
        let [n, c, h, w] = self.x_shape;
        let (_, fnum, oh, ow) = self
            .output_shape((n, c, h, w))
            .expect("the settings fitted in forward");
        let (_, _, fh, fw) = self.w.dim();
        let (positions, k, image_len) = (oh * ow, c * fh * fw, c * h * w);
        if n * positions * k * fnum == 0 {
            // Zero gradients, through a ReLU too.
            return Array4::zeros(self.x.raw_dim());
        }
        let kernel = self
            .direct_plan()
            .and_then(|plan| ConvKernel::input_grad(&plan, self.winograd, n));
        if let Some(kernel) = kernel {
            // Not zeroed first (as in forward_kept): the kernel writes every float.
            let mut dx = Array4::<f32>::uninit(self.x.raw_dim());
            let dx_flat = dx.as_slice_mut().expect("a fresh array is contiguous");
            let w_flat = self.w.as_slice().expect("kept in standard layout");
            let packed = kernel.pack_flipped(w_flat);
            kernel.run_batch(dout, &packed, None, dx_flat, then);
            // SAFETY: the kernel's output is the whole image (input_grad_plan), so the
            // chunks, together all of `dx`, were written in full.
            return unsafe { dx.assume_init() };
        }
        let mut dx = Array4::<f32>::zeros(self.x.raw_dim());
        let dx_flat = dx.as_slice_mut().expect("a fresh array is contiguous");
        // dcol_n = Wᵀ · dout_n in the transposed im2col layout, folded straight back onto
        // the image by col2im.
        let w_t = self.w_matrix().reversed_axes();
        let settings = (fh, fw, self.stride, self.pad);
        dx_flat.par_chunks_mut(image_len).enumerate().for_each_init(
            || (vec![0.0f32; k * positions], vec![0.0f32; fnum * positions]),
            |(dcol, buffer), (i, dx_n)| {
                let dout_n = dout.image(i, fnum, buffer);
                let dout_m = ArrayView2::from_shape((fnum, positions), dout_n)
                    .expect("FN x OH*OW gradients per image");
                let mut dcol_n = ArrayViewMut2::from_shape((k, positions), &mut dcol[..])
                    .expect("buffer of C*FH*FW x OH*OW");
                general_mat_mul(1.0, &w_t, &dout_m, 0.0, &mut dcol_n);
                col2im_t_image(dcol, (c, h, w), settings, (oh, ow), dx_n);
                then.apply(dx_n, i * image_len);
            },
        );
        dx
    }

    /// The weight part of [`Convolution::backward`]: stores `dw` and `db` without computing
    /// `dL/dx`, which a network's first layer does not need (its input is the images).
    pub fn backward_params(&mut self, dout: ArrayView4<f32>) {
        self.check_dout(dout.dim());
        let dout = dout.as_standard_layout();
        let dout_flat = dout.as_slice().expect("standard layout");
        self.backward_images(Gradient::Images(Images::Given(dout_flat)));
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
        let [n, c, h, w] = self.x_shape;
        let conv_shape = self
            .output_shape((n, c, h, w))
            .expect("the settings fitted in forward");
        let dout_pooled = dout_pooled.as_standard_layout();
        let grads = dout_pooled.as_slice().expect("standard layout");
        let per_image = pool.check_relu_pool_dout(dout_pooled.dim(), conv_shape);
        self.backward_images(Gradient::Pooled(pool, grads, per_image));
    }

    /// Panics unless `dout` has the shape of the last forward output.
    fn check_dout(&self, dout: (usize, usize, usize, usize)) {
        assert!(
            self.x_ready,
            "Convolution::backward called before Convolution::forward"
        );
        let [n, c, h, w] = self.x_shape;
        let expected = self
            .output_shape((n, c, h, w))
            .expect("the settings fitted in forward");
        assert_eq!(
            dout, expected,
            "Convolution::backward: dout has shape {dout:?}, which does not match the forward output {expected:?}"
        );
    }

    /// The weight gradients, image by image, with `gradient(n, buffer)` giving image n's
    /// `dL/dout` `(FN, OH*OW)`: `Some` slice of the layer's `dout` (not copied), or `None`
    /// after writing it into `buffer` (rebuilt from a pooled gradient):
    ///
    /// ```text
    /// dW = Σ_n dout_n (FN, OH*OW) · col_n (OH*OW, C*FH*FW)     db = Σ_n Σ_positions dout_n
    /// ```
    ///
    /// `col_n` is image n's im2col matrix in the book's layout, built again from the kept
    /// input (one per-worker buffer; that layout makes the `dW` product the faster one).
    /// With stride 1 the direct `dW` kernel reads the padded images instead, and where the
    /// forward pass uses Winograd's kernel and the layer has enough channels and filters
    /// (16 for F(4x4, 3x3), 32 for F(2x2, 3x3)), so does `dW`, with the same tile, a
    /// group of 8 images at a time (module `winograd::weight_grad`). Fixed runs of images
    /// are summed in parallel, each in image order, then the runs in order: the same
    /// result on every run, whatever the thread count.
    fn backward_images(&mut self, gradient: Gradient) {
        let mut partials = std::mem::take(&mut self.partials);
        let (dw, db) = self.weight_grads(&mut partials, gradient);
        (self.partials, self.dw, self.db) = (partials, dw, db);
    }

    /// [`Convolution::backward_images`]'s `dW` and `db`, with `partials` as the runs'
    /// buffer (the layer's own, taken out so that `dx` can be computed at the same time).
    fn weight_grads(
        &self,
        partials: &mut Vec<f32>,
        gradient: Gradient,
    ) -> (Array4<f32>, Array1<f32>) {
        let [n, c, h, w] = self.x_shape;
        let (_, fnum, oh, ow) = self
            .output_shape((n, c, h, w))
            .expect("the settings fitted in forward");
        let (_, _, fh, fw) = self.w.dim();
        let (positions, k, image_len) = (oh * ow, c * fh * fw, c * h * w);
        let mut dw = Array2::<f32>::zeros((fnum, k));
        let mut db = Array1::<f32>::zeros(fnum);
        if n * positions * k * fnum > 0 {
            let direct = self.direct_plan();
            let kernels = WeightGradKernels {
                image: (c, h, w),
                settings: (fh, fw, self.stride, self.pad),
                output: (fnum, oh, ow),
                direct: direct.map(|plan| (plan, WeightGradPlan::new(plan))),
                winograd: direct
                    .and_then(|plan| ConvKernel::forward(plan, self.winograd, n).weight_grad()),
                winners: direct
                    .filter(|_| matches!(gradient, Gradient::Pooled(..)))
                    .and_then(|_| {
                        let padded = (h + 2 * self.pad, w + 2 * self.pad);
                        WinnerGradPlan::new((fnum, c, fh, fw), padded)
                    }),
            };
            let runs = kernels.runs(n);
            let sums_len = kernels.winograd.map_or(0, |plan| plan.sums_len());
            // Each run's part: its dW, db and Winograd sums, in one buffer the layer keeps
            // (fresh buffers each step cost page faults).
            let part_len = fnum * k + fnum + sums_len;
            let parts = first_of(partials, runs.len() * part_len);
            let x_flat = self.x.as_slice().expect("kept in standard layout");
            parts
                .par_chunks_mut(part_len)
                .zip(runs.par_iter())
                .for_each(|(part, &(first, len))| {
                    let x_run = &x_flat[first * image_len..][..len * image_len];
                    kernels.run(first, x_run, &gradient, part);
                });
            // The runs' parts added in order (only the sums a run wrote); Winograd's sums
            // by add_weight_grad, which adds them in order too.
            let dw_flat = dw.as_slice_mut().expect("a fresh matrix");
            let mut winograd_sums = Vec::new();
            for (part, &(_, len)) in parts.chunks_exact(part_len).zip(&runs) {
                let (dw_part, db_and_sums) = part.split_at(fnum * k);
                let (db_part, sums_part) = db_and_sums.split_at(fnum);
                let (groups, left) = kernels.split_run(len);
                db.iter_mut().zip(db_part).for_each(|(d, p)| *d += p);
                if groups > 0 {
                    winograd_sums.push(sums_part);
                }
                if left > 0 {
                    dw_flat.iter_mut().zip(dw_part).for_each(|(d, p)| *d += p);
                }
            }
            if let Some(plan) = &kernels.winograd {
                plan.add_weight_grad(&winograd_sums, dw_flat);
            }
        }
        let dw = dw
            .into_shape_with_order(self.w.raw_dim())
            .expect("a fresh matrix reshapes without copying");
        (dw, db)
    }
}

/// Groups of images per run of Winograd's `dW` (see [`WeightGradKernels::runs`]). Each run
/// writes sums of its own, added in order at the end, and its bands of tiles are as long
/// as its rows of tiles allow (up to 32 tiles): longer runs mean fewer sums to write and
/// add, and for 8x8 images (4 tiles of F(4x4, 3x3) a group) longer bands. On a Zen 4 (2
/// threads, steps alternating in one process, medians of 30 rounds), runs of 4 groups
/// made DeepConvNet's training step 1.021 times as fast as runs of 2 (1.007 on one
/// thread); 6 were no faster than 4 (0.996), and at batch 100 leave fewer runs to share.
const WINOGRAD_RUN_GROUPS: usize = 4;

/// What [`Convolution::backward_images`] computes `dW` and `db` with, for one layer shape.
struct WeightGradKernels {
    /// An image `(C, H, W)`, the filter and its settings `(FH, FW, stride, pad)`, the
    /// output `(FN, OH, OW)`.
    image: (usize, usize, usize),
    settings: (usize, usize, usize, usize),
    output: (usize, usize, usize),
    /// With stride 1: the direct kernel's plans (its forward plan pads the images).
    direct: Option<(ForwardPlan, WeightGradPlan)>,
    /// Winograd's `dW`, for whole groups of images, where it applies.
    winograd: Option<WinogradGradPlan>,
    /// With stride 1, through a max pooling: `dW` from the pooling's winners, where it
    /// applies (`winner_grad`).
    winners: Option<WinnerGradPlan>,
}

impl WeightGradKernels {
    /// The batch of `n` images cut into the runs summed in parallel, `(first image,
    /// images)`: with Winograd's kernel, [`WINOGRAD_RUN_GROUPS`] groups a run, then the
    /// groups left one a run, then the images left over one by one (at batch 100: 3 runs
    /// of 32 images, then 4 of one); otherwise 10 images a run. The runs depend on `n`
    /// only, not on the thread count. (As runs of their own, both cores share the images
    /// left over: as one run of 4 they all went to one core, by the direct kernel, which
    /// is slower per image.)
    fn runs(&self, n: usize) -> Vec<(usize, usize)> {
        let lengths = if self.winograd.is_some() {
            let run = WINOGRAD_RUN_GROUPS * GROUP;
            let mut lengths = vec![run; n / run];
            lengths.extend(std::iter::repeat_n(GROUP, n % run / GROUP));
            lengths.extend(std::iter::repeat_n(1, n % GROUP));
            lengths
        } else {
            (0..n).step_by(10).map(|first| 10.min(n - first)).collect()
        };
        lengths
            .into_iter()
            .scan(0, |first, len| {
                *first += len;
                Some((*first - len, len))
            })
            .collect()
    }

    /// How many of a run's `images` go to Winograd's kernel (whole groups), and how many
    /// are left for the others.
    fn split_run(&self, images: usize) -> (usize, usize) {
        match self.winograd {
            Some(_) => (images / GROUP, images % GROUP),
            None => (0, images),
        }
    }

    /// One run of images, `x_run`, the first being image `first` of the batch: its `db`,
    /// and its `dW` or Winograd sums, into `part` (`dW`, then `db`, then the sums). `db`
    /// and `dW` are zeroed first and added to; Winograd's kernel writes its sums whole.
    fn run(&self, first: usize, x_run: &[f32], gradient: &Gradient, part: &mut [f32]) {
        let (c, h, w) = self.image;
        let (fnum, oh, ow) = self.output;
        let (positions, k, image_len) = (oh * ow, c * self.settings.0 * self.settings.1, c * h * w);
        let (dw_part, db_and_sums) = part.split_at_mut(fnum * k);
        let (db_part, sums) = db_and_sums.split_at_mut(fnum);
        let (groups, left) = self.split_run(x_run.len() / image_len);
        db_part.fill(0.0);
        GRAD_BUFFERS.with_borrow_mut(|buffers| {
            // Whole groups by Winograd's kernel, into its sums (turned into dW once for the
            // batch): all the groups' images and gradients interleaved, then one run.
            if let Some(plan) = &self.winograd
                && groups > 0
            {
                let (len, dlen) = (plan.padded_len(), plan.dout_len());
                let padded = first_of(&mut buffers.images, groups * len);
                let interleaved = first_of(&mut buffers.gradients, groups * dlen);
                // Room for a group's gradients, where `gradient` has to write them.
                let douts = first_of(&mut buffers.dout, GROUP * fnum * positions);
                for g in 0..groups {
                    let images = &x_run[g * GROUP * image_len..][..GROUP * image_len];
                    plan.pad_images(images, &mut padded[g * len..][..len]);
                    let interleaved = &mut interleaved[g * dlen..][..dlen];
                    let first_image = first + g * GROUP;
                    // The group's gradients as given, or rebuilt from a pooling's winners
                    // straight into the kernel's layout; through the first block's
                    // pooling, each image rebuilt in `douts` first.
                    let group = match *gradient {
                        Gradient::Images(images) => images.group(first_image, (fnum, oh, ow)),
                        Gradient::Pooled(..) => {
                            let mut group: [&[f32]; GROUP] = [&[]; GROUP];
                            for (i, (buffer, dout_i)) in douts
                                .chunks_exact_mut(fnum * positions)
                                .zip(group.iter_mut())
                                .enumerate()
                            {
                                *dout_i = gradient.image(first_image + i, fnum, buffer);
                            }
                            Group::Whole(group)
                        }
                    };
                    plan.interleave_dout(group, interleaved);
                    add_group_sums(interleaved, (oh, ow), plan.dout_plane(), db_part);
                }
                plan.run(padded, interleaved, sums);
            }
            if left == 0 {
                return;
            }
            // The images left, into dW: by the direct kernel (all the images and gradients
            // padded first, then one run), or by im2col and a product per image.
            dw_part.fill(0.0);
            let done = groups * GROUP;
            let images = x_run[done * image_len..].chunks_exact(image_len);
            // Through a max pooling, dW from the windows' winners only (`winner_grad`);
            // not for images with NaN or infinity: the sum over every output multiplies
            // them by its zero gradients (NaN), the winners' sum leaves them out.
            if let (Some(plan), Some(winner_plan), Gradient::Pooled(pool, grads, per_image)) = (
                self.direct.as_ref().map(|(plan, _)| plan),
                &self.winners,
                *gradient,
            ) && let Some(winners) = pool.winners()
                && all_finite(&x_run[done * image_len..])
            {
                let padded = first_of(&mut buffers.images, plan.padded_len());
                let patches = first_of(&mut buffers.patches, winner_plan.patches_len());
                for (i, image) in images.enumerate() {
                    let img = first + done + i;
                    plan.pad_image(image, padded);
                    winner_plan.patches(padded, patches);
                    let (winners, grads) = (
                        &winners[img * per_image..][..per_image],
                        &grads[img * per_image..][..per_image],
                    );
                    winner_plan.run(patches, winners, grads, dw_part, db_part);
                }
                return;
            }
            let buffer = first_of(&mut buffers.dout, fnum * positions);
            if let Some((plan, dw_plan)) = &self.direct {
                let (len, dlen) = (plan.padded_len(), dw_plan.padded_dout_len());
                let padded = first_of(&mut buffers.images, left * len);
                let dout_padded = first_of(&mut buffers.gradients, left * dlen);
                for (i, image) in images.enumerate() {
                    plan.pad_image(image, &mut padded[i * len..][..len]);
                    let dout_padded = &mut dout_padded[i * dlen..][..dlen];
                    let img = first + done + i;
                    if !gradient.by_position(img, dw_plan, dout_padded, db_part) {
                        let dout_n = image_grad(gradient, img, buffer, db_part);
                        dw_plan.pad_dout(dout_n, dout_padded);
                    }
                }
                dw_plan.run(padded, dout_padded, dw_part);
            } else {
                // im2col_image skips the padding's entries: they must be zeros.
                let col = first_of(&mut buffers.images, positions * k);
                col.fill(0.0);
                let mut dw_m = ArrayViewMut2::from_shape((fnum, k), dw_part).expect("FN x C*FH*FW");
                for (i, image) in images.enumerate() {
                    let dout_n = image_grad(gradient, first + done + i, buffer, db_part);
                    im2col_image(image, self.image, self.settings, (oh, ow), col);
                    let col_n = ArrayView2::from_shape((positions, k), &col[..])
                        .expect("buffer of OH*OW x C*FH*FW");
                    let dout_m = ArrayView2::from_shape((fnum, positions), dout_n)
                        .expect("buffer of FN x OH*OW");
                    general_mat_mul(1.0, &dout_m, &col_n, 1.0, &mut dw_m);
                }
            }
        });
    }
}

/// Where the weight gradients' `dL/dout` comes from.
#[derive(Clone, Copy)]
enum Gradient<'d> {
    /// Each image's `(FN, OH, OW)` as `Images` give it: the layer's `dout` `(N, FN, OH,
    /// OW)`, flat, or rebuilt from a 2x2 max pooling's gradients and winners (the same
    /// numbers, a group of images at a time).
    Images(Images<'d>),
    /// A fused block's pooling layer and the gradient of its pooled output, flat, with its
    /// number of values per image: each image's `dL/dout` is rebuilt from the pooling's
    /// winners.
    Pooled(&'d Pooling, &'d [f32], usize),
}

impl Gradient<'_> {
    /// Image `n`'s `dL/dout` `(FN, OH*OW)` (`filters` = FN): a slice of the given one, or
    /// rebuilt in `buffer` (`FN*OH*OW` floats).
    fn image<'b>(&'b self, n: usize, filters: usize, buffer: &'b mut [f32]) -> &'b [f32] {
        match *self {
            Gradient::Images(images) => images.image(n, filters, buffer),
            Gradient::Pooled(pool, grads, per_image) => {
                pool.backward_image(&grads[n * per_image..][..per_image], n, buffer);
                buffer
            }
        }
    }

    /// Image `n`'s `dL/dout` written straight into the layout `dw_plan` reads (see
    /// [`WeightGradPlan::filter_row_len`]), each filter's sum added into `db`, where the
    /// gradient comes from a fused pooling that can write it that way: one pass instead of
    /// the pooling's backward into `(FN, OH*OW)` and a transposed copy of it. Returns
    /// `false`, having done nothing, elsewhere.
    fn by_position(
        &self,
        n: usize,
        dw_plan: &WeightGradPlan,
        padded_dout: &mut [f32],
        db: &mut [f32],
    ) -> bool {
        let (Gradient::Pooled(pool, grads, per_image), Some(row_len)) =
            (*self, dw_plan.filter_row_len())
        else {
            return false;
        };
        // Room for the widest row: two vectors of 16 filters (the dW kernel's widest block).
        let mut lane_sums = [[0.0f32; 8]; 32];
        let Some(lane_sums) = lane_sums.get_mut(..row_len) else {
            return false;
        };
        let grads_n = &grads[n * per_image..][..per_image];
        if !pool.backward_image_by_position(grads_n, n, padded_dout, lane_sums) {
            return false;
        }
        for (sum, lanes) in db.iter_mut().zip(lane_sums.iter()) {
            *sum += combine_lanes(lanes, &[]);
        }
        true
    }
}

/// Image `n`'s `dL/dout` `(FN, OH*OW)`, from `gradient` (in `buffer` if it is rebuilt
/// there), after adding each filter's sum into `db`.
fn image_grad<'b>(
    gradient: &'b Gradient,
    n: usize,
    buffer: &'b mut [f32],
    db: &mut [f32],
) -> &'b [f32] {
    let dout_n = gradient.image(n, db.len(), buffer);
    let positions = dout_n.len() / db.len();
    for (sum, row) in db.iter_mut().zip(dout_n.chunks_exact(positions)) {
        *sum += sum_in_lanes(row);
    }
    dout_n
}

/// Adds to `db` each filter's sum of one group's gradients as Winograd's `dW` reads them
/// (`GROUP` images a pixel, each filter a plane of `(ht, wt)` pixels whose first `oh` rows
/// hold the `(oh, ow)` outputs): image by image, the sum [`image_grad`] takes of the
/// image's own gradients, bit for bit (`sum_in_lanes`: 8 partial sums, one for each of 8
/// consecutive outputs, then `combine_lanes`), with the 8 images in the lanes of each
/// addition. From there the gradients need not be whole anywhere else (see
/// `Images::Unpooled`).
fn add_group_sums(
    interleaved: &[f32],
    (oh, ow): (usize, usize),
    (ht, wt): (usize, usize),
    db: &mut [f32],
) {
    assert!(
        oh <= ht && ow <= wt && interleaved.len() == db.len() * ht * wt * GROUP,
        "add_group_sums: {} floats for {} planes of {oh}x{ow} in {ht}x{wt}",
        interleaved.len(),
        db.len()
    );
    #[cfg(target_arch = "x86_64")]
    if Simd::best() != Simd::Plain {
        // SAFETY: `Simd::best` found AVX2.
        unsafe { add_group_sums_avx2(interleaved, (oh, ow), (ht, wt), db) };
        return;
    }
    add_group_sums_here(interleaved, (oh, ow), (ht, wt), db);
}

/// [`add_group_sums`] compiled with AVX2: a vector per addition (8 vector registers of
/// partial sums).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_group_sums_avx2(
    interleaved: &[f32],
    oh_ow: (usize, usize),
    ht_wt: (usize, usize),
    db: &mut [f32],
) {
    add_group_sums_here(interleaved, oh_ow, ht_wt, db);
}

/// [`add_group_sums`], compiled for the caller's instructions.
#[inline(always)]
fn add_group_sums_here(
    interleaved: &[f32],
    (oh, ow): (usize, usize),
    (ht, wt): (usize, usize),
    db: &mut [f32],
) {
    let plane = oh * ow;
    let whole = plane / 8 * 8;
    let pixels = interleaved.as_chunks::<GROUP>().0;
    for (sum, pixels) in db.iter_mut().zip(pixels.chunks_exact(ht * wt)) {
        // partial[l][g]: image g's partial sum of the outputs at l, l + 8, ...; rest[j][g]:
        // its output whole + j.
        let mut partial = [[0.0f32; GROUP]; 8];
        let mut rest = [[0.0f32; GROUP]; 8];
        if wt == ow {
            // The outputs one after the other, as in the image.
            let (chunks, tail) = pixels[..plane].as_chunks::<8>();
            for chunk in chunks {
                for (partial, pixel) in partial.iter_mut().zip(chunk) {
                    for (p, v) in partial.iter_mut().zip(pixel) {
                        *p += v;
                    }
                }
            }
            rest[..tail.len()].copy_from_slice(tail);
        } else {
            for at in 0..plane {
                let pixel = &pixels[at / ow * wt + at % ow];
                if at < whole {
                    for (p, v) in partial[at % 8].iter_mut().zip(pixel) {
                        *p += v;
                    }
                } else {
                    rest[at - whole] = *pixel;
                }
            }
        }
        for g in 0..GROUP {
            let lanes: [f32; 8] = std::array::from_fn(|l| partial[l][g]);
            let tail: [f32; 8] = std::array::from_fn(|j| rest[j][g]);
            *sum += combine_lanes(&lanes, &tail[..plane - whole]);
        }
    }
}

/// A worker thread's buffers for [`Convolution::backward_images`], kept from one call
/// (and layer) to the next: every entry read was written in the same call first.
#[derive(Default)]
struct GradBuffers {
    /// The padded images (or one image's im2col matrix).
    images: Vec<f32>,
    /// The gradients, padded or interleaved for the kernels.
    gradients: Vec<f32>,
    /// The gradients of the images at hand, `(FN, OH*OW)` each.
    dout: Vec<f32>,
    /// One image's patches under every output, for `dW` from the pooling's winners
    /// (`WinnerGradPlan::patches`).
    patches: Vec<f32>,
}

thread_local! {
    /// Each worker thread's buffers for [`Convolution::forward_images`]: an image's
    /// im2col matrix and a run's feature maps, kept from one call (and layer) to the next
    /// (each split of the parallel loop allocated and zeroed its own: 0.6% of a
    /// DeepConvNet step). Every entry read was written in the same call first.
    static FORWARD_BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = RefCell::default();
    static GRAD_BUFFERS: RefCell<GradBuffers> = RefCell::default();
}

/// The sum of `values`, added in 8 interleaved partial sums, then those in a fixed order.
///
/// `iter().sum()` adds one number at a time into one total: each addition waits for the
/// one before (about 3 cycles), and the bias gradient of a convolution adds every output
/// gradient of the batch (1.7 million numbers per SimpleConvNet step, 1.6 ms). Eight
/// independent totals become one vector register and the additions overlap. The order is
/// fixed, so the result is the same on every run.
fn sum_in_lanes(values: &[f32]) -> f32 {
    let (chunks, rest) = values.as_chunks::<8>();
    let mut partial = [0.0f32; 8];
    for chunk in chunks {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += v;
        }
    }
    combine_lanes(&partial, rest)
}

/// The last steps of [`sum_in_lanes`]: its 8 partial sums (lane `l` holds the values at
/// `l`, `l + 8`, ...) added in a fixed order, then the values left after the last whole
/// chunk of 8.
fn combine_lanes(partial: &[f32; 8], rest: &[f32]) -> f32 {
    let pairs = [
        partial[0] + partial[4],
        partial[1] + partial[5],
        partial[2] + partial[6],
        partial[3] + partial[7],
    ];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + rest.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::winograd::Tile;

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

    /// Against an f64 sum of the same numbers, for lengths around the 8 lanes (an empty
    /// slice, a tail only, whole chunks, chunks and a tail).
    #[test]
    fn sum_in_lanes_agrees_with_a_sum_in_f64() {
        for len in [0usize, 1, 7, 8, 9, 16, 23, 576, 1001] {
            let values: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 97) as f32 / 13.0 - 3.0)
                .collect();
            let exact: f64 = values.iter().map(|&v| f64::from(v)).sum();
            let got = f64::from(sum_in_lanes(&values));
            assert!(
                (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                "len {len}: {got} vs {exact}"
            );
        }
    }

    /// The bias gradient's sums from a group's interleaved gradients are those
    /// `sum_in_lanes` takes of each image's own, bit for bit, in image order: planes
    /// stored as wide as the outputs and wider (Winograd's whole tiles), planes whose
    /// outputs fill whole lanes and planes with a tail.
    #[test]
    fn sums_of_interleaved_gradients_are_those_of_each_image_bit_for_bit() {
        for (fnum, (oh, ow), (ht, wt)) in [
            (3, (28, 28), (28, 28)),
            (2, (14, 14), (16, 16)),
            (2, (6, 10), (8, 12)),
            (1, (3, 3), (3, 3)),
        ] {
            // Magnitudes far apart, so that sums in another order round differently.
            let value = |f: usize, y: usize, x: usize, g: usize| {
                let i = (f * 131 + y * 31 + x * 7 + g * 3) * 7919;
                ((i % 1013) as f32 / 17.0 - 29.0) * [1.0, 3.7e-3, 1.3e2, 0.71, 5.3e1][i % 5]
            };
            let mut interleaved = vec![f32::NAN; fnum * ht * wt * GROUP];
            for f in 0..fnum {
                for y in 0..ht {
                    for x in 0..wt {
                        for g in 0..GROUP {
                            // Past the outputs: whole tiles' zeros.
                            interleaved[((f * ht + y) * wt + x) * GROUP + g] = if y < oh && x < ow {
                                value(f, y, x, g)
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            let mut expected = vec![0.25f32; fnum];
            for g in 0..GROUP {
                for (f, sum) in expected.iter_mut().enumerate() {
                    let plane: Vec<f32> =
                        (0..oh * ow).map(|i| value(f, i / ow, i % ow, g)).collect();
                    *sum += sum_in_lanes(&plane);
                }
            }
            let mut got = vec![0.25f32; fnum];
            add_group_sums(&interleaved, (oh, ow), (ht, wt), &mut got);
            for (f, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    e.to_bits(),
                    "{fnum}x{oh}x{ow} in {ht}x{wt}, filter {f}: {g} vs {e}"
                );
            }
        }
    }

    /// The convolution as the plain loops of `crate::multichannel`, one image at a time:
    /// independent of im2col and of this layer's GEMMs.
    fn naive(
        x: &Array4<f32>,
        w: &Array4<f32>,
        b: &Array1<f32>,
        stride: usize,
        pad: usize,
    ) -> Array4<f32> {
        let maps: Vec<_> = x
            .outer_iter()
            .map(|image| {
                crate::multichannel::conv_filter_bank(&image, w, b, pad, stride)
                    .expect("the test's settings fit")
            })
            .collect();
        let views: Vec<_> = maps.iter().map(|m| m.view()).collect();
        ndarray::stack(ndarray::Axis(0), &views).expect("maps of one shape")
    }

    /// The packed filters kept from one forward pass to the next never outlive the
    /// weights they were packed from: after each change (by hand, through the public
    /// `w`), and for a batch that runs another kernel with the same weights (one image:
    /// the direct kernel; 9: Winograd's for 8 of them), the outputs are bit for bit those
    /// of a fresh layer with the same weights (which packs anew), agree with the plain
    /// loops, and show the change.
    #[test]
    fn kept_packed_filters_follow_the_weights() {
        let (fnum, c) = (16, 16);
        let w = Array4::from_shape_fn((fnum, c, 3, 3), |(f, ch, i, j)| {
            ((f * 5 + ch * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        });
        let b = Array1::from_shape_fn(fnum, |f| f as f32 * 0.1);
        let images = |n: usize| {
            Array4::from_shape_fn((n, c, 10, 10), |(n, ch, i, j)| {
                ((n * 31 + ch * 17 + i * 7 + j * 3) % 11) as f32 - 5.0
            })
        };
        let bits = |y: &Array4<f32>| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // A forward pass of `n` images, checked against a fresh layer with the same
        // weights and against the plain loops.
        let forward = |conv: &mut Convolution, n: usize, what: &str| {
            let y = conv.forward(images(n).view()).unwrap();
            let mut fresh = Convolution::new(conv.w.clone(), b.clone(), 1, 1);
            let expected = fresh.forward(images(n).view()).unwrap();
            assert_eq!(bits(&y), bits(&expected), "{what}: against a fresh layer");
            let plain = naive(&images(n), &conv.w, &b, 1, 1);
            assert!(
                y.iter()
                    .zip(&plain)
                    .all(|(a, e)| (a - e).abs() <= 1e-3 * (1.0 + e.abs())),
                "{what}: against the plain loops"
            );
            y
        };
        let mut conv = Convolution::new(w, b.clone(), 1, 1);
        let before = forward(&mut conv, 9, "the first pass");
        conv.w[[3, 5, 1, 2]] += 0.5;
        forward(
            &mut conv,
            1,
            "weights changed by hand, one image (direct kernel)",
        );
        let after = forward(&mut conv, 9, "the same weights, Winograd's kernel");
        assert_ne!(
            bits(&after),
            bits(&before),
            "the change shows in the outputs"
        );
        conv.w[[0, 0, 0, 0]] = -conv.w[[0, 0, 0, 0]];
        forward(&mut conv, 9, "a sign changed by hand");
    }

    #[test]
    fn forward_matches_the_naive_loops_with_stride_and_padding() {
        let x = Array4::from_shape_fn((2, 2, 7, 7), |(n, c, i, j)| {
            ((n * 31 + c * 17 + i * 7 + j * 3) % 11) as f32 - 5.0
        });
        let w = Array4::from_shape_fn((3, 2, 3, 3), |(f, c, i, j)| {
            ((f * 5 + c * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        });
        let b = Array1::from(vec![0.5, -1.0, 0.25]);
        for (stride, pad) in [(1, 0), (2, 1), (1, 2)] {
            let mut conv = Convolution::new(w.clone(), b.clone(), stride, pad);
            let y = conv.forward(x.view()).unwrap();
            let expected = naive(&x, &w, &b, stride, pad);
            assert_eq!(y.dim(), expected.dim());
            assert!(
                y.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-4),
                "stride {stride} pad {pad}"
            );
        }
    }

    /// The backward pass against the book's formulas written with the public `im2col` and
    /// `col2im` on the whole batch: dW = doutᵀ·col, db = Σ dout, dx = col2im(dout·W).
    #[test]
    fn backward_matches_the_books_im2col_formulas() {
        use crate::batching::{col2im, im2col};
        let x = Array4::from_shape_fn((3, 2, 7, 7), |(n, c, i, j)| {
            ((n * 31 + c * 17 + i * 7 + j * 3) % 11) as f32 - 5.0
        });
        let w = Array4::from_shape_fn((4, 2, 3, 3), |(f, c, i, j)| {
            ((f * 5 + c * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        });
        for (stride, pad) in [(1, 0), (2, 1), (1, 2)] {
            let mut conv = Convolution::new(w.clone(), Array1::zeros(4), stride, pad);
            let y = conv.forward(x.view()).unwrap();
            let (n, fnum, oh, ow) = y.dim();
            let dout = Array4::from_shape_fn(y.dim(), |(a, b, i, j)| {
                ((a * 7 + b * 5 + i * 3 + j) % 9) as f32 - 4.0
            });
            let dx = conv.backward(dout.view());
            // dout in the book's (N*OH*OW, FN) layout.
            let dout_rows = dout
                .view()
                .permuted_axes([0, 2, 3, 1])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((n * oh * ow, fnum))
                .unwrap();
            let col = im2col(x.view(), 3, 3, stride, pad).unwrap();
            let w2 = w.view().into_shape_with_order((fnum, 18)).unwrap();
            let dw = dout_rows
                .t()
                .dot(&col)
                .into_shape_with_order((4, 2, 3, 3))
                .unwrap();
            let db = dout_rows.sum_axis(ndarray::Axis(0));
            let dx_ref =
                col2im(dout_rows.dot(&w2).view(), [3, 2, 7, 7], 3, 3, stride, pad).unwrap();
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-3);
            assert!(
                close(conv.dw.as_slice().unwrap(), dw.as_slice().unwrap()),
                "dW {stride} {pad}"
            );
            assert!(
                close(conv.db.as_slice().unwrap(), db.as_slice().unwrap()),
                "db {stride} {pad}"
            );
            assert!(
                close(dx.as_slice().unwrap(), dx_ref.as_slice().unwrap()),
                "dx {stride} {pad}"
            );
        }
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

    /// The direct (stride-1, im2col-free) kernels against the im2col path, forward and
    /// backward, over shapes that exercise every register block and the partial blocks at
    /// the edges (filter counts and widths that are not multiples of the blocks).
    #[test]
    fn direct_kernels_match_the_im2col_path() {
        let shapes = [
            // (N, C, H, W, FN, F, pad)
            (3, 1, 28, 28, 30, 5, 0), // SimpleConvNet's layer
            (2, 1, 9, 11, 1, 3, 1),
            (2, 3, 7, 13, 5, 3, 0),
            (2, 2, 8, 8, 13, 3, 2),
            (2, 4, 6, 6, 64, 3, 1),   // 8-wide outputs: the 12-filter block
            (11, 2, 14, 14, 7, 3, 1), // a second group of images
            (2, 3, 10, 9, 4, 5, 4),   // pad >= F - 1: dx falls back to im2col
            (3, 6, 9, 10, 5, 3, 0),   // dx by the direct kernel (4 or more channels)
            (2, 32, 6, 6, 32, 3, 1),  // filters packed in parallel (8,192 floats or more)
            // Winograd (3x3, 8 or more channels, a group of 8 images) forward and for dx,
            // with images left over for the direct kernel (10 and 11: 8 + the rest).
            (10, 8, 9, 9, 12, 3, 1),
            (11, 16, 8, 8, 9, 3, 2), // pad 2: dx with pad 0
            (8, 9, 7, 6, 8, 3, 0),
            // Winograd's dW too (F(2x2, 3x3) with 32 or more channels and filters, F(4x4,
            // 3x3) with 16 or more): a run of a group, then 3 runs of one image (11); two
            // runs of a group, then 4 of one image (20); 16 channels with F(4x4, 3x3), in
            // runs of a group and of one image (10, 27), and a run of 4 groups, then
            // two of one image (34, with pad 2).
            (11, 32, 6, 6, 33, 3, 1),
            (20, 32, 5, 7, 32, 3, 0),
            (10, 16, 8, 8, 16, 3, 1),
            (27, 16, 8, 8, 16, 3, 1),
            (34, 16, 8, 8, 16, 3, 2),
        ];
        for (n, c, h, w, fnum, f, pad) in shapes {
            let x = Array4::from_shape_fn((n, c, h, w), |(a, b, i, j)| {
                ((a * 31 + b * 17 + i * 7 + j * 3) % 13) as f32 / 6.0 - 1.0
            });
            let wts = Array4::from_shape_fn((fnum, c, f, f), |(a, b, i, j)| {
                ((a * 5 + b * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
            });
            let b = Array1::from_shape_fn(fnum, |i| i as f32 * 0.1 - 0.3);
            let mut fast = Convolution::new(wts.clone(), b.clone(), 1, pad);
            let mut plain = Convolution::new(wts, b, 1, pad);
            plain.direct = false;
            let y = fast.forward(x.view()).unwrap();
            let direct = fast.direct_plan();
            assert!(
                direct.is_some(),
                "the direct path applies to {:?}",
                (c, h, w, f, pad)
            );
            if c >= 8 && f == 3 && n >= 8 && std::env::var_os("CNN_FROM_SCRATCH_WINOGRAD").is_none()
            {
                let kernel = direct.map(|plan| ConvKernel::forward(plan, true, n));
                assert!(
                    kernel.is_some_and(|k| k.uses_winograd()),
                    "Winograd for {:?}",
                    (n, c, f)
                );
                let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
                let least = match Tile::for_output((oh, ow)) {
                    Tile::F2x2 => 32,
                    Tile::F4x4 => 16,
                };
                assert_eq!(
                    kernel.and_then(|k| k.weight_grad()).is_some(),
                    c.min(fnum) >= least,
                    "Winograd's dW for {:?}",
                    (n, c, fnum)
                );
            }
            let y_plain = plain.forward(x.view()).unwrap();
            let dout = Array4::from_shape_fn(y.dim(), |(a, b, i, j)| {
                ((a * 7 + b * 5 + i * 3 + j) % 9) as f32 - 4.0
            });
            let dx = fast.backward(dout.view());
            let dx_plain = plain.backward(dout.view());
            let close = |a: &[f32], b: &[f32], what: &str| {
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
                    .fold(0.0f32, f32::max);
                assert!(
                    a.len() == b.len() && worst < 1e-4,
                    "{what} {:?}: off by {worst}",
                    (n, c, h, w, fnum, f, pad)
                );
            };
            close(
                y.as_slice().unwrap(),
                y_plain.as_slice().unwrap(),
                "forward",
            );
            close(
                fast.dw.as_slice().unwrap(),
                plain.dw.as_slice().unwrap(),
                "dW",
            );
            close(
                fast.db.as_slice().unwrap(),
                plain.db.as_slice().unwrap(),
                "db",
            );
            close(dx.as_slice().unwrap(), dx_plain.as_slice().unwrap(), "dx");
        }
    }

    /// A NaN pixel in the last column: the direct dW kernel reads past the end of output
    /// rows, but those lanes must count as 0, so exactly the same dW entries become NaN
    /// as with im2col.
    #[test]
    fn direct_dw_ignores_pixels_past_the_output_rows() {
        let mut x = Array4::from_shape_fn((2, 1, 9, 9), |(a, _, i, j)| (a + i + j) as f32 / 10.0);
        x[[1, 0, 4, 8]] = f32::NAN;
        let wts = Array4::from_elem((3, 1, 3, 3), 0.5);
        let mut fast = Convolution::new(wts.clone(), Array1::zeros(3), 1, 0);
        let mut plain = Convolution::new(wts, Array1::zeros(3), 1, 0);
        plain.direct = false;
        let dout = Array4::from_elem(fast.forward(x.view()).unwrap().dim(), 1.0);
        plain.forward(x.view()).unwrap();
        fast.backward_params(dout.view());
        plain.backward_params(dout.view());
        let nan = |a: &Array4<f32>| a.iter().map(|v| v.is_nan()).collect::<Vec<_>>();
        assert_eq!(nan(&fast.dw), nan(&plain.dw));
        assert!(nan(&plain.dw).contains(&false) && nan(&plain.dw).contains(&true));
    }

    /// An empty batch gives an empty output of the right shape (the forward pass does not
    /// zero its output first, and has nothing to write here).
    #[test]
    fn an_empty_batch_gives_an_empty_output() {
        let mut conv = Convolution::new(Array4::ones((2, 1, 3, 3)), Array1::zeros(2), 1, 1);
        let out = conv.forward(Array4::zeros((0, 1, 5, 5)).view()).unwrap();
        assert_eq!(out.dim(), (0, 2, 5, 5));
    }

    #[test]
    fn settings_that_do_not_fit_are_errors() {
        let mut conv = Convolution::new(Array4::zeros((1, 1, 3, 3)), Array1::zeros(1), 2, 0);
        // (6 - 3) / 2 is not whole.
        assert!(matches!(
            conv.forward(Array4::zeros((1, 1, 6, 6)).view()),
            Err(SettingError::NotWhole {
                numerator: 3,
                stride: 2,
                ..
            })
        ));
    }
}
