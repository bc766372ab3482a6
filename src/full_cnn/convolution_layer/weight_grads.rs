//! The weight gradients of a [`Convolution`], `dW` and `db`, by the fast kernels where
//! they apply: the book's `dW = doutᵀ · col` summed over the batch in fixed runs of
//! images, in parallel, each run by Winograd's `dW` (whole groups of 8 images), from a
//! max pooling's winners, by the direct `dW` kernel or by im2col and a matrix product.

use std::cell::RefCell;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::Convolution;
use crate::batching::im2col_image;
use crate::full_cnn::Pooling;
use crate::full_cnn::kernels::conv_kernel::{ConvKernel, Images};
use crate::full_cnn::kernels::direct_conv::{ForwardPlan, WeightGradPlan, first_of};
use crate::full_cnn::kernels::simd::{Simd, all_finite};
use crate::full_cnn::kernels::winner_grad::WinnerGradPlan;
use crate::full_cnn::kernels::winograd::{GROUP, Group, WinogradGradPlan};

impl Convolution {
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
    /// (16 for F(4x4, 3x3), 32 for F(2x2, 3x3)), so does `dW`, with the same tile, a group
    /// of 8 images at a time (module `kernels::winograd::weight_grad`). Fixed runs of
    /// images are summed in parallel, each in image order, then the runs in order: the same
    /// result on every run, whatever the thread count.
    pub(super) fn backward_images(&mut self, gradient: Gradient) {
        let mut partials = std::mem::take(&mut self.partials);
        let (dw, db) = self.weight_grads(&mut partials, gradient);
        (self.partials, self.dw, self.db) = (partials, dw, db);
    }

    /// [`Convolution::backward_images`]'s `dW` and `db`, with `partials` as the runs'
    /// buffer (the layer's own, taken out so that `dx` can be computed at the same time).
    pub(super) fn weight_grads(
        &self,
        partials: &mut Vec<f32>,
        gradient: Gradient,
    ) -> (Array4<f32>, Array1<f32>) {
        let [n, c, h, w] = self.x_shape;
        let (_, fnum, oh, ow) = self.kept_output_shape();
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
pub(super) enum Gradient<'d> {
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
    /// Each worker thread's [`GradBuffers`].
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
}
