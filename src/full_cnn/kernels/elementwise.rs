//! The optimisers' element-wise updates over the threads: a parameter, its gradient and
//! the optimiser's state walked together as flat slices, in chunks, in parallel, with the
//! same arithmetic on every element as the plain `Zip` (bit for bit; tested).

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use rayon::prelude::*;

/// Numbers per parallel task in the element-wise updates below: enough to amortise a task.
const CHUNK: usize = 1 << 14;

// The optimisers' element-wise updates are `Zip::from(p).and(g).and(state)...for_each(f)`,
// here written for speed: the tensors are contiguous, so they are walked as flat slices in
// chunks split over the threads. Each element gets the same arithmetic either way (the
// elements do not depend on each other), so the result is bit-identical to the plain
// `Zip`, which runs for small or non-contiguous tensors (tested). The updates run on
// rayon's pool with its other workers kept awake (`threads::on_worker`), as the network's
// passes do: called between two steps, the update's loops would otherwise wake them.

/// `f(p, g, s)` on every element of a parameter, its gradient and one state tensor.
pub(crate) fn update_with_one_state(
    mut p: ArrayViewMutD<f32>,
    g: ArrayViewD<f32>,
    mut s: ArrayViewMutD<f32>,
    f: impl Fn(&mut f32, f32, &mut f32) + Sync,
) {
    if p.len() >= CHUNK
        && let (Some(p), Some(g), Some(s)) = (p.as_slice_mut(), g.as_slice(), s.as_slice_mut())
    {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(s.par_chunks_mut(CHUNK))
            .for_each(|((p, g), s)| {
                for ((p, &g), s) in p.iter_mut().zip(g).zip(s) {
                    f(p, g, s);
                }
            });
        return;
    }
    Zip::from(&mut p)
        .and(&g)
        .and(&mut s)
        .for_each(|p, &g, s| f(p, g, s));
}

/// `f(p, g, s1, s2)` on every element of a parameter, its gradient and two state tensors.
pub(crate) fn update_with_two_states(
    mut p: ArrayViewMutD<f32>,
    g: ArrayViewD<f32>,
    mut s1: ArrayViewMutD<f32>,
    mut s2: ArrayViewMutD<f32>,
    f: impl Fn(&mut f32, f32, &mut f32, &mut f32) + Sync,
) {
    if p.len() >= CHUNK
        && let (Some(p), Some(g), Some(s1), Some(s2)) = (
            p.as_slice_mut(),
            g.as_slice(),
            s1.as_slice_mut(),
            s2.as_slice_mut(),
        )
    {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(s1.par_chunks_mut(CHUNK))
            .zip(s2.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), s1), s2)| two_state_chunk(p, g, s1, s2, &f));
        return;
    }
    Zip::from(&mut p)
        .and(&g)
        .and(&mut s1)
        .and(&mut s2)
        .for_each(|p, &g, s1, s2| f(p, g, s1, s2));
}

/// The loop of [`update_with_two_states`] over one chunk of flat slices.
///
/// Adam's update (two states, a square root and a division per number) is the one that
/// costs: compiled for the machine's baseline (SSE2) it works on 4 numbers per
/// instruction, compiled for AVX2 on 8. Additions, multiplications, divisions and square
/// roots round the same at any vector width, so both give the same bits (no fused
/// multiply-add is enabled here, which would round differently).
fn two_state_chunk(
    p: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
    f: &(impl Fn(&mut f32, f32, &mut f32, &mut f32) + Sync),
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::Simd::best() >= super::simd::Simd::Avx2 {
        // SAFETY: `Simd::best` found AVX2 on this processor.
        unsafe { two_state_chunk_avx2(p, g, s1, s2, f) };
        return;
    }
    two_state_chunk_plain(p, g, s1, s2, f);
}

#[inline(always)]
fn two_state_chunk_plain(
    p: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
    f: &(impl Fn(&mut f32, f32, &mut f32, &mut f32) + Sync),
) {
    for (((p, &g), s1), s2) in p.iter_mut().zip(g).zip(s1).zip(s2) {
        f(p, g, s1, s2);
    }
}

/// [`two_state_chunk_plain`] compiled for AVX2 (without FMA).
///
/// # Safety
///
/// The processor must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn two_state_chunk_avx2(
    p: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
    f: &(impl Fn(&mut f32, f32, &mut f32, &mut f32) + Sync),
) {
    two_state_chunk_plain(p, g, s1, s2, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path (contiguous tensors, in parallel chunks) against the plain `Zip` on
    /// the same numbers seen through strided views (every other column of a wider array,
    /// not contiguous): the same bits.
    #[test]
    fn chunked_updates_equal_the_plain_zip_bit_for_bit() {
        use ndarray::{Array2, s};
        let value =
            |i: usize, j: usize, k: usize| ((i * 37 + j * 11 + k * 5) % 101) as f32 / 50.0 - 1.0;
        // 60,000 numbers (several chunks), and the same numbers in the even columns of a
        // (300, 400) array.
        let dense = |k: usize| Array2::from_shape_fn((300, 200), |(i, j)| value(i, j, k));
        let wide = |k: usize| Array2::from_shape_fn((300, 400), |(i, j)| value(i, j / 2, k));
        let (mut p, g, mut m, mut v) = (dense(1), dense(2), dense(3), dense(4).mapv(f32::abs));
        let (mut pw, gw, mut mw, mut vw) = (wide(1), wide(2), wide(3), wide(4).mapv(f32::abs));
        let adam_like = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *m += 0.1 * (g - *m);
            *v += 0.001 * (g * g - *v);
            *p -= 0.01 * *m / (v.sqrt() + 1e-7);
        };
        let momentum_like = |p: &mut f32, g: f32, v: &mut f32| {
            *v = 0.9 * *v - 0.01 * g;
            *p += *v;
        };
        update_with_two_states(
            p.view_mut().into_dyn(),
            g.view().into_dyn(),
            m.view_mut().into_dyn(),
            v.view_mut().into_dyn(),
            adam_like,
        );
        update_with_one_state(
            p.view_mut().into_dyn(),
            g.view().into_dyn(),
            m.view_mut().into_dyn(),
            momentum_like,
        );
        let even = s![.., ..;2];
        assert!(
            pw.slice(even).as_slice().is_none(),
            "the reference must take the Zip path"
        );
        update_with_two_states(
            pw.slice_mut(even).into_dyn(),
            gw.slice(even).into_dyn(),
            mw.slice_mut(even).into_dyn(),
            vw.slice_mut(even).into_dyn(),
            adam_like,
        );
        update_with_one_state(
            pw.slice_mut(even).into_dyn(),
            gw.slice(even).into_dyn(),
            mw.slice_mut(even).into_dyn(),
            momentum_like,
        );
        for (fast, plain) in [(&p, &pw), (&m, &mw), (&v, &vw)] {
            let plain = plain.slice(even);
            assert!(
                fast.iter()
                    .zip(plain.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }
}
