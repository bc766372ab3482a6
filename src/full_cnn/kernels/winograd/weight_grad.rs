//! Winograd's F(2x2, 3x3) and F(4x4, 3x3) for the weight gradient `dW` of a 3x3
//! convolution (stride 1).
//!
//! The forward pass computes each 2x2 tile of outputs as `Y = Aᵀ [U ⊙ V] A`, with
//! `U = G g Gᵀ` from the filter `g` and `V = Bᵀ d B` from the 4x4 input tile `d` (see the
//! parent module). `Y` is linear in `g`, so the chain rule runs the same formula
//! backwards: with `Z = A dY Aᵀ` (the tile's 2x2 output gradient taken to 4x4),
//!
//! ```text
//! dL/dU = Z ⊙ V         dL/dg = Gᵀ (dL/dU) G = Gᵀ [ Σ_tiles Z ⊙ V ] G
//! ```
//!
//! summed over every tile of every image. Over filters and channels the sum is again 16
//! matrix products, one per position `p` of the 4x4 basis, this time with the tiles as
//! the long inner dimension:
//!
//! ```text
//! M[p] (FN, C) = Σ_tiles Z[p] (FN, tiles) · V[p] (C, tiles)ᵀ       dW = Gᵀ M G per (f, c)
//! ```
//!
//! 16 products over the tiles instead of 9 per output: 2.25 times fewer
//! multiplications than the direct `dW` kernel, and the last step (`Gᵀ M G`) is done once
//! per batch, not per image. The last row of `A` is `(0, -1)`; the code uses `(0, 1)` and
//! moves the sign into the last row of `G` (a sign on row 3 and column 3 of every `Z`
//! comes out of the sum unchanged).
//!
//! F(4x4, 3x3) runs the same way with its own matrices (submodule `f4x4`): `Z = A dY Aᵀ`
//! takes a 4x4 tile of the gradient to 6x6, the sums are 36 products over 4 times fewer
//! tiles (`36/16 = 2.25` multiplications per output instead of 4 for F(2x2, 3x3) and 9
//! for the direct kernel), then `dW = Gᵀ M G` with its 6x3 `G`. The gradient uses the
//! forward pass's tile.
//!
//! As in the forward pass, [`GROUP`] images run together, one per lane, so a tile is 16
//! (or 36) vectors. The products keep 4 filters x 3 channels of sums in registers (a
//! vector per pair, summed across its lanes at the end of a band of tiles). With AVX-512
//! a vector holds two tiles, and 4 x 4 sums are kept; their 16 lane sums come out of one
//! tree of shuffles. Measured on one core of an AMD EPYC (Zen 5), batch 100, each layer's
//! `backward_params` timed alone: DeepConvNet's six `dW`s took 13.5-13.6 ms against
//! 16.2-16.9 with `CNN_FROM_SCRATCH_SIMD=avx2` (two runs each); the transforms, the
//! padding and the gradients' interleaving, unchanged, are now most of the time.
//!
//! Measured on one core, batch 100, interleaved with the direct `dW` kernel in the same
//! process (medians of 40 runs each): 0.90 times its time for DeepConvNet's 32-over-32
//! layer, 0.74 for 64 over 32, 0.75 for 64 over 64. Far from 1/2.25: the direct kernel
//! runs close to the processor's peak, and here the transforms, the lane sums and the
//! band buffers' trips through the cache take about half the time. For the 16-channel
//! layers it was no faster (0.98-1.15 times).
//!
//! With F(4x4, 3x3) (the same measurement, runs of 2 groups, min of 40, two runs):
//! 0.72-0.74 times the direct kernel's time for the 16-over-16-channel 28x28 layer (36.4
//! against 49.5 µs per image), 0.88-0.93 for 32 over 16, 0.56 for 32 over 32 (0.70 times
//! F(2x2, 3x3)'s), 0.62 for 64 over 32 and 0.56 for 64 over 64 (0.75-0.81 times F(2x2,
//! 3x3)'s).
//! Over DeepConvNet's five layers, 152 µs per image against 201 for the direct kernel
//! below 32 channels and F(2x2, 3x3) above. So F(4x4, 3x3) computes `dW` from 16
//! channels and filters, F(2x2, 3x3) from 32 (module `conv_kernel`).

use std::cell::RefCell;

use rayon::prelude::*;

use super::f4x4::{self, Arith, Avx2, Vector};
use super::{BASIS, GROUP, Group, Lanes, Tile, WinogradPlan, interleave_group};
use crate::full_cnn::kernels::direct_conv::first_of;
use crate::full_cnn::kernels::simd::Simd;

/// Register block of the products: 4 filters x 3 channels, 12 accumulators, with the 3
/// channels' vectors and one filter's: 16 vector registers (all AVX2 has).
const NF: usize = 4;
const NC: usize = 3;

/// Tiles (of `GROUP` images each) transformed before their products run: enough that
/// summing each accumulator's lanes at the end is a small part of the work, few enough
/// that each position's `Z` and `V` stay in the processor's cache. Measured for the
/// 64-over-64-channel layer (one core, against the direct kernel in the same process):
/// 0.83 times the direct kernel's time with 16 tiles, 0.75 with 32, 0.92 with 64.
const BAND_TILES: usize = 32;

/// Positions of the larger transformed tile (F(4x4, 3x3)'s 6x6).
const MAX_BASIS: usize = 36;

/// F(2x2, 3x3)'s `G` with its last row negated (see the module comment).
const G2: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, -1.0],
];

thread_local! {
    /// Each worker thread's transformed tiles `V` and `Z` of one band, kept from call to
    /// call. Only what was written in the same band is read.
    static BANDS: RefCell<(Vec<f32>, Vec<f32>)> = RefCell::default();
}

/// How to run the Winograd `dW` for one layer shape: a forward plan of the layer's
/// shape, whose tile (F(2x2, 3x3) or F(4x4, 3x3)) the gradient uses too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinogradGradPlan {
    plan: WinogradPlan,
}

impl WinogradGradPlan {
    /// The plan for the layer whose forward plan is `plan`.
    pub(crate) fn new(plan: WinogradPlan) -> WinogradGradPlan {
        WinogradGradPlan { plan }
    }

    /// Positions of the transformed tile: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3).
    fn basis(&self) -> usize {
        self.plan.tile.basis()
    }

    /// Length of one group's padded images (as for the forward pass).
    pub(crate) fn padded_len(&self) -> usize {
        self.plan.padded_len()
    }

    /// `GROUP` images, interleaved and padded as for the forward pass.
    pub(crate) fn pad_images(&self, images: &[f32], padded: &mut [f32]) {
        self.plan.pad_images(images, padded);
    }

    /// Length of one group's interleaved output gradients: `(FN, m*th, m*tw)` pixels
    /// (`m` outputs per tile across), whole tiles (zeros past the edge), `GROUP` floats
    /// each.
    pub(crate) fn dout_len(&self) -> usize {
        let m = self.plan.tile.outputs();
        self.plan.fnum * m * self.plan.th * m * self.plan.tw * GROUP
    }

    /// The size `(rows, columns)` of each filter's plane of interleaved gradients
    /// ([`WinogradGradPlan::interleave_dout`]): whole tiles, the outputs in its first rows
    /// and columns.
    pub(crate) fn dout_plane(&self) -> (usize, usize) {
        let m = self.plan.tile.outputs();
        (m * self.plan.th, m * self.plan.tw)
    }

    /// `GROUP` images' `dL/dout` `(FN, OH, OW)` into `out`, interleaved like the images
    /// (every entry is written): given whole, or rebuilt from a pooling's gradients
    /// ([`Group`]).
    pub(crate) fn interleave_dout(&self, douts: Group, out: &mut [f32]) {
        assert_eq!(out.len(), self.dout_len(), "winograd dW: gradients");
        let p = &self.plan;
        let sizes = ((p.fnum, p.oh, p.ow), self.dout_plane());
        interleave_group(p.product.simd(), douts, sizes, 0, out);
    }

    /// Length of the sums `M` `(16 or 36, FN, C)` that [`WinogradGradPlan::run`] writes.
    pub(crate) fn sums_len(&self) -> usize {
        self.basis() * self.plan.fnum * self.plan.c
    }

    /// The sums `M` of one or more groups into `m` (every entry written), from their
    /// padded images ([`WinogradGradPlan::pad_images`], one group after the other) and
    /// their interleaved gradients ([`WinogradGradPlan::interleave_dout`], in the same
    /// order). [`WinogradGradPlan::add_weight_grad`] turns the sums of one or more runs
    /// into `dW` (once, for the batch).
    pub(crate) fn run(&self, padded: &[f32], dout: &[f32], m: &mut [f32]) {
        let p = &self.plan;
        let groups = padded.len() / p.padded_len();
        assert!(
            groups > 0
                && groups * p.padded_len() == padded.len()
                && groups * self.dout_len() == dout.len()
                && m.len() == self.sums_len(),
            "winograd dW: buffers do not fit the plan"
        );
        match p.product.simd() {
            // SAFETY: the plan's instructions are ones the processor has.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.run_avx512(padded, dout, m) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.run_avx2(padded, dout, m) },
            _ => self.run_bands::<false, false>(padded, dout, m),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, padded: &[f32], dout: &[f32], m: &mut [f32]) {
        self.run_bands::<true, false>(padded, dout, m);
    }

    /// [`WinogradGradPlan::run`] with the products in AVX-512 ([`products_avx512`]); the
    /// transforms are AVX2's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn run_avx512(&self, padded: &[f32], dout: &[f32], m: &mut [f32]) {
        self.run_bands::<true, true>(padded, dout, m);
    }

    /// Band by band: transform the tiles of a few rows of tiles (across groups, in order)
    /// into `V` and `Z`, and add the band's 16 products into `M`.
    #[inline(always)]
    fn run_bands<const AVX2: bool, const AVX512: bool>(
        &self,
        padded: &[f32],
        dout: &[f32],
        m: &mut [f32],
    ) {
        let p = &self.plan;
        let (c, fnum, basis) = (p.c, p.fnum, self.basis());
        // Whole rows of tiles per band; a band's row of V or Z is `band_tiles` tiles long,
        // and no longer than the run's tiles. (Rows longer than what fills them spread the
        // band over more memory: for 64 filters over 64 channels of 8x8, where a run of 2
        // groups has 8 tiles of F(4x4, 3x3), rows of 32 tiles took 48 µs per image, rows
        // of 8 tiles 38.)
        let groups = padded.len() / p.padded_len();
        let band_tiles = ((BAND_TILES / p.tw).max(1) * p.tw).min(groups * p.th * p.tw);
        let row = band_tiles * GROUP;
        // Taken out of the thread-local and put back after, not used inside a closure: a
        // closure would not inherit this function's target features (no FMA).
        let (mut v_buffer, mut z_buffer) = BANDS.take();
        let v = first_of(&mut v_buffer, basis * c * row);
        let z = first_of(&mut z_buffer, basis * fnum * row);
        // The first band's products write M, the others add to it.
        let (mut filled, mut first) = (0, true);
        for (padded_g, dout_g) in padded
            .chunks_exact(p.padded_len())
            .zip(dout.chunks_exact(self.dout_len()))
        {
            for ty in 0..p.th {
                let at = filled * GROUP;
                let layout = (c * row, row, at);
                match p.tile {
                    Tile::F2x2 => {
                        p.transform_input_into(padded_g, ty, v, layout);
                        self.transform_dout(dout_g, ty, z, (row, at));
                    }
                    Tile::F4x4 if AVX2 => {
                        p.transform_input_f4x4_into::<Avx2>(padded_g, ty, v, layout);
                        self.transform_dout_f4x4::<Avx2>(dout_g, ty, z, (row, at));
                    }
                    Tile::F4x4 => {
                        p.transform_input_f4x4_into::<Lanes>(padded_g, ty, v, layout);
                        self.transform_dout_f4x4::<Lanes>(dout_g, ty, z, (row, at));
                    }
                }
                filled += p.tw;
                if filled == band_tiles {
                    band_products::<AVX2, AVX512>(v, z, (basis, c, fnum, row), (filled, first), m);
                    (filled, first) = (0, false);
                }
            }
        }
        if filled > 0 {
            band_products::<AVX2, AVX512>(v, z, (basis, c, fnum, row), (filled, first), m);
        }
        BANDS.set((v_buffer, z_buffer));
    }

    /// `dW[f, c] += Gᵀ M[f, c] G` `(FN, C*9)`, `M` being the sums of `runs` added in
    /// order (each from [`WinogradGradPlan::run`]) and `M[f, c]` the 4x4 (or 6x6) of
    /// `M[p][f, c]`: as `Gᵀ (M G)`, 4x4x3 then 3x4x3 products (or 6x6x3 and 3x6x3). In
    /// parallel over blocks of (filter, channel) pairs, each block's sums added run by run
    /// (the same order whatever the threads; on one thread, after the runs, this was a
    /// serial part of every step).
    pub(crate) fn add_weight_grad(&self, runs: &[&[f32]], dw: &mut [f32]) {
        let pairs = self.plan.fnum * self.plan.c;
        let g: &[[f32; 3]] = match self.plan.tile {
            Tile::F2x2 => &G2,
            Tile::F4x4 => &f4x4::G,
        };
        assert!(
            runs.iter().all(|m| m.len() == self.sums_len()) && dw.len() == 9 * pairs,
            "winograd dW: sums and dW"
        );
        let avx2 = self.plan.product.simd() != Simd::Plain;
        dw.par_chunks_mut(9 * PAIRS)
            .enumerate()
            .for_each(|(block, dw_block)| {
                let first = block * PAIRS;
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the plan's instructions are ones the processor has, AVX2
                    // among them.
                    unsafe { add_block_avx2(runs, (first, pairs), g, dw_block) };
                    return;
                }
                let _ = avx2;
                add_block(runs, (first, pairs), g, dw_block);
            });
    }

    /// `Z[p][f][tx] = (A dY Aᵀ)[p]` for tile `(ty, tx)` of filter `f` (every image of the
    /// group), written at `(p * FN + f) * row + at + tx * GROUP`. With `A`'s last row
    /// `(0, 1)`: rows `y0, y0 + y1, y0 - y1, y1` of the tile, and the same on columns.
    #[inline(always)]
    fn transform_dout(&self, dout: &[f32], ty: usize, z: &mut [f32], (row, at): (usize, usize)) {
        let p = &self.plan;
        let (width, tw, fnum) = (2 * p.tw, p.tw, p.fnum);
        let (row, at) = (row / GROUP, at / GROUP);
        let dout = dout.as_chunks::<GROUP>().0;
        // The 16 positions' blocks of Z (FN rows each). Plain indexing below: iterator
        // chains here were not inlined, and ran without this function's instructions.
        let mut blocks = z.as_chunks_mut::<GROUP>().0.chunks_exact_mut(fnum * row);
        let mut blocks: [&mut [Lanes]; BASIS] =
            std::array::from_fn(|_| blocks.next().expect("16 positions"));
        for f in 0..fnum {
            let first = (f * 2 * p.th + 2 * ty) * width;
            let (top, bottom) = dout[first..first + 2 * width].split_at(width);
            let (start, end) = (f * row + at, f * row + at + tw);
            // Row i of A dY for every tile, then its columns: one pass per i (as the
            // input's transform does), each writing 4 of the 16 positions.
            for (i, four) in blocks.chunks_exact_mut(4).enumerate() {
                let [z0, z1, z2, z3] = four else {
                    unreachable!("chunks of 4")
                };
                let z = [
                    &mut z0[start..end],
                    &mut z1[start..end],
                    &mut z2[start..end],
                    &mut z3[start..end],
                ];
                match i {
                    0 => dout_pass(top, bottom, |t, _| *t, z),
                    1 => dout_pass(top, bottom, |t, b| t.add(*b), z),
                    2 => dout_pass(top, bottom, |t, b| t.sub(*b), z),
                    _ => dout_pass(top, bottom, |_, b| *b, z),
                }
            }
        }
    }

    /// F(4x4, 3x3)'s [`WinogradGradPlan::transform_dout`]: `Z[p][f][tx] = (A dY Aᵀ)[p]`
    /// for the 4x4 tile `(ty, tx)` of filter `f`'s `dL/dout`, by six passes along the tile
    /// row, one per row `k` of `A dY` (positions `p = 6k .. 6k + 6`).
    #[inline(always)]
    fn transform_dout_f4x4<V: Vector>(
        &self,
        dout: &[f32],
        ty: usize,
        z: &mut [f32],
        (row, at): (usize, usize),
    ) {
        let p = &self.plan;
        let (width, tw, fnum) = (4 * p.tw, p.tw, p.fnum);
        let (row, at) = (row / GROUP, at / GROUP);
        let dout = dout.as_chunks::<GROUP>().0;
        for f in 0..fnum {
            let first = (f * 4 * p.th + 4 * ty) * width;
            let tile_rows = &dout[first..][..4 * width];
            let rows: [&[Lanes]; 4] = [
                &tile_rows[..width],
                &tile_rows[width..][..width],
                &tile_rows[2 * width..][..width],
                &tile_rows[3 * width..][..width],
            ];
            let start = f * row + at;
            let mut outputs = z
                .as_chunks_mut::<GROUP>()
                .0
                .chunks_exact_mut(fnum * row)
                .map(|z_p| &mut z_p[start..][..tw]);
            f4x4::dout_pass::<0, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::dout_pass::<1, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::dout_pass::<2, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::dout_pass::<3, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::dout_pass::<4, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::dout_pass::<5, V>(&rows, f4x4::next_six(&mut outputs));
        }
    }
}

/// Row `i` of `A' dY A'ᵀ` for every tile of a row of tiles: `r = row(top, bottom)` for
/// the tile's two columns, then `r0, r0 + r1, r0 - r1, r1` into `z[0..4][tx]`.
#[inline(always)]
fn dout_pass(
    top: &[Lanes],
    bottom: &[Lanes],
    row: impl Fn(&Lanes, &Lanes) -> Lanes,
    z: [&mut [Lanes]; 4],
) {
    let [z0, z1, z2, z3] = z;
    let tiles = z0.iter_mut().zip(z1).zip(z2).zip(z3);
    for ((t, b), (((z0, z1), z2), z3)) in top.chunks_exact(2).zip(bottom.chunks_exact(2)).zip(tiles)
    {
        let (r0, r1) = (row(&t[0], &b[0]), row(&t[1], &b[1]));
        [*z0, *z1, *z2, *z3] = [r0, r0.add(r1), r0.sub(r1), r1];
    }
}

/// Pairs of (filter, channel) per block of [`WinogradGradPlan::add_weight_grad`]: 36 rows
/// of 64 sums, 9 KiB, kept in the L1 cache.
const PAIRS: usize = 64;

/// One block of [`WinogradGradPlan::add_weight_grad`]: the pairs `first ..` (of `pairs`)
/// whose `dW` `dw_block` holds, 9 per pair. Each step runs over the block's pairs in its
/// innermost loop, so that the compiler computes several pairs per instruction; for each
/// pair the sums are the formula's, added in its order (`Σ_j` from the first term on), so
/// every pair's result is the same whatever the vector width. (One pair at a time, with
/// the sums over `j` innermost, this was a scalar loop; on a Zen 4, DeepConvNet's
/// training step is 1.010 times as fast this way on 2 threads, 1.017 on one: steps
/// alternating in one process, medians of 30 and 12 rounds.)
#[inline(always)]
fn add_block(
    runs: &[&[f32]],
    (first, pairs): (usize, usize),
    g: &[[f32; 3]],
    dw_block: &mut [f32],
) {
    let (n, len) = (g.len(), dw_block.len() / 9);
    // What `Iterator::sum` starts from (so that the sums below are bit for bit its own).
    let sum_start: f32 = std::iter::empty::<f32>().sum();
    // m_block[p][i] = M[p] of pair first + i, summed over the runs in order: row by row,
    // each a contiguous read.
    let mut m_block = [[0.0f32; PAIRS]; MAX_BASIS];
    let m_block = &mut m_block[..n * n];
    for m in runs {
        for (p, sums) in m_block.iter_mut().enumerate() {
            let from = &m[p * pairs + first..][..len];
            sums.iter_mut().zip(from).for_each(|(s, v)| *s += v);
        }
    }
    // mg[row][fx][i] = (M G)[row][fx] of pair i.
    let mut mg = [[[sum_start; PAIRS]; 3]; 6];
    for (row, mg_row) in mg.iter_mut().enumerate().take(n) {
        for (fx, out) in mg_row.iter_mut().enumerate() {
            for (j, g_j) in g.iter().enumerate() {
                let m_row = &m_block[n * row + j];
                out.iter_mut()
                    .zip(m_row)
                    .for_each(|(o, &m)| *o += m * g_j[fx]);
            }
        }
    }
    // by_element[k][i] = (Gᵀ M G)[fy][fx] of pair i, k = 3 fy + fx.
    let mut by_element = [[sum_start; PAIRS]; 9];
    for (k, out) in by_element.iter_mut().enumerate() {
        let (fy, fx) = (k / 3, k % 3);
        for (row, g_row) in g.iter().enumerate() {
            let mg = &mg[row][fx];
            out.iter_mut()
                .zip(mg)
                .for_each(|(o, &v)| *o += g_row[fy] * v);
        }
    }
    for (i, dw_pair) in dw_block.chunks_exact_mut(9).enumerate() {
        for (d, element) in dw_pair.iter_mut().zip(&by_element) {
            *d += element[i];
        }
    }
}

/// [`add_block`] compiled for AVX2 (8 pairs per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_block_avx2(runs: &[&[f32]], at: (usize, usize), g: &[[f32; 3]], dw_block: &mut [f32]) {
    add_block(runs, at, g, dw_block);
}

/// [`products_avx512`] if `AVX512` (the caller runs with AVX-512 enabled), else
/// [`products`].
#[inline(always)]
fn band_products<const AVX2: bool, const AVX512: bool>(
    v: &[f32],
    z: &[f32],
    sizes: (usize, usize, usize, usize),
    band: (usize, bool),
    m: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if AVX512 {
        // SAFETY: `AVX512` is set only by `run_avx512`, which runs where AVX-512 is.
        unsafe { products_avx512(v, z, sizes, band, m) };
        return;
    }
    products::<AVX2>(v, z, sizes, band, m);
}

/// [`products`] in AVX-512 intrinsics: a vector of 16 floats is two tiles (8 images
/// each) of a row, so a band's `tiles` are `tiles / 2` vectors and, if odd, a last
/// half-vector (loaded with the upper 8 lanes zeroed). 4 filters x 4 channels of sums
/// stay in registers (AVX-512 has 32); each is summed across its 16 lanes at the end
/// of the band. Same contract as [`products`].
///
/// # Safety
///
/// The processor must have AVX-512 (F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn products_avx512(
    v: &[f32],
    z: &[f32],
    (basis, c, fnum, row): (usize, usize, usize, usize),
    (tiles, first): (usize, bool),
    m: &mut [f32],
) {
    use std::arch::x86_64::*;
    // The register block: SIDE filters x SIDE channels (`sum_lanes_4x4` takes 4 x 4).
    const SIDE: usize = 4;
    let (pairs, odd) = (tiles / 2, tiles % 2 == 1);
    assert!(
        tiles * GROUP <= row && basis * c * row <= v.len() && basis * fnum * row <= z.len(),
        "winograd dW: band buffers"
    );
    for p in 0..basis {
        let (v_p, z_p) = (&v[p * c * row..], &z[p * fnum * row..]);
        let m_p = &mut m[p * fnum * c..][..fnum * c];
        for c0 in (0..c).step_by(SIDE) {
            let mut v_rows = [v_p.as_ptr(); SIDE];
            for (j, v_row) in v_rows.iter_mut().enumerate() {
                *v_row = v_p[(c0 + j).min(c - 1) * row..].as_ptr();
            }
            for f0 in (0..fnum).step_by(SIDE) {
                let mut z_rows = [z_p.as_ptr(); SIDE];
                for (i, z_row) in z_rows.iter_mut().enumerate() {
                    *z_row = z_p[(f0 + i).min(fnum - 1) * row..].as_ptr();
                }
                let mut acc = [[_mm512_setzero_ps(); SIDE]; SIDE];
                for k in 0..pairs {
                    // SAFETY: lanes below `tiles * GROUP` of a row (asserted above).
                    unsafe { multiply_add_avx512(&mut acc, &v_rows, &z_rows, 16 * k, 0xffff) };
                }
                if odd {
                    // The last tile of an odd band is half a vector: its upper lanes are
                    // loaded as zeros (and not read).
                    // SAFETY: as above.
                    unsafe { multiply_add_avx512(&mut acc, &v_rows, &z_rows, 16 * pairs, 0xff) };
                }
                // sums[4i + j] = the lanes' sum of acc[i][j]: row i of the block is 4
                // neighbours in M. (A block past the last filter or channel writes only
                // what exists.)
                let sums = sum_lanes_4x4(&acc);
                if fnum - f0 >= SIDE && c - c0 >= SIDE {
                    for i in 0..SIDE {
                        let at = &mut m_p[(f0 + i) * c + c0..][..SIDE];
                        let mut row = [0.0f32; SIDE];
                        row.copy_from_slice(&sums[SIDE * i..][..SIDE]);
                        if !first {
                            row.iter_mut().zip(&*at).for_each(|(r, s)| *r += s);
                        }
                        at.copy_from_slice(&row);
                    }
                } else {
                    for i in 0..SIDE.min(fnum - f0) {
                        for j in 0..SIDE.min(c - c0) {
                            let sum = &mut m_p[(f0 + i) * c + c0 + j];
                            *sum = if first { 0.0 } else { *sum } + sums[SIDE * i + j];
                        }
                    }
                }
            }
        }
    }
}

/// The lanes' sums of 16 vectors, `sums[4i + j] = Σ_lanes acc[i][j]`, by a tree of
/// shuffles and additions (45 instructions, against about 8 each for one vector at a
/// time): pairs of vectors first (their lanes interleaved), then pairs of those, then the
/// four 128-bit quarters. A fixed order, the same on every run.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn sum_lanes_4x4(acc: &[[std::arch::x86_64::__m512; 4]; 4]) -> [f32; 16] {
    use std::arch::x86_64::*;
    let a: [__m512; 16] = [
        acc[0][0], acc[0][1], acc[0][2], acc[0][3], acc[1][0], acc[1][1], acc[1][2], acc[1][3],
        acc[2][0], acc[2][1], acc[2][2], acc[2][3], acc[3][0], acc[3][1], acc[3][2], acc[3][3],
    ];
    // In each 128-bit quarter: b[k] = (a[2k] 0+2, a[2k+1] 0+2, a[2k] 1+3, a[2k+1] 1+3).
    let mut b = [_mm512_setzero_ps(); 8];
    for (k, b_k) in b.iter_mut().enumerate() {
        let (x, y) = (a[2 * k], a[2 * k + 1]);
        *b_k = _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
    }
    // In each quarter: c[k] = the quarter's sums of a[4k], a[4k+1], a[4k+2], a[4k+3].
    let mut c = [_mm512_setzero_ps(); 4];
    for (k, c_k) in c.iter_mut().enumerate() {
        let (x, y) = (_mm512_castps_pd(b[2 * k]), _mm512_castps_pd(b[2 * k + 1]));
        *c_k = _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
        );
    }
    // Quarters (0, 2) plus (1, 3) of two vectors at a time, then once more: quarter q of
    // the result is the total of c[q].
    let (e0, e1) = (add_quarters(c[0], c[1]), add_quarters(c[2], c[3]));
    let total = add_quarters(e0, e1);
    let mut sums = [0.0f32; 16];
    // SAFETY: 16 floats into `sums`.
    unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), total) };
    sums
}

/// `(x0 + x1, x2 + x3, y0 + y1, y2 + y3)` of the 128-bit quarters of `x` and `y`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn add_quarters(
    x: std::arch::x86_64::__m512,
    y: std::arch::x86_64::__m512,
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
    )
}

/// `acc[i][j] += Z row i * V row j` for the 16 floats at `at` of each row (the lanes
/// outside `mask` loaded as zeros).
///
/// # Safety
///
/// The processor must have AVX-512 (F); the masked lanes of every row must be readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn multiply_add_avx512<const NF: usize, const NC: usize>(
    acc: &mut [[std::arch::x86_64::__m512; NC]; NF],
    v_rows: &[*const f32; NC],
    z_rows: &[*const f32; NF],
    at: usize,
    mask: u16,
) {
    use std::arch::x86_64::*;
    let mut vs = [_mm512_setzero_ps(); NC];
    for (vector, &v_row) in vs.iter_mut().zip(v_rows) {
        // SAFETY: the caller's.
        *vector = unsafe { _mm512_maskz_loadu_ps(mask, v_row.add(at)) };
    }
    for (acc_i, &z_row) in acc.iter_mut().zip(z_rows) {
        // SAFETY: the caller's.
        let z_it = unsafe { _mm512_maskz_loadu_ps(mask, z_row.add(at)) };
        for (a, &v_j) in acc_i.iter_mut().zip(&vs) {
            *a = _mm512_fmadd_ps(z_it, v_j, *a);
        }
    }
}

/// `M[p][f, ch] += Σ_tiles Σ_lanes Z[p][f][t] * V[p][ch][t]` over the first `tiles` tiles
/// of a band (`row` floats between the rows of `V` and `Z`), 4 filters x 3 channels at a
/// time; `=` instead of `+=` if `first` (every entry of `m` is written). A block past the
/// last filter or channel repeats it; those sums are dropped.
#[inline(always)]
fn products<const AVX2: bool>(
    v: &[f32],
    z: &[f32],
    (basis, c, fnum, row): (usize, usize, usize, usize),
    (tiles, first): (usize, bool),
    m: &mut [f32],
) {
    let (v, z) = (v.as_chunks::<GROUP>().0, z.as_chunks::<GROUP>().0);
    let row = row / GROUP;
    for p in 0..basis {
        let (v_p, z_p) = (
            &v[p * c * row..][..c * row],
            &z[p * fnum * row..][..fnum * row],
        );
        let m_p = &mut m[p * fnum * c..][..fnum * c];
        // (Arrays written out, not `array::from_fn`: that was not inlined here, and cost
        // more than a short block's loop.)
        let v_row = |ch: usize| &v_p[ch.min(c - 1) * row..][..tiles];
        let z_row = |f: usize| &z_p[f.min(fnum - 1) * row..][..tiles];
        for c0 in (0..c).step_by(NC) {
            let v_rows: [&[Lanes]; NC] = [v_row(c0), v_row(c0 + 1), v_row(c0 + 2)];
            for f0 in (0..fnum).step_by(NF) {
                let z_rows: [&[Lanes]; NF] =
                    [z_row(f0), z_row(f0 + 1), z_row(f0 + 2), z_row(f0 + 3)];
                let mut acc = [[[0.0f32; GROUP]; NC]; NF];
                for t in 0..tiles {
                    // SAFETY: every row is `tiles` long (sliced so above). Unchecked: the
                    // checks of 7 rows took registers the loop needs.
                    let vs: [Lanes; NC] =
                        std::array::from_fn(|j| unsafe { *v_rows[j].get_unchecked(t) });
                    for (acc_i, z_row) in acc.iter_mut().zip(&z_rows) {
                        // SAFETY: as above.
                        let z_it = unsafe { *z_row.get_unchecked(t) };
                        for (a, v_j) in acc_i.iter_mut().zip(&vs) {
                            multiply_add::<AVX2>(a, &z_it, v_j);
                        }
                    }
                }
                for (i, acc_i) in acc.iter().enumerate().take(fnum - f0) {
                    for (j, a) in acc_i.iter().enumerate().take(c - c0) {
                        let sum = &mut m_p[(f0 + i) * c + c0 + j];
                        *sum = if first { 0.0 } else { *sum } + sum_lanes(a);
                    }
                }
            }
        }
    }
}

/// `acc += a * b` lane by lane: fused (one FMA instruction) if `AVX2` (the caller runs
/// with FMA enabled; elsewhere `mul_add` would be a slow library call).
#[inline(always)]
fn multiply_add<const AVX2: bool>(acc: &mut Lanes, a: &Lanes, b: &Lanes) {
    for g in 0..GROUP {
        acc[g] = if AVX2 {
            a[g].mul_add(b[g], acc[g])
        } else {
            acc[g] + a[g] * b[g]
        };
    }
}

/// The lanes' sum, pairwise in a fixed order.
#[inline(always)]
fn sum_lanes(a: &Lanes) -> f32 {
    let quads: [f32; 4] = std::array::from_fn(|g| a[g] + a[g + 4]);
    (quads[0] + quads[2]) + (quads[1] + quads[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Winograd `dW` against the definition `dW[f, c, fy, fx] = Σ dout[f, oy, ox] *
    /// xpad[c, oy + fy, ox + fx]` summed in f64 over every image, for every instruction
    /// level this processor has: even and odd outputs (half tiles), pads 0 to 2, filter
    /// and channel counts that are not multiples of the register block, bands that end
    /// inside a group and groups that end inside a band, and one group alone.
    #[test]
    fn winograd_dw_matches_the_definition() {
        // (groups, filters, channels, pad, height, width)
        let shapes = [
            (1, 1, 1, 0, 3, 3),
            (2, 5, 7, 1, 7, 9),
            (2, 16, 16, 1, 14, 14),
            (3, 64, 32, 1, 8, 8),
            (1, 9, 10, 2, 14, 14),
            (2, 6, 4, 0, 10, 13),
            (3, 3, 2, 1, 1, 5),
            (1, 4, 8, 0, 70, 6), // tw = 2: a band of 16 rows of tiles, and a short last band
            (1, 3, 5, 1, 150, 8), // the same for F(4x4, 3x3): bands of 32, 32, then 12 tiles
        ];
        for shape in shapes {
            for simd in Simd::available() {
                for tile in [Tile::F2x2, Tile::F4x4] {
                    matches_for(shape, simd, tile);
                }
            }
        }
    }

    /// `dW = Gᵀ M G`, the runs' sums added in order, against the formula computed one
    /// pair at a time, with the sums over `j` innermost (as `add_weight_grad` computed it
    /// before its loops ran over the pairs): bit for bit, for both tiles and every
    /// instruction level, with a partial last block of pairs.
    #[test]
    fn weight_grad_from_the_sums_is_the_formula_bit_for_bit() {
        let levels = Simd::available();
        for (tile, simd) in [Tile::F2x2, Tile::F4x4]
            .into_iter()
            .flat_map(|tile| levels.iter().map(move |&simd| (tile, simd)))
        {
            let (fnum, c) = (9, 10); // 90 pairs: a block of 64 and one of 26
            let forward = WinogradPlan::with_simd((fnum, c, 3, 3), (8, 8), 1, simd, tile).unwrap();
            let plan = WinogradGradPlan::new(forward);
            let runs: Vec<Vec<f32>> = (0..3)
                .map(|r| {
                    (0..plan.sums_len())
                        .map(|i| ((i * 29 + r * 7) % 31) as f32 / 7.0 - 2.1)
                        .collect()
                })
                .collect();
            let runs: Vec<&[f32]> = runs.iter().map(Vec::as_slice).collect();
            let start = |i: usize| (i % 5) as f32 * 0.25 - 0.5;
            let mut dw: Vec<f32> = (0..fnum * c * 9).map(start).collect();
            plan.add_weight_grad(&runs, &mut dw);
            let g: &[[f32; 3]] = match tile {
                Tile::F2x2 => &G2,
                Tile::F4x4 => &f4x4::G,
            };
            let (n, pairs) = (g.len(), fnum * c);
            for pair in 0..pairs {
                let m = |p: usize| runs.iter().fold(0.0f32, |s, run| s + run[p * pairs + pair]);
                for k in 0..9 {
                    let (fy, fx) = (k / 3, k % 3);
                    let mg = |row: usize| (0..n).map(|j| m(n * row + j) * g[j][fx]).sum::<f32>();
                    let expected =
                        start(pair * 9 + k) + (0..n).map(|row| g[row][fy] * mg(row)).sum::<f32>();
                    assert_eq!(
                        dw[pair * 9 + k].to_bits(),
                        expected.to_bits(),
                        "{tile:?}, {simd:?}: pair {pair}, element {k}"
                    );
                }
            }
        }
    }

    fn matches_for(
        (groups, fnum, c, pad, h, w): (usize, usize, usize, usize, usize, usize),
        simd: Simd,
        tile: Tile,
    ) {
        let forward = WinogradPlan::with_simd((fnum, c, 3, 3), (h, w), pad, simd, tile).unwrap();
        let plan = WinogradGradPlan::new(forward);
        let (oh, ow) = forward.output();
        let images = groups * GROUP;
        let (image_len, dout_len) = (c * h * w, fnum * oh * ow);
        let x: Vec<f32> = (0..images * image_len)
            .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
            .collect();
        let dout: Vec<f32> = (0..images * dout_len)
            .map(|i| ((i * 13) % 17) as f32 / 8.0 - 1.0)
            .collect();
        // Old contents must not leak: the buffers start as NaN.
        let mut padded = vec![f32::NAN; groups * plan.padded_len()];
        let mut dout_i = vec![f32::NAN; groups * plan.dout_len()];
        for g in 0..groups {
            plan.pad_images(
                &x[g * GROUP * image_len..][..GROUP * image_len],
                &mut padded[g * plan.padded_len()..][..plan.padded_len()],
            );
            plan.interleave_dout(
                Group::Whole(std::array::from_fn(|i| {
                    &dout[(g * GROUP + i) * dout_len..][..dout_len]
                })),
                &mut dout_i[g * plan.dout_len()..][..plan.dout_len()],
            );
        }
        // Split into two runs (if there are two groups), whose sums start as NaN (every
        // entry must be written) and are added by add_weight_grad; dW (added to) starts
        // at 0.5.
        let split = groups / 2;
        let (padded_a, padded_b) = padded.split_at(split * plan.padded_len());
        let (dout_a, dout_b) = dout_i.split_at(split * plan.dout_len());
        let mut runs = Vec::new();
        for (padded_r, dout_r) in [(padded_a, dout_a), (padded_b, dout_b)] {
            if !padded_r.is_empty() {
                let mut m = vec![f32::NAN; plan.sums_len()];
                plan.run(padded_r, dout_r, &mut m);
                runs.push(m);
            }
        }
        let mut dw = vec![0.5f32; fnum * c * 9];
        let runs: Vec<&[f32]> = runs.iter().map(Vec::as_slice).collect();
        plan.add_weight_grad(&runs, &mut dw);
        let pixel = |n: usize, ch: usize, y: usize, x_: usize| -> f64 {
            if y < pad || x_ < pad || y >= h + pad || x_ >= w + pad {
                0.0
            } else {
                f64::from(x[n * image_len + (ch * h + y - pad) * w + x_ - pad])
            }
        };
        for f in 0..fnum {
            for ch in 0..c {
                for (fy, fx) in (0..3).flat_map(|fy| (0..3).map(move |fx| (fy, fx))) {
                    let mut sum = 0.5f64;
                    let mut size = 0.5f64;
                    for n in 0..images {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let term = f64::from(dout[n * dout_len + (f * oh + oy) * ow + ox])
                                    * pixel(n, ch, oy + fy, ox + fx);
                                sum += term;
                                size += term.abs();
                            }
                        }
                    }
                    let got = f64::from(dw[(f * c + ch) * 9 + fy * 3 + fx]);
                    assert!(
                        (got - sum).abs() < 1e-5 * (1.0 + size),
                        "{simd:?}, {tile:?}, shape {:?}: dW[{f}, {ch}, {fy}, {fx}] = {got}, expected {sum}",
                        (groups, fnum, c, pad, h, w)
                    );
                }
            }
        }
    }
}
