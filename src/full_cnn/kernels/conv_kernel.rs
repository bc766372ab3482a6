//! Which fast kernel computes a stride-1 convolution (forward, and `dx` as a convolution
//! with flipped filters): Winograd's F(4x4, 3x3) or F(2x2, 3x3) for 3x3 filters over
//! several channels, [`GROUP`] images at a time, and the direct kernel for the others and
//! for the images left over. Either way: pack the filters once per pass (or not at all,
//! when the weights are those of the last pass: [`PackCache`]), then run any number of
//! images.

use std::cell::RefCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use super::direct_conv::{ForwardPlan, first_of, input_grad_plan};
use super::simd::Simd;
use super::winograd::{GROUP, Group, Tile, WinogradGradPlan, WinogradPlan};
use crate::pooling::BLOCKED;

/// Fewest input channels for Winograd. Its input transform costs per channel and its
/// output transform per filter, while the multiplications it saves are per channel *and*
/// filter: with 16 of each it was only 1.15x faster than the direct kernel (DeepConvNet's
/// second layer), so with fewer than 8 channels it would likely lose (not measured).
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Fewest input channels and filters for Winograd's `dW`, by tile. Its transforms cost
/// per channel and per filter, its savings per channel *and* filter: measured on one core
/// against the direct `dW` kernel (same process, interleaved, runs of 16 images),
/// DeepConvNet's layers of 16 filters over 16 channels and 32 over 16 took 0.98-1.15
/// times the direct kernel's time with F(2x2, 3x3), 0.72-0.74 and 0.88-0.93 with F(4x4,
/// 3x3); those of 32 over 32, 64 over 32 and 64 over 64 0.72-0.83 times with F(2x2, 3x3),
/// 0.56-0.63 with F(4x4, 3x3).
const fn winograd_dw_min_channels(tile: Tile) -> usize {
    match tile {
        Tile::F2x2 => 32,
        Tile::F4x4 => 16,
    }
}

/// The kernels for one layer shape: the direct one always (it also takes the images
/// that do not fill a group), Winograd's where it applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConvKernel {
    direct: ForwardPlan,
    winograd: Option<WinogradPlan>,
}

/// What [`ConvKernel::run_batch`] does to each run's outputs right after the kernel wrote
/// them, while they are still in the cache: a ReLU's pass, done there instead of over the
/// whole tensor afterwards (when a ReLU sits between two convolutions, as three times in
/// DeepConvNet; see `Network::forward`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Then<'a> {
    /// Nothing: the convolution's outputs as they are.
    Keep,
    /// The ReLU after the convolution: `y = max(0, y)`, as `Relu::forward` computes it.
    Relu,
    /// The ReLU before the convolution, backwards: each output (a gradient `dL/dx`) is
    /// zeroed where the same entry of `relu_output` (the convolution's input, as long as
    /// the outputs) is not positive, where that ReLU blocked the gradient
    /// (`max(0, x) > 0` exactly where `x > 0`, as `Relu::backward` passes it).
    ThroughRelu(&'a [f32]),
}

impl Then<'_> {
    /// Applies the step to `out`, the outputs from entry `at` of the batch on (compiled
    /// for AVX2 where the processor has it: twice the floats per instruction of the
    /// plain build's SSE).
    pub(crate) fn apply(self, out: &mut [f32], at: usize) {
        #[cfg(target_arch = "x86_64")]
        if Simd::best() != Simd::Plain {
            // SAFETY: `Simd::best` found AVX2.
            unsafe { self.apply_avx2(out, at) };
            return;
        }
        self.apply_here(out, at);
    }

    /// [`Then::apply_here`] in AVX2 intrinsics: each output ANDed with the mask of a
    /// comparison (`y > 0`, or the ReLU's output `> 0`), all bits or none, so the result
    /// is bit for bit `apply_here`'s (`+0.0` where it zeroes) and every vector is stored.
    /// (Compiled from the plain loop, the compiler stored only the zeros, by
    /// `vmaskmovps`: on AMD's Zen processors a masked store is microcoded and slow, and
    /// this pass took 5% of DeepConvNet's step on a Zen 4.)
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(self, out: &mut [f32], at: usize) {
        use std::arch::x86_64::*;
        const LANES: usize = 8;
        let zero = _mm256_setzero_ps();
        let len = out.len();
        let (vectors, _) = out.as_chunks_mut::<LANES>();
        let done = vectors.len() * LANES;
        match self {
            Then::Keep => return,
            Then::Relu => {
                for y in vectors {
                    // SAFETY: 8 floats at `y`, read and written.
                    unsafe {
                        let v = _mm256_loadu_ps(y.as_ptr());
                        let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero);
                        _mm256_storeu_ps(y.as_mut_ptr(), _mm256_and_ps(v, positive));
                    }
                }
            }
            Then::ThroughRelu(relu_output) => {
                let relu_output = &relu_output[at..][..len];
                let (relu_outputs, _) = relu_output.as_chunks::<LANES>();
                for (g, y) in vectors.iter_mut().zip(relu_outputs) {
                    // SAFETY: 8 floats at `g` (read and written) and at `y` (read).
                    unsafe {
                        let passed = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(y.as_ptr()), zero);
                        let v = _mm256_loadu_ps(g.as_ptr());
                        _mm256_storeu_ps(g.as_mut_ptr(), _mm256_and_ps(v, passed));
                    }
                }
            }
        }
        self.apply_here(&mut out[done..], at + done);
    }

    /// [`Then::apply`], compiled for the caller's instructions.
    #[inline(always)]
    fn apply_here(self, out: &mut [f32], at: usize) {
        match self {
            Then::Keep => {}
            Then::Relu => out
                .iter_mut()
                .for_each(|y| *y = if *y > 0.0 { *y } else { 0.0 }),
            Then::ThroughRelu(relu_output) => {
                let relu_output = &relu_output[at..][..out.len()];
                out.iter_mut()
                    .zip(relu_output)
                    .for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 });
            }
        }
    }
}

/// A kernel's input images: given, or rebuilt group by group from a max pooling's
/// gradients.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Images<'a> {
    /// `(C, H, W)` images, one after the other.
    Given(&'a [f32]),
    /// The gradients a 2x2 max pooling with stride 2 passes back to its `(C, H, W)`
    /// inputs (`H`, `W` even), from each image's gradients of the pooled output, `(C, H/2,
    /// W/2)`, and their winners (as `Pooling` keeps them, `BLOCKED` passing nothing): each
    /// group's are rebuilt straight into Winograd's interleaved layout, so the full-size
    /// gradients (a tensor as large as the layer's input) are never written.
    Unpooled {
        grads: &'a [f32],
        winners: &'a [u32],
    },
}

impl<'a> Images<'a> {
    /// Image `n`, of `planes` planes and as long as `buffer`: a slice of the given images,
    /// or rebuilt in `buffer`.
    pub(crate) fn image<'b>(self, n: usize, planes: usize, buffer: &'b mut [f32]) -> &'b [f32]
    where
        'a: 'b,
    {
        match self {
            Images::Given(images) => &images[n * buffer.len()..][..buffer.len()],
            Images::Unpooled { grads, winners } => {
                unpool_image((grads, winners), n, planes, buffer);
                buffer
            }
        }
    }

    /// The `GROUP` images of `(c, h, w)` from image `first` on, as Winograd's interleaving
    /// reads them (nothing copied).
    pub(crate) fn group(&self, first: usize, (c, h, w): (usize, usize, usize)) -> Group<'a> {
        match *self {
            Images::Given(images) => {
                let len = c * h * w;
                Group::Whole(std::array::from_fn(|g| &images[(first + g) * len..][..len]))
            }
            Images::Unpooled { grads, winners } => {
                let len = c * (h / 2) * (w / 2);
                Group::Unpooled(std::array::from_fn(|g| {
                    let at = (first + g) * len;
                    (&grads[at..][..len], &winners[at..][..len])
                }))
            }
        }
    }
}

/// Image `n`'s gradient of a max pooling's input, `image` (its `planes` planes one after
/// the other), from the gradients of the batch's pooled outputs and their winners (the
/// flat index of the winning pixel in its plane, `BLOCKED` passing nothing; the windows
/// do not overlap, a quarter as many as pixels): each winner gets its window's gradient,
/// every other pixel zero.
pub(crate) fn unpool_image(
    (grads, winners): (&[f32], &[u32]),
    n: usize,
    planes: usize,
    image: &mut [f32],
) {
    let pooled_len = image.len() / 4;
    let (grads, winners) = (
        &grads[n * pooled_len..][..pooled_len],
        &winners[n * pooled_len..][..pooled_len],
    );
    assert!(
        planes > 0 && image.len() == 4 * pooled_len,
        "unpooling {pooled_len} gradients of {planes} planes into {} pixels",
        image.len()
    );
    image.fill(0.0);
    let (plane_len, pooled_len) = (image.len() / planes, pooled_len / planes);
    let pooled_planes = grads
        .chunks_exact(pooled_len)
        .zip(winners.chunks_exact(pooled_len));
    for (plane, (grads, winners)) in image.chunks_exact_mut(plane_len).zip(pooled_planes) {
        for (&grad, &winner) in grads.iter().zip(winners) {
            if winner != BLOCKED {
                plane[winner as usize] = grad;
            }
        }
    }
}

/// The filters packed for a [`ConvKernel`]: for the direct kernel, and for Winograd's if
/// the kernel has it.
pub(crate) struct PackedFilters {
    direct: Vec<f32>,
    winograd: Vec<f32>,
}

/// The filters a layer's forward pass packed last, kept with the kernel and the weights
/// they were packed for, so that the next pass with the same weights (inference, batch
/// after batch) reuses them instead of packing them again. The weights are compared bit
/// for bit on every call, so weights changed in any way (by an optimiser, by
/// `set_params`, or by hand through the layer's public `w`) are packed afresh. The
/// comparison is one pass over the weights; the packing computes and writes 4 times as
/// many floats for Winograd's F(4x4, 3x3) (36 for each filter's 9 weights), plus the
/// direct kernel's. DeepConvNet's inference at batch 1 (direct kernels only) became
/// 1.12-1.14 times as fast, at batch 100 1.034 (bench binaries alternating, and in one
/// process); training, which changes the weights every step, level (0.997).
#[derive(Default)]
pub(crate) struct PackCache(Mutex<Option<Kept>>);

/// What [`PackCache`] keeps: the filters packed for `kernel` from `weights`.
struct Kept {
    kernel: ConvKernel,
    weights: Vec<f32>,
    packed: Arc<PackedFilters>,
}

impl PackCache {
    /// `w` `(FN, C, FH, FW)` (standard layout) packed for `kernel`: the kept packing if it
    /// was made for the same kernel from the same weights, else a new one, kept in its
    /// place.
    pub(crate) fn packed(&self, kernel: &ConvKernel, w: &[f32]) -> Arc<PackedFilters> {
        // The lock is not held while packing (which runs parallel loops).
        if let Some(kept) = &*self.lock()
            && kept.kernel == *kernel
            && same_bits(&kept.weights, w)
        {
            return Arc::clone(&kept.packed);
        }
        let packed = Arc::new(kernel.pack_filters(w));
        let mut kept = self.lock();
        // The weights' buffer reused from one pass to the next (training packs anew each
        // step).
        let mut weights = kept.take().map_or_else(Vec::new, |kept| kept.weights);
        weights.clear();
        weights.extend_from_slice(w);
        *kept = Some(Kept {
            kernel: *kernel,
            weights,
            packed: Arc::clone(&packed),
        });
        packed
    }

    fn lock(&self) -> MutexGuard<'_, Option<Kept>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A copy of a layer starts with nothing kept (it packs on its first pass).
impl Clone for PackCache {
    fn clone(&self) -> Self {
        PackCache::default()
    }
}

impl fmt::Debug for PackCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PackCache")
    }
}

/// The first 9 floats of `w`: a 3x3 filter stored row by row.
fn first_nine(w: &[f32]) -> [f32; 9] {
    w[..9].try_into().expect("nine floats")
}

/// Whether `a` and `b` hold the same floats bit for bit (`-0.0` is not `0.0`, and a NaN
/// is itself), in blocks without an early exit, so that the comparison runs on vectors.
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.chunks(1024).zip(b.chunks(1024)).all(|(a, b)| {
            a.iter()
                .zip(b)
                .fold(true, |same, (x, y)| same & (x.to_bits() == y.to_bits()))
        })
}

/// A thread's buffers for [`ConvKernel::run`], kept from one call (and layer) to the next.
#[derive(Default)]
struct ConvBuffers {
    padded: Vec<f32>,
    scratch: Vec<f32>,
    /// Winograd's (kept apart, so that neither kernel's buffers shrink for the other's).
    padded_group: Vec<f32>,
    scratch_group: Vec<f32>,
    /// An image rebuilt from [`Images::Unpooled`].
    image: Vec<f32>,
}

thread_local! {
    /// Each worker thread's buffers. The kernels write every entry whose value reaches an
    /// output before reading it (what the vector loads read past the end only feeds lanes
    /// that are dropped), so what a buffer held before does not matter, and it is zeroed
    /// only when it grows (a fresh buffer per call zeroed megabytes per layer: 3% of a
    /// DeepConvNet inference).
    static BUFFERS: RefCell<ConvBuffers> = RefCell::default();
}

impl ConvKernel {
    /// The kernels for the layer whose direct plan is `direct`: that plan, with Winograd's
    /// for the same shape when it applies, `winograd` allows it and a run will have at least
    /// a group of `images`.
    pub(crate) fn forward(direct: ForwardPlan, winograd: bool, images: usize) -> ConvKernel {
        let (filters, image, pad) = direct.shape();
        let winograd = winograd_tile()
            .filter(|_| winograd && images >= GROUP && filters.1 >= WINOGRAD_MIN_CHANNELS)
            .map(|tile| match tile {
                Tile::F2x2 => Tile::F2x2,
                Tile::F4x4 => Tile::for_output(direct.output()),
            })
            .and_then(|tile| WinogradPlan::with_simd(filters, image, pad, direct.simd(), tile));
        ConvKernel { direct, winograd }
    }

    /// The kernel for `dx` (see [`input_grad_plan`]), if the direct kernel can compute it.
    pub(crate) fn input_grad(
        direct: &ForwardPlan,
        winograd: bool,
        images: usize,
    ) -> Option<ConvKernel> {
        input_grad_plan(direct).map(|plan| ConvKernel::forward(plan, winograd, images))
    }

    /// Whether Winograd's kernel is used (for a full group of images).
    #[cfg(test)]
    pub(crate) fn uses_winograd(&self) -> bool {
        self.winograd.is_some()
    }

    /// Winograd's plan for `dW` (module `winograd::weight_grad`), with the forward pass's
    /// tile, where this kernel (the layer's forward kernel) uses Winograd and the layer
    /// has at least [`winograd_dw_min_channels`] channels and filters.
    pub(crate) fn weight_grad(&self) -> Option<WinogradGradPlan> {
        let (filters, _, _) = self.direct.shape();
        self.winograd
            .filter(|plan| filters.0.min(filters.1) >= winograd_dw_min_channels(plan.tile()))
            .map(WinogradGradPlan::new)
    }

    /// How many images a worker should take at a time.
    pub(crate) fn images_per_run(&self) -> usize {
        if self.winograd.is_some() { GROUP } else { 1 }
    }

    /// The filters `w` `(FN, C, FH, FW)`, stored flat in standard layout, packed for the
    /// kernels (the direct kernel's by [`ForwardPlan::pack_filters`]).
    pub(crate) fn pack_filters(&self, w: &[f32]) -> PackedFilters {
        let ((_, c, _, _), _, _) = self.direct.shape();
        PackedFilters {
            // Winograd's filters are 3x3: filter f's over channel ch are w[(f*C + ch)*9..].
            winograd: self.winograd.map_or_else(Vec::new, |plan| {
                plan.pack_weights(|f, ch| first_nine(&w[(f * c + ch) * 9..]))
            }),
            direct: self.direct.pack_filters(w),
        }
    }

    /// The layer's filters `w` `(FN, C, FH, FW)` (standard layout) flipped and with their
    /// two channel axes swapped, packed for an [`ConvKernel::input_grad`] kernel (whose
    /// filter `f` is the layer's channel `f`, and its channel `ch` the layer's filter `ch`).
    pub(crate) fn pack_flipped(&self, w: &[f32]) -> PackedFilters {
        // This kernel's filters are the layer's channels.
        let ((layer_c, _, _, _), _, _) = self.direct.shape();
        PackedFilters {
            winograd: self.winograd.map_or_else(Vec::new, |plan| {
                plan.pack_weights(|f, ch| {
                    let filter = first_nine(&w[(ch * layer_c + f) * 9..]);
                    std::array::from_fn(|k| filter[8 - k])
                })
            }),
            direct: self.direct.pack_flipped(w),
        }
    }

    /// [`ConvKernel::run`] over a whole batch: `images` and `out` cut into the kernel's
    /// runs ([`ConvKernel::images_per_run`] images each), then the images left over one by
    /// one, all in parallel; `then` is applied to each run's outputs as soon as they are
    /// written.
    ///
    /// The images left over are runs of their own so that both cores share them: at batch
    /// 100 they were one run of 4 images beside 12 groups, taken by one core (by the direct
    /// kernel, which is slower per image) while the other waited at the end of the layer.
    pub(crate) fn run_batch(
        &self,
        images: Images,
        packed: &PackedFilters,
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
        then: Then,
    ) {
        let ((fnum, c, _, _), (h, w), _) = self.direct.shape();
        let (oh, ow) = self.direct.output();
        let out_len = fnum * oh * ow;
        let n = out.len() / out_len.max(1);
        match images {
            Images::Given(images) => assert_eq!(
                images.len(),
                n * c * h * w,
                "ConvKernel::run_batch: images and outputs"
            ),
            Images::Unpooled { grads, winners } => assert!(
                h.is_multiple_of(2)
                    && w.is_multiple_of(2)
                    && grads.len() == n * c * (h / 2) * (w / 2)
                    && winners.len() == grads.len(),
                "ConvKernel::run_batch: {} pooled gradients and {} winners for {n} images of {:?}",
                grads.len(),
                winners.len(),
                (c, h, w)
            ),
        }
        if let Then::ThroughRelu(relu_output) = then {
            assert_eq!(
                relu_output.len(),
                out.len(),
                "ConvKernel::run_batch: the ReLU's outputs and the gradients"
            );
        }
        let per_run = self.images_per_run();
        let in_runs = n / per_run * per_run;
        let (out_runs, out_left) = out.split_at_mut(in_runs * out_len);
        out_runs
            .par_chunks_mut(per_run * out_len)
            .enumerate()
            .map(|(i, out_g)| (i * per_run, out_g))
            .chain(
                out_left
                    .par_chunks_mut(out_len)
                    .enumerate()
                    .map(|(i, out_g)| (in_runs + i, out_g)),
            )
            .for_each(|(first, out_g)| {
                self.run_images(images, first, packed, bias, out_g);
                // SAFETY: `run_images` wrote every float of `out_g`.
                then.apply(unsafe { out_g.assume_init_mut() }, first * out_len);
            });
    }

    /// The convolution of `images` (any number of `(C, H, W)` images, one after the
    /// other) into `out` (their `(FN, OH, OW)` outputs), plus `bias`: full groups by
    /// Winograd's kernel if the kernel has it, the rest image by image by the direct one.
    /// Every float of `out` is written (it need not be initialized before).
    pub(crate) fn run(
        &self,
        images: &[f32],
        packed: &PackedFilters,
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
    ) {
        let ((fnum, c, _, _), (h, w), _) = self.direct.shape();
        let (oh, ow) = self.direct.output();
        let (image_len, out_len) = (c * h * w, fnum * oh * ow);
        assert_eq!(
            images.len() / image_len.max(1) * out_len,
            out.len(),
            "ConvKernel::run: images and outputs"
        );
        self.run_images(Images::Given(images), 0, packed, bias, out);
    }

    /// [`ConvKernel::run`] of as many of `images` as `out` has room for, from image `first`
    /// on.
    fn run_images(
        &self,
        images: Images,
        first: usize,
        packed: &PackedFilters,
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
    ) {
        let ((fnum, c, _, _), (h, w), _) = self.direct.shape();
        let (oh, ow) = self.direct.output();
        let out_len = fnum * oh * ow;
        let count = out.len() / out_len.max(1);
        BUFFERS.with_borrow_mut(|buffers| {
            let mut done = 0;
            if let Some(plan) = &self.winograd {
                let padded = first_of(&mut buffers.padded_group, plan.padded_len());
                for out_g in out.chunks_exact_mut(GROUP * out_len) {
                    plan.pad_group(images.group(first + done, (c, h, w)), padded);
                    plan.run(
                        padded,
                        &packed.winograd,
                        bias,
                        &mut buffers.scratch_group,
                        out_g,
                    );
                    done += GROUP;
                }
            }
            for (i, out_n) in (done..count).zip(out[done * out_len..].chunks_exact_mut(out_len)) {
                let buffer = first_of(&mut buffers.image, c * h * w);
                let image = images.image(first + i, c, buffer);
                let padded = first_of(&mut buffers.padded, self.direct.kernel_input_len());
                self.direct.kernel_input(image, padded);
                self.direct
                    .run(padded, &packed.direct, bias, &mut buffers.scratch, out_n);
            }
        });
    }

    /// Whether [`ConvKernel::run_relu_pool`] can pool this kernel's outputs: Winograd's
    /// plan, with even output sizes.
    pub(crate) fn relu_pools(&self) -> bool {
        self.winograd.is_some_and(|plan| plan.relu_pools())
    }

    /// The convolution of `GROUP` images, plus `bias`, then ReLU and 2x2 max pooling
    /// (stride 2), all in Winograd's pass ([`WinogradPlan::run_relu_pool`]): `pooled`,
    /// `(values, arg)`, gets each image's pooled maxima and their winners (unless `arg` is
    /// `None`), as `Pooling::relu_pool_image` writes them. Panics unless
    /// [`ConvKernel::relu_pools`].
    pub(crate) fn run_relu_pool(
        &self,
        images: &[f32],
        packed: &PackedFilters,
        bias: Option<&[f32]>,
        pooled: (&mut [MaybeUninit<f32>], Option<&mut [u32]>),
    ) {
        let plan = self
            .winograd
            .filter(WinogradPlan::relu_pools)
            .expect("ConvKernel::run_relu_pool: Winograd's kernel, with even outputs");
        BUFFERS.with_borrow_mut(|buffers| {
            let padded = first_of(&mut buffers.padded_group, plan.padded_len());
            plan.pad_images(images, padded);
            let scratch = &mut buffers.scratch_group;
            plan.run_relu_pool(padded, &packed.winograd, bias, scratch, pooled);
        });
    }

    /// Whether the kernel is the direct one alone (no Winograd), as
    /// [`ConvKernel::run_direct_then`] needs.
    pub(crate) fn is_direct(&self) -> bool {
        self.winograd.is_none()
    }

    /// The direct kernel on one `image`, without its bias, then `then(scratch, (row_stride,
    /// scratch_row))` with the outputs still in the kernel's scratch rows (see
    /// `ForwardPlan::run_kernel`): for a consumer that reads them from there, instead of
    /// [`ConvKernel::run`] copying them out first. Panics if the kernel has Winograd's.
    pub(crate) fn run_direct_then(
        &self,
        image: &[f32],
        packed: &PackedFilters,
        then: impl FnOnce(&[f32], (usize, usize)),
    ) {
        assert!(
            self.is_direct(),
            "ConvKernel::run_direct_then with Winograd's kernel"
        );
        BUFFERS.with_borrow_mut(|buffers| {
            let padded = first_of(&mut buffers.padded, self.direct.kernel_input_len());
            self.direct.kernel_input(image, padded);
            let scratch = first_of(&mut buffers.scratch, self.direct.scratch_len());
            let layout = self.direct.run_kernel(padded, &packed.direct, scratch);
            then(scratch, layout);
        });
    }
}

/// Which Winograd algorithms may be used, if any: none if the environment variable
/// `CNN_FROM_SCRATCH_WINOGRAD` is `0`, only F(2x2, 3x3) if it is `2`, else F(4x4, 3x3)
/// too, where it is faster ([`Tile::for_output`]), so that one build can be measured
/// every way (read once).
fn winograd_tile() -> Option<Tile> {
    static TILE: std::sync::OnceLock<Option<Tile>> = std::sync::OnceLock::new();
    *TILE.get_or_init(
        || match std::env::var("CNN_FROM_SCRATCH_WINOGRAD").as_deref() {
            Ok("0") => None,
            Ok("2") => Some(Tile::F2x2),
            _ => Some(Tile::F4x4),
        },
    )
}

/// Whether Winograd may be used at all.
#[cfg(test)]
fn winograd_enabled() -> bool {
    winograd_tile().is_some()
}

#[cfg(test)]
mod tests {
    use super::super::simd::Simd;
    use super::*;

    #[test]
    fn winograd_for_3x3_filters_over_several_channels_and_a_group_of_images_only() {
        let plan = |filters, image, pad| {
            ForwardPlan::with_simd(filters, image, pad, Simd::best()).expect("a plan")
        };
        let kernel = |filters, pad, winograd, images| {
            ConvKernel::forward(plan(filters, (14, 14), pad), winograd, images).uses_winograd()
        };
        assert_eq!(kernel((16, 16, 3, 3), 1, true, 100), winograd_enabled());
        assert!(!kernel((16, 16, 3, 3), 1, false, 100));
        assert!(!kernel((16, 16, 3, 3), 1, true, GROUP - 1));
        assert!(!kernel((16, 1, 3, 3), 1, true, 100));
        assert!(!kernel((30, 8, 5, 5), 0, true, 100));
    }
}
