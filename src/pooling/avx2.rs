//! The forward kernel of module `avx512` (ReLU, then 2x2 max pooling with stride 2:
//! `max(relu(x))` over each window), for processors with AVX2 only: 8 windows a vector,
//! then 4 in a 128-bit vector, then one by one (SimpleConvNet's rows of 12 windows are one
//! of each of the first two kinds). The same values and winners as the parent module's
//! plain loop, bit for bit (tested against it).
//!
//! Per output row and 8 windows: the 16 pixels above them are two vectors of the top row
//! and two of the bottom one. A shuffle picks each window's left pixels (even columns)
//! out of a pair, another its right ones (odd columns), so each window's four
//! candidates, in the plain loop's order, are four vectors: compare, keep the larger and
//! its index. The shuffle works within each half of the vector, so the windows come out
//! in the order 0 1 4 5 2 3 6 7; one permutation of the maxima and one of the winners put
//! them back. No masked loads or stores: AVX2's masked store is slow on AMD's
//! processors, and the rows' last windows take the narrower steps instead.
//!
//! With it, a convolution's outputs are pooled straight out of the direct kernel's
//! scratch rows on AVX2 too (`Pooling::relu_pool_scratch`), as on AVX-512: no copy of the
//! maps out of them with the bias, no plain loop. On a Zen 3 (2 threads, steps alternating
//! in one process with the plain loop and the copy, 40 rounds each), SimpleConvNet's
//! training step was 1.101 times as fast (quartiles 1.072-1.191), its inference 1.326 at
//! batch 100 (1.262-1.410) and 1.114 at batch 1 (1.082-1.182); DeepConvNet's (pooled
//! inside Winograd's pass but for the images left over) level, 0.985 and 1.018.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::BLOCKED;

/// The `max(relu(.))` over 2x2 windows with stride 2 of the plane `plane + bias` whose
/// rows of `w` pixels lie `row_stride` floats apart, 8 windows at a time, as module
/// `avx512`'s `relu_pool_rows_2x2` computes it (the same contract): the winners' indices are those of the compact plane, `y * w +
/// x`, each value is `pixel + bias`; every entry of `out` and of `idx` is written, and
/// without `idx` the winners are not stored.
///
/// # Safety
/// The processor must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn relu_pool_rows_2x2(
    plane: &[f32],
    (w, row_stride): (usize, usize),
    bias: f32,
    ow: usize,
    out: &mut [MaybeUninit<f32>],
    mut idx: Option<&mut [u32]>,
) {
    let oh = super::check_pool_rows_2x2(
        plane.len(),
        (w, row_stride),
        ow,
        out.len(),
        idx.as_ref().map(|idx| idx.len()),
    );
    // The columns of the left pixels of 8 windows, as the shuffle leaves them (windows 0
    // 1 4 5 2 3 6 7), and of 4.
    let left_8 = _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14);
    let left_4 = _mm_setr_epi32(0, 2, 4, 6);
    let pl = plane.as_ptr();
    for oy in 0..oh {
        // Where the two rows are read, and their first pixels' indices.
        let (top_at, bottom_at) = (2 * oy * row_stride, (2 * oy + 1) * row_stride);
        let (top, bottom) = (2 * oy * w, (2 * oy + 1) * w);
        let mut ox = 0;
        // SAFETY (the loads and stores of both steps): the loads read the `2 * windows`
        // pixels of the two rows from column `2 * ox`, inside the plane (asserted, and
        // `ox + windows <= ow`); the stores write `windows` outputs from `oy * ow + ox`.
        while ox + 8 <= ow {
            unsafe {
                let bias = _mm256_set1_ps(bias);
                let load = |at: usize| _mm256_add_ps(_mm256_loadu_ps(pl.add(at)), bias);
                let (t, b) = (top_at + 2 * ox, bottom_at + 2 * ox);
                let (t0, t1, b0, b1) = (load(t), load(t + 8), load(b), load(b + 8));
                let mut best = _mm256_setzero_ps();
                let mut best_at = _mm256_set1_epi32(BLOCKED as i32);
                for (row, value, right) in [
                    (top, _mm256_shuffle_ps::<0x88>(t0, t1), 0),
                    (top, _mm256_shuffle_ps::<0xDD>(t0, t1), 1),
                    (bottom, _mm256_shuffle_ps::<0x88>(b0, b1), 0),
                    (bottom, _mm256_shuffle_ps::<0xDD>(b0, b1), 1),
                ] {
                    let wins = _mm256_cmp_ps::<_CMP_GT_OQ>(value, best);
                    best = _mm256_blendv_ps(best, value, wins);
                    let at =
                        _mm256_add_epi32(_mm256_set1_epi32((row + 2 * ox + right) as i32), left_8);
                    best_at = _mm256_castps_si256(_mm256_blendv_ps(
                        _mm256_castsi256_ps(best_at),
                        _mm256_castsi256_ps(at),
                        wins,
                    ));
                }
                // Windows 0 1 4 5 2 3 6 7 back in order: 64-bit pairs 0 2 1 3.
                let best = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(best)));
                let best_at = _mm256_permute4x64_epi64::<0xD8>(best_at);
                let o = oy * ow + ox;
                _mm256_storeu_ps(out.as_mut_ptr().add(o).cast(), best);
                if let Some(idx) = idx.as_deref_mut() {
                    _mm256_storeu_si256(idx.as_mut_ptr().add(o).cast(), best_at);
                }
            }
            ox += 8;
        }
        if ox + 4 <= ow {
            unsafe {
                let bias = _mm_set1_ps(bias);
                let load = |at: usize| _mm_add_ps(_mm_loadu_ps(pl.add(at)), bias);
                let (t, b) = (top_at + 2 * ox, bottom_at + 2 * ox);
                let (t0, t1, b0, b1) = (load(t), load(t + 4), load(b), load(b + 4));
                let mut best = _mm_setzero_ps();
                let mut best_at = _mm_set1_epi32(BLOCKED as i32);
                for (row, value, right) in [
                    (top, _mm_shuffle_ps::<0x88>(t0, t1), 0),
                    (top, _mm_shuffle_ps::<0xDD>(t0, t1), 1),
                    (bottom, _mm_shuffle_ps::<0x88>(b0, b1), 0),
                    (bottom, _mm_shuffle_ps::<0xDD>(b0, b1), 1),
                ] {
                    let wins = _mm_cmpgt_ps(value, best);
                    best = _mm_blendv_ps(best, value, wins);
                    let at = _mm_add_epi32(_mm_set1_epi32((row + 2 * ox + right) as i32), left_4);
                    best_at = _mm_castps_si128(_mm_blendv_ps(
                        _mm_castsi128_ps(best_at),
                        _mm_castsi128_ps(at),
                        wins,
                    ));
                }
                let o = oy * ow + ox;
                _mm_storeu_ps(out.as_mut_ptr().add(o).cast(), best);
                if let Some(idx) = idx.as_deref_mut() {
                    _mm_storeu_si128(idx.as_mut_ptr().add(o).cast(), best_at);
                }
            }
            ox += 4;
        }
        // The last windows one by one, as the plain loop takes them.
        for ox in ox..ow {
            let mut best = (0.0f32, BLOCKED);
            for (row, row_at) in [(top, top_at), (bottom, bottom_at)] {
                for dx in 0..2 {
                    let v = plane[row_at + 2 * ox + dx] + bias;
                    if v > best.0 {
                        best = (v, (row + 2 * ox + dx) as u32);
                    }
                }
            }
            out[oy * ow + ox] = MaybeUninit::new(best.0);
            if let Some(idx) = idx.as_deref_mut() {
                idx[oy * ow + ox] = best.1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::kernels::simd::as_output;
    use crate::pooling::test_planes::{bits, planes};

    /// The same values and winners, bit for bit, as the plain loop (`pool_plane_2x2` with
    /// ReLU); and for a plane in rows wider than itself (a convolution's scratch rows,
    /// other numbers in the gaps) before its bias, the plain loop on the compact plane
    /// plus the bias, with and without the winners.
    #[test]
    fn same_values_and_winners_as_the_plain_loop() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 here: the kernels are not used, nothing to compare");
            return;
        }
        let mut blocked = 0;
        for (((h, w), plane), (gap, bias)) in
            planes().zip([(4, 0.5), (0, -1.0), (9, 3.0)].into_iter().cycle())
        {
            let (oh, ow) = (h / 2, w / 2);
            let (mut plain, mut plain_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            super::super::pool_plane_2x2(&plane, w, ow, &mut plain, &mut plain_at, true);
            let (mut fast, mut fast_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            // SAFETY: the processor has AVX2 (checked above). Plus 0 changes no value.
            unsafe {
                let out = as_output(&mut fast);
                relu_pool_rows_2x2(&plane, (w, w), 0.0, ow, out, Some(&mut fast_at))
            };
            assert_eq!(bits(&fast), bits(&plain), "values, plane {h}x{w}");
            assert_eq!(fast_at, plain_at, "winners, plane {h}x{w}");
            blocked += plain_at.iter().filter(|&&at| at == BLOCKED).count();

            let row_stride = w + gap;
            let mut rows = vec![1e9f32; h * row_stride];
            for (y, row) in plane.chunks_exact(w).enumerate() {
                rows[y * row_stride..][..w].copy_from_slice(row);
            }
            let shifted: Vec<f32> = plane.iter().map(|&x| x + bias).collect();
            super::super::pool_plane_2x2(&shifted, w, ow, &mut plain, &mut plain_at, true);
            let (mut fast, mut fast_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            let mut values_only = vec![f32::NAN; oh * ow];
            // SAFETY: as above.
            unsafe {
                let out = as_output(&mut fast);
                relu_pool_rows_2x2(&rows, (w, row_stride), bias, ow, out, Some(&mut fast_at));
                let out = as_output(&mut values_only);
                relu_pool_rows_2x2(&rows, (w, row_stride), bias, ow, out, None);
            };
            let at = format!("plane {h}x{w} in rows of {row_stride}, bias {bias}");
            assert_eq!(bits(&fast), bits(&plain), "values, {at}");
            assert_eq!(fast_at, plain_at, "winners, {at}");
            assert_eq!(
                bits(&values_only),
                bits(&plain),
                "values without winners, {at}"
            );
        }
        assert!(blocked > 0, "some windows had nothing above 0");
    }
}
