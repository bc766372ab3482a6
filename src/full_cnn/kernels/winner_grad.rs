//! The weight gradient of a convolution followed by ReLU and max pooling, from the
//! pooling's winners only: with 2x2 windows, a quarter of the sum.
//!
//! Max pooling passes each window's gradient to one pixel, the window's winner (and ReLU
//! to none, where the window's maximum was clipped to 0: [`BLOCKED`]). So with 2x2
//! windows the gradient at the convolution's output is 0 at three pixels of four, and the
//! sum that makes `dW` has only one term per window:
//!
//! ```text
//! dW[f, c, ky, kx] = Σ_(oy, ox)  dout[f, oy, ox] · x[c, oy+ky, ox+kx]     every output
//!                  = Σ_windows   g[f, window]   · x[c, wy+ky, wx+kx]     its winner (wy, wx)
//! ```
//!
//! Every filter has winners of its own, so the patch under each winner is read whole: the
//! pixels of all patches are first copied into `patches` so that each patch is one run of
//! `C*FH*FW` floats (for each output row `oy`, the padded columns one after the other,
//! each with its `C*FH` pixels below it: `patches[(oy*WP + col)*C*FH + c*FH + ky] =
//! xpad[c, oy+ky, col]`; the patch of `(oy, ox)` starts at `(oy*WP + ox)*C*FH` and holds
//! the filter elements in the order `(kx, c, ky)`). A filter's sum is then one
//! multiply-add of a patch (two vectors of 16) per window. For SimpleConvNet's first
//! block (30 filters of 5x5 over 24x24 outputs, in blocks of 4) that is 9,216 vector
//! multiply-adds an image, where the sum over every output, filters in lanes, takes
//! 31,104, after the gradient is written out at every output.
//!
//! With AVX2 (8 floats a vector) a patch is up to four vectors and the filters go three
//! at a time: 17,280 vector multiply-adds an image for SimpleConvNet's first block, where
//! a sum over every output takes at least 54,000 (576 outputs, 25 elements, 30 filters,
//! 8 lanes). On a Zen 3 (AVX2, 2 threads, steps alternating in one process with the
//! direct kernel's `dW`, 40 rounds), SimpleConvNet's training step was 1.134 times as
//! fast (quartiles 1.103-1.155).
//!
//! Only with AVX2 or AVX-512 and at most 32 filter elements (a first layer over 1 or 3
//! channels); elsewhere the direct kernel's `dW` runs. The sums are in a fixed order
//! (window after window, per filter), the same on every run; they agree with the sum
//! over all outputs to rounding (tested against the definition below).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::simd::Simd;
use crate::pooling::BLOCKED;

/// Filter elements a patch may have: two vectors of 16.
const MAX_TAPS: usize = 32;

/// The gradient's plan for one layer shape.
#[derive(Debug, Clone)]
pub(crate) struct WinnerGradPlan {
    /// Filters, channels, filter size.
    fnum: usize,
    c: usize,
    fh: usize,
    fw: usize,
    /// The padded image `(C, HP, WP)`, as `direct_conv::ForwardPlan` pads it.
    hp: usize,
    wp: usize,
    /// Output size.
    oh: usize,
    ow: usize,
    /// Where each float of one output row of `patches` comes from in the padded image,
    /// relative to the row's first pixel.
    sources: Vec<u32>,
    /// Where the patch of output `y*OW + x` starts in `patches`.
    starts: Vec<u32>,
    /// Where each filter element of a patch (order `(kx, c, ky)`) goes in a filter's row
    /// of `dW` (order `(c, ky, kx)`).
    weight_index: Vec<usize>,
}

impl WinnerGradPlan {
    /// The plan for `fnum` filters `(c, fh, fw)` over padded images `(hp, wp)` (stride 1),
    /// or `None` where it does not apply (no AVX2, more than 32 filter elements, an empty
    /// output).
    pub(crate) fn new(
        (fnum, c, fh, fw): (usize, usize, usize, usize),
        (hp, wp): (usize, usize),
    ) -> Option<WinnerGradPlan> {
        let fits = Simd::best() >= Simd::Avx2
            && fnum > 0
            && (1..=MAX_TAPS).contains(&(c * fh * fw))
            && hp >= fh
            && wp >= fw
            && c * hp * wp < u32::MAX as usize / 2
            // (The AVX-512 kernel's division by OW in floats is exact below this.)
            && (hp - fh + 1) * (wp - fw + 1) < 1 << 22;
        fits.then(|| WinnerGradPlan::any_processor((fnum, c, fh, fw), (hp, wp)))
    }

    /// [`WinnerGradPlan::new`] without the processor check (the plain loops run anywhere).
    fn any_processor(
        (fnum, c, fh, fw): (usize, usize, usize, usize),
        (hp, wp): (usize, usize),
    ) -> WinnerGradPlan {
        let (oh, ow) = (hp - fh + 1, wp - fw + 1);
        let column = c * fh;
        // Rounded up to whole vectors of 16 (the last ones unused).
        let sources = (0..(wp * column).next_multiple_of(16))
            .map(|i| {
                let (col, c_i, ky) = (i / column, i % column / fh, i % fh);
                ((c_i * hp + ky) * wp + col).min(c * hp * wp - 1) as u32
            })
            .collect();
        let starts = (0..oh * ow)
            .map(|p| (((p / ow) * wp + p % ow) * column) as u32)
            .collect();
        let weight_index = (0..c * fh * fw)
            .map(|t| (t % column) * fw + t / column)
            .collect();
        WinnerGradPlan {
            fnum,
            c,
            fh,
            fw,
            hp,
            wp,
            oh,
            ow,
            sources,
            starts,
            weight_index,
        }
    }

    /// Filter elements per filter.
    fn taps(&self) -> usize {
        self.c * self.fh * self.fw
    }

    /// Length of one image's `patches` (with room for the last patch's whole-vector loads).
    pub(crate) fn patches_len(&self) -> usize {
        self.oh * self.wp * self.c * self.fh + MAX_TAPS
    }

    /// One padded image `(C, HP, WP)` copied into `patches` (see the module docs).
    pub(crate) fn patches(&self, padded: &[f32], patches: &mut [f32]) {
        assert!(
            padded.len() >= self.c * self.hp * self.wp && patches.len() == self.patches_len(),
            "winner_grad: {} padded floats and {} for the patches, for images ({}, {}, {})",
            padded.len(),
            patches.len(),
            self.c,
            self.hp,
            self.wp
        );
        let row_len = self.wp * self.c * self.fh;
        let (rows, slack) = patches.split_at_mut(self.oh * row_len);
        slack.fill(0.0);
        #[cfg(target_arch = "x86_64")]
        if Simd::best() == Simd::Avx512 {
            // SAFETY: the processor has AVX-512; the buffers fit (asserted above).
            unsafe { self.patches_avx512(padded, rows) };
            return;
        }
        self.patches_plain(padded, rows);
    }

    /// The rows of [`WinnerGradPlan::patches`] one float at a time.
    fn patches_plain(&self, padded: &[f32], rows: &mut [f32]) {
        let row_len = self.wp * self.c * self.fh;
        for (oy, row) in rows.chunks_exact_mut(row_len).enumerate() {
            let image_row = &padded[oy * self.wp..];
            for (value, &source) in row.iter_mut().zip(&self.sources) {
                *value = image_row[source as usize];
            }
        }
    }

    /// [`WinnerGradPlan::patches`] by gathers of 16 floats (the plain loop, one float at a
    /// time through the `sources` table, took longer than the sums).
    ///
    /// # Safety
    ///
    /// AVX-512F; `padded` holds the padded image, `rows` its patches' rows (checked by
    /// `patches`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn patches_avx512(&self, padded: &[f32], rows: &mut [f32]) {
        let row_len = self.wp * self.c * self.fh;
        for (oy, row) in rows.chunks_exact_mut(row_len).enumerate() {
            let image_row = padded[oy * self.wp..].as_ptr();
            for j0 in (0..row_len).step_by(16) {
                let inside = ((1u32 << 16.min(row_len - j0)) - 1) as __mmask16;
                // SAFETY: `sources` has room for whole vectors; each source (masked to the
                // row's floats) is a pixel of the padded image from row `oy`; the store
                // writes the row's floats only.
                unsafe {
                    let at = _mm512_loadu_si512(self.sources.as_ptr().add(j0).cast());
                    let values =
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, at, image_row);
                    _mm512_mask_storeu_ps(row.as_mut_ptr().add(j0), inside, values);
                }
            }
        }
    }

    /// Adds one image's `dW` `(FN, C, FH, FW)` to `dw` and its `db` to `db`, from its
    /// `patches` and its pooling's `winners` and pooled gradients `grads` (each `(FN,
    /// windows)`, the winners as flat indices `y*OW + x` of the convolution's output, or
    /// [`BLOCKED`]).
    pub(crate) fn run(
        &self,
        patches: &[f32],
        winners: &[u32],
        grads: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let outputs = self.oh * self.ow;
        // (Scanning the winners here took 6% of SimpleConvNet's step: the pooling writes
        // output indices or BLOCKED; the kernels index safely whatever they hold.)
        debug_assert!(
            winners
                .iter()
                .all(|&at| (at as usize) < outputs || at == BLOCKED)
        );
        assert!(
            patches.len() == self.patches_len()
                && winners.len() == grads.len()
                && winners.len().is_multiple_of(self.fnum)
                && dw.len() == self.fnum * self.taps()
                && db.len() == self.fnum,
            "winner_grad: buffers do not fit {} filters of {} elements over {} outputs",
            self.fnum,
            self.taps(),
            outputs
        );
        self.run_with(Simd::best(), patches, winners, grads, dw, db);
    }

    /// [`WinnerGradPlan::run`] with the kernel of `simd` (which the processor must have).
    fn run_with(
        &self,
        simd: Simd,
        patches: &[f32],
        winners: &[u32],
        grads: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let taps = self.taps();
        #[cfg(target_arch = "x86_64")]
        match simd {
            // SAFETY (all): the processor has AVX-512, or AVX2 and FMA (the caller's
            // promise); the buffers fit (asserted by `run`).
            Simd::Avx512 => unsafe {
                if taps <= 16 {
                    self.run_avx512::<1>(patches, winners, grads, dw, db);
                } else {
                    self.run_avx512::<2>(patches, winners, grads, dw, db);
                }
                return;
            },
            // Filters per block: 8 to 12 sums in registers (of 16), enough to keep both
            // multiply-add units busy.
            Simd::Avx2 => unsafe {
                match taps.div_ceil(8) {
                    1 => self.run_avx2::<1, 8>(patches, winners, grads, dw, db),
                    2 => self.run_avx2::<2, 4>(patches, winners, grads, dw, db),
                    3 => self.run_avx2::<3, 3>(patches, winners, grads, dw, db),
                    _ => self.run_avx2::<4, 3>(patches, winners, grads, dw, db),
                }
                return;
            },
            Simd::Plain => {}
        }
        self.run_plain(patches, winners, grads, dw, db);
    }

    /// [`WinnerGradPlan::run`] in plain loops: for each filter, each window's gradient
    /// times the patch under its winner.
    fn run_plain(
        &self,
        patches: &[f32],
        winners: &[u32],
        grads: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let (windows, taps) = (winners.len() / self.fnum, self.taps());
        for (f, (dw_f, db_f)) in dw.chunks_exact_mut(taps).zip(db.iter_mut()).enumerate() {
            let mut sums = [0.0f32; MAX_TAPS];
            let winners_f = &winners[f * windows..][..windows];
            for (&at, &g) in winners_f.iter().zip(&grads[f * windows..]) {
                if at == BLOCKED {
                    continue;
                }
                *db_f += g;
                let patch = &patches[self.starts[at as usize] as usize..][..taps];
                for (sum, &x) in sums.iter_mut().zip(patch) {
                    *sum += g * x;
                }
            }
            self.add_filter_sums(&sums, dw_f);
        }
    }

    /// Adds a filter's sums, in a patch's order `(kx, c, ky)` (lanes past its filter
    /// elements ignored), to its row `dw_f` of `dW`, in the order `(c, ky, kx)`.
    fn add_filter_sums(&self, sums: &[f32; MAX_TAPS], dw_f: &mut [f32]) {
        for (&sum, &at) in sums.iter().zip(&self.weight_index) {
            dw_f[at] += sum;
        }
    }

    /// `starts[won]` for 16 outputs `won` (0 in the lanes not `live`), by arithmetic: a
    /// gather from the table was slow on an AMD Zen 4 (the step 1.03 times as fast
    /// without it). Row `won / OW` is computed in floats, exactly: `(won + 0.5) / OW` is
    /// at least `0.5 / OW` from a whole number, more than its rounding error below the
    /// 2^22 outputs that `new` allows; then `(won + row * (WP - OW)) * C*FH`.
    ///
    /// # Safety
    ///
    /// AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn patch_starts(&self, won: __m512i, live: __mmask16) -> __m512i {
        let row = _mm512_cvttps_epi32(_mm512_mul_ps(
            _mm512_add_ps(_mm512_cvtepi32_ps(won), _mm512_set1_ps(0.5)),
            _mm512_set1_ps(1.0 / self.ow as f32),
        ));
        let row_gap = _mm512_set1_epi32((self.wp - self.ow) as i32);
        let column = _mm512_add_epi32(won, _mm512_mullo_epi32(row, row_gap));
        _mm512_maskz_mullo_epi32(live, column, _mm512_set1_epi32((self.c * self.fh) as i32))
    }

    /// [`WinnerGradPlan::run`] with AVX-512: four filters at a time (eight independent
    /// sums in flight), `KV` vectors a patch. Per block of 16 windows and filter, the
    /// winners and gradients are loaded as vectors, the blocked ones' gradients zeroed and
    /// their patches' starts computed from the winners; then each window adds its gradient
    /// times its patch.
    ///
    /// # Safety
    ///
    /// AVX-512F; the buffers fit the plan (checked by `run`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const KV: usize>(
        &self,
        patches: &[f32],
        winners: &[u32],
        grads: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        const NF: usize = 4;
        let (windows, taps) = (winners.len() / self.fnum, self.taps());
        let blocked = _mm512_set1_epi32(BLOCKED as i32);
        let last_output = _mm512_set1_epi32((self.starts.len() - 1) as i32);
        let zero = _mm512_setzero_ps();
        // Filters past the last keep gradient 0 and start 0: harmless, not stored.
        let mut patch_starts = [[0u32; 16]; NF];
        let mut window_grads = [[0.0f32; 16]; NF];
        for f0 in (0..self.fnum).step_by(NF) {
            let filters = NF.min(self.fnum - f0);
            if filters < NF {
                patch_starts = [[0; 16]; NF];
                window_grads = [[0.0; 16]; NF];
            }
            let mut sums = [[zero; KV]; NF];
            let mut grad_sums = [zero; NF];
            for w0 in (0..windows).step_by(16) {
                let count = 16.min(windows - w0);
                let inside = ((1u32 << count) - 1) as __mmask16;
                for i in 0..filters {
                    let at = (f0 + i) * windows + w0;
                    // SAFETY (the loads): `count` entries from `at` are inside `winners`
                    // and `grads`.
                    unsafe {
                        let won = _mm512_maskz_loadu_epi32(inside, winners.as_ptr().add(at).cast());
                        let live = _mm512_mask_cmpneq_epi32_mask(inside, won, blocked);
                        // An output whatever the winners hold (so a patch inside `patches`).
                        let won = _mm512_min_epu32(won, last_output);
                        let g = _mm512_maskz_loadu_ps(live, grads.as_ptr().add(at));
                        let start = self.patch_starts(won, live);
                        _mm512_storeu_si512(patch_starts[i].as_mut_ptr().cast(), start);
                        _mm512_storeu_ps(window_grads[i].as_mut_ptr(), g);
                        grad_sums[i] = _mm512_add_ps(grad_sums[i], g);
                    }
                }
                for l in 0..count {
                    for i in 0..NF {
                        let g = _mm512_set1_ps(window_grads[i][l]);
                        // SAFETY: a patch's start plus 16 * KV floats is inside `patches`
                        // (`patches_len` has 32 floats of slack past the last row).
                        let patch = unsafe { patches.as_ptr().add(patch_starts[i][l] as usize) };
                        for (v, sum) in sums[i].iter_mut().enumerate() {
                            let x = unsafe { _mm512_loadu_ps(patch.add(16 * v)) };
                            *sum = _mm512_fmadd_ps(g, x, *sum);
                        }
                    }
                }
            }
            for i in 0..filters {
                let f = f0 + i;
                let mut values = [0.0f32; MAX_TAPS];
                for (v, &sum) in sums[i].iter().enumerate() {
                    // SAFETY: 16 floats into the 32 of `values`, KV <= 2.
                    unsafe { _mm512_storeu_ps(values.as_mut_ptr().add(16 * v), sum) };
                }
                self.add_filter_sums(&values, &mut dw[f * taps..][..taps]);
                db[f] += _mm512_reduce_add_ps(grad_sums[i]);
            }
        }
    }

    /// [`WinnerGradPlan::run`] with AVX2 and FMA: `NF` filters at a time, `KV` vectors of
    /// 8 a patch (`NF * KV` sums in registers; SimpleConvNet's 25 filter elements are 4
    /// vectors, 3 filters a block). For each window, each filter of the block: its
    /// winner's patch start from the table (a scalar load; blocked windows and filters past
    /// the last get gradient 0 and the first patch), then `KV` multiply-adds of its
    /// gradient times the patch. A patch's lanes past its filter elements are summed too,
    /// and not stored.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA; the buffers fit the plan (checked by `run`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<const KV: usize, const NF: usize>(
        &self,
        patches: &[f32],
        winners: &[u32],
        grads: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let (windows, taps) = (winners.len() / self.fnum, self.taps());
        let last_output = self.starts.len() - 1;
        for f0 in (0..self.fnum).step_by(NF) {
            let filters = NF.min(self.fnum - f0);
            let mut sums = [[_mm256_setzero_ps(); KV]; NF];
            for w in 0..windows {
                for (i, sums) in sums.iter_mut().enumerate() {
                    // Filters past the last: the last one's winner, gradient 0.
                    let at = (f0 + i.min(filters - 1)) * windows + w;
                    let won = winners[at];
                    // The gradient, or 0 (blocked, or past the last filter): by a mask, not
                    // a branch, which would guess wrong at random windows.
                    let dead = ((won == BLOCKED) | (i >= filters)) as u32;
                    let g = f32::from_bits(grads[at].to_bits() & dead.wrapping_sub(1));
                    // An output whatever the winners hold (so a patch inside `patches`).
                    let start = self.starts[(won as usize).min(last_output)] as usize;
                    let g = _mm256_set1_ps(g);
                    // SAFETY: a patch's start plus 8 * KV <= 32 floats is inside `patches`
                    // (`patches_len` has 32 floats of slack past the last row).
                    let patch = unsafe { patches.as_ptr().add(start) };
                    for (v, sum) in sums.iter_mut().enumerate() {
                        let x = unsafe { _mm256_loadu_ps(patch.add(8 * v)) };
                        *sum = _mm256_fmadd_ps(g, x, *sum);
                    }
                }
            }
            for (f, sums) in (f0..).zip(&sums[..filters]) {
                let mut values = [0.0f32; MAX_TAPS];
                for (v, &sum) in sums.iter().enumerate() {
                    // SAFETY: 8 floats into the 32 of `values`, KV <= 4.
                    unsafe { _mm256_storeu_ps(values.as_mut_ptr().add(8 * v), sum) };
                }
                self.add_filter_sums(&values, &mut dw[f * taps..][..taps]);
            }
        }
        // `db`: each filter's gradients but the blocked ones', in 8 partial sums (apart
        // from the loop above, where the sums would take vector registers of its own).
        for ((winners_f, grads_f), db_f) in winners
            .chunks_exact(windows)
            .zip(grads.chunks_exact(windows))
            .zip(db.iter_mut())
        {
            let (winners_8, winners_rest) = winners_f.as_chunks::<8>();
            let (grads_8, grads_rest) = grads_f.as_chunks::<8>();
            let live = |won: u32, g: f32| {
                f32::from_bits(g.to_bits() & ((won != BLOCKED) as u32).wrapping_neg())
            };
            let mut partial = [0.0f32; 8];
            for (won, g) in winners_8.iter().zip(grads_8) {
                for l in 0..8 {
                    partial[l] += live(won[l], g[l]);
                }
            }
            for (l, (&won, &g)) in winners_rest.iter().zip(grads_rest).enumerate() {
                partial[l] += live(won, g);
            }
            *db_f += partial.iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic "random" number in [-1, 1).
    fn noise(i: usize, seed: usize) -> f32 {
        let x = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 10_007;
        x as f32 / 5003.5 - 1.0
    }

    /// The definition: the gradient scattered to every output (0 but at the winners),
    /// then `dW` and `db` summed over all outputs, in f64, from the padded image.
    fn by_definition(
        plan: &WinnerGradPlan,
        padded: &[f32],
        winners: &[u32],
        grads: &[f32],
    ) -> (Vec<f64>, Vec<f64>) {
        let (oh, ow) = (plan.oh, plan.ow);
        let windows = winners.len() / plan.fnum;
        let mut dout = vec![0.0f64; plan.fnum * oh * ow];
        for f in 0..plan.fnum {
            for w in 0..windows {
                let at = winners[f * windows + w];
                if at != BLOCKED {
                    dout[f * oh * ow + at as usize] += grads[f * windows + w] as f64;
                }
            }
        }
        let mut dw = vec![0.0f64; plan.fnum * plan.taps()];
        let mut db = vec![0.0f64; plan.fnum];
        for f in 0..plan.fnum {
            for oy in 0..oh {
                for ox in 0..ow {
                    let d = dout[f * oh * ow + oy * ow + ox];
                    db[f] += d;
                    for c in 0..plan.c {
                        for ky in 0..plan.fh {
                            for kx in 0..plan.fw {
                                let x = padded[(c * plan.hp + oy + ky) * plan.wp + ox + kx];
                                dw[((f * plan.c + c) * plan.fh + ky) * plan.fw + kx] +=
                                    d * x as f64;
                            }
                        }
                    }
                }
            }
        }
        (dw, db)
    }

    /// SimpleConvNet's first layer, a 3-channel and a 1-element filter, odd outputs (a row
    /// and a column in no window), filter counts around the blocks of 4, windows around
    /// the blocks of 16; winners anywhere in their windows, some `BLOCKED`. The plain loops
    /// and (where the processor has them) the AVX2 and AVX-512 kernels, each against the
    /// definition; `dW` and `db` are added to what they hold.
    #[test]
    fn the_winners_sum_equals_the_sum_over_every_output() {
        for (fnum, c, fh, fw, hp, wp) in [
            (30, 1, 5, 5, 28, 28),
            (5, 3, 3, 3, 9, 11),
            (1, 1, 1, 1, 4, 4),
            (7, 2, 4, 4, 13, 10),
            (17, 1, 3, 3, 7, 38),
            (4, 2, 3, 3, 8, 9),
        ] {
            let plan = WinnerGradPlan::any_processor((fnum, c, fh, fw), (hp, wp));
            let (oh, ow) = (plan.oh, plan.ow);
            let (ph, pw) = (oh / 2, ow / 2);
            let padded: Vec<f32> = (0..c * hp * wp).map(|i| noise(i, 1)).collect();
            let mut winners = Vec::new();
            let mut grads = Vec::new();
            for f in 0..fnum {
                for wy in 0..ph {
                    for wx in 0..pw {
                        let i = (f * ph + wy) * pw + wx;
                        let (dy, dx) = (i % 2, i / 2 % 2);
                        winners.push(if i % 5 == 3 {
                            BLOCKED
                        } else {
                            ((2 * wy + dy) * ow + 2 * wx + dx) as u32
                        });
                        grads.push(noise(i, 2));
                    }
                }
            }
            let (expected_dw, expected_db) = by_definition(&plan, &padded, &winners, &grads);
            let mut patches = vec![f32::NAN; plan.patches_len()];
            plan.patches(&padded, &mut patches);
            // The plain loops, and the AVX2 and AVX-512 kernels where the processor has
            // them.
            for simd in Simd::available() {
                let name = format!("{simd:?}");
                // Start from 1: the kernels add to what `dW` and `db` hold.
                let mut dw = vec![1.0f32; fnum * plan.taps()];
                let mut db = vec![1.0f32; fnum];
                plan.run_with(simd, &patches, &winners, &grads, &mut dw, &mut db);
                for (got, want) in dw
                    .iter()
                    .zip(&expected_dw)
                    .chain(db.iter().zip(&expected_db))
                {
                    assert!(
                        (*got as f64 - 1.0 - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{name} ({fnum}, {c}, {fh}, {fw}) over ({hp}, {wp}): {got} - 1 against {want}"
                    );
                }
            }
        }
    }

    /// The AVX-512 kernel's patch starts, computed by arithmetic, are the table's for
    /// every output (and 0 where not live), for wide and narrow outputs.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn patch_starts_by_arithmetic_are_the_table() {
        if Simd::best() != Simd::Avx512 {
            return;
        }
        for (fnum, c, fh, fw, hp, wp) in [
            (30, 1, 5, 5, 28, 28),
            (5, 3, 3, 3, 9, 11),
            (1, 1, 1, 1, 4, 4),
            (2, 1, 3, 3, 1000, 1001),
            (2, 1, 1, 2, 3, 1030),
            // OW = 41: without the 0.5, `(k * 41) * (1 / 41)` in floats falls below k.
            (3, 1, 3, 3, 50, 43),
        ] {
            let plan = WinnerGradPlan::any_processor((fnum, c, fh, fw), (hp, wp));
            let outputs: Vec<u32> = (0..plan.starts.len() as u32).collect();
            for (chunk, want) in outputs.chunks(16).zip(plan.starts.chunks(16)) {
                let mut won = [0u32; 16];
                won[..chunk.len()].copy_from_slice(chunk);
                let mut got = [0u32; 16];
                let live = 0b1011_1111_1111_1111;
                // SAFETY: the processor has AVX-512 (checked above); 16 floats each way.
                unsafe {
                    let won = _mm512_loadu_si512(won.as_ptr().cast());
                    let starts = plan.patch_starts(won, live);
                    _mm512_storeu_si512(got.as_mut_ptr().cast(), starts);
                }
                for (l, &w) in want.iter().enumerate() {
                    let expected = if live & (1 << l) != 0 { w } else { 0 };
                    assert_eq!(got[l], expected, "output {} of {:?}", chunk[l], (hp, wp));
                }
            }
        }
    }

    /// The patch of every output holds the padded pixels under the filter, in the order
    /// `(kx, c, ky)`, and the slack is zeros.
    #[test]
    fn each_patch_is_the_pixels_under_the_filter() {
        let plan = WinnerGradPlan::any_processor((1, 2, 3, 2), (6, 7));
        let padded: Vec<f32> = (0..2 * 6 * 7).map(|i| i as f32).collect();
        let mut patches = vec![f32::NAN; plan.patches_len()];
        plan.patches(&padded, &mut patches);
        // The plain loop (which `patches` runs without AVX-512) gives the same rows.
        let rows = plan.oh * plan.wp * 6;
        let mut plain = vec![f32::NAN; rows];
        plan.patches_plain(&padded, &mut plain);
        assert_eq!(plain, patches[..rows]);
        for oy in 0..plan.oh {
            for ox in 0..plan.ow {
                let start = plan.starts[oy * plan.ow + ox] as usize;
                let mut t = 0;
                for kx in 0..2 {
                    for c in 0..2 {
                        for ky in 0..3 {
                            let pixel = padded[(c * 6 + oy + ky) * 7 + ox + kx];
                            assert_eq!(patches[start + t], pixel, "({oy}, {ox}) element {t}");
                            t += 1;
                        }
                    }
                }
            }
        }
        assert!(patches[plan.oh * plan.wp * 6..].iter().all(|&x| x == 0.0));
    }
}
