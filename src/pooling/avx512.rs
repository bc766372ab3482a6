//! A fast path for the pooling the networks run most: ReLU, then 2x2 max pooling with
//! stride 2 (`max(relu(x))` over each window, `max_pool_planes` with `relu`), and its
//! gradient, 16 windows at a time in AVX-512 registers. The plain loops (the parent
//! module's `pool_plane_2x2`, and the scatter of the Pooling layer's backward pass) are
//! the definition; these kernels give the same bits (tested against them), and are used
//! where the processor has AVX-512.
//!
//! Forward, per output row: the 32 pixels above 16 windows are two vectors of the top
//! row and two of the bottom one. A two-source permutation splits each pair into its
//! even columns (each window's left pixel) and its odd columns (its right pixel), so each
//! window's four candidates, in the plain loop's order, are four vectors: compare, keep
//! the larger, and its index beside it. Backward, the other way round: each pixel of a
//! window gets its gradient if it is the window's winner, else 0, and the permutation
//! puts the left and right pixels back side by side; every pixel is written once, with no
//! zeroing pass first.
//!
//! The forward kernel also reads a convolution's outputs where its kernel left them,
//! in rows wider than the maps and before the bias ([`relu_pool_rows_2x2`]): the bias is
//! added to each loaded vector, before the comparisons, as the convolution would have
//! added it to its outputs.
//!
//! Backward once more, for the convolution's weight gradient in a fused first block
//! ([`max_pool_grad_by_position_2x2`]): all planes at once, written a row of planes per
//! pixel, the layout the `dW` kernel reads, so the gradient is not written plane by plane
//! and then transposed. In profiles of SimpleConvNet's training step on one thread of an
//! Intel Xeon, it took 8.9% where the plane-by-plane kernel, the transposition and the
//! bias gradient's sums took 6.5%, 8.1% and 1.9%; the step ran 11% faster on one thread
//! and 11-17% on two (medians of the rounds' ratios, interleaved runs of 6 and 8 rounds).
//! Gathering 16 planes' windows into a vector is most of its time; copying them into a
//! `(windows, planes)` buffer by 8x8 register transposes first was slower still.
//!
//! The plain loops take one window at a time, with a branch on the data for each
//! candidate. Measured in profiles of SimpleConvNet's training step (30 maps of 24x24)
//! on a Zen 5: the forward loop took about 10% of the step, the kernel 4-5%; the
//! backward scatter (with the bias gradient's sums) 7.4%, the kernel 4.9% and the sums
//! 1.8%. The step went from 36,998 to 39,849 images/s, inference at batch 100 from about
//! 89,000 to 106,000 (2 threads, interleaved runs). An AVX2 kernel of 8 windows a vector,
//! with a masked tail, was as slow as the plain loop there; on a Zen 3, without AVX-512,
//! the forward kernel of module `avx2` (no masks) is faster than the plain loop.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::BLOCKED;

/// Windows per vector.
const LANES: usize = 16;

/// Lane `l`: `2l`, the offset of window `l`'s left column.
#[inline(always)]
unsafe fn left_columns() -> __m512i {
    // SAFETY: the caller runs with AVX-512F.
    unsafe { _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) }
}

/// The masks of a row's `windows` (at most 16) windows, of their first 16 pixels and of
/// the next 16.
#[inline(always)]
fn masks(windows: usize) -> (__mmask16, __mmask16, __mmask16) {
    let pixels = 2 * windows;
    (
        ((1u32 << windows) - 1) as __mmask16,
        ((1u32 << pixels.min(16)) - 1) as __mmask16,
        ((1u32 << pixels.saturating_sub(16)) - 1) as __mmask16,
    )
}

/// The `max(relu(.))` over 2x2 windows with stride 2 of the plane `plane + bias`, 16
/// windows at a time (a row's last windows under a mask), whose rows of `w` pixels lie
/// `row_stride` floats apart (a convolution kernel's scratch rows, see
/// `ForwardPlan::run_kernel`; `row_stride = w` for a compact plane, with bias 0):
/// `out[oy * ow + ox]` and its flat index `y * w + x` in the plane stored compactly
/// (`BLOCKED` where the maximum after ReLU is 0), as the parent's `pool_plane_2x2` with
/// `relu` computes them on `plane + bias`. The bias is added before the comparisons,
/// as when the convolution adds its bias to its outputs first. Every entry of `out` and
/// of `idx` is written (`out` need not be initialised); without `idx` (a pass in
/// inference mode, which no backward pass follows) the winners are not stored, the
/// largest part of this function's time on a Zen 4.
///
/// # Safety
/// The processor must have AVX-512F.
#[target_feature(enable = "avx512f")]
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
    // SAFETY: AVX-512F by the caller's promise.
    let even_offsets = unsafe { left_columns() };
    let odd_offsets = _mm512_add_epi32(even_offsets, _mm512_set1_epi32(1));
    let pl = plane.as_ptr();
    let bias = _mm512_set1_ps(bias);
    for oy in 0..oh {
        // Where the two rows are read, and their first pixels' indices.
        let (top_at, bottom_at) = (2 * oy * row_stride, (2 * oy + 1) * row_stride);
        let (top, bottom) = (2 * oy * w, (2 * oy + 1) * w);
        for ox0 in (0..ow).step_by(LANES) {
            let (keep, low, high) = masks(LANES.min(ow - ox0));
            // SAFETY: the masked loads read only the `2 * windows` pixels of the two rows
            // from column `2 * ox0`, inside the plane (asserted); the stores write only
            // `windows` outputs from `oy * ow + ox0`.
            unsafe {
                let (t, b) = (pl.add(top_at + 2 * ox0), pl.add(bottom_at + 2 * ox0));
                let load = |mask, at| _mm512_add_ps(_mm512_maskz_loadu_ps(mask, at), bias);
                let (t0, t1) = (load(low, t), load(high, t.wrapping_add(16)));
                let (b0, b1) = (load(low, b), load(high, b.wrapping_add(16)));
                // `offsets` both picks a window's left (even) or right (odd) pixels out
                // of the row's two vectors and gives their columns.
                let mut best = _mm512_setzero_ps();
                let mut best_at = _mm512_set1_epi32(BLOCKED as i32);
                for (row, (first, next), offsets) in [
                    (top, (t0, t1), even_offsets),
                    (top, (t0, t1), odd_offsets),
                    (bottom, (b0, b1), even_offsets),
                    (bottom, (b0, b1), odd_offsets),
                ] {
                    let value = _mm512_permutex2var_ps(first, offsets, next);
                    let wins = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
                    best = _mm512_mask_mov_ps(best, wins, value);
                    let at = _mm512_add_epi32(_mm512_set1_epi32((row + 2 * ox0) as i32), offsets);
                    best_at = _mm512_mask_mov_epi32(best_at, wins, at);
                }
                let o = oy * ow + ox0;
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(o).cast(), keep, best);
                if let Some(idx) = idx.as_deref_mut() {
                    _mm512_mask_storeu_epi32(idx.as_mut_ptr().add(o).cast(), keep, best_at);
                }
            }
        }
    }
}

/// The gradient of 2x2 max pooling with stride 2, with or without ReLU (the winners of
/// [`relu_pool_rows_2x2`] or of the plain loops): `dx` `(h, w)` gets each window's gradient
/// `grads[oy * ow + ox]` (plus 0, as the plain scatter adds it to zeros) at its winner,
/// 0 at the window's other pixels (all four if `BLOCKED`) and at the pixels no window
/// covers (an odd last row or column). Every pixel of `dx` is written, so it may start
/// uninitialised (no zeroing pass first).
///
/// # Safety
/// The processor must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn max_pool_grad_plane_2x2(
    winners: &[u32],
    grads: &[f32],
    (h, w): (usize, usize),
    ow: usize,
    dx: &mut [MaybeUninit<f32>],
) {
    assert!(
        ow > 0
            && winners.len() == grads.len()
            && winners.len().is_multiple_of(ow)
            && 2 * ow <= w
            && 2 * (winners.len() / ow) <= h
            && dx.len() == h * w,
        "max_pool_grad_plane_2x2: {} gradients in rows of {ow} into {} floats {:?}",
        grads.len(),
        dx.len(),
        (h, w)
    );
    let oh = winners.len() / ow;
    // SAFETY (all below): AVX-512F by the caller's promise; the masked loads and stores
    // touch only a row's `windows` gradients and winners and its `2 * windows` pixels of
    // the two rows under them, inside the buffers (asserted).
    unsafe {
        let left = left_columns();
        let right = _mm512_add_epi32(left, _mm512_set1_epi32(1));
        // Pixel 2i from the left pixels' lane i, pixel 2i + 1 from the right ones' (16 +
        // i): the first 16 pixels, then the next 16.
        let first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
        let zero = _mm512_setzero_ps();
        for oy in 0..oh {
            for ox0 in (0..ow).step_by(LANES) {
                let (keep, low, high) = masks(LANES.min(ow - ox0));
                let at = oy * ow + ox0;
                // Whole vectors where they fit: lanes past the row's windows are never
                // stored (the stores' masks). (Masked loads were half of the kernel's
                // time: the gradients come from the layer above, often not in this
                // core's cache, and the hardware prefetcher did not follow them.)
                let (won, g) = if at + LANES <= grads.len() {
                    (
                        _mm512_loadu_epi32(winners.as_ptr().add(at).cast()),
                        _mm512_loadu_ps(grads.as_ptr().add(at)),
                    )
                } else {
                    (
                        _mm512_maskz_loadu_epi32(keep, winners.as_ptr().add(at).cast()),
                        _mm512_maskz_loadu_ps(keep, grads.as_ptr().add(at)),
                    )
                };
                for row in [2 * oy * w, (2 * oy + 1) * w] {
                    let base = _mm512_set1_epi32((row + 2 * ox0) as i32);
                    let (l, r) = (_mm512_add_epi32(base, left), _mm512_add_epi32(base, right));
                    let l = _mm512_add_ps(
                        _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(won, l), g),
                        zero,
                    );
                    let r = _mm512_add_ps(
                        _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(won, r), g),
                        zero,
                    );
                    let to = dx.as_mut_ptr().add(row + 2 * ox0).cast::<f32>();
                    _mm512_mask_storeu_ps(to, low, _mm512_permutex2var_ps(l, first, r));
                    _mm512_mask_storeu_ps(
                        to.wrapping_add(16),
                        high,
                        _mm512_permutex2var_ps(l, second, r),
                    );
                }
            }
            for row in [2 * oy * w, (2 * oy + 1) * w] {
                dx[row + 2 * ow..row + w].fill(MaybeUninit::new(0.0));
            }
        }
    }
    dx[2 * oh * w..].fill(MaybeUninit::new(0.0));
}

/// The same gradient as [`max_pool_grad_plane_2x2`], for all planes of an image at once
/// and written position by position, in the layout the convolution's `dW` kernel by
/// filters reads (`FilterGradPlan::pad_dout` in `full_cnn::kernels::direct_conv`): `out[p *
/// row_len + f]` is plane `f`'s gradient at pixel `p` (0 for `f` past the `planes`;
/// `row_len = lane_sums.len()`, 16 or 32). Each plane's gradients are summed on the way,
/// for the bias gradient: `lane_sums[f][l]` is the sum of plane `f`'s gradients at the
/// pixels `p` with `p % 8 == l`, in increasing `p` (the partial sums that `sum_in_lanes` of
/// `convolution_layer` keeps, so the bias gradient comes out with the same bits).
///
/// The plane-by-plane kernel writes `(planes, h * w)` and the `dW` kernel's packing then
/// transposes it, a second pass over the whole gradient; here each window's gradient and
/// winner are gathered across the planes (16 planes a vector, once for the two rows under
/// the window), and every row of `out` is written once, in order.
///
/// `winners` and `grads` are `(planes, h/2, w/2)`; `h` even, `w` a multiple of 8.
///
/// # Safety
/// The processor must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn max_pool_grad_by_position_2x2(
    winners: &[u32],
    grads: &[f32],
    planes: usize,
    image: (usize, usize),
    out: &mut [MaybeUninit<f32>],
    lane_sums: &mut [[f32; 8]],
) {
    // SAFETY (both): AVX-512F by the caller's promise.
    match lane_sums.len() {
        16 => unsafe { by_position::<1>(winners, grads, planes, image, out, lane_sums) },
        32 => unsafe { by_position::<2>(winners, grads, planes, image, out, lane_sums) },
        other => panic!("max_pool_grad_by_position_2x2: rows of 16 or 32 planes, not {other}"),
    }
}

/// [`max_pool_grad_by_position_2x2`] for rows of `FV` vectors of 16 planes.
///
/// # Safety
/// The processor must have AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn by_position<const FV: usize>(
    winners: &[u32],
    grads: &[f32],
    planes: usize,
    (h, w): (usize, usize),
    out: &mut [MaybeUninit<f32>],
    lane_sums: &mut [[f32; 8]],
) {
    let (oh, ow) = (h / 2, w / 2);
    let windows = oh * ow;
    let row_len = FV * LANES;
    assert!(
        h.is_multiple_of(2)
            && w.is_multiple_of(8)
            && (1..=row_len).contains(&planes)
            && winners.len() == planes * windows
            && grads.len() == winners.len()
            && out.len() == h * w * row_len
            && lane_sums.len() == row_len,
        "max_pool_grad_by_position_2x2: {planes} planes of {} gradients, ({h}, {w}) pixels \
         into {} floats and {} sums for {row_len} planes",
        windows,
        out.len(),
        lane_sums.len()
    );
    // SAFETY (all below): AVX-512F by the caller's promise. The gathers read lane `l` of
    // vector `v` at `(16v + l) * windows + window` only for the planes `16v + l < planes`
    // (the mask), inside `winners` and `grads`; the stores write row `p < h * w` of `out`.
    unsafe {
        let zero = _mm512_setzero_ps();
        let blocked = _mm512_set1_epi32(BLOCKED as i32);
        let plane_starts = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(windows as i32),
        );
        let present: [__mmask16; FV] = std::array::from_fn(|v| {
            let inside = planes.saturating_sub(v * LANES).min(LANES);
            ((1u32 << inside) - 1) as __mmask16
        });
        // One row of windows, gathered across the planes: winners and gradients. (Copied
        // into a `(windows, planes)` buffer by 8x8 register transposes first instead, the
        // copy alone took longer than this whole kernel.)
        let mut won = vec![blocked; ow * FV];
        let mut grad = vec![zero; ow * FV];
        let mut sums = [[zero; FV]; 8];
        for oy in 0..oh {
            for ox in 0..ow {
                for v in 0..FV {
                    let first = (v * LANES * windows + oy * ow + ox) as i32;
                    let at = _mm512_add_epi32(plane_starts, _mm512_set1_epi32(first));
                    won[ox * FV + v] = _mm512_mask_i32gather_epi32::<4>(
                        blocked,
                        present[v],
                        at,
                        winners.as_ptr().cast(),
                    );
                    grad[ox * FV + v] =
                        _mm512_mask_i32gather_ps::<4>(zero, present[v], at, grads.as_ptr().cast());
                }
            }
            for y in [2 * oy, 2 * oy + 1] {
                for x0 in (0..w).step_by(8) {
                    // `p % 8 == lane`: rows are a multiple of 8 pixels long.
                    for (lane, sums_l) in sums.iter_mut().enumerate() {
                        let (x, p) = (x0 + lane, y * w + x0 + lane);
                        let p_v = _mm512_set1_epi32(p as i32);
                        for (v, sum) in sums_l.iter_mut().enumerate() {
                            let window = (x / 2) * FV + v;
                            let wins = _mm512_cmpeq_epi32_mask(won[window], p_v);
                            // Plus 0, as the plain scatter adds the gradient to zeros.
                            let value =
                                _mm512_add_ps(_mm512_maskz_mov_ps(wins, grad[window]), zero);
                            _mm512_storeu_ps(
                                out.as_mut_ptr().add(p * row_len + v * LANES).cast(),
                                value,
                            );
                            *sum = _mm512_add_ps(*sum, value);
                        }
                    }
                }
            }
        }
        for (lane, sums_l) in sums.iter().enumerate() {
            for (v, &sum) in sums_l.iter().enumerate() {
                let mut values = [0.0f32; LANES];
                _mm512_storeu_ps(values.as_mut_ptr(), sum);
                for (l, &value) in values.iter().enumerate() {
                    lane_sums[v * LANES + l][lane] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_cnn::kernels::simd::as_output;
    use crate::pooling::test_planes::{bits, planes};

    /// A plane in rows wider than itself (a convolution's scratch rows, with other numbers
    /// in the gaps), before its bias: the same as the plain loop on the compact plane plus
    /// the bias, bit for bit; and the same values without the winners (inference).
    #[test]
    fn strided_rows_with_a_bias_are_the_compact_plane_plus_the_bias() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the kernels are not used, nothing to compare");
            return;
        }
        for (((h, w), plane), (gap, bias)) in
            planes().zip([(4, 0.5), (0, -1.0), (9, 3.0)].into_iter().cycle())
        {
            let (oh, ow) = (h / 2, w / 2);
            let row_stride = w + gap;
            let mut rows = vec![1e9f32; h * row_stride];
            for (y, row) in plane.chunks_exact(w).enumerate() {
                rows[y * row_stride..][..w].copy_from_slice(row);
            }
            let shifted: Vec<f32> = plane.iter().map(|&x| x + bias).collect();
            let (mut plain, mut plain_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            super::super::pool_plane_2x2(&shifted, w, ow, &mut plain, &mut plain_at, true);
            let (mut fast, mut fast_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            // SAFETY: the processor has AVX-512F (checked above).
            unsafe {
                let out = as_output(&mut fast);
                relu_pool_rows_2x2(&rows, (w, row_stride), bias, ow, out, Some(&mut fast_at))
            };
            assert_eq!(
                bits(&fast),
                bits(&plain),
                "values, plane {h}x{w}, rows of {row_stride}"
            );
            assert_eq!(
                fast_at, plain_at,
                "winners, plane {h}x{w}, rows of {row_stride}"
            );
            let mut values_only = vec![f32::NAN; oh * ow];
            // SAFETY: as above.
            unsafe {
                let out = as_output(&mut values_only);
                relu_pool_rows_2x2(&rows, (w, row_stride), bias, ow, out, None)
            };
            assert_eq!(
                bits(&values_only),
                bits(&plain),
                "values without winners, plane {h}x{w}, rows of {row_stride}"
            );
        }
    }

    /// The same values and winners, bit for bit, as the plain loop (`pool_plane_2x2` with
    /// ReLU).
    #[test]
    fn same_values_and_winners_as_the_plain_loop() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the kernels are not used, nothing to compare");
            return;
        }
        let mut blocked = 0;
        for ((h, w), plane) in planes() {
            let (oh, ow) = (h / 2, w / 2);
            let (mut plain, mut plain_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            super::super::pool_plane_2x2(&plane, w, ow, &mut plain, &mut plain_at, true);
            let (mut fast, mut fast_at) = (vec![f32::NAN; oh * ow], vec![7u32; oh * ow]);
            // SAFETY: the processor has AVX-512F (checked above). Plus 0 changes no value.
            unsafe {
                let out = as_output(&mut fast);
                relu_pool_rows_2x2(&plane, (w, w), 0.0, ow, out, Some(&mut fast_at))
            };
            assert_eq!(bits(&fast), bits(&plain), "values, plane {h}x{w}");
            assert_eq!(fast_at, plain_at, "winners, plane {h}x{w}");
            blocked += plain_at.iter().filter(|&&at| at == BLOCKED).count();
        }
        assert!(blocked > 0, "some windows had nothing above 0");
    }

    /// The gradient by positions against the plain scatter, plane by plane, then
    /// transposed and summed by plain loops: SimpleConvNet's 30 planes of 24x24 (two
    /// vectors of planes, the last one partly padding), one vector's worth, a single plane,
    /// 17 planes (a second vector of one), with NaN, -0, ties and blocked windows.
    #[test]
    fn by_position_is_the_plain_scatter_transposed() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the kernel is not used, nothing to compare");
            return;
        }
        for (planes, (h, w), row_len) in [
            (30, (24, 24), 32),
            (16, (6, 16), 16),
            (4, (8, 8), 16),
            (1, (2, 8), 16),
            (17, (4, 8), 32),
        ] {
            let (oh, ow) = (h / 2, w / 2);
            let (mut winners, mut grads) = (Vec::new(), Vec::new());
            let mut plain = vec![0.0f32; planes * h * w];
            for (f, plane_grad) in plain.chunks_exact_mut(h * w).enumerate() {
                let plane: Vec<f32> = (0..h * w)
                    .map(|i| match (i * 7 + f * 3) % 19 {
                        0 => f32::NAN,
                        1 => -0.0,
                        r if f % 5 == 4 => -(r as f32), // every window blocked
                        r => (r % 6) as f32 - 2.0,      // ties, zeros and negatives
                    })
                    .collect();
                let (mut pooled, mut won) = (vec![0.0; oh * ow], vec![0u32; oh * ow]);
                super::super::pool_plane_2x2(&plane, w, ow, &mut pooled, &mut won, true);
                let g: Vec<f32> = (0..oh * ow)
                    .map(|i| {
                        if (i + f) % 5 == 2 {
                            -0.0
                        } else {
                            (i + f) as f32 * 0.25 - 3.0
                        }
                    })
                    .collect();
                for (&at, &g) in won.iter().zip(&g) {
                    if at != BLOCKED {
                        plane_grad[at as usize] += g;
                    }
                }
                winners.extend(won);
                grads.extend(g);
            }
            let mut fast = vec![f32::NAN; h * w * row_len];
            let mut lane_sums = vec![[f32::NAN; 8]; row_len];
            // SAFETY: the processor has AVX-512F (checked above); the kernel writes floats.
            unsafe {
                let out = crate::full_cnn::kernels::simd::as_output(&mut fast);
                max_pool_grad_by_position_2x2(
                    &winners,
                    &grads,
                    planes,
                    (h, w),
                    out,
                    &mut lane_sums,
                );
            }
            let case = format!("{planes} planes of {h}x{w}, rows of {row_len}");
            let transposed: Vec<f32> = (0..h * w * row_len)
                .map(|i| {
                    let (p, f) = (i / row_len, i % row_len);
                    if f < planes {
                        plain[f * h * w + p]
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_eq!(bits(&fast), bits(&transposed), "gradient, {case}");
            for (f, sums) in lane_sums.iter().enumerate() {
                let expected: [f32; 8] = std::array::from_fn(|lane| {
                    (lane..h * w)
                        .step_by(8)
                        .fold(0.0, |sum, p| sum + transposed[p * row_len + f])
                });
                assert_eq!(bits(sums), bits(&expected), "sums of plane {f}, {case}");
            }
        }
    }

    /// The gradient, bit for bit, as the plain scatter: zeros, then each window's
    /// gradient added at its winner (gradients with -0, winners from the plain loop).
    #[test]
    fn same_gradient_as_the_plain_scatter() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the kernels are not used, nothing to compare");
            return;
        }
        for ((h, w), plane) in planes() {
            let (oh, ow) = (h / 2, w / 2);
            let (mut pooled, mut winners) = (vec![0.0; oh * ow], vec![0u32; oh * ow]);
            super::super::pool_plane_2x2(&plane, w, ow, &mut pooled, &mut winners, true);
            let grads: Vec<f32> = (0..oh * ow)
                .map(|i| {
                    if i % 5 == 2 {
                        -0.0
                    } else {
                        i as f32 * 0.5 - 3.0
                    }
                })
                .collect();
            let mut plain = vec![0.0f32; h * w];
            for (&at, &g) in winners.iter().zip(&grads) {
                if at != BLOCKED {
                    plain[at as usize] += g;
                }
            }
            let mut fast = vec![f32::NAN; h * w];
            // SAFETY: the processor has AVX-512F (checked above); the kernel writes floats.
            unsafe {
                let fast = crate::full_cnn::kernels::simd::as_output(&mut fast);
                max_pool_grad_plane_2x2(&winners, &grads, (h, w), ow, fast);
            }
            assert_eq!(bits(&fast), bits(&plain), "gradient, plane {h}x{w}");
        }
    }
}
