//! Which vector instructions the fast kernels use (the direct convolution, the matrix
//! products of the Affine layers), chosen once when the program runs: AVX-512 where the
//! processor has it, else AVX2 with FMA, else plain Rust. The choice changes the order in
//! which the kernels add, so results of different processors agree to rounding, not bit
//! for bit; on one processor they are the same on every run.

use std::mem::MaybeUninit;

/// Which vector instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    /// Plain Rust (any processor; the compiler vectorises what it can).
    Plain,
    /// AVX2 and FMA: 16 registers of 8 floats.
    Avx2,
    /// AVX-512 (F and VL): 32 registers of 16 floats, twice the work per instruction (and,
    /// with VL, 32 registers of 8 floats where a block is narrow). Every processor with
    /// AVX-512 has VL but the Xeon Phi, which gets AVX2.
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
                return if has!("avx512f") && has!("avx512vl") {
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

    /// Whether the processor runs each 512-bit instruction as two 256-bit halves, issuing
    /// one 512-bit multiply-add a cycle where an Intel Xeon issues two: AMD's Zen 4
    /// (family 25 with AVX-512; Zen 3 has the same family and no AVX-512, Zen 5 a full
    /// 512-bit path and family 26). Read once.
    pub(crate) fn splits_512_bits() -> bool {
        static SPLITS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SPLITS.get_or_init(|| Simd::detected() == Simd::Avx512 && amd_family_25())
    }

    /// Floats per vector register.
    pub(crate) fn lanes(self) -> usize {
        match self {
            Simd::Avx512 => 16,
            _ => 8,
        }
    }
}

/// Whether the processor is AMD's, of family 25 (Zen 3 and Zen 4).
#[cfg(target_arch = "x86_64")]
fn amd_family_25() -> bool {
    use std::arch::x86_64::__cpuid;
    let vendor = __cpuid(0);
    let amd = [vendor.ebx, vendor.edx, vendor.ecx]
        == [*b"Auth", *b"enti", *b"cAMD"].map(u32::from_le_bytes);
    // The family: a base of 15 means "add the extended family".
    let eax = __cpuid(1).eax;
    let (base, extended) = ((eax >> 8) & 0xF, (eax >> 20) & 0xFF);
    let family = if base == 0xF { base + extended } else { base };
    amd && family == 25
}

#[cfg(not(target_arch = "x86_64"))]
fn amd_family_25() -> bool {
    false
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

/// [`transpose8`] by AVX2: loaded, transposed in registers, stored.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn transpose_avx2(block: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    use std::arch::x86_64::*;
    // SAFETY (loads and stores): each of the 8 rows is 8 floats.
    let r: [__m256; 8] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(block[j].as_ptr()) });
    let columns = transpose_registers(r);
    let mut result = [[0.0f32; 8]; 8];
    for (row, column) in result.iter_mut().zip(columns) {
        unsafe { _mm256_storeu_ps(row.as_mut_ptr(), column) };
    }
    result
}

/// [`transpose8`] held in registers, lane `j` of `result[g]` being lane `g` of `r[j]`:
/// the textbook AVX2 8x8 transpose, pairs of rows interleaved, then pairs of pairs, then
/// the 128-bit halves swapped.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn transpose_registers(
    r: [std::arch::x86_64::__m256; 8],
) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
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
    [
        _mm256_permute2f128_ps::<0x20>(q[0], q[4]),
        _mm256_permute2f128_ps::<0x20>(q[1], q[5]),
        _mm256_permute2f128_ps::<0x20>(q[2], q[6]),
        _mm256_permute2f128_ps::<0x20>(q[3], q[7]),
        _mm256_permute2f128_ps::<0x31>(q[0], q[4]),
        _mm256_permute2f128_ps::<0x31>(q[1], q[5]),
        _mm256_permute2f128_ps::<0x31>(q[2], q[6]),
        _mm256_permute2f128_ps::<0x31>(q[3], q[7]),
    ]
}

/// An initialized buffer seen as output for the kernels, which take `[MaybeUninit<f32>]`
/// so that they can write straight into a layer's fresh (not zeroed) output.
///
/// # Safety
/// Only initialized floats may be written through the result (the kernels only store
/// floats); a `MaybeUninit::uninit()` written into it would leave `values` uninitialized.
pub(crate) unsafe fn as_output(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the caller keeps it initialized.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// A vector of `len` floats, every one written by `fill` (which must write each entry
/// of the slice it is given): no zeros written first. (Winograd's transformed and
/// packed filters, 10 buffers of up to 590 KB per DeepConvNet step, were zeroed by
/// `vec![0.0; len]` on the calling thread before being written in parallel: 2% of the
/// step's profile, on one core while the other waited.)
pub(crate) fn filled_by(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the first `len` entries were written by `fill` (its contract), and the
    // capacity is at least `len`.
    unsafe { values.set_len(len) };
    values
}

/// `values` set to zeros, as the initialised floats they now are (a fresh array's
/// memory is zeroed where it is about to be written, on the thread that writes it,
/// rather than all at once before the work is handed out).
pub(crate) fn zeroed(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    values.fill(MaybeUninit::new(0.0));
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and every entry was just written.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Whether every number of `numbers` is finite (no NaN, no infinity). In blocks whose
/// test has no early exit, so that it runs on vectors (number by number, the trainer's
/// check of SimpleConvNet's 434,000 gradients took 4.6% of a training run's CPU time).
pub(crate) fn all_finite(numbers: &[f32]) -> bool {
    numbers
        .chunks(1024)
        .all(|block| block.iter().fold(true, |finite, v| finite & v.is_finite()))
}

/// Lanes `0 .. len` of the mask set.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn first_lanes(len: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(len as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The first `len` (at most 8) floats from `src`, zeros after them, in a register: one
/// masked load, which reads nothing past them.
///
/// # Safety
/// `src` must be valid for reads of `len` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn load_first_register(src: *const f32, len: usize) -> std::arch::x86_64::__m256 {
    debug_assert!(len <= 8, "load_first_register: {len} floats");
    // SAFETY: the mask has only lanes 0 .. len: the caller's promise.
    unsafe { std::arch::x86_64::_mm256_maskload_ps(src, first_lanes(len)) }
}

/// The first `len` (at most 8) lanes of `values` to `dst .. dst + len`, writing nothing
/// after them: SSE stores of 4, 2 and 1 floats (not a masked store: on AMD's processors
/// `vmaskmovps` to memory is microcoded, and took about 4% of a DeepConvNet inference).
///
/// # Safety
/// `dst` must be valid for writes of `len` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn store_first_register(
    dst: *mut f32,
    len: usize,
    values: std::arch::x86_64::__m256,
) {
    use std::arch::x86_64::*;
    debug_assert!(len <= 8, "store_first_register: {len} floats");
    let mut part = _mm256_castps256_ps128(values);
    let mut at = 0;
    // SAFETY: each store writes floats `at .. at + n` with `at + n <= len`: the caller's
    // promise.
    unsafe {
        if len == 8 {
            _mm256_storeu_ps(dst, values);
            return;
        }
        if len >= 4 {
            _mm_storeu_ps(dst, part);
            part = _mm256_extractf128_ps::<1>(values);
            at = 4;
        }
        if len - at >= 2 {
            _mm_storel_pd(dst.add(at).cast(), _mm_castps_pd(part));
            part = _mm_movehl_ps(part, part);
            at += 2;
        }
        if len > at {
            _mm_store_ss(dst.add(at), part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendor and family read from the processor agree with what Linux read
    /// (`/proc/cpuinfo`), where it is there.
    #[test]
    fn the_processor_family_is_the_operating_systems() {
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let field = |name: &str| {
            info.lines()
                .find(|line| line.split(':').next().is_some_and(|key| key.trim() == name))
                .and_then(|line| line.split(':').nth(1))
                .map(|value| value.trim().to_string())
        };
        let (Some(vendor), Some(family)) = (field("vendor_id"), field("cpu family")) else {
            return;
        };
        let expected = vendor == "AuthenticAMD" && family == "25";
        assert_eq!(amd_family_25(), expected, "{vendor}, family {family}");
    }

    /// The AVX2 transpose against the plain loops, partial loads and stores against their
    /// definition, where the processor has AVX2.
    #[test]
    fn shuffles_match_the_plain_loops() {
        let block: [[f32; 8]; 8] =
            std::array::from_fn(|j| std::array::from_fn(|g| (8 * j + g) as f32));
        let transposed = transpose8::<false>(&block);
        for (g, row) in transposed.iter().enumerate() {
            for (j, &value) in row.iter().enumerate() {
                assert_eq!(value, block[j][g]);
            }
        }
        if Simd::detected() >= Simd::Avx2 {
            assert_eq!(transpose8::<true>(&block), transposed);
            let source: Vec<f32> = (1..=8).map(|i| i as f32).collect();
            for len in 0..=8 {
                // The first len floats, then zeros.
                let mut loaded = [f32::NAN; 8];
                // SAFETY: the processor has AVX2; `len` floats of `source` read, 8 written.
                unsafe {
                    let values = load_first_register(source.as_ptr(), len);
                    std::arch::x86_64::_mm256_storeu_ps(loaded.as_mut_ptr(), values);
                }
                let expected: [f32; 8] =
                    std::array::from_fn(|i| if i < len { source[i] } else { 0.0 });
                assert_eq!(loaded, expected, "load_first_register of {len}");
                // Exactly floats 1 ..= len written, from the register's first lanes.
                let mut written = [-1.0f32; 10];
                // SAFETY: the processor has AVX2; floats 1 .. 1 + len of 10.
                unsafe {
                    let values = std::arch::x86_64::_mm256_loadu_ps(block[5].as_ptr());
                    store_first_register(written.as_mut_ptr().add(1), len, values);
                }
                for (i, &value) in written.iter().enumerate() {
                    let want = if (1..=len).contains(&i) {
                        block[5][i - 1]
                    } else {
                        -1.0
                    };
                    assert_eq!(value, want, "store_first_register of {len}, float {i}");
                }
            }
        }
    }
}
