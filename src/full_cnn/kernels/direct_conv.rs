//! The fast path of the Convolution layer for stride 1: the convolution computed straight
//! from the (zero-padded) image, without building an im2col matrix.
//!
//! im2col turns a convolution into one matrix product, but it copies every pixel `FH*FW`
//! times into a matrix, and the matrix-product routine then copies that matrix once more
//! into its own blocked layout before multiplying. For the small images and channel counts
//! of this chapter those copies cost as much as the arithmetic. With stride 1, the numbers
//! the product needs are already lined up in the image: for filter element `(c, fy, fx)`
//! and output row `oy`, the inputs of the outputs `ox, ox+1, ...` are the pixels
//! `x[c, oy+fy, ox+fx], x[c, oy+fy, ox+fx+1], ...`, one contiguous run. So the kernels
//! here read runs of 8 pixels straight from the padded image and multiply-add them into
//! a block of outputs held in registers:
//!
//! ```text
//! forward   out[f, oy, ox..ox+L] += W[f, c, fy, fx] * xpad[c, oy+fy, ox+fx..ox+fx+L]
//!           for a block of MR filters and L outputs of one row, over all (c, fy, fx)
//! dW        dW[f, c, fy, fx] += Σ_(oy, ox) dout[f, oy, ox] * xpad[c, oy+fy, ox+fx]
//!           for a block of 4 filters x 3 filter elements, 8 outputs at a time
//! dx        the forward kernel again: dx is the convolution of dout, padded by FH-1-pad,
//!           with the filters flipped and their two channel axes swapped
//! ```
//!
//! The arithmetic is the same as im2col's (the same products, summed in another order, so
//! the results agree to rounding; tested against the im2col path in
//! `convolution_layer`). Each output is computed by a fixed sequence of operations, so the
//! results do not depend on the thread count. Which instructions the kernels are compiled
//! for is chosen when the program runs ([`Simd::best`]): AVX-512 where the processor has it,
//! else AVX2 with FMA, else plain Rust. The choice changes the register blocks, so the
//! results of different processors agree to rounding, not bit for bit.

/// Floats per AVX2 register (8 x f32).
const LANES: usize = 8;

/// Floats per AVX-512 register (16 x f32).
const AVX512_LANES: usize = 16;

use std::mem::MaybeUninit;

pub(crate) use super::simd::Simd;
use super::simd::transpose8;

/// The forward kernel's register blocks `(MR filters, L outputs)`, best first, and the
/// number of accumulator vectors a full block has.
///
/// AVX2: at most 12 vectors of 8 accumulators, plus the `L / 8` input vectors and one
/// broadcast weight, fit in its 16 registers (more would spill to memory). AVX-512: 24
/// vectors of 16 in its 32 registers.
fn register_blocks(simd: Simd) -> (&'static [(usize, usize)], usize) {
    match simd {
        Simd::Plain | Simd::Avx2 => (&[(6, 16), (12, 8), (3, 24), (8, 8), (4, 16)], 12),
        Simd::Avx512 => (
            &[
                (12, 32),
                (6, 64),
                (8, 48),
                (24, 16),
                (6, 32),
                (8, 32),
                (4, 64),
                (16, 16),
            ],
            24,
        ),
    }
}

/// How to run the forward kernel for one layer shape: the register block and the padded
/// buffer sizes. Computed once per pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ForwardPlan {
    /// Input channels, filter size, padding (stride is 1).
    c: usize,
    fh: usize,
    fw: usize,
    pad: usize,
    /// Input and output sizes.
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// Filters, and filters rounded up to the block's `mr`.
    fnum: usize,
    fnum_padded: usize,
    /// The register block.
    mr: usize,
    lanes: usize,
    /// How the outputs are cut into blocks of `lanes` (see [`Cut`]).
    cut: Cut,
    /// Padded image: rows of `wp` floats, `h + 2*pad` rows per channel, plus slack at the
    /// end so that the last block's loads stay inside the buffer.
    wp: usize,
    hp: usize,
    /// The instructions the kernels run with.
    simd: Simd,
}

impl ForwardPlan {
    /// The plan for `fnum` filters `(c, fh, fw)` with `pad` over `(h, w)` images, or `None`
    /// if the direct path does not apply (the output would be empty).
    pub(crate) fn new(
        filters: (usize, usize, usize, usize),
        image: (usize, usize),
        pad: usize,
    ) -> Option<ForwardPlan> {
        ForwardPlan::with_simd(filters, image, pad, Simd::best())
    }

    /// [`ForwardPlan::new`] for the given instructions (which the processor must have).
    pub(crate) fn with_simd(
        (fnum, c, fh, fw): (usize, usize, usize, usize),
        (h, w): (usize, usize),
        pad: usize,
        simd: Simd,
    ) -> Option<ForwardPlan> {
        let (hp, wpad) = (h + 2 * pad, w + 2 * pad);
        if fnum == 0 || c == 0 || fh == 0 || fw == 0 || hp < fh || wpad < fw {
            return None;
        }
        let (oh, ow) = (hp - fh + 1, wpad - fw + 1);
        // The block and the way of cutting the outputs into blocks that waste the least
        // work on padding filters and on positions that are not outputs; blocks of fewer
        // accumulators than a full one count 15% more (fewer multiply-adds in flight;
        // measured on an Intel Xeon and a Zen 3). Not on a processor that issues one
        // 512-bit multiply-add a cycle (Zen 4), where a smaller block keeps it as busy: for
        // DeepConvNet's Winograd products (16-64 filters over 16-64 pixels) 16 filters
        // instead of 18 or 32 instead of 36, its step 1.048 times as fast, inference 1.073.
        let (full_cost, smaller_cost) = if simd == Simd::Avx512 && Simd::splits_512_bits() {
            (20, 20)
        } else {
            (20, 23)
        };
        let flat_positions = (oh - 1) * wpad + ow;
        let (blocks, full) = register_blocks(simd);
        // Shifted copies only where they are small (they are `FW` times the image) and
        // the filters are wider than one pixel (else they are the padded image itself).
        let shifted_fits = fw > 1 && c * fw * hp * ow <= SHIFTED_MAX;
        let (mr, lanes, cut) = blocks
            .iter()
            .flat_map(|&(mr, lanes)| {
                [Cut::Rows, Cut::Flat, Cut::Shifted].map(|cut| (mr, lanes, cut))
            })
            .filter(|&(_, _, cut)| cut != Cut::Shifted || shifted_fits)
            // The first of equals wins: shifted copies only where they save work.
            .min_by_key(|&(mr, lanes, cut)| {
                let positions = match cut {
                    Cut::Rows => oh * ow.next_multiple_of(lanes),
                    Cut::Flat => flat_positions.next_multiple_of(lanes),
                    Cut::Shifted => (oh * ow).next_multiple_of(lanes),
                };
                let work = fnum.next_multiple_of(mr) * positions;
                if mr * lanes / simd.lanes() == full {
                    work * full_cost
                } else {
                    work * smaller_cost
                }
            })
            .expect("blocks");
        Some(ForwardPlan {
            c,
            fh,
            fw,
            pad,
            h,
            w,
            oh,
            ow,
            fnum,
            fnum_padded: fnum.next_multiple_of(mr),
            mr,
            lanes,
            cut,
            wp: wpad,
            hp,
            simd,
        })
    }

    /// Where the kernel puts the block at output `(oy, ox)` in its scratch rows, and the
    /// length of one scratch row (one filter's outputs, blocks rounded up).
    fn scratch_layout(&self) -> (usize, usize) {
        match self.cut {
            Cut::Rows => {
                let row = self.ow.next_multiple_of(self.lanes);
                (row, self.oh * row)
            }
            Cut::Flat => {
                let flat = ((self.oh - 1) * self.wp + self.ow).next_multiple_of(self.lanes);
                (self.wp, flat)
            }
            Cut::Shifted => (self.ow, (self.oh * self.ow).next_multiple_of(self.lanes)),
        }
    }

    /// Output size `(OH, OW)`.
    pub(crate) fn output(&self) -> (usize, usize) {
        (self.oh, self.ow)
    }

    /// Length of the padded-image buffer.
    pub(crate) fn padded_len(&self) -> usize {
        // Slack: a block's loads may run `lanes + fw` floats past the last row.
        self.c * self.hp * self.wp + self.lanes + self.fw
    }

    /// Length of the buffer the forward kernel reads ([`ForwardPlan::kernel_input`]): the
    /// padded image, or its shifted copies.
    pub(crate) fn kernel_input_len(&self) -> usize {
        match self.cut {
            Cut::Shifted => self.c * self.fw * self.hp * self.ow + self.lanes,
            Cut::Rows | Cut::Flat => self.padded_len(),
        }
    }

    /// Copies `image` `(C, H, W)` into `input` ([`ForwardPlan::kernel_input_len`] floats,
    /// every one written) as the forward kernel reads it: padded
    /// ([`ForwardPlan::pad_image`]), or, with [`Cut::Shifted`], as `FW` shifted copies of
    /// each padded channel, `input[((c*FW + fx)*HP + y)*OW + ox] = xpad[c, y, ox + fx]`.
    pub(crate) fn kernel_input(&self, image: &[f32], input: &mut [f32]) {
        if self.cut != Cut::Shifted {
            self.pad_image(image, input);
            return;
        }
        let (h, w, ow, pad) = (self.h, self.w, self.ow, self.pad);
        assert!(
            image.len() == self.c * h * w && input.len() == self.kernel_input_len(),
            "direct_conv: {} floats for images ({}, {h}, {w}), {} for their shifted copies",
            image.len(),
            self.c,
            input.len()
        );
        let plane_len = self.hp * ow;
        let (planes, slack) = input.split_at_mut(self.c * self.fw * plane_len);
        slack.fill(0.0);
        for (i, plane) in planes.chunks_exact_mut(plane_len).enumerate() {
            let (ch, fx) = (i / self.fw, i % self.fw);
            // Output columns `ox` whose pixel `ox + fx` of the padded row is in the image.
            let first = pad.saturating_sub(fx).min(ow);
            let end = (pad + w).saturating_sub(fx).clamp(first, ow);
            for (y, row) in plane.chunks_exact_mut(ow).enumerate() {
                if y < pad || y >= pad + h {
                    row.fill(0.0);
                    continue;
                }
                let src = &image[(ch * h + y - pad) * w..][..w];
                row[..first].fill(0.0);
                row[first..end].copy_from_slice(&src[first + fx - pad..end + fx - pad]);
                row[end..].fill(0.0);
            }
        }
    }

    /// Length of the packed-weights buffer.
    pub(crate) fn packed_len(&self) -> usize {
        self.c * self.fh * self.fw * self.fnum_padded
    }

    /// Packs filters given by `weight(f, c, fy, fx)` block by block: for each block of `mr`
    /// filters, `(C*FH*FW, mr)`, so the `mr` weights one step of the kernel needs are side
    /// by side and a block's are contiguous. Padding filters are 0. The layout's
    /// definition, weight by weight, against which the tests check the packings the
    /// layers use ([`ForwardPlan::pack_filters`], [`ForwardPlan::pack_flipped`],
    /// [`ForwardPlan::pack_channels_into`]).
    #[cfg(test)]
    pub(crate) fn pack_weights(
        &self,
        weight: impl Fn(usize, usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut packed = vec![0.0f32; self.packed_len()];
        let k_len = self.c * self.fh * self.fw;
        for (block, weights) in packed.chunks_exact_mut(k_len * self.mr).enumerate() {
            let mut rows = weights.chunks_exact_mut(self.mr);
            for ch in 0..self.c {
                for fy in 0..self.fh {
                    for fx in 0..self.fw {
                        let row = rows.next().expect("C*FH*FW rows per block");
                        for (i, value) in row.iter_mut().enumerate() {
                            let f = block * self.mr + i;
                            if f < self.fnum {
                                *value = weight(f, ch, fy, fx);
                            }
                        }
                    }
                }
            }
        }
        packed
    }

    /// The packing of `pack_weights` (the layout's definition, in test builds) for filters
    /// stored flat, `w` `(FN, C, FH, FW)` in standard layout: each filter's `C*FH*FW`
    /// weights read in order and written down its column of the block. The same floats as
    /// asking for every weight through a function (tested), without the index arithmetic
    /// per weight: at batch 1 the forward pass packed its filters for every call (before
    /// they were kept from call to call, `conv_kernel::PackCache`), and DeepConvNet's
    /// packing was a fifth to a quarter of its inference time.
    pub(crate) fn pack_filters(&self, w: &[f32]) -> Vec<f32> {
        let k_len = self.c * self.fh * self.fw;
        assert_eq!(
            w.len(),
            self.fnum * k_len,
            "direct_conv: {} filters of {k_len} weights",
            self.fnum
        );
        let mut packed = vec![0.0f32; self.packed_len()];
        for (block, weights) in packed.chunks_exact_mut(k_len * self.mr).enumerate() {
            for i in 0..self.mr {
                let f = block * self.mr + i;
                if f >= self.fnum {
                    break; // padding filters stay 0
                }
                let filter = &w[f * k_len..][..k_len];
                for (row, &value) in weights.chunks_exact_mut(self.mr).zip(filter) {
                    row[i] = value;
                }
            }
        }
        packed
    }

    /// The weights of a layer packed for its `dx` kernel (this plan, from
    /// [`input_grad_plan`]), each filter flipped: `w` is the layer's `(FN, C, FH, FW)` in
    /// standard layout, which is `(C, FN, FH, FW)` in this plan's terms (its channels are
    /// the layer's filters, its filters the layer's channels). As in
    /// [`ForwardPlan::pack_filters`], each filter's weights are read in one run (here
    /// backwards). (Packed one weight at a time through a function of `(f, c, fy, fx)`, as
    /// `pack_weights` does, this was a seventh of the time DeepConvNet's layers took to
    /// pack their filters, forward and flipped, for a few images left over from Winograd's
    /// groups.)
    pub(crate) fn pack_flipped(&self, w: &[f32]) -> Vec<f32> {
        let taps = self.fh * self.fw;
        assert_eq!(
            w.len(),
            self.c * self.fnum * taps,
            "direct_conv: {} filters of {} channels of {taps} weights",
            self.c,
            self.fnum
        );
        let mut packed = vec![0.0f32; self.packed_len()];
        for (block, weights) in packed.chunks_exact_mut(self.c * taps * self.mr).enumerate() {
            for i in 0..self.mr {
                let f = block * self.mr + i;
                if f >= self.fnum {
                    break; // padding filters stay 0
                }
                // Row (ch, t) of the block, t = fy * FW + fx, is the layer's weight
                // (ch, f) at position taps - 1 - t.
                for ch in 0..self.c {
                    let filter = &w[(ch * self.fnum + f) * taps..][..taps];
                    let rows = weights[ch * taps * self.mr..].chunks_exact_mut(self.mr);
                    for (row, &value) in rows.zip(filter.iter().rev()) {
                        row[i] = value;
                    }
                }
            }
        }
        packed
    }

    /// The packing of `pack_weights` (the layout's definition, in test builds) for 1x1
    /// filters given channel by channel: `channel(c)` is the `FN` weights of input channel
    /// `c`, filter by filter; every float of `packed` is written (it need not be
    /// initialised). Copies runs of `mr` weights instead of calling a function per weight
    /// (for Winograd's 36 blocks of filters per layer, per-weight calls were most of its
    /// packing time).
    pub(crate) fn pack_channels_into<'w>(
        &self,
        channel: impl Fn(usize) -> &'w [f32],
        packed: &mut [MaybeUninit<f32>],
    ) {
        assert!(
            (self.fh, self.fw) == (1, 1) && packed.len() == self.packed_len(),
            "direct_conv: packing {} floats of 1x1 filters, for a plan of {}x{} filters and {} floats",
            packed.len(),
            self.fh,
            self.fw,
            self.packed_len()
        );
        for (block, weights) in packed.chunks_exact_mut(self.c * self.mr).enumerate() {
            let (first, end) = (block * self.mr, ((block + 1) * self.mr).min(self.fnum));
            for (ch, row) in weights.chunks_exact_mut(self.mr).enumerate() {
                let from = &channel(ch)[first..end];
                row[..from.len()].write_copy_of_slice(from);
                row[from.len()..].fill(MaybeUninit::new(0.0));
            }
        }
    }

    /// Copies `image` `(C, H, W)` into `padded` with `pad` zeros around it (the buffer is
    /// reused: every entry is written).
    pub(crate) fn pad_image(&self, image: &[f32], padded: &mut [f32]) {
        pad_planes(
            image,
            (self.c, self.h, self.w),
            self.pad,
            (self.hp, self.wp),
            padded,
        );
    }

    /// The convolution of one padded image into `out` `(FN, OH, OW)`, plus `bias` (one per
    /// filter, or none). `scratch` holds the blocks before they are copied out (grown as
    /// needed; keep it from one call to the next).
    pub(crate) fn run(
        &self,
        padded: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Vec<f32>,
        out: &mut [MaybeUninit<f32>],
    ) {
        assert_eq!(
            out.len(),
            self.fnum * self.oh * self.ow,
            "direct_conv: output"
        );
        let scratch = first_of(scratch, self.scratch_len());
        let (row_stride, scratch_row) = self.run_kernel(padded, packed, scratch);
        // The outputs out of the scratch rows, plus the bias.
        for (f, (out_f, scratch_f)) in out
            .chunks_exact_mut(self.oh * self.ow)
            .zip(scratch.chunks_exact(scratch_row))
            .enumerate()
        {
            let b = bias.map_or(0.0, |b| b[f]);
            for (out_row, row) in out_f
                .chunks_exact_mut(self.ow)
                .zip(scratch_f.chunks(row_stride))
            {
                for (o, &v) in out_row.iter_mut().zip(row) {
                    o.write(v + b);
                }
            }
        }
    }

    /// Filters per block of the packed filters (the register block's rows).
    #[cfg(test)]
    pub(crate) fn filters_per_block(&self) -> usize {
        self.mr
    }

    /// The instructions the kernels run with.
    pub(crate) fn simd(&self) -> Simd {
        self.simd
    }

    /// The filters' shape `(FN, C, FH, FW)`, the image size `(H, W)` and the padding.
    pub(crate) fn shape(&self) -> ((usize, usize, usize, usize), (usize, usize), usize) {
        (
            (self.fnum, self.c, self.fh, self.fw),
            (self.h, self.w),
            self.pad,
        )
    }

    /// Length of the scratch buffer [`ForwardPlan::run_kernel`] needs.
    pub(crate) fn scratch_len(&self) -> usize {
        self.fnum * self.scratch_layout().1
    }

    /// The kernel alone, from `padded` (the image as [`ForwardPlan::kernel_input`] lays it
    /// out: padded, or its shifted copies) into `scratch` ([`ForwardPlan::scratch_len`]
    /// floats): filter `f`'s output `(oy, ox)` lands at
    /// `f * scratch_row + oy * row_stride + ox`, and every entry of the `fnum` scratch rows
    /// is written. Returns `(row_stride, scratch_row)`.
    pub(crate) fn run_kernel(
        &self,
        padded: &[f32],
        packed: &[f32],
        scratch: &mut [f32],
    ) -> (usize, usize) {
        self.run_kernel_with(&self.block_layout(), padded, packed, scratch)
    }

    /// [`ForwardPlan::run_kernel`] with the plan's [`BlockLayout`] computed beforehand:
    /// Winograd's products run the same plan 16 or 36 times per row of tiles, and building
    /// the layout's two short lists each time took about 2% of a DeepConvNet step.
    pub(crate) fn run_kernel_with(
        &self,
        layout: &BlockLayout,
        padded: &[f32],
        packed: &[f32],
        scratch: &mut [f32],
    ) -> (usize, usize) {
        assert_eq!(
            padded.len(),
            self.kernel_input_len(),
            "direct_conv: the kernel's input (ForwardPlan::kernel_input)"
        );
        assert_eq!(packed.len(), self.packed_len(), "direct_conv: filters");
        assert_eq!(scratch.len(), self.scratch_len(), "direct_conv: scratch");
        // The kernels' loads are unchecked: every one must stay inside `padded`.
        assert!(
            layout.reach <= padded.len()
                && layout.lanes == self.lanes
                && layout.offsets.len() == self.c * self.fh * self.fw,
            "direct_conv: a block layout of another plan"
        );
        match self.simd {
            // SAFETY: the plan's instructions are ones the processor has (`Simd::best`).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { forward_avx512(self, layout, padded, packed, scratch) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { forward_avx2_fma(self, layout, padded, packed, scratch) },
            _ => forward_dispatch::<false>(self, layout, padded, packed, scratch),
        }
        self.scratch_layout()
    }

    /// Where the kernel reads and writes, for every filter element and block of outputs
    /// (see [`BlockLayout`]); the same for every image of the plan's shape.
    pub(crate) fn block_layout(&self) -> BlockLayout {
        let (fh, fw, wp, l) = (self.fh, self.fw, self.wp, self.lanes);
        let k_len = self.c * fh * fw;
        let offsets: Vec<usize> = if (fh, fw) == (1, 1) {
            // 1x1 filters (Winograd's products): no divisions.
            (0..k_len).map(|k| k * self.hp * wp).collect()
        } else if self.cut == Cut::Shifted {
            // Filter element (c, fy, fx): row fy of channel c's copy shifted by fx.
            let ow = self.ow;
            (0..k_len)
                .map(|k| ((k / (fh * fw)) * fw + k % fw) * self.hp * ow + (k / fw % fh) * ow)
                .collect()
        } else {
            (0..k_len)
                .map(|k| (k / (fh * fw)) * self.hp * wp + (k / fw % fh) * wp + k % fw)
                .collect()
        };
        let (row_stride, scratch_row) = self.scratch_layout();
        let starts: Vec<(usize, usize)> = if self.cut == Cut::Rows {
            (0..self.oh)
                .flat_map(|oy| {
                    (0..self.ow)
                        .step_by(l)
                        .map(move |ox| (oy * wp + ox, oy * row_stride + ox))
                })
                .collect()
        } else {
            (0..scratch_row).step_by(l).map(|q| (q, q)).collect()
        };
        // Every load reads `L` floats at `start + offset`; the padded image's slack covers
        // a block running past the end of the last row.
        let reach = starts.last().map_or(0, |s| s.0) + offsets.last().copied().unwrap_or(0) + l;
        assert!(
            reach <= self.kernel_input_len(),
            "direct_conv: the kernel's input too short"
        );
        BlockLayout {
            offsets,
            starts,
            reach,
            lanes: l,
        }
    }
}

/// How the forward kernel cuts a filter's outputs into blocks of `L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Within each output row (the last block of a row runs past its end).
    Rows,
    /// Over "padded positions" `oy*WP + ox`, running from one row into the next (see
    /// [`forward_blocks`]): the `FW - 1` positions past the end of each row are computed,
    /// then dropped.
    Flat,
    /// Over the outputs `oy*OW + ox` themselves, from `FW` copies of the padded image,
    /// each shifted left by one more pixel and cut to `OW` columns
    /// ([`ForwardPlan::kernel_input`]): output `q` needs pixel `q + fy*OW` of copy `fx`,
    /// so a block runs from one row into the next without computing anything that is not
    /// an output. For SimpleConvNet's 24 x 24 outputs (rows of 28 padded pixels), 576
    /// positions instead of 704 (blocks of 64).
    Shifted,
}

/// Largest shifted copies [`Cut::Shifted`] makes, in floats (SimpleConvNet's first layer:
/// 3,360): they stay in the L1 cache with the filters.
const SHIFTED_MAX: usize = 8192;

/// Where the forward kernel reads, relative to an output's position, for every filter
/// element `k = (c, fy, fx)` (`offsets`), and its blocks of `L` outputs as `(position in
/// the padded image, position in the scratch row)` (`starts`; see [`forward_blocks`]).
pub(crate) struct BlockLayout {
    offsets: Vec<usize>,
    starts: Vec<(usize, usize)>,
    /// One past the last float a load reads.
    reach: usize,
    /// The block's outputs `L`, which the layout was made for.
    lanes: usize,
}

/// The first `len` floats of `buffer`, which grows (with zeros) if it is shorter. A buffer
/// kept from one call to the next, for kernels that write every entry they read, is then
/// zeroed only when it grows, not on every call (`resize` to each shape in turn would zero
/// again whatever a smaller shape had cut off).
pub(crate) fn first_of(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Copies planes `(C, H, W)` into `(C, HP, WP)` with `pad` zero rows and columns before
/// each, zeros after; entries past the planes (the slack) are zeroed too.
fn pad_planes(
    src: &[f32],
    (c, h, w): (usize, usize, usize),
    pad: usize,
    (hp, wp): (usize, usize),
    dst: &mut [f32],
) {
    let plane = hp * wp;
    dst[c * plane..].fill(0.0);
    for (src_plane, dst_plane) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(plane)) {
        dst_plane[..pad * wp].fill(0.0);
        dst_plane[(pad + h) * wp..].fill(0.0);
        for (src_row, dst_row) in src_plane
            .chunks_exact(w)
            .zip(dst_plane[pad * wp..].chunks_exact_mut(wp))
        {
            dst_row[..pad].fill(0.0);
            dst_row[pad..pad + w].copy_from_slice(src_row);
            dst_row[pad + w..].fill(0.0);
        }
    }
}

// The generic kernel below compiled for AVX2: the compiler turns each row of `L`
// accumulators into `L / 8` vector registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2_fma(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    forward_dispatch::<true>(plan, layout, padded, packed, scratch);
}

/// # Safety
///
/// The processor must have AVX-512 (F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_avx512(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    // SAFETY: the caller's promise.
    unsafe { forward_dispatch_avx512(plan, layout, padded, packed, scratch) };
}

/// `a * b + c`, as one fused instruction when `FMA` (compiled for FMA), else two.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn forward_dispatch<const FMA: bool>(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    match (plan.mr, plan.lanes) {
        (6, 16) => forward_blocks::<FMA, 6, 16>(plan, layout, padded, packed, scratch),
        (12, 8) => forward_blocks::<FMA, 12, 8>(plan, layout, padded, packed, scratch),
        (3, 24) => forward_blocks::<FMA, 3, 24>(plan, layout, padded, packed, scratch),
        (8, 8) => forward_blocks::<FMA, 8, 8>(plan, layout, padded, packed, scratch),
        (4, 16) => forward_blocks::<FMA, 4, 16>(plan, layout, padded, packed, scratch),
        other => unreachable!("no kernel for block {other:?}"),
    }
}

/// The AVX-512 blocks: `L` outputs are `L / 16` vector registers.
///
/// # Safety
///
/// The processor must have AVX-512 (F).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn forward_dispatch_avx512(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    // SAFETY (all arms): the caller's promise.
    unsafe {
        match (plan.mr, plan.lanes) {
            (12, 32) => forward_blocks_avx512::<12, 2>(plan, layout, padded, packed, scratch),
            (6, 64) => forward_blocks_avx512::<6, 4>(plan, layout, padded, packed, scratch),
            (8, 48) => forward_blocks_avx512::<8, 3>(plan, layout, padded, packed, scratch),
            (24, 16) => forward_blocks_avx512::<24, 1>(plan, layout, padded, packed, scratch),
            (6, 32) => forward_blocks_avx512::<6, 2>(plan, layout, padded, packed, scratch),
            (8, 32) => forward_blocks_avx512::<8, 2>(plan, layout, padded, packed, scratch),
            (4, 64) => forward_blocks_avx512::<4, 4>(plan, layout, padded, packed, scratch),
            (16, 16) => forward_blocks_avx512::<16, 1>(plan, layout, padded, packed, scratch),
            other => unreachable!("no kernel for block {other:?}"),
        }
    }
}

/// [`forward_blocks`] written with AVX-512 intrinsics, `MR` filters x `LV` vectors of 16
/// outputs: the compiler does not keep a block this large in registers by itself.
///
/// # Safety
///
/// The processor must have AVX-512 (F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_blocks_avx512<const MR: usize, const LV: usize>(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    use std::arch::x86_64::*;
    let k_len = plan.c * plan.fh * plan.fw;
    let BlockLayout {
        offsets, starts, ..
    } = layout;
    let (_, scratch_row) = plan.scratch_layout();
    let (blocks, _) = packed.as_chunks::<MR>();
    for (f0, block) in (0..plan.fnum).step_by(MR).zip(blocks.chunks_exact(k_len)) {
        let rows = MR.min(plan.fnum - f0);
        for &(start, at) in starts {
            let mut acc = [[_mm512_setzero_ps(); LV]; MR];
            for (&offset, weights) in offsets.iter().zip(block) {
                // SAFETY: `start + offset + L <= padded.len()` (the layout's reach, asserted).
                let src = unsafe { padded.as_ptr().add(start + offset) };
                let mut x = [_mm512_setzero_ps(); LV];
                for (v, vector) in x.iter_mut().enumerate() {
                    *vector = unsafe { _mm512_loadu_ps(src.add(v * AVX512_LANES)) };
                }
                for (acc_row, &weight) in acc.iter_mut().zip(weights) {
                    let weight = _mm512_set1_ps(weight);
                    for (a, &x) in acc_row.iter_mut().zip(&x) {
                        *a = _mm512_fmadd_ps(weight, x, *a);
                    }
                }
            }
            for (i, acc_row) in acc.iter().enumerate().take(rows) {
                let begin = (f0 + i) * scratch_row + at;
                let out = &mut scratch[begin..begin + LV * AVX512_LANES];
                for (v, &a) in acc_row.iter().enumerate() {
                    // SAFETY: stores 16 floats into `out[16v..16v + 16]`.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(v * AVX512_LANES), a) };
                }
            }
        }
    }
}

/// Every `MR x L` block of outputs (`MR` filters, `L` outputs), each written to the
/// filters' scratch rows as whole vectors (the caller copies the outputs out).
///
/// With [`Cut::Rows`], a block is `L` outputs of one row (the last block of a row runs
/// past its end). With [`Cut::Flat`], blocks run over "padded positions" `q = oy*WP + ox`,
/// as if the output rows were `WP` wide: a block may run over the end of a row into the
/// next one, and the `FW-1` positions past the end of each row are computed (from pixels
/// of the padded image) but are not outputs. With [`Cut::Shifted`], blocks run over the
/// outputs `q = oy*OW + ox` themselves, read from the image's shifted copies. Whichever
/// cut, the scratch row of a filter holds its outputs at `oy * row_stride + ox`.
#[inline(always)]
fn forward_blocks<const FMA: bool, const MR: usize, const L: usize>(
    plan: &ForwardPlan,
    layout: &BlockLayout,
    padded: &[f32],
    packed: &[f32],
    scratch: &mut [f32],
) {
    let k_len = plan.c * plan.fh * plan.fw;
    let BlockLayout {
        offsets, starts, ..
    } = layout;
    let (_, scratch_row) = plan.scratch_layout();
    let (blocks, _) = packed.as_chunks::<MR>();
    for (f0, block) in (0..plan.fnum).step_by(MR).zip(blocks.chunks_exact(k_len)) {
        let rows = MR.min(plan.fnum - f0);
        for &(start, at) in starts {
            let mut acc = [[0.0f32; L]; MR];
            for (&offset, weights) in offsets.iter().zip(block) {
                // SAFETY: `start + offset + L <= padded.len()` (the layout's reach, asserted),
                // and any f32 bit pattern is valid. Unchecked, so that the compiler keeps the
                // accumulators in registers through the loop.
                let src: &[f32; L] =
                    unsafe { &*padded.as_ptr().add(start + offset).cast::<[f32; L]>() };
                for (acc_row, &weight) in acc.iter_mut().zip(weights) {
                    for (a, &x) in acc_row.iter_mut().zip(src) {
                        *a = madd::<FMA>(weight, x, *a);
                    }
                }
            }
            for (i, acc_row) in acc.iter().enumerate().take(rows) {
                let begin = (f0 + i) * scratch_row + at;
                scratch[begin..begin + L].copy_from_slice(acc_row);
            }
        }
    }
}

/// How to run the `dW` kernel for one layer shape: [`PositionGradPlan`] for one-channel
/// inputs on processors without AVX-512, [`FilterGradPlan`] for the others.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WeightGradPlan {
    /// Vectorised over output positions.
    Positions(PositionGradPlan),
    /// Vectorised over filters.
    Filters(FilterGradPlan),
}

impl WeightGradPlan {
    /// The plan for the layer the forward plan describes.
    pub(crate) fn new(forward: ForwardPlan) -> WeightGradPlan {
        // With AVX-512, the kernel by filters won for one channel too: SimpleConvNet's 30
        // filters of 5x5 are two vectors of 16 with no waste, where its 24-pixel rows are
        // a vector and a half-empty one (Zen 5, 2 threads: step 43,490 against 41,317
        // images/s; 1 thread 30,932 against 28,914). With AVX2 the kernel by positions
        // stays ahead (34,458 against 33,336): its rows of 24 are three whole vectors.
        if forward.c == 1 && forward.simd != Simd::Avx512 {
            WeightGradPlan::Positions(PositionGradPlan::new(forward))
        } else {
            WeightGradPlan::Filters(FilterGradPlan::new(forward))
        }
    }

    /// Length of one image's padded gradient.
    pub(crate) fn padded_dout_len(&self) -> usize {
        match self {
            WeightGradPlan::Positions(p) => p.padded_dout_len(),
            WeightGradPlan::Filters(p) => p.padded_dout_len(),
        }
    }

    /// Copies one image's `dout` `(FN, OH*OW)` into `padded`, in the kernel's layout.
    pub(crate) fn pad_dout(&self, dout: &[f32], padded: &mut [f32]) {
        match self {
            WeightGradPlan::Positions(p) => p.pad_dout(dout, padded),
            WeightGradPlan::Filters(p) => p.pad_dout(dout, padded),
        }
    }

    /// The row length of [`WeightGradPlan::pad_dout`]'s layout if it is the kernel by
    /// filters' `(OH*OW, FN rounded up)` (a row of filters per output position): a
    /// gradient written that way by someone else (the fused ReLU + pooling backward,
    /// `Pooling::backward_image_by_position`) can go straight to [`WeightGradPlan::run`].
    pub(crate) fn filter_row_len(&self) -> Option<usize> {
        match self {
            WeightGradPlan::Filters(p) => Some(p.fnum_padded),
            WeightGradPlan::Positions(_) => None,
        }
    }

    /// Adds the `dW` `(FN, C*FH*FW)` of a group of images to `dw`, from their padded
    /// images (one after the other, the forward plan's layout) and padded gradients.
    pub(crate) fn run(&self, padded: &[f32], padded_dout: &[f32], dw: &mut [f32]) {
        match self {
            WeightGradPlan::Positions(p) => p.run(padded, padded_dout, dw),
            WeightGradPlan::Filters(p) => p.run(padded, padded_dout, dw),
        }
    }
}

/// The `dW` kernel for one-channel inputs (a network's first layer): vectorised over
/// output positions, 8 at a time,
///
/// ```text
/// acc[i][j] += dout[f0 + i, oy, ox..ox+8] * xpad[offset(k0 + j) + oy*WP + ox..+8]
/// ```
///
/// for blocks of 3 filters x 3 filter elements, over every image of the group; then each
/// accumulator's 8 lanes are summed into `dW[f0 + i, k0 + j]`. With one channel there are
/// few filter elements (`FH*FW`) and large images, which suits this order better than
/// [`FilterGradPlan`]'s with AVX2 (with AVX-512, see [`WeightGradPlan::new`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PositionGradPlan {
    forward: ForwardPlan,
    /// Output rows rounded up to whole vectors, and filters rounded up to the block.
    ow_padded: usize,
    fnum_padded: usize,
}

/// Register block of the AVX2 `dW` kernel: 3 filters x 3 filter elements, 8 outputs at a
/// time (9 accumulators, 3 gradient and 1 input vectors: no spill to memory).
const PG_MR: usize = 3;
const PG_NK: usize = 3;

impl PositionGradPlan {
    /// The plan for the layer the forward plan describes.
    fn new(forward: ForwardPlan) -> PositionGradPlan {
        PositionGradPlan {
            forward,
            ow_padded: forward.ow.next_multiple_of(LANES),
            fnum_padded: forward.fnum.next_multiple_of(PG_MR),
        }
    }

    /// Length of one image's padded-gradient buffer `(FN rounded up, OH, OW rounded up)`.
    fn padded_dout_len(&self) -> usize {
        self.fnum_padded * self.forward.oh * self.ow_padded
    }

    /// Copies one image's `dout` `(FN, OH*OW)` into `padded`, rows padded with zeros.
    fn pad_dout(&self, dout: &[f32], padded: &mut [f32]) {
        let ForwardPlan { fnum, oh, ow, .. } = self.forward;
        padded[fnum * oh * self.ow_padded..].fill(0.0);
        for (src, dst) in dout
            .chunks_exact(ow)
            .zip(padded.chunks_exact_mut(self.ow_padded))
        {
            dst[..ow].copy_from_slice(src);
            dst[ow..].fill(0.0);
        }
    }

    /// Adds the `dW` `(FN, C*FH*FW)` of a group of images to `dw`, from their padded
    /// images (one after the other, the forward plan's layout) and padded gradients.
    fn run(&self, padded: &[f32], padded_dout: &[f32], dw: &mut [f32]) {
        let images = padded.len() / self.forward.padded_len();
        assert!(
            images * self.forward.padded_len() == padded.len()
                && images * self.padded_dout_len() == padded_dout.len()
                && dw.len()
                    == self.forward.fnum * self.forward.c * self.forward.fh * self.forward.fw,
            "direct_conv: dW buffers do not fit the plan"
        );
        // SAFETY (the unsafe arms): the plan's instructions are ones the processor has
        // (`Simd::best`), and the buffers fit the plan (asserted).
        match self.forward.simd {
            // (`WeightGradPlan::new` does not choose this plan with AVX-512.)
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 | Simd::Avx512 => unsafe {
                position_grad_avx2_fma(self, padded, padded_dout, dw)
            },
            _ => position_grad_plain(self, padded, padded_dout, dw),
        }
    }

    /// Where filter element `k = (c, fy, fx)` reads in a padded image, relative to the
    /// output's position.
    fn offset(&self, k: usize) -> usize {
        let p = &self.forward;
        (k / (p.fh * p.fw)) * p.hp * p.wp + (k / p.fw % p.fh) * p.wp + k % p.fw
    }

    /// The blocks of `(first filter, first filter element)`, and per block the offsets of
    /// its filter elements (a block past the last element repeats it; discarded).
    fn blocks<const MR: usize, const NK: usize>(
        &self,
    ) -> impl Iterator<Item = (usize, usize, [usize; NK])> + '_ {
        let k_len = self.forward.c * self.forward.fh * self.forward.fw;
        (0..self.forward.fnum).step_by(MR).flat_map(move |f0| {
            (0..k_len).step_by(NK).map(move |k0| {
                let offsets = std::array::from_fn(|j| self.offset((k0 + j).min(k_len - 1)));
                (f0, k0, offsets)
            })
        })
    }

    /// Adds a block's sums (each accumulator's `W` lanes, pairwise in a fixed order) to `dw`.
    fn store<const W: usize, const MR: usize, const NK: usize>(
        &self,
        (f0, k0): (usize, usize),
        acc: &[[[f32; W]; NK]; MR],
        dw: &mut [f32],
    ) {
        let k_len = self.forward.c * self.forward.fh * self.forward.fw;
        for (i, acc_f) in acc.iter().enumerate().take(self.forward.fnum - f0) {
            for (j, lanes) in acc_f.iter().enumerate().take(k_len - k0) {
                let mut sums = *lanes;
                let mut half = W / 2;
                while half > 0 {
                    for l in 0..half {
                        sums[l] += sums[l + half];
                    }
                    half /= 2;
                }
                dw[(f0 + i) * k_len + k0 + j] += sums[0];
            }
        }
    }
}

/// The `dW` kernel with AVX2 and FMA: for each block of `PG_MR` filters x `PG_NK` filter
/// elements, over every image of the group and every output position, 8 at a time,
///
/// ```text
/// acc[i][j] += dout[f0 + i, oy, ox..ox+8] * xpad[offset(k0 + j) + oy*WP + ox..+8]
/// ```
///
/// then each accumulator's 8 lanes are summed into `dW[f0 + i, k0 + j]`.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA, and the buffers must fit the plan (checked by `run`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn position_grad_avx2_fma(
    plan: &PositionGradPlan,
    padded: &[f32],
    padded_dout: &[f32],
    dw: &mut [f32],
) {
    use std::arch::x86_64::*;
    let p = &plan.forward;
    let (image_len, dout_len) = (p.padded_len(), plan.padded_dout_len());
    let images = padded.len() / image_len;
    let (row_len, wp) = (plan.ow_padded, p.wp);
    let plane = p.oh * row_len;
    let (full, tail) = (p.ow / LANES, p.ow % LANES);
    // Lanes of the last vector of a row that are still inside the row (all ones), the rest
    // 0: ANDed with the pixels, so that a pixel past the row's end (inf or NaN, even)
    // contributes exactly 0.
    let lane_mask: [i32; LANES] = std::array::from_fn(|l| if l < tail { -1 } else { 0 });
    // SAFETY (all loads below): a vector starts at most at the last row's last vector,
    // `(OH-1)*WP + (OW rounded up - 8) + offset`, and the padded image's slack (`L + FW`
    // floats past the last row) covers it; gradient vectors lie inside their padded rows.
    let mask = unsafe { _mm256_loadu_si256(lane_mask.as_ptr().cast()) };
    for (f0, k0, offsets) in plan.blocks::<PG_MR, PG_NK>() {
        let mut acc = [[_mm256_setzero_ps(); PG_NK]; PG_MR];
        for image in 0..images {
            let x = padded[image * image_len..].as_ptr();
            let g = padded_dout[image * dout_len + f0 * plane..].as_ptr();
            for oy in 0..p.oh {
                for v in 0..full + usize::from(tail > 0) {
                    let (start, row) = (oy * wp + v * LANES, oy * row_len + v * LANES);
                    // No closures here: they would not inherit this function's target
                    // features, and the intrinsics would become function calls.
                    let mut grads = [_mm256_setzero_ps(); PG_MR];
                    for (i, vector) in grads.iter_mut().enumerate() {
                        *vector = unsafe { _mm256_loadu_ps(g.add(i * plane + row)) };
                    }
                    for j in 0..PG_NK {
                        let mut pixels = unsafe { _mm256_loadu_ps(x.add(offsets[j] + start)) };
                        if v == full {
                            pixels = _mm256_and_ps(pixels, _mm256_castsi256_ps(mask));
                        }
                        for i in 0..PG_MR {
                            acc[i][j] = _mm256_fmadd_ps(grads[i], pixels, acc[i][j]);
                        }
                    }
                }
            }
        }
        let mut lanes = [[[0.0f32; LANES]; PG_NK]; PG_MR];
        for (out_f, acc_f) in lanes.iter_mut().zip(&acc) {
            for (out, &a) in out_f.iter_mut().zip(acc_f) {
                // SAFETY: stores 8 floats into `out`.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), a) };
            }
        }
        plan.store((f0, k0), &lanes, dw);
    }
}

/// The `dW` kernel in plain Rust (any processor): the same blocks and the same order of
/// additions as the AVX2 kernel, without fused multiply-adds.
fn position_grad_plain(
    plan: &PositionGradPlan,
    padded: &[f32],
    padded_dout: &[f32],
    dw: &mut [f32],
) {
    let p = &plan.forward;
    let (image_len, dout_len) = (p.padded_len(), plan.padded_dout_len());
    let images = padded.len() / image_len;
    let (row_len, wp) = (plan.ow_padded, p.wp);
    let plane = p.oh * row_len;
    for (f0, k0, offsets) in plan.blocks::<PG_MR, PG_NK>() {
        let mut acc = [[[0.0f32; LANES]; PG_NK]; PG_MR];

        for image in 0..images {
            let x = &padded[image * image_len..];
            let g = &padded_dout[image * dout_len + f0 * plane..];
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let l = ox % LANES;
                    for (j, &offset) in offsets.iter().enumerate() {
                        let pixel = x[offset + oy * wp + ox];
                        for (i, acc_f) in acc.iter_mut().enumerate() {
                            acc_f[j][l] += g[i * plane + oy * row_len + ox] * pixel;
                        }
                    }
                }
            }
        }
        plan.store((f0, k0), &acc, dw);
    }
}

/// The `dW` kernel for inputs of several channels, vectorised over filters: with the gradient of each image transposed to
/// `(OH*OW, FN)`, the gradients of 16 filters at one output position are two vectors, and
///
/// ```text
/// acc[v][j] += dout_t[p, f0 + 8v .. f0 + 8v + 8] * xpad[offset(k0 + j) + position(p)]
/// ```
///
/// for a block of 16 filters x 6 filter elements (12 vectors of accumulators), over every
/// position `p` of every image of the group. The accumulators stay in registers for the
/// whole group and hold `dW` itself (no sum across lanes). With AVX-512 a block is 16 or
/// 32 filters (one or two vectors of 16) x 12, 9 or 6 filter elements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterGradPlan {
    forward: ForwardPlan,
    /// Filters rounded up to whole blocks.
    fnum_padded: usize,
    /// Vectors of filters per block, and filter elements per block.
    fv: usize,
    nk: usize,
}

/// Filters per block, at most: two vectors of 16 (AVX-512).
const DW_MAX_FILTERS: usize = 2 * AVX512_LANES;

impl FilterGradPlan {
    /// The plan for the layer the forward plan describes: AVX2 (and plain Rust) use 2
    /// vectors of 8 filters x 6, 5, 4 or 3 filter elements (at most 12 accumulators, 2
    /// gradient vectors and 1 broadcast pixel fit its 16 registers); AVX-512 one or two
    /// vectors of 16 filters x 12, 9 or 6 elements (at most 24 accumulators of its 32
    /// registers). Whichever wastes the least on blocks past the last filter and element.
    fn new(forward: ForwardPlan) -> FilterGradPlan {
        let k_len = forward.c * forward.fh * forward.fw;
        let lanes = forward.simd.lanes();
        let (fvs, nks): (&[usize], &[usize]) = match forward.simd {
            Simd::Avx512 => (&[2, 1], &[12, 9, 6]),
            _ => (&[2], &[6, 5, 4, 3]),
        };
        let least_waste = |options: &[usize], len: usize, unit: usize| {
            *options
                .iter()
                .min_by_key(|&&n| len.next_multiple_of(n * unit))
                .expect("block sizes")
        };
        let fv = least_waste(fvs, forward.fnum, lanes);
        FilterGradPlan {
            forward,
            fnum_padded: forward.fnum.next_multiple_of(fv * lanes),
            fv,
            nk: least_waste(nks, k_len, 1),
        }
    }

    /// Filters per block.
    fn filters(&self) -> usize {
        self.fv * self.forward.simd.lanes()
    }

    /// Length of one image's transposed gradient `(OH*OW, FN rounded up)`.
    fn padded_dout_len(&self) -> usize {
        self.forward.oh * self.forward.ow * self.fnum_padded
    }

    /// Copies one image's `dout` `(FN, OH*OW)` into `padded`, transposed to
    /// `(OH*OW, FN rounded up)`; the padding filters are 0.
    fn pad_dout(&self, dout: &[f32], padded: &mut [f32]) {
        match self.forward.simd {
            // SAFETY: the plan's instructions are ones the processor has.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 | Simd::Avx512 => unsafe { self.pad_dout_avx2(dout, padded) },
            _ => self.pad_dout_blocks::<false>(dout, padded),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn pad_dout_avx2(&self, dout: &[f32], padded: &mut [f32]) {
        self.pad_dout_blocks::<true>(dout, padded);
    }

    /// [`FilterGradPlan::pad_dout`] by 8x8 blocks (8 filters x 8 positions, transposed
    /// with [`transpose8`]; the padding filters past `FN` are rows of zeros in the last
    /// block), then the positions outside whole blocks one by one. (With the last,
    /// partial block of filters one by one too, SimpleConvNet's 30 filters took about
    /// as long to transpose as their `dW` kernel.)
    #[inline(always)]
    fn pad_dout_blocks<const AVX2: bool>(&self, dout: &[f32], padded: &mut [f32]) {
        let (fnum, positions) = (self.forward.fnum, self.forward.oh * self.forward.ow);
        let row_len = self.fnum_padded;
        debug_assert!(row_len.is_multiple_of(8), "whole blocks of 8 filters");
        let whole_p = positions / 8 * 8;
        for f0 in (0..row_len).step_by(8) {
            for p0 in (0..whole_p).step_by(8) {
                let block: [[f32; 8]; 8] = std::array::from_fn(|i| {
                    let at = (f0 + i) * positions + p0;
                    if f0 + i < fnum {
                        dout[at..at + 8].try_into().expect("8 floats")
                    } else {
                        [0.0; 8]
                    }
                });
                for (j, row) in transpose8::<AVX2>(&block).iter().enumerate() {
                    let at = (p0 + j) * row_len + f0;
                    padded[at..at + 8].copy_from_slice(row);
                }
            }
        }
        for (p, row) in padded.chunks_exact_mut(row_len).enumerate().skip(whole_p) {
            for (f, value) in row.iter_mut().enumerate() {
                *value = if f < fnum {
                    dout[f * positions + p]
                } else {
                    0.0
                };
            }
        }
    }

    /// Adds the `dW` `(FN, C*FH*FW)` of a group of images to `dw`, from their padded
    /// images (one after the other, the forward plan's layout) and transposed gradients.
    fn run(&self, padded: &[f32], padded_dout: &[f32], dw: &mut [f32]) {
        let p = &self.forward;
        let images = padded.len() / p.padded_len();
        assert!(
            images * p.padded_len() == padded.len()
                && images * self.padded_dout_len() == padded_dout.len()
                && dw.len() == p.fnum * p.c * p.fh * p.fw,
            "direct_conv: dW buffers do not fit the plan"
        );
        let (g, x) = (padded_dout, padded);
        // SAFETY (the unsafe arms): the plan's instructions are ones the processor has
        // (`Simd::best`), and the buffers fit the plan (asserted).
        #[cfg(target_arch = "x86_64")]
        match (self.forward.simd, self.fv, self.nk) {
            (Simd::Avx512, 2, 12) => unsafe { filter_grad_avx512::<2, 12>(self, x, g, dw) },
            (Simd::Avx512, 2, 9) => unsafe { filter_grad_avx512::<2, 9>(self, x, g, dw) },
            (Simd::Avx512, 2, _) => unsafe { filter_grad_avx512::<2, 6>(self, x, g, dw) },
            (Simd::Avx512, _, 12) => unsafe { filter_grad_avx512::<1, 12>(self, x, g, dw) },
            (Simd::Avx512, _, 9) => unsafe { filter_grad_avx512::<1, 9>(self, x, g, dw) },
            (Simd::Avx512, _, _) => unsafe { filter_grad_avx512::<1, 6>(self, x, g, dw) },
            (Simd::Avx2, _, 6) => unsafe { filter_grad_avx2_fma::<6>(self, x, g, dw) },
            (Simd::Avx2, _, 5) => unsafe { filter_grad_avx2_fma::<5>(self, x, g, dw) },
            (Simd::Avx2, _, 4) => unsafe { filter_grad_avx2_fma::<4>(self, x, g, dw) },
            (Simd::Avx2, _, _) => unsafe { filter_grad_avx2_fma::<3>(self, x, g, dw) },
            (Simd::Plain, _, _) => self.run_plain(x, g, dw),
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.run_plain(x, g, dw);
    }

    /// [`FilterGradPlan::run`] in plain Rust.
    fn run_plain(&self, padded: &[f32], padded_dout: &[f32], dw: &mut [f32]) {
        match self.nk {
            6 => filter_grad_plain::<6>(self, padded, padded_dout, dw),
            5 => filter_grad_plain::<5>(self, padded, padded_dout, dw),
            4 => filter_grad_plain::<4>(self, padded, padded_dout, dw),
            _ => filter_grad_plain::<3>(self, padded, padded_dout, dw),
        }
    }

    /// The blocks of `(first filter, first filter element)`, and per block the offsets
    /// where its filter elements read in a padded image, relative to the output position
    /// (a block past the last element repeats it; discarded).
    fn blocks<const NK: usize>(&self) -> impl Iterator<Item = (usize, usize, [usize; NK])> + '_ {
        let p = &self.forward;
        let k_len = p.c * p.fh * p.fw;
        let offset =
            move |k: usize| (k / (p.fh * p.fw)) * p.hp * p.wp + (k / p.fw % p.fh) * p.wp + k % p.fw;
        (0..p.fnum).step_by(self.filters()).flat_map(move |f0| {
            (0..k_len).step_by(NK).map(move |k0| {
                (
                    f0,
                    k0,
                    std::array::from_fn(|j| offset((k0 + j).min(k_len - 1))),
                )
            })
        })
    }

    /// Adds a block's accumulators (`[filter element][filter]`) to `dw`.
    /// Of each row only the block's filters are read.
    fn store<const F: usize, const NK: usize>(
        &self,
        (f0, k0): (usize, usize),
        acc: &[[f32; F]; NK],
        dw: &mut [f32],
    ) {
        let k_len = self.forward.c * self.forward.fh * self.forward.fw;
        let filters = self.filters().min(self.forward.fnum - f0);
        for (j, per_filter) in acc.iter().enumerate().take(k_len - k0) {
            for (i, &value) in per_filter.iter().enumerate().take(filters) {
                dw[(f0 + i) * k_len + k0 + j] += value;
            }
        }
    }
}

/// The `dW` kernel with AVX2 and FMA (see [`FilterGradPlan`]).
///
/// # Safety
///
/// The CPU must have AVX2 and FMA, and the buffers must fit the plan (checked by `run`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn filter_grad_avx2_fma<const NK: usize>(
    plan: &FilterGradPlan,
    padded: &[f32],
    padded_dout: &[f32],
    dw: &mut [f32],
) {
    use std::arch::x86_64::*;
    let p = &plan.forward;
    let (image_len, dout_len) = (p.padded_len(), plan.padded_dout_len());
    let images = padded.len() / image_len;
    let fnp = plan.fnum_padded;
    for (f0, k0, offsets) in plan.blocks::<NK>() {
        let mut acc = [[_mm256_setzero_ps(); 2]; NK];
        for image in 0..images {
            let x = &padded[image * image_len..(image + 1) * image_len];
            let g = &padded_dout[image * dout_len..(image + 1) * dout_len];
            // The largest indices read below: the last position's pixel for the block's
            // last offset, and its 16 gradients.
            let last_pixel = offsets[NK - 1] + (p.oh - 1) * p.wp + p.ow - 1;
            let last_grad = (p.oh * p.ow - 1) * fnp + f0 + 2 * LANES;
            assert!(
                last_pixel < x.len() && last_grad <= g.len(),
                "direct_conv: dW buffers"
            );
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let (pixel_at, grads_at) = (oy * p.wp + ox, (oy * p.ow + ox) * fnp + f0);
                    // No closures here: they would not inherit this function's target
                    // features, and the intrinsics would become function calls.
                    let mut vectors = [_mm256_setzero_ps(); 2];
                    for (v, vector) in vectors.iter_mut().enumerate() {
                        // SAFETY: `grads_at + 16 <= last_grad <= g.len()` (asserted).
                        *vector = unsafe { _mm256_loadu_ps(g.as_ptr().add(grads_at + v * LANES)) };
                    }
                    for (acc_k, &offset) in acc.iter_mut().zip(&offsets) {
                        // SAFETY: `offset + pixel_at <= last_pixel < x.len()` (asserted);
                        // unchecked to keep the loop free of branches.
                        let pixel = _mm256_set1_ps(unsafe { *x.get_unchecked(offset + pixel_at) });
                        for (a, &g) in acc_k.iter_mut().zip(&vectors) {
                            *a = _mm256_fmadd_ps(g, pixel, *a);
                        }
                    }
                }
            }
        }
        let mut sums = [[0.0f32; 2 * LANES]; NK];
        for (out, acc_k) in sums.iter_mut().zip(&acc) {
            for (v, &a) in acc_k.iter().enumerate() {
                // SAFETY: stores 8 floats into `out[8v..8v + 8]`.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(v * LANES), a) };
            }
        }
        plan.store((f0, k0), &sums, dw);
    }
}

/// The `dW` kernel with AVX-512 (see [`FilterGradPlan`]): the AVX2 kernel with `FV`
/// vectors of 16 filters.
///
/// # Safety
///
/// The CPU must have AVX-512 (F), and the buffers must fit the plan (checked by `run`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn filter_grad_avx512<const FV: usize, const NK: usize>(
    plan: &FilterGradPlan,
    padded: &[f32],
    padded_dout: &[f32],
    dw: &mut [f32],
) {
    use std::arch::x86_64::*;
    debug_assert_eq!(plan.fv, FV);
    let p = &plan.forward;
    let (image_len, dout_len) = (p.padded_len(), plan.padded_dout_len());
    let images = padded.len() / image_len;
    let fnp = plan.fnum_padded;
    for (f0, k0, offsets) in plan.blocks::<NK>() {
        let mut acc = [[_mm512_setzero_ps(); FV]; NK];
        for image in 0..images {
            let x = &padded[image * image_len..(image + 1) * image_len];
            let g = &padded_dout[image * dout_len..(image + 1) * dout_len];
            let last_pixel = offsets[NK - 1] + (p.oh - 1) * p.wp + p.ow - 1;
            let last_grad = (p.oh * p.ow - 1) * fnp + f0 + FV * AVX512_LANES;
            assert!(
                last_pixel < x.len() && last_grad <= g.len(),
                "direct_conv: dW buffers"
            );
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let (pixel_at, grads_at) = (oy * p.wp + ox, (oy * p.ow + ox) * fnp + f0);
                    let mut vectors = [_mm512_setzero_ps(); FV];
                    for (v, vector) in vectors.iter_mut().enumerate() {
                        // SAFETY: `grads_at + 16 FV <= last_grad <= g.len()` (asserted).
                        *vector =
                            unsafe { _mm512_loadu_ps(g.as_ptr().add(grads_at + v * AVX512_LANES)) };
                    }
                    for (acc_k, &offset) in acc.iter_mut().zip(&offsets) {
                        // SAFETY: `offset + pixel_at <= last_pixel < x.len()` (asserted).
                        let pixel = _mm512_set1_ps(unsafe { *x.get_unchecked(offset + pixel_at) });
                        for (a, &g) in acc_k.iter_mut().zip(&vectors) {
                            *a = _mm512_fmadd_ps(g, pixel, *a);
                        }
                    }
                }
            }
        }
        let mut sums = [[0.0f32; DW_MAX_FILTERS]; NK];
        for (out, acc_k) in sums.iter_mut().zip(&acc) {
            for (v, &a) in acc_k.iter().enumerate() {
                // SAFETY: stores 16 floats into `out[16v..16v + 16]`, `v < FV <= 2`.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(v * AVX512_LANES), a) };
            }
        }
        plan.store((f0, k0), &sums, dw);
    }
}

/// The `dW` kernel in plain Rust (any processor): the same blocks and the same order of
/// additions as the AVX2 kernel, without fused multiply-adds.
fn filter_grad_plain<const NK: usize>(
    plan: &FilterGradPlan,
    padded: &[f32],
    padded_dout: &[f32],
    dw: &mut [f32],
) {
    let p = &plan.forward;
    let (image_len, dout_len) = (p.padded_len(), plan.padded_dout_len());
    let images = padded.len() / image_len;
    let fnp = plan.fnum_padded;
    for (f0, k0, offsets) in plan.blocks::<NK>() {
        let mut acc = [[0.0f32; 2 * LANES]; NK];
        for image in 0..images {
            let x = &padded[image * image_len..(image + 1) * image_len];
            let g = &padded_dout[image * dout_len..(image + 1) * dout_len];
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let (pixel_at, grads_at) = (oy * p.wp + ox, (oy * p.ow + ox) * fnp + f0);
                    let grads = &g[grads_at..grads_at + 2 * LANES];

                    for (acc_k, &offset) in acc.iter_mut().zip(&offsets) {
                        let pixel = x[offset + pixel_at];
                        for (a, &g) in acc_k.iter_mut().zip(grads) {
                            *a += g * pixel;
                        }
                    }
                }
            }
        }
        plan.store((f0, k0), &acc, dw);
    }
}

/// The plan for `dx`: the forward kernel run on `dout` padded by `FH-1-pad`, with the
/// filters flipped and their channel axes swapped, or `None` if `pad >= FH` or `pad >= FW`,
/// or if the layer has fewer than 4 input channels: `dx` then has that few channels, the
/// kernel's blocks of 3 to 12 "filters" would be mostly empty, and the im2col product is
/// faster (measured for SimpleConvNet's 1-channel layer: 36,000 images/s by im2col against
/// 23,000 here).
pub(crate) fn input_grad_plan(forward: &ForwardPlan) -> Option<ForwardPlan> {
    let p = forward;
    if p.c < 4 || p.pad >= p.fh || p.pad >= p.fw || p.fh != p.fw {
        return None;
    }
    let plan = ForwardPlan::with_simd(
        (p.c, p.fnum, p.fh, p.fw),
        (p.oh, p.ow),
        p.fh - 1 - p.pad,
        p.simd,
    )?;
    (plan.output() == (p.h, p.w)).then_some(plan)
}

#[cfg(test)]
mod tests {
    use super::super::simd::as_output;
    use super::*;

    /// Every kernel this processor can run (plain Rust, AVX2, AVX-512) against the
    /// definitions of the convolution and of `dW`, summed in f64 from the unpadded image.
    #[test]
    fn every_kernel_matches_the_definitions() {
        // (filters, channels, filter size, pad, height, width): several channels (dW by
        // filters, 16 or 32 filters per AVX-512 block) and one (dW by positions without
        // AVX-512, rows with a tail of 3 past 8; by filters with it), rows wider than one
        // block.
        let shapes = [
            (7, 2, 3, 1, 9, 13),
            (5, 1, 5, 0, 12, 11),
            (30, 1, 5, 0, 28, 28),
            (16, 16, 3, 1, 14, 14),
            (33, 5, 3, 1, 7, 9),
            (64, 3, 3, 1, 5, 40),
        ];
        for shape in shapes {
            for simd in Simd::available() {
                kernels_match_for(shape, simd);
            }
        }
    }

    /// The shapes above include shifted copies with and without padding, at every level
    /// (so the comparison covers them), and SimpleConvNet's first layer uses them.
    #[test]
    fn shifted_copies_are_chosen_where_they_save_work() {
        for simd in Simd::available() {
            let cut = |(fnum, c, f, pad, h, w)| {
                ForwardPlan::with_simd((fnum, c, f, f), (h, w), pad, simd)
                    .unwrap()
                    .cut
            };
            assert_eq!(cut((30, 1, 5, 0, 28, 28)), Cut::Shifted, "{simd:?}");
            assert_eq!(cut((33, 5, 3, 1, 7, 9)), Cut::Shifted, "{simd:?}");
            assert_eq!(cut((5, 1, 5, 0, 12, 11)), Cut::Shifted, "{simd:?}");
            // Too large to copy three times: the padded image itself.
            assert_ne!(cut((16, 16, 3, 1, 28, 28)), Cut::Shifted, "{simd:?}");
        }
    }

    fn kernels_match_for(
        (fnum, c, f, pad, h, w): (usize, usize, usize, usize, usize, usize),
        simd: Simd,
    ) {
        let plan = ForwardPlan::with_simd((fnum, c, f, f), (h, w), pad, simd).unwrap();
        let image: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
            .collect();
        let weight = |a: usize, b: usize, i: usize, j: usize| {
            ((a * 5 + b * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        };
        let packed = plan.pack_weights(weight);
        let bias: Vec<f32> = (0..fnum).map(|i| i as f32 * 0.25).collect();
        let mut input = vec![f32::NAN; plan.kernel_input_len()]; // every float must be written
        plan.kernel_input(&image, &mut input);
        let (oh, ow) = plan.output();
        let mut out = vec![f32::NAN; fnum * oh * ow]; // every float must be written
        // SAFETY: the kernel writes floats.
        let out_view = unsafe { as_output(&mut out) };
        plan.run(&input, &packed, Some(&bias), &mut Vec::new(), out_view);
        let pixel = |ch: usize, y: usize, x: usize| -> f64 {
            if y < pad || x < pad || y >= h + pad || x >= w + pad {
                0.0
            } else {
                image[(ch * h + y - pad) * w + x - pad] as f64
            }
        };
        let what = format!("{simd:?}, shape {:?}", (fnum, c, f, pad, h, w));
        for fi in 0..fnum {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = bias[fi] as f64;
                    for ch in 0..c {
                        for fy in 0..f {
                            for fx in 0..f {
                                sum += weight(fi, ch, fy, fx) as f64 * pixel(ch, oy + fy, ox + fx);
                            }
                        }
                    }
                    let got = out[(fi * oh + oy) * ow + ox] as f64;
                    assert!(
                        (got - sum).abs() < 1e-4 * (1.0 + sum.abs()),
                        "forward {what}: out[{fi}, {oy}, {ox}] = {got}, expected {sum}"
                    );
                }
            }
        }

        let mut padded = vec![0.0; plan.padded_len()];
        plan.pad_image(&image, &mut padded);
        let dw_plan = WeightGradPlan::new(plan);
        let dout: Vec<f32> = (0..fnum * oh * ow)
            .map(|i| ((i * 13) % 17) as f32 / 8.0 - 1.0)
            .collect();
        let mut padded_dout = vec![0.0; dw_plan.padded_dout_len()];
        dw_plan.pad_dout(&dout, &mut padded_dout);
        let mut dw = vec![0.0; fnum * c * f * f];
        dw_plan.run(&padded, &padded_dout, &mut dw);
        // dW[f, c, fy, fx] = Σ dout[f, oy, ox] * xpad[c, oy + fy, ox + fx].
        let k_len = c * f * f;
        for fi in 0..fnum {
            for k in 0..k_len {
                let (ch, fy, fx) = (k / (f * f), k / f % f, k % f);
                let mut sum = 0.0f64;
                for oy in 0..oh {
                    for ox in 0..ow {
                        sum += dout[(fi * oh + oy) * ow + ox] as f64 * pixel(ch, oy + fy, ox + fx);
                    }
                }
                let got = dw[fi * k_len + k] as f64;
                assert!(
                    (got - sum).abs() < 1e-3 * (1.0 + sum.abs()),
                    "dW {what}: dW[{fi}, {k}] = {got}, expected {sum}"
                );
            }
        }
    }

    /// The level chosen is one the processor has, and a run's result depends only on its
    /// inputs, not on what its output and scratch buffers held before.
    /// Flat filters packed in one pass, as they are and flipped, equal the weight-by-weight
    /// packing, padding filters (counts that are not multiples of any block) included, at
    /// every level.
    #[test]
    fn flat_packing_equals_the_weight_by_weight_packing() {
        for (fnum, c, f) in [(1, 1, 3), (5, 3, 3), (16, 16, 3), (33, 7, 5), (64, 64, 3)] {
            for simd in Simd::available() {
                let plan = ForwardPlan::with_simd((fnum, c, f, f), (12, 12), 1, simd).unwrap();
                let weight = |n: usize, ch: usize, y: usize, x: usize| {
                    (n * 31 + ch * 7 + y * 3 + x) as f32 - 100.0
                };
                let flat: Vec<f32> = (0..fnum)
                    .flat_map(|n| {
                        (0..c).flat_map(move |ch| {
                            (0..f).flat_map(move |y| (0..f).map(move |x| weight(n, ch, y, x)))
                        })
                    })
                    .collect();
                assert_eq!(
                    plan.pack_filters(&flat),
                    plan.pack_weights(weight),
                    "{simd:?}, {fnum} filters, {c} channels, {f}x{f}"
                );
                // The same floats as the weights of a layer of `c` filters over `fnum`
                // channels, each flipped, as its `dx` kernel (this plan) takes them.
                let flipped = plan.pack_weights(|n, ch, y, x| weight(ch, n, f - 1 - y, f - 1 - x));
                let layer: Vec<f32> = (0..c)
                    .flat_map(|ch| {
                        (0..fnum).flat_map(move |n| {
                            (0..f).flat_map(move |y| (0..f).map(move |x| weight(ch, n, y, x)))
                        })
                    })
                    .collect();
                assert_eq!(
                    plan.pack_flipped(&layer),
                    flipped,
                    "{simd:?}, flipped, {fnum} filters, {c} channels, {f}x{f}"
                );
            }
        }
    }

    /// A block layout made for one plan is refused by a plan whose loads it would take
    /// past the padded image (the kernels' loads are unchecked).
    #[test]
    #[should_panic(expected = "a block layout of another plan")]
    fn a_layout_of_a_smaller_plan_is_refused() {
        let small = ForwardPlan::new((16, 8, 1, 1), (4, 4), 0).unwrap();
        let large = ForwardPlan::new((16, 8, 1, 1), (8, 8), 0).unwrap();
        let padded = vec![0.0; small.padded_len()];
        let packed = vec![0.0; small.packed_len()];
        let mut scratch = vec![0.0; small.scratch_len()];
        small.run_kernel_with(&large.block_layout(), &padded, &packed, &mut scratch);
    }

    /// 1x1 filters packed channel by channel equal the weight-by-weight packing, padding
    /// filters (counts that are not multiples of any block) included, at every level.
    #[test]
    fn channel_packing_equals_the_weight_by_weight_packing() {
        for (fnum, c) in [(1, 1), (5, 3), (16, 16), (33, 7), (64, 64)] {
            for simd in Simd::available() {
                let plan = ForwardPlan::with_simd((fnum, c, 1, 1), (1, 16), 0, simd).unwrap();
                let weight = |f: usize, ch: usize| (f * 31 + ch * 7) as f32 - 100.0;
                let rows: Vec<Vec<f32>> = (0..c)
                    .map(|ch| (0..fnum).map(|f| weight(f, ch)).collect())
                    .collect();
                // Every float must be written (the kernels get it uninitialised).
                let mut by_channel = vec![f32::NAN; plan.packed_len()];
                // SAFETY: the packing writes floats.
                plan.pack_channels_into(|ch| &rows[ch], unsafe { as_output(&mut by_channel) });
                let by_weight = plan.pack_weights(|f, ch, _, _| weight(f, ch));
                assert_eq!(
                    by_channel, by_weight,
                    "{simd:?}, {fnum} filters, {c} channels"
                );
            }
        }
    }

    #[test]
    fn the_chosen_level_is_available_and_old_buffer_contents_do_not_leak() {
        // `run` overwrites every output and every scratch entry it reads: a second run into
        // an output full of NaN, with the first run's scratch refilled with NaN, gives the
        // same bits as the first run into fresh buffers.
        assert!(Simd::available().contains(&Simd::best()));
        let plan = ForwardPlan::new((12, 3, 3, 3), (10, 10), 1).unwrap();
        let packed = plan.pack_weights(|a, b, i, j| (a + 2 * b + 3 * i + j) as f32 * 0.01);
        let image: Vec<f32> = (0..300).map(|i| (i % 11) as f32 * 0.1).collect();
        let mut padded = vec![f32::NAN; plan.kernel_input_len()];
        plan.kernel_input(&image, &mut padded);
        let mut first = vec![0.0; 12 * 100];
        let mut scratch = Vec::new();
        // SAFETY (here and below): the kernel writes floats.
        let first_out = unsafe { as_output(&mut first) };
        plan.run(&padded, &packed, None, &mut scratch, first_out);
        assert!(
            first.iter().all(|v| v.is_finite()),
            "padding left NaN in the image"
        );
        scratch.fill(f32::NAN);
        let mut second = vec![f32::NAN; 12 * 100];
        let second_out = unsafe { as_output(&mut second) };
        plan.run(&padded, &packed, None, &mut scratch, second_out);
        assert_eq!(first, second);
    }
}
