//! A faster path for 3x3 filters (stride 1): Winograd's minimal filtering, F(2x2, 3x3),
//! and its larger sibling F(4x4, 3x3).
//!
//! A 3x3 convolution spends 9 multiplications per output per input channel. Winograd's
//! trick (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015)
//! computes a 2x2 tile of outputs from the 4x4 tile of input pixels under it with 16
//! multiplications instead of 36, 2.25 times fewer, by moving both into another basis
//! where the convolution is an element-by-element product:
//!
//! ```text
//! Y (2x2) = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        g: 3x3 filter, d: 4x4 input tile
//!
//!       | 1  0 -1  0 |         | 1    0    0  |
//! Bᵀ =  | 0  1  1  0 |    G =  | 1/2  1/2  1/2|    Aᵀ = | 1  1  1  0 |
//!       | 0 -1  1  0 |         | 1/2 -1/2  1/2|         | 0  1 -1 -1 |
//!       | 0  1  0 -1 |         | 0    0    1  |
//! ```
//!
//! The transforms only add and subtract (and halve, for the filters, which is done once per
//! pass). Each input tile is transformed once for all filters, each output tile once for
//! all channels, so with many channels they are cheap next to the products. Over
//! channels, the element-by-element products become matrix products: for each of the 16
//! positions `p` of the 4x4 basis,
//!
//! ```text
//! M[p] (FN, T) = U[p] (FN, C) · V[p] (C, T)      U = G g Gᵀ per filter and channel,
//!                                                V = Bᵀ d B per channel and tile (T tiles)
//! ```
//!
//! and each of those is a 1x1 convolution over the tiles, which the direct kernel of
//! `direct_conv` already computes fast. So a Winograd pass is: pad the image, transform
//! its tiles (`V`), run 16 1x1 convolutions, transform each tile of `M` back to 2x2
//! outputs. The results equal the direct convolution's to rounding (tested against the
//! definition in f64 below, and against the im2col path in `convolution_layer`).
//!
//! The transforms are vectorised over images: [`GROUP`] = 8 images run together, image
//! `g` in lane `g` of every vector (the padded images are stored interleaved, pixel by
//! pixel). A tile's 16 pixels are then 16 whole vector loads, however small the image,
//! and the 1x1 convolutions run over `8 x` as many "pixels". They go one row of tiles at
//! a time, so that `V` and `M` stay in the processor's cache.
//!
//! Measured per image on one core (AVX2), against the direct kernel, for DeepConvNet's
//! layers: 64 filters over 64 channels of 8x8, 36 µs against 75 (2.1x); 64 over 32, 20
//! against 37; 32 over 32 channels of 14x14 with pad 2, 45 against 62; 16 over 16
//! channels of 28x28, 46 against 53 (1.15x: with 16 channels the transforms cost about
//! half as much as the products). With fewer than 8 channels the direct kernel is used.
//!
//! The same scheme with 6x6 input tiles and 4x4 output tiles, F(4x4, 3x3) (submodule
//! `f4x4`, [`Tile`]), needs 36 multiplications per 16 outputs instead of 64, 1.78 times
//! fewer again, for transforms with more terms. It is used wherever its tiles do not
//! waste too much at the edges ([`Tile::for_output`]): for DeepConvNet's layers it took
//! 0.70-0.89 times the time of F(2x2, 3x3) (`CNN_FROM_SCRATCH_WINOGRAD=2` keeps F(2x2,
//! 3x3), to compare the two in one build).
//!
//! The weight gradient has a Winograd form of its own, the same formula run backwards
//! (submodule `weight_grad`), with the forward pass's tile: for layers with 16 or more
//! channels and filters with F(4x4, 3x3), 32 or more with F(2x2, 3x3).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::direct_conv::{ForwardPlan, first_of};
use super::simd::{Simd, filled_by, transpose8};
#[cfg(target_arch = "x86_64")]
use super::simd::{load_first_register, store_first_register, transpose_registers};

mod f4x4;
mod weight_grad;
pub(crate) use weight_grad::WinogradGradPlan;

/// Positions of F(2x2, 3x3)'s 4x4 transformed tile.
const BASIS: usize = 16;

/// Which of Winograd's algorithms a plan runs: how many outputs a tile has across.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tile {
    /// F(2x2, 3x3): 2x2 outputs from 4x4 inputs, 16 products (2.25 times fewer than the
    /// direct convolution's 36).
    F2x2,
    /// F(4x4, 3x3) (submodule `f4x4`): 4x4 outputs from 6x6 inputs, 36 products (4 times
    /// fewer than 144), with transforms of more terms.
    F4x4,
}

impl Tile {
    /// Outputs per tile, down and across.
    const fn outputs(self) -> usize {
        match self {
            Tile::F2x2 => 2,
            Tile::F4x4 => 4,
        }
    }

    /// Positions of the transformed tile (input pixels per tile).
    const fn basis(self) -> usize {
        (self.outputs() + 2) * (self.outputs() + 2)
    }

    /// The faster algorithm for outputs of `(oh, ow)`: F(4x4, 3x3), unless its tiles
    /// cover more than a third more outputs than F(2x2, 3x3)'s (the part tiles at the
    /// edges compute outputs that are dropped; for 6x6 outputs F(4x4, 3x3) would compute
    /// 8x8, as many multiplications as F(2x2, 3x3), with costlier transforms). Measured
    /// on one core for DeepConvNet's layers, F(4x4, 3x3) took 0.70-0.82 times the time of
    /// F(2x2, 3x3) for its 28x28, 16x16 and 8x8 outputs, and 0.82-0.89 times for its 14x14
    /// outputs, where its tiles cover 16x16 (31% more).
    pub(crate) fn for_output((oh, ow): (usize, usize)) -> Tile {
        let covered = |tile: Tile| {
            let m = tile.outputs();
            oh.next_multiple_of(m) * ow.next_multiple_of(m)
        };
        if 3 * covered(Tile::F4x4) <= 4 * covered(Tile::F2x2) {
            Tile::F4x4
        } else {
            Tile::F2x2
        }
    }
}

/// Images per run: one per lane of an AVX2 register.
pub(crate) const GROUP: usize = 8;

/// `GROUP` floats, one per image: a vector register's worth.
type Lanes = [f32; GROUP];

/// How to run the Winograd convolution for one layer shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WinogradPlan {
    /// F(2x2, 3x3) or F(4x4, 3x3).
    tile: Tile,
    /// Input channels, filters, padding.
    c: usize,
    fnum: usize,
    pad: usize,
    /// Input and output sizes.
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// Tiles of `m x m` outputs down and across (`m = tile.outputs()`; an output size
    /// that is not a multiple of `m` has part tiles at the edge, whose missing outputs
    /// are computed from zero padding and dropped).
    th: usize,
    tw: usize,
    /// The padded images: `hp = m*th + 2` rows of `wp = m*tw + 2` pixels per channel,
    /// each pixel `GROUP` floats (one per image).
    hp: usize,
    wp: usize,
    /// One of the products (16 or 36) for one row of tiles: a 1x1 convolution of the
    /// `C` channels of `V[p]` over `tw * GROUP` "pixels" (tile `tx` of image `g` at
    /// `tx * GROUP + g`).
    product: ForwardPlan,
}

impl WinogradPlan {
    /// The plan for `fnum` 3x3 filters over `c` channels of `(h, w)` images with `pad`, by
    /// `tile`'s algorithm, or `None` if the filters are not 3x3 or the output would be
    /// empty.
    pub(crate) fn with_simd(
        (fnum, c, fh, fw): (usize, usize, usize, usize),
        (h, w): (usize, usize),
        pad: usize,
        simd: Simd,
        tile: Tile,
    ) -> Option<WinogradPlan> {
        if (fh, fw) != (3, 3) || fnum == 0 || c == 0 || h + 2 * pad < 3 || w + 2 * pad < 3 {
            return None;
        }
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let m = tile.outputs();
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        let product = ForwardPlan::with_simd((fnum, c, 1, 1), (1, tw * GROUP), 0, simd)?;
        Some(WinogradPlan {
            tile,
            c,
            fnum,
            pad,
            h,
            w,
            oh,
            ow,
            th,
            tw,
            hp: m * th + 2,
            wp: m * tw + 2,
            product,
        })
    }

    /// Output size `(OH, OW)`.
    #[cfg(test)]
    pub(crate) fn output(&self) -> (usize, usize) {
        (self.oh, self.ow)
    }

    /// Which algorithm the plan runs.
    pub(crate) fn tile(&self) -> Tile {
        self.tile
    }

    /// Length of the padded-images buffer.
    pub(crate) fn padded_len(&self) -> usize {
        self.c * self.hp * self.wp * GROUP
    }

    /// The transformed filters `U[p] = G g Gᵀ`, for the 3x3 filters given by `filter(f, c)`
    /// (filter `f`'s weights over channel `c`, row by row): 16 or 36 blocks, each packed
    /// for its 1x1 convolution.
    pub(crate) fn pack_weights(
        &self,
        filter: impl Fn(usize, usize) -> [f32; 9] + Sync,
    ) -> Vec<f32> {
        const G2: [[f32; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let g_matrix: &[[f32; 3]] = match self.tile {
            Tile::F2x2 => &G2,
            Tile::F4x4 => &f4x4::G,
        };
        let (n, c, fnum) = (g_matrix.len(), self.c, self.fnum);
        let avx2 = self.product.simd() != Simd::Plain;
        // u[(ch * n*n + p) * FN + f] = U[p][f, ch], channel by channel in parallel.
        // Not zeroed first (see `filled_by`): every entry is written below.
        let u = filled_by(c * n * n * fnum, |u| {
            u.par_chunks_mut(n * n * fnum)
                .enumerate()
                .for_each(|(ch, u_ch)| {
                    let filter = |f| filter(f, ch);
                    #[cfg(target_arch = "x86_64")]
                    if avx2 {
                        // SAFETY: the plan's instructions are ones the processor has, AVX2
                        // among them.
                        unsafe { transform_filters_avx2(g_matrix, filter, u_ch) };
                        return;
                    }
                    let _ = avx2;
                    transform_filters(g_matrix, filter, u_ch);
                });
        });
        // Each position's U packed for its product, in parallel (every float written).
        filled_by(n * n * self.product.packed_len(), |packed| {
            packed
                .par_chunks_mut(self.product.packed_len())
                .enumerate()
                .for_each(|(p, packed_p)| {
                    let channel = |ch: usize| &u[(ch * n * n + p) * fnum..][..fnum];
                    self.product.pack_channels_into(channel, packed_p);
                });
        })
    }

    /// Copies `GROUP` images `(C, H, W)` (one after the other in `images`) into `padded`,
    /// interleaved: pixel `(c, y, x)` of image `g`, with `pad` zeros before the image and
    /// zeros after it, at `((c * hp + y) * wp + x) * GROUP + g` (every entry is written).
    pub(crate) fn pad_images(&self, images: &[f32], padded: &mut [f32]) {
        let image_len = self.c * self.h * self.w;
        assert_eq!(images.len(), GROUP * image_len, "winograd: images");
        let images = std::array::from_fn(|g| &images[g * image_len..][..image_len]);
        self.pad_group(Group::Whole(images), padded);
    }

    /// [`WinogradPlan::pad_images`] of a group given whole or rebuilt from a pooling's
    /// gradients ([`Group`]).
    pub(crate) fn pad_group(&self, group: Group, padded: &mut [f32]) {
        assert_eq!(padded.len(), self.padded_len(), "winograd: padded images");
        let sizes = ((self.c, self.h, self.w), (self.hp, self.wp));
        interleave_group(self.product.simd(), group, sizes, self.pad, padded);
    }

    /// Length of the scratch buffer [`WinogradPlan::run`] needs: the transformed tiles
    /// `V` and the products `M` of one row of tiles, and the stage of the output
    /// transform.
    fn scratch_len(&self) -> usize {
        let (v_stride, m_stride) = self.position_strides();
        self.tile.basis() * (v_stride + m_stride) + 2 * self.stage_len()
    }

    /// Floats from one position's `V[p]` to the next's, and from one `M[p]` to the next's:
    /// the products' buffers plus a cache line. (Without it, for 64 filters over 8x8
    /// images, the 36 `M[p]` the output transform reads for one tile were exactly 4 KiB
    /// apart, so all fell into one set of the 8-way L1 cache and pushed each other out.)
    fn position_strides(&self) -> (usize, usize) {
        const CACHE_LINE: usize = 16;
        (
            self.product.padded_len() + CACHE_LINE,
            self.product.scratch_len() + CACHE_LINE,
        )
    }

    /// Length of the output transform's stage: a row of tiles' outputs, `m` rows of `m *
    /// tw` pixels of `GROUP` floats, each row rounded up to whole blocks of `GROUP` pixels.
    fn stage_len(&self) -> usize {
        let m = self.tile.outputs();
        m * (m * self.tw).next_multiple_of(GROUP) * GROUP
    }

    /// The convolution of `GROUP` padded images into `out` (`GROUP` outputs `(FN, OH,
    /// OW)`, one after the other), plus `bias` (one per filter, or none), with the filters
    /// from [`WinogradPlan::pack_weights`]. `scratch` holds the transformed tiles (grown
    /// as needed; keep it from one call to the next).
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
            GROUP * self.fnum * self.oh * self.ow,
            "winograd: output"
        );
        self.run_into(padded, packed, bias, scratch, &mut Sink::Maps(out));
    }

    /// Whether [`WinogradPlan::run_relu_pool`] can pool this plan's outputs: even output
    /// sizes, so that every 2x2 window lies inside one tile (the tiles' sides, 2 or 4, are
    /// even) and no row or column is left over.
    pub(crate) fn relu_pools(&self) -> bool {
        self.oh.is_multiple_of(2) && self.ow.is_multiple_of(2)
    }

    /// [`WinogradPlan::run`], then a ReLU and 2x2 max pooling with stride 2, done on each
    /// row of tiles' outputs while they are still interleaved, 8 images a vector, before
    /// anything is copied out: `values` gets each image's `(FN, OH/2, OW/2)` maxima,
    /// `arg` (if given: a pass in inference mode needs none) their winners, as
    /// `pooling::max_pool_planes` with its ReLU writes them (the flat index `y * OW + x` of
    /// the winner in its feature map, the first of equal maxima; `BLOCKED` where the
    /// maximum after ReLU is 0). Neither the full-size outputs nor a ReLU's pass over them
    /// is stored: a quarter of the copying out. Panics unless [`WinogradPlan::relu_pools`].
    pub(crate) fn run_relu_pool(
        &self,
        padded: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Vec<f32>,
        (values, arg): (&mut [MaybeUninit<f32>], Option<&mut [u32]>),
    ) {
        assert!(
            self.relu_pools(),
            "winograd: no 2x2 pooling of {}x{} outputs",
            self.oh,
            self.ow
        );
        let pooled_len = GROUP * self.fnum * (self.oh / 2) * (self.ow / 2);
        assert!(
            values.len() == pooled_len && arg.as_ref().is_none_or(|arg| arg.len() == pooled_len),
            "winograd: {} pooled values and {:?} winners for {pooled_len}",
            values.len(),
            arg.as_ref().map(|arg| arg.len())
        );
        self.run_into(
            padded,
            packed,
            bias,
            scratch,
            &mut Sink::ReluPooled(values, arg),
        );
    }

    /// [`WinogradPlan::run`] into `sink`.
    fn run_into(
        &self,
        padded: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Vec<f32>,
        out: &mut Sink,
    ) {
        assert_eq!(padded.len(), self.padded_len(), "winograd: padded images");
        assert_eq!(
            packed.len(),
            self.tile.basis() * self.product.packed_len(),
            "winograd: filters"
        );
        let scratch = first_of(scratch, self.scratch_len());
        match self.product.simd() {
            // SAFETY: the plan's instructions are ones the processor has.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.run_avx2::<true>(padded, packed, bias, scratch, out) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.run_avx2::<false>(padded, packed, bias, scratch, out) },
            _ => self.run_rows::<false, false>(padded, packed, bias, scratch, out),
        }
    }

    /// [`WinogradPlan::run`] compiled for AVX2 and FMA; with `AVX512` (where the processor
    /// has it), F(4x4, 3x3)'s output transform two tiles at a time in AVX-512 registers
    /// (`f4x4::Tiles`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2<const AVX512: bool>(
        &self,
        padded: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut [f32],
        out: &mut Sink,
    ) {
        self.run_rows::<true, AVX512>(padded, packed, bias, scratch, out);
    }

    /// Row of tiles by row of tiles: transform the row's input tiles, run the 16 (or 36)
    /// products, transform their results back into the outputs. `AVX2`: called from
    /// [`WinogradPlan::run_avx2`], so AVX2 and FMA instructions may be used; `AVX512`:
    /// from `run_avx2::<true>`, which runs only where AVX-512 is.
    #[inline(always)]
    fn run_rows<const AVX2: bool, const AVX512: bool>(
        &self,
        padded: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut [f32],
        out: &mut Sink,
    ) {
        let (v_len, m_len) = (self.product.padded_len(), self.product.scratch_len());
        let (v_stride, m_stride) = self.position_strides();
        let (v, rest) = scratch.split_at_mut(self.tile.basis() * v_stride);
        let (m, stage) = rest.split_at_mut(self.tile.basis() * m_stride);
        let layout = self.product.block_layout();
        for ty in 0..self.th {
            match self.tile {
                Tile::F2x2 => self.transform_input(padded, ty, v),
                Tile::F4x4 if AVX2 => self.transform_input_f4x4::<f4x4::Avx2>(padded, ty, v),
                Tile::F4x4 => self.transform_input_f4x4::<Lanes>(padded, ty, v),
            }
            let mut row_len = 0;
            for ((v_p, m_p), u_p) in v
                .chunks_exact(v_stride)
                .zip(m.chunks_exact_mut(m_stride))
                .zip(packed.chunks_exact(self.product.packed_len()))
            {
                (_, row_len) =
                    self.product
                        .run_kernel_with(&layout, &v_p[..v_len], u_p, &mut m_p[..m_len]);
            }
            // This tile row and the rows' length in M; the stage and the outputs.
            let (tile_row, targets) = ((ty, row_len), (&mut *stage, &mut *out));
            match self.tile {
                Tile::F2x2 => {
                    let tile =
                        |m: &[Lanes],
                         (at, stride): (usize, usize),
                         (stage, stage_row): (&mut [Lanes], usize)| {
                            let [[y00, y01], [y10, y11]] = output_tile(|p| &m[at + p * stride]);
                            [stage[0], stage[1]] = [y00, y01];
                            [stage[stage_row], stage[stage_row + 1]] = [y10, y11];
                        };
                    self.transform_output::<AVX2, 2, false>(m, tile_row, bias, targets, tile);
                }
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `AVX512` is set only by `run_avx2::<true>`, which runs where AVX-512 is.
                Tile::F4x4 if AVX512 => unsafe {
                    self.transform_output_f4x4_avx512(m, tile_row, bias, targets)
                },
                Tile::F4x4 if AVX2 => {
                    // A closure, not the function itself: passed as a function item, its
                    // `Fn::call` shim was compiled without AVX2, was not inlined, and
                    // called each intrinsic (a DeepConvNet step took twice as long).
                    let tile = |m: &[Lanes], at, to: (&mut [Lanes], usize)| {
                        f4x4::output_tile::<f4x4::Avx2>(m, at, to)
                    };
                    self.transform_output::<AVX2, 4, false>(m, tile_row, bias, targets, tile);
                }
                Tile::F4x4 => {
                    let tile = |m: &[Lanes], at, to: (&mut [Lanes], usize)| {
                        f4x4::output_tile::<Lanes>(m, at, to)
                    };
                    self.transform_output::<AVX2, 4, false>(m, tile_row, bias, targets, tile);
                }
            }
        }
    }

    /// `V[p][c][tx * GROUP + g] = (Bᵀ d B)[p]` for tile `(ty, tx)` of channel `c` of image
    /// `g`: the 16 input buffers of the products, for tile row `ty`.
    ///
    /// Row `i` of `Bᵀ d` combines two of the tile's 4 rows (see the four calls below), and
    /// `(Bᵀ d) B` then combines 4 consecutive columns of that. Neighbouring tiles share 2
    /// columns, so each row combination is computed once per column of the image row,
    /// not once per tile, and one pass per `i` keeps few values alive at a time (they
    /// stay in registers).
    #[inline(always)]
    fn transform_input(&self, padded: &[f32], ty: usize, v: &mut [f32]) {
        let pixels = self.tw * GROUP;
        self.transform_input_into(padded, ty, v, (self.position_strides().0, pixels, 0));
    }

    /// [`WinogradPlan::transform_input`] into another layout: `V[p][c][tx]` (`GROUP`
    /// floats) at `p * p_stride + c * c_stride + at + tx * GROUP` (for the weight
    /// gradient, which gathers several rows of tiles). F(2x2, 3x3) only (F(4x4, 3x3):
    /// [`WinogradPlan::transform_input_f4x4_into`]).
    #[inline(always)]
    fn transform_input_into(
        &self,
        padded: &[f32],
        ty: usize,
        v: &mut [f32],
        (p_stride, c_stride, at): (usize, usize, usize),
    ) {
        debug_assert_eq!(
            self.tile,
            Tile::F2x2,
            "winograd: F(2x2, 3x3)'s input transform"
        );
        let row = self.wp * GROUP;
        let pixels = self.tw * GROUP;
        for (ch, plane) in padded.chunks_exact(self.hp * row).enumerate() {
            let tile_rows = &plane[2 * ty * row..][..4 * row];
            let d = |k: usize| &tile_rows[k * row..][..row];
            // V[p] of this channel, for p = 4i .. 4i + 4.
            let mut outputs = v
                .chunks_exact_mut(p_stride)
                .map(|v_p| &mut v_p[ch * c_stride + at..][..pixels]);
            let mut next_four = || -> [&mut [f32]; 4] {
                std::array::from_fn(|_| outputs.next().expect("16 positions"))
            };
            // (Bᵀ d) row by row: d0 - d2, d1 + d2, d2 - d1, d1 - d3.
            input_pass::<false>(d(0), d(2), next_four());
            input_pass::<true>(d(1), d(2), next_four());
            input_pass::<false>(d(2), d(1), next_four());
            input_pass::<false>(d(1), d(3), next_four());
        }
    }

    /// F(4x4, 3x3)'s [`WinogradPlan::transform_input`]: `V[p][c][tx * GROUP + g] = (Bᵀ d
    /// B)[p]` for the 6x6 tile `d` at `(ty, tx)` of channel `c` of image `g`, by six passes
    /// along the tile row, one per row `i` of `Bᵀ d` (positions `p = 6i .. 6i + 6`).
    #[inline(always)]
    fn transform_input_f4x4<V: f4x4::Vector>(&self, padded: &[f32], ty: usize, v: &mut [f32]) {
        let pixels = self.tw * GROUP;
        let layout = (self.position_strides().0, pixels, 0);
        self.transform_input_f4x4_into::<V>(padded, ty, v, layout);
    }

    /// [`WinogradPlan::transform_input_f4x4`] into another layout: `V[p][c][tx]` (`GROUP`
    /// floats) at `p * p_stride + c * c_stride + at + tx * GROUP` (as
    /// [`WinogradPlan::transform_input_into`] for F(2x2, 3x3)).
    #[inline(always)]
    fn transform_input_f4x4_into<V: f4x4::Vector>(
        &self,
        padded: &[f32],
        ty: usize,
        v: &mut [f32],
        (p_stride, c_stride, at): (usize, usize, usize),
    ) {
        let row = self.wp * GROUP;
        let pixels = self.tw * GROUP;
        for (ch, plane) in padded.chunks_exact(self.hp * row).enumerate() {
            let tile_rows = &plane[4 * ty * row..][..6 * row];
            let rows: [&[Lanes]; 6] =
                std::array::from_fn(|k| tile_rows[k * row..][..row].as_chunks::<GROUP>().0);
            let mut outputs = v.chunks_exact_mut(p_stride).map(|v_p| {
                v_p[ch * c_stride + at..][..pixels]
                    .as_chunks_mut::<GROUP>()
                    .0
            });
            f4x4::input_pass::<0, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::input_pass::<1, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::input_pass::<2, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::input_pass::<3, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::input_pass::<4, V>(&rows, f4x4::next_six(&mut outputs));
            f4x4::input_pass::<5, V>(&rows, f4x4::next_six(&mut outputs));
        }
    }

    /// [`WinogradPlan::transform_output`] of F(4x4, 3x3), two tiles at a time in AVX-512
    /// registers (`f4x4::Tiles`).
    ///
    /// # Safety
    /// The processor must have AVX-512 (F), AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn transform_output_f4x4_avx512(
        &self,
        m: &mut [f32],
        tile_row: (usize, usize),
        bias: Option<&[f32]>,
        targets: (&mut [f32], &mut Sink),
    ) {
        let tile =
            |m: &[Lanes], at, to: (&mut [Lanes], usize)| f4x4::output_tile::<f4x4::Avx2>(m, at, to);
        self.transform_output::<true, 4, true>(m, tile_row, bias, targets, tile);
    }

    /// The outputs of tile row `ty` from the products `M[p]` (16 or 36 of them, filter `f`'s
    /// row of tiles at `f * row_len`): output `(M ty + a, M tx + b)` of filter `f` of image
    /// `g` is `(Aᵀ M A)[a][b] + bias[f]`, leaving out those past the edge, into `out` (all
    /// of them, or their ReLU's 2x2 maxima and winners: [`Sink`]). `Aᵀ M A` of each tile is
    /// computed by `tile(m, (at, stride), (stage, stage_row))`, for the tile whose `M[p]`
    /// is `m[at + p * stride]`, into `stage[a * stage_row + b]` (a slice of the stage,
    /// below, that starts at the tile's first column).
    /// `stage`: a buffer of twice [`WinogradPlan::stage_len`] floats (the second half for
    /// the pooled maxima and winners). `PAIRS` (F(4x4, 3x3),
    /// from code compiled for AVX-512 only): the tiles two by two, in AVX-512 registers
    /// (`f4x4::Tiles`; tile `tx + 1`'s `M[p]` follows tile `tx`'s, its outputs go `M`
    /// columns further).
    #[inline(always)]
    fn transform_output<const AVX2: bool, const M: usize, const PAIRS: bool>(
        &self,
        m: &mut [f32],
        (ty, row_len): (usize, usize),
        bias: Option<&[f32]>,
        (stage, out): (&mut [f32], &mut Sink),
        tile: impl Fn(&[Lanes], (usize, usize), (&mut [Lanes], usize)),
    ) {
        let (oh, ow, m_len) = (self.oh, self.ow, self.position_strides().1);
        let (tw, out_len) = (self.tw, self.fnum * oh * ow);
        // The kernel's rows are whole vectors (`ForwardPlan::scratch_layout`), so M can be
        // read as vectors.
        assert!(
            m_len.is_multiple_of(GROUP) && row_len.is_multiple_of(GROUP),
            "winograd: rows of M"
        );
        let m = m.as_chunks_mut::<GROUP>().0;
        let (m_len, row_len) = (m_len / GROUP, row_len / GROUP);
        // Output (M ty + a, ox) of every image at stage[a][ox], as the vectors come out of
        // the transform; then copied out image by image.
        // (A row of stage is whole blocks of 8 long: the last block may be partial, and
        // the zeros filling it are not stored.)
        let stage_row = (M * tw).next_multiple_of(GROUP);
        let (stage, pooled_stage) = stage.as_chunks_mut::<GROUP>().0.split_at_mut(M * stage_row);
        for f in 0..self.fnum {
            // The bias, added to position (1, 1) of M: `Aᵀ`'s column 1 is all ones, so
            // this adds it to every output of the tile, in one addition instead of M*M.
            if let Some(bias) = bias {
                let position = M + 3;
                for value in &mut m[position * m_len + f * row_len..][..tw] {
                    for lane in value.iter_mut() {
                        *lane += bias[f];
                    }
                }
            }
            // Tile tx's M[p] at m[f * row_len + tx + p * m_len]. (Found by arithmetic: an
            // array of the N slices per filter took longer to set up than the one or two
            // tiles of a small image take to transform.)
            let mut tx = 0;
            while tx < tw {
                let (at, to) = ((f * row_len + tx, m_len), (&mut stage[M * tx..], stage_row));
                // The last tile of an odd row too, with the padding after it in M's row and
                // the stage's (the product's rows are whole vectors; its outputs are not
                // copied out).
                #[cfg(target_arch = "x86_64")]
                if PAIRS && tx + 1 < row_len && M * (tx + 2) <= stage_row {
                    f4x4::output_tile::<f4x4::Avx512>(m, at, to);
                    tx += 2;
                    continue;
                }
                tile(m, at, to);
                tx += 1;
            }
            // This tile row's outputs, rows M ty .. M ty + rows of filter f of every image.
            let rows = M.min(oh - M * ty);
            match out {
                Sink::Maps(out) => {
                    let start = (f * oh + M * ty) * ow;
                    deinterleave_rows::<AVX2>(stage, (stage_row, rows, ow), out, (out_len, start));
                }
                Sink::ReluPooled(values, arg) => {
                    // Rows and columns even (`relu_pools`): the windows of pooled rows
                    // M ty / 2 .. (M ty + rows) / 2, maxima and winners side by side.
                    let (ph, pw) = (oh / 2, ow / 2);
                    let pooled_row = pw.next_multiple_of(GROUP);
                    let (maxima, winners) = pooled_stage.split_at_mut(M / 2 * pooled_row);
                    let first = (M * ty * ow) as u32;
                    let stages = (&*stage, &mut *maxima, &mut *winners);
                    relu_pool_stage::<AVX2>(
                        stages,
                        (stage_row, pooled_row),
                        (rows / 2, pw),
                        (first, ow as u32),
                    );
                    let (pooled_len, start) = (self.fnum * ph * pw, (f * ph + M * ty / 2) * pw);
                    let sizes = (pooled_row, rows / 2, pw);
                    deinterleave_rows::<AVX2>(maxima, sizes, values, (pooled_len, start));
                    let Some(arg) = arg.as_deref_mut() else {
                        continue; // no winners wanted
                    };
                    // SAFETY: a `u32` has the size and alignment of an `f32`, and the
                    // winners go through as bits: copied, never computed with.
                    let arg_bits = unsafe {
                        std::slice::from_raw_parts_mut(
                            arg.as_mut_ptr().cast::<MaybeUninit<f32>>(),
                            arg.len(),
                        )
                    };
                    deinterleave_rows::<AVX2>(winners, sizes, arg_bits, (pooled_len, start));
                }
            }
        }
    }
}

/// Where [`WinogradPlan`]'s output transform puts the outputs.
enum Sink<'a> {
    /// All of them: `GROUP` outputs `(FN, OH, OW)`, one after the other.
    Maps(&'a mut [MaybeUninit<f32>]),
    /// Their ReLU's 2x2 maxima (stride 2) and, if wanted, those maxima's winners, `GROUP`
    /// of each `(FN, OH/2, OW/2)`, one after the other ([`WinogradPlan::run_relu_pool`]).
    ReluPooled(&'a mut [MaybeUninit<f32>], Option<&'a mut [u32]>),
}

/// ReLU then 2x2 max pooling (stride 2) of `rows` rows of interleaved outputs (`GROUP`
/// lanes, one per image, output `(y, x)` of the stage at `stage[y * stage_row + x]`):
/// window `(py, px)`'s maximum into `maxima[py * pooled_row + px]`, and the flat index
/// `first + (2 py + dy) * ow + 2 px + dx` of its winner, as bits, into the same place of
/// `winners`; as `pooling::max_pool_planes` with its ReLU decides (negatives and NaN are
/// 0; the first of equal maxima in reading order wins; `BLOCKED`, all bits set, where the
/// maximum is 0). With AVX2 if `AVX2` (the caller runs with AVX2 enabled). Each window's
/// four pixels are at the same place for every image, so the candidates' indices are one
/// number each.
#[inline(always)]
fn relu_pool_stage<const AVX2: bool>(
    (stage, maxima, winners): (&[Lanes], &mut [Lanes], &mut [Lanes]),
    (stage_row, pooled_row): (usize, usize),
    (rows, pw): (usize, usize),
    (first, ow): (u32, u32),
) {
    assert!(
        2 * pw <= stage_row
            && 2 * rows * stage_row <= stage.len()
            && pw <= pooled_row
            && rows * pooled_row <= maxima.len().min(winners.len()),
        "winograd: pooling {rows} rows of {pw} windows"
    );
    for py in 0..rows {
        let (top, bottom) = (
            &stage[2 * py * stage_row..],
            &stage[(2 * py + 1) * stage_row..],
        );
        let maxima = &mut maxima[py * pooled_row..][..pw];
        let winners = &mut winners[py * pooled_row..][..pw];
        let index = first + 2 * py as u32 * ow;
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            // SAFETY: the caller runs with AVX2 enabled.
            unsafe { relu_pool_row_avx2((top, bottom), (maxima, winners), (index, ow)) };
            continue;
        }
        for (px, (maximum, winner)) in maxima.iter_mut().zip(winners.iter_mut()).enumerate() {
            let x = 2 * px;
            let at = index + x as u32;
            let candidates = [
                (&top[x], at),
                (&top[x + 1], at + 1),
                (&bottom[x], at + ow),
                (&bottom[x + 1], at + ow + 1),
            ];
            for g in 0..GROUP {
                let mut best = (f32::NEG_INFINITY, 0);
                for (pixel, i) in candidates {
                    let v = if pixel[g] > 0.0 { pixel[g] } else { 0.0 };
                    if v > best.0 {
                        best = (v, i);
                    }
                }
                if best.0 <= 0.0 {
                    best = (0.0, crate::pooling::BLOCKED);
                }
                (maximum[g], winner[g]) = (best.0, f32::from_bits(best.1));
            }
        }
    }
}

/// One row of windows of [`relu_pool_stage`] in AVX2 registers: ReLU as `max(x, 0)`
/// (which gives 0 for NaN too), each later candidate taking over where it is strictly
/// larger, its index blended in.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relu_pool_row_avx2(
    (top, bottom): (&[Lanes], &[Lanes]),
    (maxima, winners): (&mut [Lanes], &mut [Lanes]),
    (index, ow): (u32, u32),
) {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_ps();
    let load = |pixel: &Lanes| {
        // SAFETY: 8 floats.
        _mm256_max_ps(unsafe { _mm256_loadu_ps(pixel.as_ptr()) }, zero)
    };
    let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
    for (px, ((t, b), (maximum, winner))) in pairs.zip(maxima.iter_mut().zip(winners)).enumerate() {
        let at = index + 2 * px as u32;
        let mut best = load(&t[0]);
        let mut won = _mm256_castsi256_ps(_mm256_set1_epi32(at as i32));
        for (pixel, i) in [(&t[1], at + 1), (&b[0], at + ow), (&b[1], at + ow + 1)] {
            let v = load(pixel);
            let larger = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best);
            best = _mm256_blendv_ps(best, v, larger);
            let i = _mm256_castsi256_ps(_mm256_set1_epi32(i as i32));
            won = _mm256_blendv_ps(won, i, larger);
        }
        // All bits set (BLOCKED) where the maximum is 0.
        won = _mm256_or_ps(won, _mm256_cmp_ps::<_CMP_LE_OQ>(best, zero));
        // SAFETY: 8 floats each.
        unsafe {
            _mm256_storeu_ps(maximum.as_mut_ptr(), best);
            _mm256_storeu_ps(winner.as_mut_ptr(), won);
        }
    }
}

/// One channel's transformed filters, `u[p * FN + f] = (G g Gᵀ)[p]` for the 3x3 filter `g
/// = filter(f)` of each of the `FN` filters (`u` holds `n² FN` floats, `n` the rows of
/// `G`): `G g`, then `(G g) Gᵀ` (3n + n² sums of 3 products per filter; computed
/// position by position inside the packing, it was 9 per position). The filters are
/// the innermost loop, so that each sum runs over a vector of filters and each
/// position's `FN` values are written in one run (filter by filter, each write `FN`
/// floats from the last, DeepConvNet's step took 1% longer). Each filter's 9 weights are
/// read together, as one array (read one weight at a time through a function of `(f, c,
/// fy, fx)`, the index arithmetic and its checks took half of this function's time). Every
/// value is the same sum of the same products in the same order whatever the
/// instructions (Rust never fuses a multiplication and an addition on its own).
#[inline(always)]
fn transform_filters(
    g_matrix: &[[f32; 3]],
    filter: impl Fn(usize) -> [f32; 9],
    u: &mut [MaybeUninit<f32>],
) {
    let n = g_matrix.len();
    let fnum = u.len() / (n * n);
    // g[fy * 3 + fx][f], then gg[r * 3 + fx][f] = (G g)[r][fx].
    let mut g = vec![0.0f32; 9 * fnum];
    for f in 0..fnum {
        for (k, value) in filter(f).into_iter().enumerate() {
            g[k * fnum + f] = value;
        }
    }
    let g = |fy: usize, fx: usize| &g[(fy * 3 + fx) * fnum..][..fnum];
    let mut gg = vec![0.0f32; 3 * n * fnum];
    for (r_fx, gg_r) in gg.chunks_exact_mut(fnum).enumerate() {
        let (g_row, fx) = (g_matrix[r_fx / 3], r_fx % 3);
        for (((value, &g0), &g1), &g2) in gg_r.iter_mut().zip(g(0, fx)).zip(g(1, fx)).zip(g(2, fx))
        {
            *value = g_row[0] * g0 + g_row[1] * g1 + g_row[2] * g2;
        }
    }
    let gg = |r: usize, fx: usize| &gg[(r * 3 + fx) * fnum..][..fnum];
    // Position p = (r, j) at u[p * FN..][..FN].
    for (p, u_p) in u.chunks_exact_mut(fnum).enumerate() {
        let (r, g_j) = (p / n, g_matrix[p % n]);
        for (((value, &r0), &r1), &r2) in u_p.iter_mut().zip(gg(r, 0)).zip(gg(r, 1)).zip(gg(r, 2)) {
            value.write(r0 * g_j[0] + r1 * g_j[1] + r2 * g_j[2]);
        }
    }
}

/// [`transform_filters`] compiled with AVX2: its sums over 8 filters per instruction, not
/// 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transform_filters_avx2(
    g_matrix: &[[f32; 3]],
    filter: impl Fn(usize) -> [f32; 9],
    u: &mut [MaybeUninit<f32>],
) {
    transform_filters(g_matrix, filter, u);
}

/// The inverse of [`interleave`] for `rows` rows of outputs, each the same rows of every
/// image: pixel `ox < ow` of row `a` (`GROUP` lanes, one per image, at `stage[a *
/// stage_row + ox]`) to `out[g * out_len + start + a * ow + ox]` for image `g`. In blocks
/// of 8 pixels, an 8x8 transpose turning "one pixel of 8 images" into "8 pixels of one
/// image", 8 contiguous floats to store; with AVX2 if `AVX2` (the caller runs with AVX2
/// enabled), in registers.
#[inline(always)]
fn deinterleave_rows<const AVX2: bool>(
    stage: &[Lanes],
    (stage_row, rows, ow): (usize, usize, usize),
    out: &mut [MaybeUninit<f32>],
    (out_len, start): (usize, usize),
) {
    // Rows of whole blocks (the partial block at the end of a row is read whole).
    assert!(
        stage_row.is_multiple_of(GROUP)
            && ow <= stage_row
            && rows * stage_row <= stage.len()
            && (rows == 0 || (GROUP - 1) * out_len + start + rows * ow <= out.len()),
        "winograd: {rows} rows of {ow} outputs from a stage of {} pixels ({stage_row} a row) \
         into {} floats ({out_len} an image, from {start})",
        stage.len(),
        out.len()
    );
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: the caller runs with AVX2 enabled; the bounds are asserted above.
        return unsafe {
            deinterleave_rows_avx2(stage, (stage_row, rows, ow), out, (out_len, start))
        };
    }
    for (a, columns) in stage.chunks_exact(stage_row).take(rows).enumerate() {
        let row_start = start + a * ow;
        for (ox0, block) in (0..ow).step_by(GROUP).zip(columns.as_chunks::<GROUP>().0) {
            let len = GROUP.min(ow - ox0);
            for (g, values) in transpose8::<false>(block).iter().enumerate() {
                let at = g * out_len + row_start + ox0;
                out[at..at + len].write_copy_of_slice(&values[..len]);
            }
        }
    }
}

/// [`deinterleave_rows`] in AVX2 registers, through raw pointers (the checks on each of
/// the 8 stores of a block, and the transposed block passed through memory, took longer
/// than the transpose: the copy was two thirds of F(4x4, 3x3)'s output transform).
///
/// # Safety
/// The processor must have AVX2, and the bounds be those [`deinterleave_rows`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn deinterleave_rows_avx2(
    stage: &[Lanes],
    (stage_row, rows, ow): (usize, usize, usize),
    out: &mut [MaybeUninit<f32>],
    (out_len, start): (usize, usize),
) {
    use std::arch::x86_64::*;
    let whole = ow / GROUP * GROUP;
    let out = out.as_mut_ptr().cast::<f32>();
    for a in 0..rows {
        // SAFETY (all pointer arithmetic, loads and stores): the stage has `rows` rows of
        // `stage_row` pixels, a multiple of GROUP, so the block that holds pixel `ow - 1`
        // is inside the row; image g's row `a` is `out[g * out_len + start + a * ow..][..ow]`.
        unsafe {
            let src = stage.as_ptr().add(a * stage_row).cast::<f32>();
            let dst = out.add(start + a * ow);
            let block = |ox: usize| {
                transpose_registers(std::array::from_fn(|j| {
                    _mm256_loadu_ps(src.add((ox + j) * GROUP))
                }))
            };
            let mut ox = 0;
            while ox < whole {
                for (g, values) in block(ox).into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add(g * out_len + ox), values);
                }
                ox += GROUP;
            }
            if ox < ow {
                for (g, values) in block(ox).into_iter().enumerate() {
                    store_first_register(dst.add(g * out_len + ox), ow - ox, values);
                }
            }
        }
    }
}

/// What a group's interleaving reads: `GROUP` images (or gradients) whole, or the
/// gradients a 2x2 max pooling with stride 2 passes back, rebuilt from each image's pooled
/// gradients and their winners (see [`interleave_unpooled`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Group<'a> {
    /// Each image, `(planes, h, w)`.
    Whole([&'a [f32]; GROUP]),
    /// Each image's pooled gradients and their winners, `(planes, h/2, w/2)` both.
    Unpooled([(&'a [f32], &'a [u32]); GROUP]),
}

/// `group` interleaved and padded into `out` ([`interleave`], [`interleave_unpooled`]),
/// with AVX2 where `simd` has it.
fn interleave_group(
    simd: Simd,
    group: Group,
    sizes: ((usize, usize, usize), (usize, usize)),
    pad: usize,
    out: &mut [f32],
) {
    match simd {
        // SAFETY: `simd` names instructions the processor has (a plan's).
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 | Simd::Avx512 => unsafe { interleave_group_avx2(group, sizes, pad, out) },
        _ => interleave_group_with::<false>(group, sizes, pad, out),
    }
}

/// [`interleave_group`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn interleave_group_avx2(
    group: Group,
    sizes: ((usize, usize, usize), (usize, usize)),
    pad: usize,
    out: &mut [f32],
) {
    interleave_group_with::<true>(group, sizes, pad, out);
}

/// [`interleave_group`], with AVX2 shuffles if `AVX2` (the caller runs with AVX2 enabled).
#[inline(always)]
fn interleave_group_with<const AVX2: bool>(
    group: Group,
    sizes: ((usize, usize, usize), (usize, usize)),
    pad: usize,
    out: &mut [f32],
) {
    match group {
        Group::Whole(images) => interleave::<AVX2>(images, sizes, pad, out),
        Group::Unpooled(pooled) => interleave_unpooled::<AVX2>(pooled, sizes, pad, out),
    }
}

/// `GROUP` images of `planes` planes `(h, w)` into `out`, interleaved and padded to `(hp,
/// wp)`: pixel `(c, y, x)` of image `g` at `((c * hp + y + pad) * wp + x + pad) * GROUP +
/// g`, zeros around the images (every entry is written). With AVX2 shuffles if `AVX2` (the
/// caller runs with AVX2 enabled).
#[inline(always)]
fn interleave<const AVX2: bool>(
    images: [&[f32]; GROUP],
    ((planes, h, w), (hp, wp)): ((usize, usize, usize), (usize, usize)),
    pad: usize,
    out: &mut [f32],
) {
    let image_len = planes * h * w;
    assert!(
        images.iter().all(|image| image.len() == image_len)
            && out.len() == planes * hp * wp * GROUP
            && pad + h <= hp
            && pad + w <= wp,
        "winograd: interleaving {:?} floats of {GROUP} images {:?} into {} floats {:?}",
        images.map(<[f32]>::len),
        (planes, h, w),
        out.len(),
        (hp, wp, pad)
    );
    zero_around((h, w), (hp, wp), pad, out);
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: the caller runs with AVX2 enabled; the bounds are asserted above.
        return unsafe { interleave_rows_avx2(images, (planes, h, w), (hp, wp), pad, out) };
    }
    for ch in 0..planes {
        for iy in 0..h {
            // Row iy of plane ch of every image, into one interleaved run.
            let rows: [&[f32]; GROUP] =
                std::array::from_fn(|g| &images[g][(ch * h + iy) * w..][..w]);
            let start = ((ch * hp + iy + pad) * wp + pad) * GROUP;
            let pixels = out[start..start + w * GROUP].as_chunks_mut::<GROUP>().0;
            for (pixel, ix) in pixels.iter_mut().zip(0..) {
                *pixel = std::array::from_fn(|g| rows[g][ix]);
            }
        }
    }
}

/// Zeros where no pixel of an `(h, w)` image goes in its interleaved planes of `(hp, wp)`
/// pixels (see [`interleave`]): the padding rows above and below, then the padding columns
/// left and right of each image row.
#[inline(always)]
fn zero_around((h, w): (usize, usize), (hp, wp): (usize, usize), pad: usize, out: &mut [f32]) {
    let row = wp * GROUP;
    for plane in out.chunks_exact_mut(hp * row) {
        let (above, rest) = plane.split_at_mut(pad * row);
        above.fill(0.0);
        rest[h * row..].fill(0.0);
        for image_row in rest[..h * row].chunks_exact_mut(row) {
            // A pixel or two each side: stored as vectors, not by a `memset` call each
            // (1.8% of a DeepConvNet step went to those calls).
            let pixels = image_row.as_chunks_mut::<GROUP>().0;
            let (left, rest) = pixels.split_at_mut(pad);
            for pixel in left.iter_mut().chain(&mut rest[w..]) {
                *pixel = [0.0; GROUP];
            }
        }
    }
}

/// What a 2x2 max pooling with stride 2 passes back to its inputs, for `GROUP` images,
/// laid out as [`interleave`] lays out images: `pooled[g]` is image `g`'s gradient of the
/// pooled output, `(planes, h/2, w/2)`, with each window's winner (the flat index
/// `y * w + x` of the winning pixel in its plane, as `Pooling` keeps it; `BLOCKED` or any
/// other index outside the window passes nothing). Each pixel gets its window's gradient
/// if it is the winner, else zero (the windows do not overlap): the full-size gradient is
/// never written anywhere else.
#[inline(always)]
fn interleave_unpooled<const AVX2: bool>(
    pooled: [(&[f32], &[u32]); GROUP],
    ((planes, h, w), (hp, wp)): ((usize, usize, usize), (usize, usize)),
    pad: usize,
    out: &mut [f32],
) {
    let (ph, pw) = (h / 2, w / 2);
    let pooled_len = planes * ph * pw;
    assert!(
        h.is_multiple_of(2)
            && w.is_multiple_of(2)
            && pooled
                .iter()
                .all(|(grads, winners)| grads.len() == pooled_len && winners.len() == pooled_len)
            && out.len() == planes * hp * wp * GROUP
            && pad + h <= hp
            && pad + w <= wp,
        "winograd: unpooling {:?} gradients of {GROUP} images {:?} into {} floats {:?}",
        pooled.map(|(grads, winners)| (grads.len(), winners.len())),
        (planes, h, w),
        out.len(),
        (hp, wp, pad)
    );
    zero_around((h, w), (hp, wp), pad, out);
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: the caller runs with AVX2 enabled; the bounds are asserted above.
        return unsafe { unpool_rows_avx2(pooled, (planes, h, w), (hp, wp), pad, out) };
    }
    for ch in 0..planes {
        for py in 0..ph {
            for px in 0..pw {
                let at = (ch * ph + py) * pw + px;
                for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (y, x) = (2 * py + a, 2 * px + b);
                    let index = (y * w + x) as u32;
                    let pixel = ((ch * hp + y + pad) * wp + x + pad) * GROUP;
                    for (g, (grads, winners)) in pooled.iter().enumerate() {
                        out[pixel + g] = if winners[at] == index { grads[at] } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// The pixels of [`interleave_unpooled`] in AVX2 registers, through raw pointers: 8
/// windows of 8 images at a time, their gradients and winners turned by an 8x8 transpose
/// into "one window of 8 images", then each of the window's 4 pixels is the gradient
/// where the winner is that pixel (a comparison's mask), else zero.
///
/// # Safety
/// The processor must have AVX2, and the bounds be those [`interleave_unpooled`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unpool_rows_avx2(
    pooled: [(&[f32], &[u32]); GROUP],
    (planes, h, w): (usize, usize, usize),
    (hp, wp): (usize, usize),
    pad: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (ph, pw) = (h / 2, w / 2);
    let grads = pooled.map(|(grads, _)| grads.as_ptr());
    // The winners' bits, moved through float registers unchanged.
    let winners = pooled.map(|(_, winners)| winners.as_ptr().cast::<f32>());
    let out = out.as_mut_ptr();
    for ch in 0..planes {
        for py in 0..ph {
            // SAFETY (all pointer arithmetic, loads and stores): window row py of plane
            // ch is `pw` values of every image from `row`, read whole or up to its end;
            // its two pixel rows are `w` pixels of GROUP floats from `dst[a]`, inside the
            // `planes * hp * wp` pixels of `out` since `pad + h <= hp` and `pad + w <= wp`.
            unsafe {
                let row = (ch * ph + py) * pw;
                let dst =
                    [0, 1].map(|a| out.add(((ch * hp + 2 * py + a + pad) * wp + pad) * GROUP));
                let mut px0 = 0;
                while px0 < pw {
                    let len = GROUP.min(pw - px0);
                    let load = |src: *const f32| {
                        if len == GROUP {
                            _mm256_loadu_ps(src.add(row + px0))
                        } else {
                            load_first_register(src.add(row + px0), len)
                        }
                    };
                    let values = transpose_registers(grads.map(load));
                    let winner = transpose_registers(winners.map(load));
                    for j in 0..GROUP {
                        if j == len {
                            break;
                        }
                        let x = 2 * (px0 + j);
                        let winner = _mm256_castps_si256(winner[j]);
                        for (a, dst) in dst.iter().enumerate() {
                            for b in 0..2 {
                                let index = ((2 * py + a) * w + x + b) as i32;
                                let won = _mm256_cmpeq_epi32(winner, _mm256_set1_epi32(index));
                                let value = _mm256_and_ps(_mm256_castsi256_ps(won), values[j]);
                                _mm256_storeu_ps(dst.add((x + b) * GROUP), value);
                            }
                        }
                    }
                    px0 += GROUP;
                }
            }
        }
    }
}

/// The image rows of [`interleave`] in AVX2 registers, through raw pointers: 8 pixels of
/// 8 images at a time, an 8x8 transpose turning "8 pixels of one image" into "one pixel
/// of 8 images". (Checked slices and the block passed through memory took twice as long.)
///
/// # Safety
/// The processor must have AVX2, and the bounds be those [`interleave`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn interleave_rows_avx2(
    images: [&[f32]; GROUP],
    (planes, h, w): (usize, usize, usize),
    (hp, wp): (usize, usize),
    pad: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let whole = w / GROUP * GROUP;
    let sources = images.map(<[f32]>::as_ptr);
    let out = out.as_mut_ptr();
    for ch in 0..planes {
        for iy in 0..h {
            // SAFETY (all pointer arithmetic, loads and stores): row iy of plane ch is
            // `w` floats of every image (`planes * h * w` each); its interleaved run is `w`
            // pixels of GROUP floats from `start`, inside the `planes * hp * wp` pixels of
            // `out` since `pad + h <= hp` and `pad + w <= wp`.
            unsafe {
                let row = (ch * h + iy) * w;
                let dst = out.add(((ch * hp + iy + pad) * wp + pad) * GROUP);
                let mut ix = 0;
                while ix < whole {
                    let block = sources.map(|src| _mm256_loadu_ps(src.add(row + ix)));
                    for (j, pixel) in transpose_registers(block).into_iter().enumerate() {
                        _mm256_storeu_ps(dst.add((ix + j) * GROUP), pixel);
                    }
                    ix += GROUP;
                }
                if ix < w {
                    // The rest of the row: a partial block, read up to the row's end.
                    let block = sources.map(|src| load_first_register(src.add(row + ix), w - ix));
                    for (j, pixel) in transpose_registers(block)
                        .into_iter()
                        .enumerate()
                        .take(w - ix)
                    {
                        _mm256_storeu_ps(dst.add((ix + j) * GROUP), pixel);
                    }
                }
            }
        }
    }
}

/// One row `i` of `Bᵀ d B` for every tile of a tile row: `r = a ± b` (`ADD` or not) for
/// each column of the two image rows `a` and `b` (row `i` of `Bᵀ d`), then for tile `tx`,
/// whose columns are `r[2tx .. 2tx + 4]`: `r0 - r2, r1 + r2, r2 - r1, r1 - r3` into
/// `v[0..4][tx]`. (Plain loops over the lanes: the compiler turns each into one vector
/// instruction.)
#[inline(always)]
fn input_pass<const ADD: bool>(a: &[f32], b: &[f32], v: [&mut [f32]; 4]) {
    let combine = |a: &Lanes, b: &Lanes| {
        let mut r = [0.0f32; GROUP];
        for g in 0..GROUP {
            r[g] = if ADD { a[g] + b[g] } else { a[g] - b[g] };
        }
        r
    };
    let (a, b) = (a.as_chunks::<GROUP>().0, b.as_chunks::<GROUP>().0);
    let (mut r0, mut r1) = (combine(&a[0], &b[0]), combine(&a[1], &b[1]));
    let [v0, v1, v2, v3] = v.map(|v_i| v_i.as_chunks_mut::<GROUP>().0);
    let tiles = v0.iter_mut().zip(v1).zip(v2).zip(v3);
    // Two new columns per tile: its first two are the last two of the tile before.
    for ((a23, b23), (((v0, v1), v2), v3)) in a[2..]
        .chunks_exact(2)
        .zip(b[2..].chunks_exact(2))
        .zip(tiles)
    {
        let (r2, r3) = (combine(&a23[0], &b23[0]), combine(&a23[1], &b23[1]));
        // Computed apart from the stores: the compiler cannot tell that the four outputs
        // do not overlap, and would not vectorise stores it cannot reorder.
        let mut tile = [[0.0f32; GROUP]; 4];
        for g in 0..GROUP {
            tile[0][g] = r0[g] - r2[g];
            tile[1][g] = r1[g] + r2[g];
            tile[2][g] = r2[g] - r1[g];
            tile[3][g] = r1[g] - r3[g];
        }
        [*v0, *v1, *v2, *v3] = tile;
        (r0, r1) = (r2, r3);
    }
}

/// `Aᵀ M A` for one tile of every image, `M[p]` being `m(p)`: output `(a, b)` at `[a][b]`.
#[inline(always)]
fn output_tile<'m>(m: impl Fn(usize) -> &'m Lanes) -> [[Lanes; 2]; 2] {
    // q[a][j] = (Aᵀ M)[a][j], column by column of M.
    let mut q = [[[0.0f32; GROUP]; 4]; 2];
    let [q0, q1] = &mut q;
    for (j, (q0j, q1j)) in q0.iter_mut().zip(q1.iter_mut()).enumerate() {
        let (m0, m1, m2, m3) = (m(j), m(4 + j), m(8 + j), m(12 + j));
        for g in 0..GROUP {
            q0j[g] = m0[g] + m1[g] + m2[g];
            q1j[g] = m1[g] - m2[g] - m3[g];
        }
    }
    // (Aᵀ M) A.
    let mut y = [[[0.0f32; GROUP]; 2]; 2];
    for (y_a, qa) in y.iter_mut().zip(&q) {
        for g in 0..GROUP {
            y_a[0][g] = qa[0][g] + qa[1][g] + qa[2][g];
            y_a[1][g] = qa[1][g] - qa[2][g] - qa[3][g];
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::kernels::simd::as_output;

    /// The 3x3 filters of `weight(f, c, fy, fx)`, as [`WinogradPlan::pack_weights`] reads
    /// them.
    fn filters_of(
        weight: impl Fn(usize, usize, usize, usize) -> f32 + Sync,
    ) -> impl Fn(usize, usize) -> [f32; 9] + Sync {
        move |f, c| std::array::from_fn(|k| weight(f, c, k / 3, k % 3))
    }

    /// Winograd's convolution against the definition, summed in f64 from the unpadded
    /// image, for every instruction level this processor has: even and odd output sizes
    /// (half tiles at the edges), no padding and padding up to 2, one channel and many,
    /// filter counts that are not multiples of the register blocks.
    #[test]
    fn winograd_matches_the_definition() {
        // (filters, channels, pad, height, width)
        let shapes = [
            (1, 1, 0, 3, 3),
            (5, 3, 1, 7, 9),
            (16, 16, 1, 14, 14),
            (32, 16, 2, 14, 14),
            (7, 9, 0, 10, 13),
            (64, 32, 1, 8, 8),
            (3, 2, 1, 1, 5),
            (4, 8, 0, 6, 10), // no padding, even outputs: the images fill the buffer
        ];
        for shape in shapes {
            for simd in Simd::available() {
                for tile in [Tile::F2x2, Tile::F4x4] {
                    matches_for(shape, simd, tile);
                }
            }
        }
    }

    fn matches_for(
        (fnum, c, pad, h, w): (usize, usize, usize, usize, usize),
        simd: Simd,
        tile: Tile,
    ) {
        let plan = WinogradPlan::with_simd((fnum, c, 3, 3), (h, w), pad, simd, tile).unwrap();
        // GROUP different images, one after the other.
        let image_len = c * h * w;
        let images: Vec<f32> = (0..GROUP * image_len)
            .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
            .collect();
        let weight = |a: usize, b: usize, i: usize, j: usize| {
            ((a * 5 + b * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        };
        let packed = plan.pack_weights(filters_of(weight));
        let bias: Vec<f32> = (0..fnum).map(|i| i as f32 * 0.25).collect();
        // Old contents must not leak: padded buffer and output start as NaN.
        let mut padded = vec![f32::NAN; plan.padded_len()];
        plan.pad_images(&images, &mut padded);
        let (oh, ow) = plan.output();
        let mut out = vec![f32::NAN; GROUP * fnum * oh * ow];
        let mut scratch = vec![f32::NAN; 7];
        // SAFETY: the kernel writes floats.
        let out_view = unsafe { as_output(&mut out) };
        plan.run(&padded, &packed, Some(&bias), &mut scratch, out_view);
        let pixel = |g: usize, ch: usize, y: usize, x: usize| -> f64 {
            if y < pad || x < pad || y >= h + pad || x >= w + pad {
                0.0
            } else {
                f64::from(images[g * image_len + (ch * h + y - pad) * w + x - pad])
            }
        };
        for (g, fi) in (0..GROUP).flat_map(|g| (0..fnum).map(move |fi| (g, fi))) {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = f64::from(bias[fi]);
                    for ch in 0..c {
                        for fy in 0..3 {
                            for fx in 0..3 {
                                sum += f64::from(weight(fi, ch, fy, fx))
                                    * pixel(g, ch, oy + fy, ox + fx);
                            }
                        }
                    }
                    let got = f64::from(out[((g * fnum + fi) * oh + oy) * ow + ox]);
                    assert!(
                        (got - sum).abs() < 1e-4 * (1.0 + sum.abs()),
                        "{simd:?}, {tile:?}, shape {:?}: image {g}, out[{fi}, {oy}, {ox}] = {got}, expected {sum}",
                        (fnum, c, pad, h, w)
                    );
                }
            }
        }
    }

    /// ReLU and 2x2 max pooling fused into the output transform, against the convolution's
    /// outputs pooled by `pooling::max_pool_planes` (with its ReLU), for every instruction
    /// level and both tiles: the same maxima, bit for bit, and the same winners. Filter 0
    /// has a large negative bias (every window blocked), filter 1 zero weights (four equal
    /// outputs in every window: the first wins).
    #[test]
    fn relu_pooling_in_the_transform_matches_the_pooling_layer() {
        // (filters, channels, pad, height, width): even outputs only.
        let shapes = [
            (16, 16, 1, 28, 28),
            (32, 16, 2, 14, 14),
            (6, 9, 1, 8, 8),
            (5, 3, 1, 6, 10),
            (3, 8, 0, 4, 6),
        ];
        for (fnum, c, pad, h, w) in shapes {
            for simd in Simd::available() {
                for tile in [Tile::F2x2, Tile::F4x4] {
                    let plan =
                        WinogradPlan::with_simd((fnum, c, 3, 3), (h, w), pad, simd, tile).unwrap();
                    assert!(plan.relu_pools());
                    let image_len = c * h * w;
                    let images: Vec<f32> = (0..GROUP * image_len)
                        .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
                        .collect();
                    let weight = |f: usize, b: usize, i: usize, j: usize| {
                        if f == 1 {
                            0.0
                        } else {
                            ((f * 5 + b * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.45
                        }
                    };
                    let packed = plan.pack_weights(filters_of(weight));
                    let bias: Vec<f32> = (0..fnum)
                        .map(|f| if f == 0 { -1e4 } else { f as f32 * 0.25 })
                        .collect();
                    let mut padded = vec![f32::NAN; plan.padded_len()];
                    plan.pad_images(&images, &mut padded);
                    let (oh, ow) = plan.output();
                    let mut maps = vec![f32::NAN; GROUP * fnum * oh * ow];
                    let mut scratch = Vec::new();
                    // SAFETY: the kernel writes floats.
                    plan.run(&padded, &packed, Some(&bias), &mut scratch, unsafe {
                        as_output(&mut maps)
                    });
                    let pooled_len = GROUP * fnum * (oh / 2) * (ow / 2);
                    let (mut expected, mut expected_arg) =
                        (vec![0.0; pooled_len], vec![0; pooled_len]);
                    crate::pooling::max_pool_planes(
                        &maps,
                        (oh, ow),
                        (2, 2, 2, 0),
                        (oh / 2, ow / 2),
                        &mut expected,
                        &mut expected_arg,
                        true,
                    );
                    let (mut values, mut arg) =
                        (vec![f32::NAN; pooled_len], vec![7u32; pooled_len]);
                    // SAFETY: the kernel writes floats.
                    let values_out = unsafe { as_output(&mut values) };
                    plan.run_relu_pool(
                        &padded,
                        &packed,
                        Some(&bias),
                        &mut scratch,
                        (values_out, Some(&mut arg)),
                    );
                    let blocked = expected_arg
                        .iter()
                        .filter(|&&i| i == crate::pooling::BLOCKED)
                        .count();
                    assert!(
                        blocked >= pooled_len / fnum,
                        "{simd:?}: filter 0 blocks its windows"
                    );
                    for i in 0..pooled_len {
                        assert!(
                            values[i].to_bits() == expected[i].to_bits()
                                && arg[i] == expected_arg[i],
                            "{simd:?}, {tile:?}, shape {:?}: pooled {i}: ({}, {}), expected ({}, {})",
                            (fnum, c, pad, h, w),
                            values[i],
                            arg[i],
                            expected[i],
                            expected_arg[i]
                        );
                    }
                }
            }
        }
    }

    /// A max pooling's gradients rebuilt from their winners straight into the interleaved
    /// padded layout, against the formula, for each instruction level: the winner of
    /// each window gets its gradient, every other pixel (a winner outside its window and a
    /// blocked window included) and the padding zero, every float written (widths of
    /// windows below, at and past a block of 8).
    #[test]
    fn unpooled_gradients_land_where_the_formula_says() {
        // Image g's pooled gradient and winner of window i: a winner in the window, one
        // outside it (from a neighbour's pixels: it must pass nothing), or BLOCKED.
        let grad = |g: usize, i: usize| (100 * g + i) as f32 + 0.5;
        for ((planes, h, w), (hp, wp), pad) in [
            ((2, 8, 8), (10, 10), 1),
            ((3, 14, 14), (18, 18), 2),
            ((1, 4, 20), (6, 22), 1),
            ((2, 6, 18), (6, 18), 0),
        ] {
            let (ph, pw) = (h / 2, w / 2);
            let pooled_len = planes * ph * pw;
            let winner = |g: usize, i: usize| {
                let (py, px) = (i / pw % ph, i % pw);
                match (i * 7 + g) % 6 {
                    4 => crate::pooling::BLOCKED,
                    5 => ((2 * py) * w + (2 * px + 2) % w) as u32,
                    k => ((2 * py + k / 2) * w + 2 * px + k % 2) as u32,
                }
            };
            let grads: Vec<Vec<f32>> = (0..GROUP)
                .map(|g| (0..pooled_len).map(|i| grad(g, i)).collect())
                .collect();
            let winners: Vec<Vec<u32>> = (0..GROUP)
                .map(|g| (0..pooled_len).map(|i| winner(g, i)).collect())
                .collect();
            let pooled: [(&[f32], &[u32]); GROUP] =
                std::array::from_fn(|g| (&grads[g][..], &winners[g][..]));
            for simd in Simd::available() {
                let mut out = vec![f32::NAN; planes * hp * wp * GROUP];
                let sizes = ((planes, h, w), (hp, wp));
                interleave_group(simd, Group::Unpooled(pooled), sizes, pad, &mut out);
                for (i, &value) in out.iter().enumerate() {
                    let (pixel, g) = (i / GROUP, i % GROUP);
                    let (ch, yy, xx) = (pixel / (hp * wp), pixel / wp % hp, pixel % wp);
                    let inside = (pad..pad + h).contains(&yy) && (pad..pad + w).contains(&xx);
                    let expected = if inside {
                        let (y, x) = (yy - pad, xx - pad);
                        let window = (ch * ph + y / 2) * pw + x / 2;
                        if winner(g, window) == (y * w + x) as u32 {
                            grad(g, window)
                        } else {
                            0.0
                        }
                    } else {
                        0.0
                    };
                    assert_eq!(
                        value.to_bits(),
                        expected.to_bits(),
                        "{simd:?} {:?}: float {i} is {value}, not {expected}",
                        (planes, h, w, pad)
                    );
                }
            }
        }
    }

    /// Rows of interleaved outputs back into each image's rows, against the formula, for
    /// each instruction level: every output where it belongs, nothing else written (widths
    /// below, at and past a block of 8, with and without a partial block).
    #[test]
    fn deinterleaved_rows_land_where_the_formula_says() {
        let code = |a: usize, ox: usize, g: usize| (1000 * a + 10 * ox + g) as f32;
        for (rows, ow) in [(1, 3), (4, 8), (4, 14), (3, 28), (2, 17usize)] {
            let stage_row = ow.next_multiple_of(GROUP);
            let stage: Vec<Lanes> = (0..rows * stage_row)
                .map(|i| std::array::from_fn(|g| code(i / stage_row, i % stage_row, g)))
                .collect();
            let (out_len, start) = (rows * ow + 5, 3);
            for simd in Simd::available() {
                let mut out = vec![f32::NAN; GROUP * out_len];
                // SAFETY: only floats are written.
                let view = unsafe { as_output(&mut out) };
                match simd {
                    Simd::Plain => deinterleave_rows::<false>(
                        &stage,
                        (stage_row, rows, ow),
                        view,
                        (out_len, start),
                    ),
                    _ => {
                        // SAFETY: `available` lists only what the processor has.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            deinterleave_rows_avx2_for_test(
                                &stage,
                                (stage_row, rows, ow),
                                view,
                                (out_len, start),
                            )
                        }
                    }
                }
                for (i, &value) in out.iter().enumerate() {
                    let (g, at) = (i / out_len, i % out_len);
                    if at < start || at >= start + rows * ow {
                        assert!(value.is_nan(), "{simd:?} {rows}x{ow}: wrote float {i}");
                    } else {
                        let (a, ox) = ((at - start) / ow, (at - start) % ow);
                        assert_eq!(value, code(a, ox, g), "{simd:?} {rows}x{ow}: float {i}");
                    }
                }
            }
        }
    }

    /// `deinterleave_rows::<true>`, from a function compiled with AVX2.
    ///
    /// # Safety
    /// The processor must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn deinterleave_rows_avx2_for_test(
        stage: &[Lanes],
        sizes: (usize, usize, usize),
        out: &mut [MaybeUninit<f32>],
        place: (usize, usize),
    ) {
        deinterleave_rows::<true>(stage, sizes, out, place);
    }

    /// The transformed filters, bit for bit: each `U[p][f, c]` is `(G g Gᵀ)[p]` computed
    /// here on its own, `(G g)` row by row and then `(G g) Gᵀ`, each a sum of three
    /// products in the formula's order, and found where the packing for the products
    /// puts it (block `f / MR`, row `c`, lane `f % MR` of position `p`'s block, zeros
    /// past the last filter). Filter counts that are and are not multiples of a vector.
    #[test]
    fn transformed_filters_are_g_g_gt_bit_for_bit() {
        for simd in Simd::available() {
            for tile in [Tile::F2x2, Tile::F4x4] {
                for (fnum, c) in [(16, 16), (7, 3), (64, 32), (1, 1), (33, 5)] {
                    let plan =
                        WinogradPlan::with_simd((fnum, c, 3, 3), (8, 8), 1, simd, tile).unwrap();
                    let weight = |f: usize, ch: usize, fy: usize, fx: usize| {
                        ((f * 13 + ch * 7 + fy * 3 + fx) % 17) as f32 / 3.0 - 2.5
                    };
                    let packed = plan.pack_weights(filters_of(weight));
                    let g_matrix: &[[f32; 3]] = match tile {
                        Tile::F2x2 => &[
                            [1.0, 0.0, 0.0],
                            [0.5, 0.5, 0.5],
                            [0.5, -0.5, 0.5],
                            [0.0, 0.0, 1.0],
                        ],
                        Tile::F4x4 => &f4x4::G,
                    };
                    let n = g_matrix.len();
                    let (mr, block_len) =
                        (plan.product.filters_per_block(), plan.product.packed_len());
                    for (f, ch) in (0..fnum).flat_map(|f| (0..c).map(move |ch| (f, ch))) {
                        let gg = |r: usize, fx: usize| {
                            g_matrix[r][0] * weight(f, ch, 0, fx)
                                + g_matrix[r][1] * weight(f, ch, 1, fx)
                                + g_matrix[r][2] * weight(f, ch, 2, fx)
                        };
                        for (r, j) in (0..n).flat_map(|r| (0..n).map(move |j| (r, j))) {
                            let g_j = g_matrix[j];
                            let expected =
                                gg(r, 0) * g_j[0] + gg(r, 1) * g_j[1] + gg(r, 2) * g_j[2];
                            let at = (r * n + j) * block_len + (f / mr * c + ch) * mr + f % mr;
                            assert_eq!(
                                packed[at].to_bits(),
                                expected.to_bits(),
                                "{simd:?} {tile:?} {fnum}x{c}: U[{r},{j}] of filter {f}, channel {ch}"
                            );
                        }
                    }
                    let padding = (0..n * n)
                        .flat_map(|p| (0..fnum.div_ceil(mr) * mr * c).map(move |i| (p, i)))
                        .filter(|&(_, i)| (i / (c * mr)) * mr + i % mr >= fnum);
                    for (p, i) in padding {
                        assert_eq!(packed[p * block_len + i], 0.0, "{tile:?}: padding");
                    }
                }
            }
        }
    }

    /// Shapes it does not apply to.
    #[test]
    fn only_3x3_filters_with_an_output() {
        let simd = Simd::best();
        for tile in [Tile::F2x2, Tile::F4x4] {
            assert!(WinogradPlan::with_simd((4, 2, 5, 5), (9, 9), 0, simd, tile).is_none());
            assert!(WinogradPlan::with_simd((4, 2, 3, 3), (2, 2), 0, simd, tile).is_none());
            assert!(WinogradPlan::with_simd((4, 2, 3, 3), (2, 2), 1, simd, tile).is_some());
        }
    }

    /// F(4x4, 3x3) where its tiles cover at most a third more outputs than F(2x2, 3x3)'s:
    /// DeepConvNet's sizes (14x14: 16x16, 31% more), not 6x6 (8x8, 78% more) or 10x10
    /// (12x12, 44% more).
    #[test]
    fn the_larger_tile_where_little_of_it_is_wasted() {
        use Tile::{F2x2, F4x4};
        let sizes = [(28, F4x4), (16, F4x4), (14, F4x4), (8, F4x4), (7, F4x4)];
        for (size, tile) in sizes.into_iter().chain([(10, F2x2), (6, F2x2), (5, F2x2)]) {
            assert_eq!(Tile::for_output((size, size)), tile, "{size}x{size}");
        }
    }
}
