//! Which vector instructions the fast kernels use (the direct convolution, the matrix
//! products of the Affine layers), chosen once when the program runs: AVX-512 where the
//! processor has it, else AVX2 with FMA, else plain Rust. The choice changes the order in
//! which the kernels add, so results of different processors agree to rounding, not bit
//! for bit; on one processor they are the same on every run.

/// Which vector instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    /// Plain Rust (any processor; the compiler vectorises what it can).
    Plain,
    /// AVX2 and FMA: 16 registers of 8 floats.
    Avx2,
    /// AVX-512 (F): 32 registers of 16 floats, twice the work per instruction.
    Avx512,
}

impl Simd {
    /// The best this processor has, capped by the environment variable
    /// `CNN_FROM_SCRATCH_SIMD` (`plain`, `avx2` or `avx512`) if it is set, so that one
    /// build can be measured with each (read once).
    pub(crate) fn best() -> Simd {
        static BEST: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = match std::env::var("CNN_FROM_SCRATCH_SIMD").as_deref() {
                Ok("plain") => Simd::Plain,
                Ok("avx2") => Simd::Avx2,
                _ => Simd::Avx512,
            };
            Simd::detected().min(cap)
        })
    }

    /// What the processor has.
    fn detected() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                return if has!("avx512f") {
                    Simd::Avx512
                } else {
                    Simd::Avx2
                };
            }
        }
        Simd::Plain
    }

    /// Every level this processor can run (the tests run each).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Simd> {
        let best = Simd::detected();
        [Simd::Plain, Simd::Avx2, Simd::Avx512]
            .into_iter()
            .filter(|&s| s <= best)
            .collect()
    }

    /// Floats per vector register.
    pub(crate) fn lanes(self) -> usize {
        match self {
            Simd::Avx512 => 16,
            _ => 8,
        }
    }
}

/// The 8x8 block transposed, `result[g][j] = block[j][g]`, by AVX2 shuffles if `AVX2` (the
/// caller runs with AVX2 enabled). The compiler does not find the shuffles itself: its
/// loop of single floats was slower than the scattered stores the transpose replaced in
/// Winograd's output.
#[inline(always)]
pub(crate) fn transpose8<const AVX2: bool>(block: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: callers pass `AVX2` only from code that runs where AVX2 is.
        return unsafe { transpose_avx2(block) };
    }
    std::array::from_fn(|g| std::array::from_fn(|j| block[j][g]))
}

/// The textbook AVX2 8x8 transpose: pairs of rows interleaved, then pairs of pairs,
/// then the 128-bit halves swapped.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn transpose_avx2(block: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    use std::arch::x86_64::*;
    // SAFETY (loads and stores): each of the 8 rows is 8 floats.
    let r: [__m256; 8] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(block[j].as_ptr()) });
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let q = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    let columns = [
        _mm256_permute2f128_ps::<0x20>(q[0], q[4]),
        _mm256_permute2f128_ps::<0x20>(q[1], q[5]),
        _mm256_permute2f128_ps::<0x20>(q[2], q[6]),
        _mm256_permute2f128_ps::<0x20>(q[3], q[7]),
        _mm256_permute2f128_ps::<0x31>(q[0], q[4]),
        _mm256_permute2f128_ps::<0x31>(q[1], q[5]),
        _mm256_permute2f128_ps::<0x31>(q[2], q[6]),
        _mm256_permute2f128_ps::<0x31>(q[3], q[7]),
    ];
    let mut result = [[0.0f32; 8]; 8];
    for (row, column) in result.iter_mut().zip(columns) {
        unsafe { _mm256_storeu_ps(row.as_mut_ptr(), column) };
    }
    result
}
