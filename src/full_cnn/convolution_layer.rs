//! The Convolution layer (畳み込み層) with its backward pass, computed with
//! [`im2col`](crate::batching::im2col) as one matrix product each way.
//!
//! This file is the layer as the book writes it: `forward`, `backward`, and the im2col
//! path both take when no faster kernel applies. Two files beside it hold what a
//! network adds, and can wait for a second reading: `fused.rs`, the passes that take a
//! ReLU or a max pooling inside the convolution's own pass, and `weight_grads.rs`, `dW`
//! and `db` by the fast kernels (which live in [`kernels`](super::kernels)).

use std::cell::RefCell;
use std::sync::Arc;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array4, ArrayView2, ArrayView4, ArrayViewMut2};
use rayon::prelude::*;

use super::kernels::conv_kernel::{ConvKernel, Images, PackCache, PackedFilters, Then};
use super::kernels::direct_conv::{ForwardPlan, first_of};
use super::kernels::simd::as_output;
use crate::batching::{col2im_t_image, im2col_t_image};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

mod fused;
mod weight_grads;

use weight_grads::Gradient;

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
/// With stride 1 (most CNNs) the layer skips im2col and its faster kernels compute the same
/// sums: the direct kernel reads each filter position's pixels straight from the padded
/// image (module `kernels::direct_conv`), and for 3x3 filters over 8 or more channels, 8
/// images at a time, Winograd's F(4x4, 3x3) needs 4 times fewer multiplications and F(2x2,
/// 3x3) 2.25 times (module `kernels::winograd`: F(4x4, 3x3) forward and for `dx` where the
/// output's size suits it, F(2x2, 3x3) for the other sizes, and the same tile for `dW` with
/// 16 or more channels and filters (32 with F(2x2, 3x3)); the environment variable
/// `CNN_FROM_SCRATCH_WINOGRAD=0` turns it off, `=2` keeps to F(2x2, 3x3)). The results
/// agree with im2col's to rounding; the tests compare each kernel with the im2col path,
/// forward and backward.
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

    /// The output shape `(N, FN, OH, OW)` of the kept input, whose settings were checked
    /// when it was kept.
    fn kept_output_shape(&self) -> (usize, usize, usize, usize) {
        let [n, c, h, w] = self.x_shape;
        self.output_shape((n, c, h, w))
            .expect("the settings fitted in forward")
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
        let [n, c, _, _] = self.x_shape;
        let shape = self.kept_output_shape();
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
        let (_, fnum, oh, ow) = self.kept_output_shape();
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
    /// shape: stride 1 (see the module `kernels::direct_conv`), unless switched off for a
    /// test.
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

    /// [`Convolution::backward`], and through the ReLU before the layer if `through_relu`.
    fn backward_then(&mut self, dout: ArrayView4<f32>, through_relu: bool) -> Array4<f32> {
        self.check_dout(dout.dim());
        let dout = dout.as_standard_layout();
        let dout_flat = dout.as_slice().expect("standard layout");
        self.gradients(Images::Given(dout_flat), through_relu)
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
        let (_, fnum, oh, ow) = self.kept_output_shape();
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

    /// Panics unless `dout` has the shape of the last forward output.
    fn check_dout(&self, dout: (usize, usize, usize, usize)) {
        assert!(
            self.x_ready,
            "Convolution::backward called before Convolution::forward"
        );
        let expected = self.kept_output_shape();
        assert_eq!(
            dout, expected,
            "Convolution::backward: dout has shape {dout:?}, which does not match the forward output {expected:?}"
        );
    }
}

thread_local! {
    /// Each worker thread's buffers for [`Convolution::forward_images`]: an image's
    /// im2col matrix and a run's feature maps, kept from one call (and layer) to the next
    /// (each split of the parallel loop allocated and zeroed its own: 0.6% of a
    /// DeepConvNet step). Every entry read was written in the same call first.
    static FORWARD_BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = RefCell::default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::kernels::winograd::Tile;

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
