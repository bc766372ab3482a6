//! A matrix product `C = A · B` written for AVX-512, used by [`super::matmul`] when the
//! processor has it (`matrixmultiply`, which `ndarray` uses, has kernels for AVX2 at most).
//!
//! The classic blocked scheme of fast GEMMs (Goto's), in its plainest form:
//!
//! ```text
//! for each chunk of KC inner indices:
//!     pack B's rows of the chunk into panels of 16 columns   (KC x 16, contiguous)
//!     for each block of MC rows of A:
//!         pack A's block into panels of 20 rows                (KC x 20, contiguous)
//!         for each panel of A, each panel of B:
//!             the 20 x 16 block of C in 20 registers, KC multiply-adds each:
//!             acc[i] += A[i, p] (broadcast) * B[p, 0..16]      for p in the chunk
//! ```
//!
//! Packing puts the numbers one step of the kernel needs side by side (whatever the strides
//! of the views, e.g. the transposed `xᵀ` of an Affine layer's `dW`), and pads the last
//! panels with zeros. Per inner index the kernel does one load of B, 20 broadcasts of A
//! (folded into the multiply-adds) and 20 multiply-adds: the AVX-512 units stay busy.
//! 20 rows x 16 columns fit SimpleConvNet's shapes: 100 and 4320 are multiples of 20, 4320
//! of 16; a last panel of B of at most 8 columns (100 = 6 x 16 + 4) runs in 256-bit
//! registers (`kernel_narrow`). Each entry of C is summed in a fixed order, the same on
//! every run.

use std::arch::x86_64::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::simd::transpose8;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Rows and columns of the register block.
const MR: usize = 20;
const NR: usize = 16;
/// Inner indices per chunk: a 20-row panel of A (20 KB) stays in the L1 cache, beside
/// the 16 KB panel of B being read.
const KC: usize = 256;
/// Rows of A per block: its packed panels (120 KB) stay in the L2 cache.
const MC: usize = 120;

thread_local! {
    /// The packed panels of A and B, reused from one product to the next (a fresh 400 KB
    /// buffer per product would be fresh pages from the operating system each time).
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether a product of this `(rows, columns)` suits the kernel: at least one register
/// block each way (a single image's product, 1 x 4320 · 4320 x 100, would waste 19 of the
/// block's 20 rows; `matrixmultiply` does it better).
pub(crate) fn suits((m, n): (usize, usize)) -> bool {
    m >= MR && n >= NR
}

/// `c = a · b`: every entry of `c` is written, none is read first, so `c` need not be
/// initialised. `c` must have unit column stride.
///
/// # Safety
///
/// The processor must have AVX-512 F and VL (as `Simd::Avx512` promises).
pub(crate) unsafe fn product_into(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut c: ArrayViewMut2<MaybeUninit<f32>>,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n) && (n <= 1 || c.strides()[1] == 1),
        "gemm_avx512: A {:?} · B {:?} into C {:?} (strides {:?})",
        a.shape(),
        b.shape(),
        c.shape(),
        c.strides()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(MaybeUninit::new(0.0));
        return;
    }
    let row_stride = c.strides()[0];
    // The first chunk of inner indices stores every entry of C, the later ones add to it.
    let c_ptr = c.as_mut_ptr().cast::<f32>();
    PACKED.with_borrow_mut(|(packed_a, packed_b)| {
        let panels_b = n.div_ceil(NR);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            pack_b(b, p0, kc, panels_b, packed_b);
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                let panels_a = mc.div_ceil(MR);
                pack_a(a, (i0, mc), (p0, kc), panels_a, packed_a);
                // Panel of A outside, so that it stays in L1 while B's panels come from
                // L2 as whole-line vector loads (A's the other way round are 20 scalar
                // broadcasts an inner index): 4-6% faster at SimpleConvNet's shapes on an
                // Intel Xeon, 10% on a 512 x 512 product.
                for ip in 0..panels_a {
                    let rows = MR.min(mc - ip * MR);
                    for jp in 0..panels_b {
                        let cols = NR.min(n - jp * NR);
                        // SAFETY: the panels hold kc x MR and kc x NR floats; the block of
                        // C at (i0 + ip*MR, jp*NR), `rows` x `cols`, lies inside `c`.
                        unsafe {
                            let kernel = if cols <= 8 { kernel_narrow } else { kernel };
                            kernel(
                                kc,
                                packed_a.as_ptr().add(ip * MR * kc),
                                packed_b.as_ptr().add(jp * NR * kc),
                                c_ptr.offset(
                                    (i0 + ip * MR) as isize * row_stride + (jp * NR) as isize,
                                ),
                                row_stride,
                                (rows, cols),
                                p0 > 0,
                            )
                        };
                    }
                }
            }
        }
    });
}

/// B's rows `p0..p0+kc` as panels of 16 columns: panel `j`, inner index `p`, column `l` at
/// `(j*kc + p)*16 + l`; columns past `n` are 0.
fn pack_b(b: ArrayView2<f32>, p0: usize, kc: usize, panels: usize, dst: &mut Vec<f32>) {
    let (n, [rs, cs]) = (b.ncols(), [b.strides()[0], b.strides()[1]]);
    dst.resize(panels * kc * NR, 0.0);
    for (j, panel) in dst.chunks_exact_mut(kc * NR).enumerate() {
        let (j0, cols) = (j * NR, NR.min(n - j * NR));
        // SAFETY: entry (p0 + p, j0 + l) of b for p < kc, l < cols, inside the view.
        unsafe {
            let corner = b.as_ptr().offset(p0 as isize * rs + j0 as isize * cs);
            pack_panel(corner, rs, cs, (kc, NR, cols), panel);
        }
    }
}

/// A's block of rows `i0..i0+mc`, columns `p0..p0+kc`, as panels of 20 rows: panel `i`,
/// inner index `p`, row `r` at `(i*kc + p)*20 + r`; rows past the block are 0.
fn pack_a(
    a: ArrayView2<f32>,
    (i0, mc): (usize, usize),
    (p0, kc): (usize, usize),
    panels: usize,
    dst: &mut Vec<f32>,
) {
    let [rs, cs] = [a.strides()[0], a.strides()[1]];
    dst.resize(panels * kc * MR, 0.0);
    for (i, panel) in dst.chunks_exact_mut(kc * MR).enumerate() {
        let rows = MR.min(mc - i * MR);
        // SAFETY: entry (i0 + i*MR + r, p0 + p) of a for r < rows, p < kc, inside the view.
        unsafe {
            let corner = a
                .as_ptr()
                .offset((i0 + i * MR) as isize * rs + p0 as isize * cs);
            pack_panel(corner, cs, rs, (kc, MR, rows), panel);
        }
    }
}

/// One panel: `dst[p*width + r] = src[p*along_k + r*along_w]` for `p < kc`, `r < used`,
/// and 0 for `used <= r < width`. Reads along whichever axis is contiguous in memory.
///
/// # Safety
///
/// Every `src[p*along_k + r*along_w]` with `p < kc`, `r < used` must be readable.
unsafe fn pack_panel(
    src: *const f32,
    along_k: isize,
    along_w: isize,
    (kc, width, used): (usize, usize, usize),
    dst: &mut [f32],
) {
    debug_assert_eq!(dst.len(), kc * width);
    if along_w == 1 {
        // SAFETY: the caller's promise; this module runs where AVX-512 is.
        unsafe { pack_panel_rows(src, along_k, (width, used), dst) };
    } else if along_k == 1 {
        // SAFETY: the caller's promise; this module runs where AVX-512 is, so AVX2 is.
        unsafe { pack_panel_across(src, along_w, (kc, width, used), dst) };
    } else {
        for r in 0..width {
            for p in 0..kc {
                dst[p * width + r] = if r < used {
                    // SAFETY: entry (p, r), the caller's promise.
                    unsafe { *src.offset(p as isize * along_k + r as isize * along_w) }
                } else {
                    0.0
                };
            }
        }
    }
}

/// [`pack_panel`] when `src` is contiguous across the panel (`along_w == 1`), as when B
/// is an Affine layer's `W` or A is `xᵀ`: each inner index's `used` floats copied by
/// masked vector loads and stores, zeros past them. (`copy_from_slice` called `memmove`
/// for every row of 16 or 20 floats: 6-7% of SimpleConvNet's training step's profile on
/// an Intel Xeon. In one process, steps alternating with and without this: the step
/// 1.024-1.028 times as fast on 2 threads, 40 and 80 rounds.)
///
/// # Safety
///
/// AVX-512 (F); as for [`pack_panel`], with `width <= 32`.
#[target_feature(enable = "avx512f")]
unsafe fn pack_panel_rows(
    src: *const f32,
    along_k: isize,
    (width, used): (usize, usize),
    dst: &mut [f32],
) {
    debug_assert!(used <= width && width <= 32);
    // Per vector of the row: where it starts, which lanes are read (the first `used`
    // floats of the row), which are stored (the first `width`).
    let mask = |count: usize| ((1u32 << count.min(16)) - 1) as __mmask16;
    let vectors: [(usize, __mmask16, __mmask16); 2] = std::array::from_fn(|v| {
        let start = 16 * v;
        let (read, write) = (used.saturating_sub(start), width.saturating_sub(start));
        (start, mask(read), mask(write))
    });
    for (p, row) in dst.chunks_exact_mut(width).enumerate() {
        // SAFETY: entry (p, 0), the caller's promise.
        let from = unsafe { src.offset(p as isize * along_k) };
        for &(start, read, write) in &vectors[..width.div_ceil(16)] {
            // SAFETY: the load reads only the `used` floats of entry (p, 0..used), the
            // caller's promise (masked lanes are not touched); the store stays inside
            // `row`, `width` floats.
            unsafe {
                let values = _mm512_maskz_loadu_ps(read, from.add(start));
                _mm512_mask_storeu_ps(row.as_mut_ptr().add(start), write, values);
            }
        }
    }
}

/// [`pack_panel`] when `src` is contiguous along `k` (`along_k == 1`): a transposition,
/// as when A is an Affine layer's input `x` (rows of 4320 pixels, read 20 rows at a time
/// for a panel) or B is `Wᵀ`. Blocks of 8 rows x 8 values of `k` go through an 8x8
/// transpose in registers, the rest one by one. (Copied one by one, SimpleConvNet's `x`
/// and `Wᵀ` made the packing 7% of its training step's profile on a Zen 5; with the
/// transposes, 4.2%, and the step went from 40,399 to 42,426 images/s.)
///
/// # Safety
///
/// AVX2; as for [`pack_panel`].
#[target_feature(enable = "avx2")]
unsafe fn pack_panel_across(
    src: *const f32,
    along_w: isize,
    (kc, width, used): (usize, usize, usize),
    dst: &mut [f32],
) {
    const B: usize = 8;
    let at = |p: usize, r: usize| p as isize + r as isize * along_w;
    let (rows, depth) = (used / B * B, kc / B * B);
    for r0 in (0..rows).step_by(B) {
        for p0 in (0..depth).step_by(B) {
            // SAFETY: entries (p0 .. p0 + 8, r0 + i), the caller's promise.
            let block: [[f32; B]; B] = std::array::from_fn(|i| unsafe {
                std::ptr::read_unaligned(src.offset(at(p0, r0 + i)).cast::<[f32; B]>())
            });
            for (j, column) in transpose8::<true>(&block).iter().enumerate() {
                dst[(p0 + j) * width + r0..][..B].copy_from_slice(column);
            }
        }
        for p in depth..kc {
            for r in r0..r0 + B {
                // SAFETY: entry (p, r), the caller's promise.
                dst[p * width + r] = unsafe { *src.offset(at(p, r)) };
            }
        }
    }
    for r in rows..width {
        for p in 0..kc {
            dst[p * width + r] = if r < used {
                // SAFETY: entry (p, r), the caller's promise.
                unsafe { *src.offset(at(p, r)) }
            } else {
                0.0
            };
        }
    }
}

/// One 20 x 16 block of C: `kc` multiply-adds into 20 registers, then stored (or, with
/// `accumulate`, added to what C holds), only its first `rows` rows and `cols` columns.
///
/// # Safety
///
/// AVX-512 (F); `a` and `b` point to `kc * 20` and `kc * 16` floats; `c` to a block of at
/// least `rows` rows (`row_stride` apart) of `cols` floats.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    row_stride: isize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    const NV: usize = NR / 16;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for p in 0..kc {
        let mut b_row = [_mm512_setzero_ps(); NV];
        for (v, vector) in b_row.iter_mut().enumerate() {
            // SAFETY (the loads): inside the panels, `p < kc`.
            *vector = unsafe { _mm512_loadu_ps(b.add(p * NR + v * 16)) };
        }
        for (i, sums) in acc.iter_mut().enumerate() {
            let a_value = unsafe { _mm512_set1_ps(*a.add(p * MR + i)) };
            for (sum, &b_v) in sums.iter_mut().zip(&b_row) {
                *sum = _mm512_fmadd_ps(a_value, b_v, *sum);
            }
        }
    }
    // The columns of each vector of the block that are inside C.
    let masks: [__mmask16; NV] = std::array::from_fn(|v| {
        let inside = cols.saturating_sub(v * 16).min(16);
        ((1u32 << inside) - 1) as __mmask16
    });
    for (i, sums) in acc.iter().enumerate().take(rows) {
        for (v, (&sum, &mask)) in sums.iter().zip(&masks).enumerate() {
            // SAFETY: row i < rows of the block, its first `cols` floats (masked).
            unsafe {
                let at = c.offset(i as isize * row_stride + (v * 16) as isize);
                let value = if accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, at), sum)
                } else {
                    sum
                };
                _mm512_mask_storeu_ps(at, mask, value);
            }
        }
    }
}

/// [`kernel`] for a block of at most 8 columns (the last panel of B, where `n` is not a
/// multiple of 16: 4 columns for SimpleConvNet's 100), in 256-bit registers: the same
/// multiply-adds in the same order for the columns it has, so the same results. On AMD's
/// Zen 4 a 512-bit instruction takes the units twice as long as a 256-bit one, so the full
/// kernel spent as long on the last 4 columns as on 16. Same contract as [`kernel`], with
/// `cols <= 8`.
///
/// # Safety
///
/// As for [`kernel`], and AVX-512 VL (its 32 registers of 256 bits; `Simd::Avx512`
/// includes it).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn kernel_narrow(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    row_stride: isize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    let mut acc = [_mm256_setzero_ps(); MR];
    for p in 0..kc {
        // SAFETY (the loads): inside the panels, `p < kc`.
        let b_row = unsafe { _mm256_loadu_ps(b.add(p * NR)) };
        for (i, sum) in acc.iter_mut().enumerate() {
            let a_value = unsafe { _mm256_set1_ps(*a.add(p * MR + i)) };
            *sum = _mm256_fmadd_ps(a_value, b_row, *sum);
        }
    }
    let mask = ((1u32 << cols.min(8)) - 1) as __mmask16;
    for (i, &sum) in acc.iter().enumerate().take(rows) {
        // SAFETY: row i < rows of the block, its first `cols` floats (masked; the upper
        // half of the 512-bit register is never stored).
        unsafe {
            let at = c.offset(i as isize * row_stride);
            let value = if accumulate {
                _mm256_add_ps(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask, at)), sum)
            } else {
                sum
            };
            _mm512_mask_storeu_ps(at, mask, _mm512_castps256_ps512(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::kernels::simd::Simd;
    use ndarray::Array2;

    /// The product as three plain loops, summed in f64.
    fn naive(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|p| a[[i, p]] as f64 * b[[p, j]] as f64)
                .sum::<f64>()
        })
    }

    fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 23.0 - 0.5
        })
    }

    /// The two kernels' type.
    type KernelFn = unsafe fn(usize, *const f32, *const f32, *mut f32, isize, (usize, usize), bool);

    /// The narrow kernel gives the full kernel's bits for the columns it has (the same
    /// multiply-adds in the same order), storing and adding to C.
    #[test]
    fn the_narrow_kernel_equals_the_full_one() {
        if Simd::best() < Simd::Avx512 {
            eprintln!("no AVX-512 here: nothing to test");
            return;
        }
        let kc = 37;
        let a = matrix(kc, MR, 5);
        let b = matrix(kc, NR, 6);
        for (rows, cols) in [(MR, 8), (MR, 4), (7, 1)] {
            for accumulate in [false, true] {
                let mut full = matrix(MR, NR, 7);
                let mut narrow = full.clone();
                for (run, c) in [
                    (kernel as KernelFn, full.as_mut_ptr()),
                    (kernel_narrow, narrow.as_mut_ptr()),
                ] {
                    let block = (rows, cols);
                    // SAFETY: AVX-512 F and VL (checked above); panels of kc x 20 and
                    // kc x 16 floats, C blocks of 20 x 16.
                    unsafe {
                        run(
                            kc,
                            a.as_ptr(),
                            b.as_ptr(),
                            c,
                            NR as isize,
                            block,
                            accumulate,
                        )
                    };
                }
                for (i, (f, n)) in full.iter().zip(&narrow).enumerate() {
                    assert_eq!(f.to_bits(), n.to_bits(), "entry {i} of {rows} x {cols}");
                }
                // And the block was written, not left as it was.
                assert_ne!(narrow, matrix(MR, NR, 7));
            }
        }
    }

    #[test]
    fn matches_the_plain_loops_at_odd_sizes_and_strides() {
        if Simd::best() < Simd::Avx512 {
            eprintln!("no AVX-512 here: nothing to test");
            return;
        }
        // Sizes around the blocks (20 rows, 16 columns, 256 inner, 120-row blocks), one
        // product with a transposed A (an Affine layer's dW = xᵀ · dout), one with a
        // transposed B (dx = dout · Wᵀ), and C a block of a wider matrix.
        for (m, k, n) in [
            (1, 1, 1),
            (20, 256, 16),
            (21, 257, 17),
            (100, 600, 100),
            (241, 30, 33),
        ] {
            let (a, b) = (matrix(m, k, 1), matrix(k, n, 2));
            let at = matrix(k, m, 3);
            let bt = matrix(n, k, 4);
            for (a, b) in [(a.view(), b.view()), (at.t(), b.view()), (a.view(), bt.t())] {
                let mut wide = Array2::from_elem((m, n + 5), MaybeUninit::new(f32::NAN));
                let block = wide.slice_mut(ndarray::s![.., 2..2 + n]);
                // SAFETY: checked above that the processor has AVX-512.
                unsafe { product_into(a, b, block) };
                // SAFETY: every entry was initialised (NaN), and stays so.
                let wide = unsafe { wide.assume_init() };
                let expected = naive(a, b);
                for ((i, j), &value) in wide.indexed_iter() {
                    if (2..2 + n).contains(&j) {
                        let e = expected[[i, j - 2]];
                        assert!(
                            (value as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                            "({m}, {k}, {n}): C[{i}, {}] = {value}, expected {e}",
                            j - 2
                        );
                    } else {
                        assert!(
                            value.is_nan(),
                            "({m}, {k}, {n}): wrote outside C at column {j}"
                        );
                    }
                }
            }
        }
    }
}
