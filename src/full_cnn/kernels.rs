//! The fast kernels behind the layers: skip this folder on a first read.
//!
//! Everything the chapter teaches is in the layers one folder up ([`Convolution`] with
//! im2col, [`Pooling`], [`Affine`], ...): each computes its forward and backward pass the
//! way the book does, and that plain code is what the tests take as the definition. The
//! layers hand the heavy loops to the kernels here when the processor and the shapes
//! allow. Each kernel computes the same sums as the plain code, is tested against it (or
//! against the formula it implements), and says in its module comment what it does and
//! what it gained, measured (the decisions and what was tried and dropped:
//! `docs/performance-log.md`).
//!
//! | module | what it does | used by |
//! |---|---|---|
//! | `conv_kernel` | chooses a stride-1 convolution's kernel (Winograd's or the direct one) and packs the filters for it | [`Convolution`] |
//! | `direct_conv` | a convolution straight from the padded image, without im2col's matrix; its `dW` too | [`Convolution`] |
//! | `winograd` | Winograd's minimal filtering for 3x3 filters: 4 times fewer multiplications, 8 images a vector | [`Convolution`] |
//! | `winner_grad` | a convolution's `dW` through a max pooling from the windows' winners only | [`Convolution`] |
//! | `matmul` | an Affine layer's matrix product cut into pieces for the threads | [`Affine`] |
//! | `gemm_avx512` | the matrix product's own loop in AVX-512 registers | `matmul` |
//! | `elementwise` | the optimisers' element-wise updates, in chunks over the threads | the optimisers |
//! | `simd` | which vector instructions the processor has (AVX-512, AVX2, none) | all of them, and the pooling's |
//! | `threads` | keeps rayon's workers awake for the length of a pass | [`Network`], the optimisers, the trainer |
//!
//! (Max pooling's own fast loops, in AVX-512 and AVX2, sit beside the plain pooling of
//! §8-9, in the module [`pooling`](crate::pooling)'s files `pooling/avx512.rs` and
//! `pooling/avx2.rs`.)
//!
//! [`Convolution`]: super::Convolution
//! [`Pooling`]: super::Pooling
//! [`Affine`]: super::Affine
//! [`Network`]: super::Network

pub(crate) mod conv_kernel;
pub(crate) mod direct_conv;
pub(crate) mod elementwise;
#[cfg(target_arch = "x86_64")]
pub(crate) mod gemm_avx512;
pub(crate) mod matmul;
pub(crate) mod simd;
pub(crate) mod threads;
pub(crate) mod winner_grad;
pub(crate) mod winograd;
