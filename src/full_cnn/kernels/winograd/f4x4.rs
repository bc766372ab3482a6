//! The transforms of Winograd's F(4x4, 3x3): a 4x4 tile of outputs from the 6x6 tile of
//! input pixels under it, with 36 multiplications instead of 144 (4 times fewer; F(2x2,
//! 3x3) saves 2.25 times), at the price of transforms with more terms:
//!
//! ```text
//!       | 4  0 -5  0  1  0 |        |  1/4    0     0  |
//!       | 0 -4 -4  1  1  0 |        | -1/6  -1/6  -1/6 |       | 1  1  1  1  1  0 |
//! Bᵀ =  | 0  4 -4 -1  1  0 |   G =  | -1/6   1/6  -1/6 |  Aᵀ = | 0  1 -1  2 -2  0 |
//!       | 0 -2 -1  2  1  0 |        | 1/24  1/12   1/6 |       | 0  1  1  4  4  0 |
//!       | 0  2 -1 -2  1  0 |        | 1/24 -1/12   1/6 |       | 0  1 -1  8 -8  1 |
//!       | 0  4  0 -5  0  1 |        |   0     0     1  |
//! ```
//!
//! (Lavin and Gray, 2015, section 4.2.) The plan, the products and the stores are the
//! parent module's; here are only the one-dimensional transforms, each written out with
//! its shared terms (14 operations for `Bᵀ d` of 6 values, 10 for `Aᵀ m`), and the
//! passes that apply them across a row of tiles; and for the weight gradient, `A y` of a
//! tile's 4x4 output gradient (`Z = A dY Aᵀ`, module `weight_grad`). The larger numbers in the transforms
//! round a little more than F(2x2, 3x3)'s; the parent module's test holds both to the
//! same bound against the definition summed in f64 (1e-4 of the output's size).

use super::Lanes;

/// `G` above: the filters' transform, `G g Gᵀ` (once per pass).
pub(super) const G: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// One value of every image (`GROUP` lanes), as the transforms load and store it: a
/// plain array, or an AVX2 register.
pub(super) trait Vector: Arith {
    fn load(lanes: &Lanes) -> Self;
    fn store(self, to: &mut Lanes);
}

/// What the transforms compute with: additions, subtractions and multiply-adds of whole
/// vectors (the array, the AVX2 register, the AVX-512 register of [`Tiles`]). (The
/// weight gradient's transform of `dL/dout` uses the array's `add` and `sub` too.)
/// (Written with arrays and loops over the lanes, as the F(2x2, 3x3) transforms are,
/// these transforms came out as a mix of scalar and half-width instructions, and a whole
/// F(4x4, 3x3) pass over 16 channels of 28x28 took 1.4 times as long: the compiler split
/// the arrays carried from one tile to the next into single floats and only partly put
/// them back together.)
pub(super) trait Arith: Copy {
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    /// `k * self + c` (fused, in one rounding, for the AVX2 and AVX-512 registers).
    fn madd(self, k: f32, c: Self) -> Self;
}

/// A vector of [`Tiles::TILES`] neighbouring tiles' values (tile `t` in lanes `8t ..
/// 8t + 8`), for the output transform: one tile for the array and the AVX2 register, two
/// for the AVX-512 register, which so transforms two tiles for the price of one. (A row
/// of tiles' values of `M` lie tile after tile, so two tiles are one load.) Measured on
/// an Intel Xeon with AVX-512 (2 threads, steps alternating with the one-tile transform in
/// one process, medians of 30): DeepConvNet's training step 1.02-1.04 times as fast,
/// inference at batch 100 1.05 times.
pub(super) trait Tiles: Arith {
    const TILES: usize;
    /// The `TILES` tiles' values at `from[0..TILES]`.
    ///
    /// # Safety
    /// `from` must be valid for reads of `TILES` whole `Lanes`.
    unsafe fn load_tiles(from: *const Lanes) -> Self;
    /// Tile `t`'s values into `to[t * step]`.
    ///
    /// Panics unless `to` reaches that far.
    fn store_tiles(self, to: &mut [Lanes], step: usize);
}

impl<V: Vector> Tiles for V {
    const TILES: usize = 1;
    #[inline(always)]
    unsafe fn load_tiles(from: *const Lanes) -> Self {
        // SAFETY: the caller's promise.
        V::load(unsafe { &*from })
    }
    #[inline(always)]
    fn store_tiles(self, to: &mut [Lanes], _step: usize) {
        self.store(&mut to[0]);
    }
}

impl Vector for Lanes {
    #[inline(always)]
    fn load(lanes: &Lanes) -> Self {
        *lanes
    }
    #[inline(always)]
    fn store(self, to: &mut Lanes) {
        *to = self;
    }
}

impl Arith for Lanes {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        std::array::from_fn(|g| self[g] + other[g])
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        std::array::from_fn(|g| self[g] - other[g])
    }
    #[inline(always)]
    fn madd(self, k: f32, c: Self) -> Self {
        std::array::from_fn(|g| k * self[g] + c[g])
    }
}

/// The AVX2 register, for callers compiled with AVX2 and FMA (the intrinsics are inlined
/// into them). Its methods may only run where the processor has both: the parent module
/// uses it only in code it runs after detecting them (`Simd::Avx2` or better).
#[cfg(target_arch = "x86_64")]
pub(super) type Avx2 = std::arch::x86_64::__m256;

/// No AVX2 register elsewhere: the arrays (never used, as AVX2 is never detected).
#[cfg(not(target_arch = "x86_64"))]
pub(super) type Avx2 = Lanes;

#[cfg(target_arch = "x86_64")]
impl Vector for Avx2 {
    #[inline(always)]
    fn load(lanes: &Lanes) -> Self {
        // SAFETY: `lanes` has 8 floats; only called from code compiled for AVX2.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(lanes.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, to: &mut Lanes) {
        // SAFETY: as for `load`.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(to.as_mut_ptr(), self) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Arith for Avx2 {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: only called from code compiled for AVX2.
        unsafe { std::arch::x86_64::_mm256_add_ps(self, other) }
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        // SAFETY: as for `add`.
        unsafe { std::arch::x86_64::_mm256_sub_ps(self, other) }
    }
    #[inline(always)]
    fn madd(self, k: f32, c: Self) -> Self {
        use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps};
        // SAFETY: only called from code compiled for AVX2 and FMA.
        unsafe { _mm256_fmadd_ps(_mm256_set1_ps(k), self, c) }
    }
}

/// The AVX-512 register: two neighbouring tiles (see [`Tiles`]), for callers compiled
/// with AVX-512 (F), AVX2 and FMA, which the parent module runs only where the processor
/// has them (`Simd::Avx512`).
#[cfg(target_arch = "x86_64")]
pub(super) type Avx512 = std::arch::x86_64::__m512;

#[cfg(target_arch = "x86_64")]
impl Arith for Avx512 {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: only called from code compiled for AVX-512.
        unsafe { std::arch::x86_64::_mm512_add_ps(self, other) }
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        // SAFETY: as for `add`.
        unsafe { std::arch::x86_64::_mm512_sub_ps(self, other) }
    }
    #[inline(always)]
    fn madd(self, k: f32, c: Self) -> Self {
        use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_set1_ps};
        // SAFETY: as for `add`.
        unsafe { _mm512_fmadd_ps(_mm512_set1_ps(k), self, c) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Tiles for Avx512 {
    const TILES: usize = 2;
    #[inline(always)]
    unsafe fn load_tiles(from: *const Lanes) -> Self {
        // SAFETY: the caller's promise (16 floats); only called from code compiled for
        // AVX-512.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(from.cast()) }
    }
    #[inline(always)]
    fn store_tiles(self, to: &mut [Lanes], step: usize) {
        use std::arch::x86_64::*;
        assert!(
            step > 0 && step < to.len(),
            "winograd: a pair of tiles' store"
        );
        let to = to.as_mut_ptr();
        // SAFETY: each half is 8 floats, into a whole `Lanes` of `to` (asserted); only
        // called from code compiled for AVX-512 (F: the upper half taken out as 4 doubles'
        // bits).
        unsafe {
            _mm256_storeu_ps(to.cast(), _mm512_castps512_ps256(self));
            let upper = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self)));
            _mm256_storeu_ps(to.add(step).cast(), upper);
        }
    }
}

/// `Bᵀ d` for 6 values `d` (of every lane).
#[inline(always)]
fn input_1d<V: Arith>([d0, d1, d2, d3, d4, d5]: [V; 6]) -> [V; 6] {
    let (e, h) = (d4.sub(d2), d3.sub(d1));
    [
        d2.madd(-5.0, d0.madd(4.0, d4)),
        d1.add(d2).madd(-4.0, d3.add(d4)),
        d1.sub(d2).madd(4.0, d4.sub(d3)),
        h.madd(2.0, e),
        h.madd(-2.0, e),
        d3.madd(-5.0, d1.madd(4.0, d5)),
    ]
}

/// Row `I` of `Bᵀ d B` for every tile of a tile row: `r[x]`, row `I` of `Bᵀ d` at column
/// `x`, combines the 6 image rows `rows`; then for tile `tx`, whose columns are `r[4tx ..
/// 4tx + 6]`, `(r B)[j]` goes to `v[j][tx]`. Neighbouring tiles share 2 columns, so each
/// `r[x]` is computed once. (Only component `I` of `input_1d` is used for `r`: the
/// compiler drops the others. No closures here: a closure the compiler does not inline
/// loses the caller's AVX2 and FMA.)
#[inline(always)]
pub(super) fn input_pass<const I: usize, V: Vector>(rows: &[&[Lanes]; 6], v: [&mut [Lanes]; 6]) {
    let [v0, v1, v2, v3, v4, v5] = v;
    let (mut r0, mut r1) = (input_column::<I, V>(rows, 0), input_column::<I, V>(rows, 1));
    for (tx, v0) in v0.iter_mut().enumerate() {
        let x = 4 * tx;
        let (r2, r3) = (
            input_column::<I, V>(rows, x + 2),
            input_column::<I, V>(rows, x + 3),
        );
        let (r4, r5) = (
            input_column::<I, V>(rows, x + 4),
            input_column::<I, V>(rows, x + 5),
        );
        let [t0, t1, t2, t3, t4, t5] = input_1d([r0, r1, r2, r3, r4, r5]);
        t0.store(v0);
        t1.store(&mut v1[tx]);
        t2.store(&mut v2[tx]);
        t3.store(&mut v3[tx]);
        t4.store(&mut v4[tx]);
        t5.store(&mut v5[tx]);
        (r0, r1) = (r4, r5);
    }
}

/// The next 6 of the 36 positions' buffers.
#[inline(always)]
pub(super) fn next_six<'v>(
    positions: &mut impl Iterator<Item = &'v mut [Lanes]>,
) -> [&'v mut [Lanes]; 6] {
    let mut next = || positions.next().expect("36 positions");
    [next(), next(), next(), next(), next(), next()]
}

/// Row `I` of `Bᵀ d` at column `x` of the 6 image rows `rows`.
#[inline(always)]
fn input_column<const I: usize, V: Vector>(rows: &[&[Lanes]; 6], x: usize) -> V {
    let column = [
        V::load(&rows[0][x]),
        V::load(&rows[1][x]),
        V::load(&rows[2][x]),
        V::load(&rows[3][x]),
        V::load(&rows[4][x]),
        V::load(&rows[5][x]),
    ];
    input_1d(column)[I]
}

/// `Aᵀ m` for 6 values `m` (of every lane).
#[inline(always)]
fn output_1d<V: Arith>([m0, m1, m2, m3, m4, m5]: [V; 6]) -> [V; 4] {
    let (a, b) = (m1.add(m2), m1.sub(m2));
    let (c, d) = (m3.add(m4), m3.sub(m4));
    [
        m0.add(a.add(c)),
        d.madd(2.0, b),
        c.madd(4.0, a),
        d.madd(8.0, b).add(m5),
    ]
}

/// `Aᵀ M A` for `V::TILES` neighbouring tiles of every image, `M[p]` of the first being
/// `m[at + p * stride]` (and the next tile's the `Lanes` after it): output `(a, b)` of
/// tile `t` into `stage[a * stage_row + 4t + b]`. (Written straight into the stage:
/// returned, the 16 vectors were copied by a `memmove` call.)
#[inline(always)]
pub(super) fn output_tile<V: Tiles>(
    m: &[Lanes],
    (at, stride): (usize, usize),
    (stage, stage_row): (&mut [Lanes], usize),
) {
    // One check for the 36 loads (36 checks took registers and instructions the
    // transform needs).
    assert!(
        at + 35 * stride + V::TILES <= m.len(),
        "winograd: M of a tile"
    );
    // q[j][a] = (Aᵀ M)[a][j], column by column of M. (A function per column: a closure
    // returning the column was not inlined, and lost the caller's AVX2.)
    // SAFETY: every load is of `V::TILES` at `at + p * stride` with p <= 35, in bounds by
    // the assert.
    let q: [[V; 4]; 6] = unsafe {
        [
            output_column::<0, V>(m, (at, stride)),
            output_column::<1, V>(m, (at, stride)),
            output_column::<2, V>(m, (at, stride)),
            output_column::<3, V>(m, (at, stride)),
            output_column::<4, V>(m, (at, stride)),
            output_column::<5, V>(m, (at, stride)),
        ]
    };
    // (Aᵀ M) A, row by row.
    for a in 0..4 {
        let y = output_1d([q[0][a], q[1][a], q[2][a], q[3][a], q[4][a], q[5][a]]);
        let out = &mut stage[a * stage_row..][..4 * V::TILES];
        for (b, value) in y.into_iter().enumerate() {
            value.store_tiles(&mut out[b..], 4);
        }
    }
}

/// `Aᵀ` times column `J` of the tiles' `M`, `M[p]` being `m[at + p * stride]`.
///
/// # Safety
/// `at + 35 * stride + V::TILES <= m.len()`.
#[inline(always)]
unsafe fn output_column<const J: usize, V: Tiles>(
    m: &[Lanes],
    (at, stride): (usize, usize),
) -> [V; 4] {
    // SAFETY: the caller's promise; p <= 35.
    let load = |p: usize| unsafe { V::load_tiles(m.as_ptr().add(at + p * stride)) };
    output_1d([
        load(J),
        load(6 + J),
        load(12 + J),
        load(18 + J),
        load(24 + J),
        load(30 + J),
    ])
}

/// `A y` for 4 values `y` (of every lane): the transform the weight gradient applies to
/// a tile's 4x4 of `dL/dout`, `Z = A dY Aᵀ` (`A` is 6x4, the transpose of `Aᵀ` above).
#[inline(always)]
fn dout_1d<V: Arith>([y0, y1, y2, y3]: [V; 4]) -> [V; 6] {
    let (s, t) = (y0.add(y2), y1.add(y3));
    let (u, w) = (y2.madd(4.0, y0), y3.madd(8.0, y1.add(y1)));
    [y0, s.add(t), s.sub(t), u.add(w), u.sub(w), y3]
}

/// Row `K` of `A dY Aᵀ` for every tile of a row of tiles (of `dL/dout`, 4 rows `rows`):
/// `r[x]`, row `K` of `A dY` at column `x`, then for tile `tx`, whose columns are `r[4tx
/// .. 4tx + 4]`, `(r Aᵀ)[l]` into `z[l][tx]`. (Tiles of `dL/dout` do not overlap.)
#[inline(always)]
pub(super) fn dout_pass<const K: usize, V: Vector>(rows: &[&[Lanes]; 4], z: [&mut [Lanes]; 6]) {
    let [z0, z1, z2, z3, z4, z5] = z;
    for (tx, z0) in z0.iter_mut().enumerate() {
        let x = 4 * tx;
        let r = [
            dout_column::<K, V>(rows, x),
            dout_column::<K, V>(rows, x + 1),
            dout_column::<K, V>(rows, x + 2),
            dout_column::<K, V>(rows, x + 3),
        ];
        let [t0, t1, t2, t3, t4, t5] = dout_1d(r);
        t0.store(z0);
        t1.store(&mut z1[tx]);
        t2.store(&mut z2[tx]);
        t3.store(&mut z3[tx]);
        t4.store(&mut z4[tx]);
        t5.store(&mut z5[tx]);
    }
}

/// Row `K` of `A dY` at column `x` of the 4 rows `rows`.
#[inline(always)]
fn dout_column<const K: usize, V: Vector>(rows: &[&[Lanes]; 4], x: usize) -> V {
    let column = [
        V::load(&rows[0][x]),
        V::load(&rows[1][x]),
        V::load(&rows[2][x]),
        V::load(&rows[3][x]),
    ];
    dout_1d(column)[K]
}
