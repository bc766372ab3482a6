//! Keeping freed memory for the next training step (glibc's `malloc` settings).
//!
//! A training step allocates the same large arrays every time (SimpleConvNet at batch 100:
//! the convolution's output and its gradient are 6.9 MB each) and frees them by the end of
//! the step. With glibc's default settings the freed memory at the top of the heap goes
//! back to the operating system as soon as more than a few megabytes are free, so the next
//! step asks for it again, and the kernel hands out fresh pages, each one zeroed and
//! mapped on its first touch (a page fault). Measured on a SimpleConvNet step: about 840
//! page faults and 3 heap shrinks per step, and 20% of the CPU time; with the settings
//! below, a few per step.
//!
//! [`keep_freed_memory`] raises two glibc thresholds once per process, as
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=...:glibc.malloc.mmap_threshold=...` would:
//! up to [`TRIM_THRESHOLD`] bytes of freed memory stay with the process, and blocks below
//! [`MMAP_THRESHOLD`] come from the heap (not from their own `mmap`, which is given back
//! on every `free`). The process's peak memory is not higher; it just keeps it. [`Network::new`]
//! calls it, so every network's training gets it. It does nothing on other C libraries,
//! when `GLIBC_TUNABLES` already sets `malloc` tunables (yours win), or when the
//! environment variable `CNN_FROM_SCRATCH_KEEP_MEMORY` is `0`.
//!
//! [`Network::new`]: super::Network::new

/// Freed memory up to this many bytes stays with the process (glibc's default: 128 KB,
/// raised as large blocks are freed).
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Blocks from this size up get their own `mmap` (glibc's default: 128 KB, raised as
/// large blocks are freed, at most 32 MB, which is also the largest value it accepts).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Sets glibc's `malloc` to keep freed memory for reuse (see the module docs), once per
/// process. Returns whether the settings are in force: `false` on other C libraries, when
/// the environment chose otherwise, or if glibc refused them.
///
/// ```
/// use cnn_from_scratch::full_cnn::memory::keep_freed_memory;
/// let env = |name: &str, says: fn(&str) -> bool| std::env::var(name).is_ok_and(|v| says(&v));
/// let opted_out = env("CNN_FROM_SCRATCH_KEEP_MEMORY", |v| v == "0")
///     || env("GLIBC_TUNABLES", |v| v.contains("glibc.malloc."));
/// let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
/// assert_eq!(keep_freed_memory(), glibc && !opted_out);
/// ```
pub fn keep_freed_memory() -> bool {
    static KEPT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KEPT.get_or_init(|| {
        let opted_out = std::env::var("CNN_FROM_SCRATCH_KEEP_MEMORY").is_ok_and(|v| v == "0");
        let tunables_set =
            std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.contains("glibc.malloc."));
        !opted_out && !tunables_set && set_thresholds()
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    let as_int = |bytes: usize| libc::c_int::try_from(bytes).expect("thresholds fit in an int");
    // SAFETY: mallopt only changes malloc's parameters; glibc takes its own lock.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, as_int(TRIM_THRESHOLD)) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, as_int(MMAP_THRESHOLD)) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}
