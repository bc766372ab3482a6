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
