//! Matrix products split over the threads, for the Affine layers.
//!
//! A convolution layer already keeps both cores busy by handing whole images to the
//! threads, each image's product running on one thread. An Affine layer has one big
//! product per pass (SimpleConvNet's first one is `(100 x 4320) · (4320 x 100)` forward,
//! and two more of that size backward), which `ndarray`'s `dot` runs on one thread. Here
//! such a product is cut into pieces that the rayon pool runs in parallel, each piece an
//! ordinary single-threaded product (so no second thread pool is started inside rayon's).
//!
//! The cut is along the product's largest dimension:
//!
//! ```text
//! C = A · B,  A (m x k), B (k x n)
//! m largest:  rows of C    = rows of A    · B          (pieces are independent)
//! n largest:  columns of C = A · columns of B          (pieces are independent)
//! k largest:  C = A[:, k0..k1] · B[k0..k1, :] + ...    (partial products, added in order)
//! ```
//!
//! How many pieces depends only on the shapes, never on the number of threads, and the
//! partial products are added in a fixed order: the same inputs give bit-identical results
//! on any run and any thread count.
//!
//! Each piece is an ordinary product on one thread: on processors with AVX-512 by this
//! crate's kernel (`gemm_avx512`, 1.2-1.8x `matrixmultiply`'s AVX2 kernel at these shapes),
//! elsewhere by `ndarray`'s.

use std::mem::MaybeUninit;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::gemm_avx512;
use super::simd::Simd;

/// Products smaller than this many multiply-adds run on one thread (splitting costs more
/// than it saves).
const PARALLEL_FROM: usize = 1 << 21;

/// Split pieces are at least this long along the cut dimension (a multiple of the GEMM
/// kernels' block sizes), and there are at most `MAX_PIECES` of them.
const PIECE_ALIGN: usize = 64;
const MAX_PIECES: usize = 8;

/// Inner indices per partial product, at least, when the inner dimension is cut: each
/// partial costs a packing of its own, a matrix to allocate and an addition on one thread
/// after the others. (SimpleConvNet's Affine forward, 4320 inner indices, was cut into 8
/// partials of 576; cut in 2, its training step was 1.023 times as fast and its inference
/// at batch 100 1.049 times, 2 threads, steps alternating in one process, 100 and 60
/// rounds; 4 partials were slower than 2: 0.993 and 0.984.)
const INNER_PIECE_MIN: usize = 2048;

/// How many pieces a product of `flops` multiply-adds is cut into along rows or columns.
fn row_or_column_pieces(flops: usize) -> usize {
    (flops / PARALLEL_FROM).clamp(2, MAX_PIECES)
}

/// How many partial products an inner dimension of `k` is cut into.
fn inner_pieces(k: usize) -> usize {
    (k / INNER_PIECE_MIN).clamp(2, MAX_PIECES)
}

/// `(start, end)` of `wanted` pieces (or fewer, none shorter than `PIECE_ALIGN` but the
/// last) that a dimension of `len` is cut into.
fn pieces(len: usize, wanted: usize) -> Vec<(usize, usize)> {
    let size = len
        .div_ceil(wanted)
        .next_multiple_of(PIECE_ALIGN)
        .max(PIECE_ALIGN);
    (0..len)
        .step_by(size)
        .map(|start| (start, (start + size).min(len)))
        .collect()
}

/// `A · B`, split over the rayon pool when it is large (see the module docs).
///
/// Panics if the inner dimensions differ.
pub(crate) fn mat_mul(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert_eq!(
        k,
        k2,
        "mat_mul: A has shape {:?} but B has shape {:?}",
        a.shape(),
        b.shape()
    );
    let flops = m * k * n;
    if flops < PARALLEL_FROM {
        return product(a, b);
    }
    if k >= m && k >= n {
        // Partial products over slices of the inner dimension, then their sum in order.
        let partials: Vec<Array2<f32>> = pieces(k, inner_pieces(k))
            .into_par_iter()
            .map(|(k0, k1)| product(a.slice(s![.., k0..k1]), b.slice(s![k0..k1, ..])))
            .collect();
        let mut parts = partials.into_iter();
        let mut c = parts.next().expect("at least one piece");
        for part in parts {
            c += &part;
        }
        return c;
    }
    // Not zeroed first (1.7 MB for SimpleConvNet's dW and dx, on the calling thread while
    // the other core waited: 1.9% of a training step's profile on an Intel Xeon): each
    // piece writes every entry of its block.
    let mut c = Array2::<f32>::uninit((m, n));
    // Rows (m largest) or columns (n largest) of C, each piece written by one task.
    let axis = if m >= n { Axis(0) } else { Axis(1) };
    let cuts = pieces(c.len_of(axis), row_or_column_pieces(flops));
    let mut blocks = Vec::with_capacity(cuts.len());
    let mut rest = c.view_mut();
    for &(start, end) in cuts.iter().rev() {
        let (left, block) = rest.split_at(axis, start);
        blocks.push(((start, end), block));
        rest = left;
    }
    blocks.into_par_iter().for_each(|((start, end), block)| {
        let (a_part, b_part) = if axis == Axis(0) {
            (a.slice(s![start..end, ..]), b.view())
        } else {
            (a.view(), b.slice(s![.., start..end]))
        };
        product_into(a_part, b_part, block);
    });
    // SAFETY: the blocks cover C, and each was written in full.
    unsafe { c.assume_init() }
}

/// `A · B` on one thread.
fn product(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let mut c = Array2::<f32>::uninit((a.nrows(), b.ncols()));
    product_into(a, b, c.view_mut());
    // SAFETY: written in full.
    unsafe { c.assume_init() }
}

/// `C = A · B` on one thread, into a block that need not be initialised (every entry is
/// written): a few rows of A with B's rows contiguous (one image through an Affine layer)
/// by [`few_rows_into`]; otherwise by the AVX-512 kernel of `gemm_avx512` where the
/// processor has it (see [`Simd`]; it writes C without reading it), else by `ndarray`'s
/// (`matrixmultiply`'s AVX2 or plain kernels).
fn product_into(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<MaybeUninit<f32>>) {
    #[cfg(target_arch = "x86_64")]
    if !few_rows(a, b, &c) && uses_gemm_avx512(&c) {
        // SAFETY: the processor has AVX-512 F and VL (`Simd::best` checked them).
        unsafe { gemm_avx512::product_into(a, b, c) };
        return;
    }
    c.fill(MaybeUninit::new(0.0));
    // SAFETY: every entry was just written.
    let mut c = unsafe { c.assume_init() };
    if few_rows(a, b, &c) {
        few_rows_into(a, b, c);
    } else {
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    }
}

/// Whether [`product_into`] takes the few-rows path.
fn few_rows<T>(a: ArrayView2<f32>, b: ArrayView2<f32>, c: &ArrayViewMut2<T>) -> bool {
    a.nrows() <= FEW_ROWS && c.ncols() > 0 && b.is_standard_layout() && c.is_standard_layout()
}

/// Whether [`product_into`] takes the AVX-512 kernel (when not the few-rows path).
#[cfg(target_arch = "x86_64")]
fn uses_gemm_avx512<T>(c: &ArrayViewMut2<T>) -> bool {
    Simd::best() == Simd::Avx512
        && gemm_avx512::suits(c.dim())
        && (c.ncols() <= 1 || c.strides()[1] == 1)
}

/// Rows of A up to which [`few_rows_into`] is used.
const FEW_ROWS: usize = 4;

/// `C = A · B` row by row, `C[i, :] = Σ_p A[i, p] · B[p, :]`, reading B's rows as they
/// lie in memory (`b` and `c` in standard layout). For a single image through
/// SimpleConvNet's first Affine layer, `(1 x 4320) · (4320 x 100)`, a GEMM copies all of
/// B into its panels first and then reads the copy: three passes over 1.7 MB, where this
/// reads it once. Measured on an AMD EPYC (Zen 5), 2 threads, 6 interleaved rounds:
/// SimpleConvNet's `infer` at batch 1 went from 6,633 to 15,118 images per second
/// (medians). Each entry is summed in the order of `p`, the same on every run.
fn few_rows_into(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>) {
    let b = b
        .as_slice()
        .expect("standard layout, checked by the caller");
    let n = c.ncols();
    for (a_row, mut c_row) in a.rows().into_iter().zip(c.rows_mut()) {
        let c_row = c_row
            .as_slice_mut()
            .expect("standard layout, checked by the caller");
        #[cfg(target_arch = "x86_64")]
        if Simd::best() >= Simd::Avx2 {
            // SAFETY: the processor has AVX2 and FMA (`Simd::best` checked them).
            unsafe { row_times_avx2(a_row, b, n, c_row) };
            continue;
        }
        row_times::<false>(a_row, b, n, c_row);
    }
}

/// [`row_times`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_times_avx2(a_row: ndarray::ArrayView1<f32>, b: &[f32], n: usize, c_row: &mut [f32]) {
    row_times::<true>(a_row, b, n, c_row);
}

/// `c_row = a_row · B` for B `(k x n)` stored row after row in `b`: B's rows scaled and
/// added in order (fused multiply-adds if `FMA`, where the caller has them).
#[inline(always)]
fn row_times<const FMA: bool>(
    a_row: ndarray::ArrayView1<f32>,
    b: &[f32],
    n: usize,
    c_row: &mut [f32],
) {
    c_row.fill(0.0);
    for (&a_p, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
        for (c_j, &b_j) in c_row.iter_mut().zip(b_row) {
            *c_j = if FMA {
                a_p.mul_add(b_j, *c_j)
            } else {
                *c_j + a_p * b_j
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product as three plain loops, summed in f64: independent of any GEMM.
    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|p| a[[i, p]] as f64 * b[[p, j]] as f64)
                .sum::<f64>() as f32
        })
    }

    fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 23.0 - 0.5
        })
    }

    #[test]
    fn every_way_of_cutting_matches_the_plain_loops() {
        // k largest (the Affine forward), m largest (dW), n largest (dx), and one too small
        // to split; odd sizes so that the last piece is shorter.
        // Then one, three and four rows (the few-rows path; 1 x 4320 · 4320 x 100 is one
        // image through SimpleConvNet's first Affine layer), with 0 inner indices too.
        for (m, k, n) in [
            (20, 4321, 30),
            (1001, 20, 70),
            (30, 40, 1999),
            (10, 10, 10),
            (1, 4320, 100),
            (3, 77, 19),
            (4, 50, 10),
            (1, 0, 5),
            (2, 3, 0),
        ] {
            let (a, b) = (matrix(m, k, 1), matrix(k, n, 2));
            let c = mat_mul(a.view(), b.view());
            let expected = naive(&a, &b);
            let worst = c
                .iter()
                .zip(&expected)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "({m}, {k}, {n}): off by {worst}");
        }
    }

    #[test]
    fn transposed_views_work_and_rows_or_columns_cut_changes_no_bit() {
        // dW = xᵀ · dout takes a transposed view; cutting rows or columns computes every
        // entry exactly as one unsplit product does.
        let x = matrix(100, 1500, 3);
        let dout = matrix(100, 100, 4);
        let split = mat_mul(x.t(), dout.view());
        assert_eq!(split, product(x.t(), dout.view()));
        let w = matrix(1500, 100, 5);
        assert_eq!(mat_mul(dout.view(), w.t()), product(dout.view(), w.t()));
        // And the unsplit product is the product.
        let expected = naive(&x.t().to_owned(), &dout);
        let worst = split
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "off by {worst}");
    }

    #[test]
    fn the_pieces_cover_the_dimension_once() {
        for (len, wanted) in [
            (4320, row_or_column_pieces(43_200_000)),
            (4320, inner_pieces(4320)),
            (100, row_or_column_pieces(1 << 22)),
            (65, row_or_column_pieces(1 << 30)),
            (1, row_or_column_pieces(1 << 22)),
            (100_000, inner_pieces(100_000)),
        ] {
            let cuts = pieces(len, wanted);
            assert_eq!(cuts.first().unwrap().0, 0);
            assert_eq!(cuts.last().unwrap().1, len);
            assert!(cuts.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(cuts.len() <= MAX_PIECES);
        }
    }
}
