//! `full_cnn::memory::keep_freed_memory`: after it, a large block that is freed and asked
//! for again comes back without fresh pages from the operating system. Counted with the
//! thread's own page-fault counter (`getrusage(RUSAGE_THREAD)`), so other tests' threads do
//! not count. Its own test binary: the setting is once per process.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_blocks_come_back_without_page_faults() {
    use cnn_from_scratch::full_cnn::memory::keep_freed_memory;

    fn thread_minor_faults() -> i64 {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes into the struct we own.
        assert_eq!(
            unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) },
            0
        );
        usage.ru_minflt
    }

    if std::env::var("CNN_FROM_SCRATCH_KEEP_MEMORY").is_ok_and(|v| v == "0") {
        assert!(
            !keep_freed_memory(),
            "opted out, yet the settings were applied"
        );
        return;
    }
    assert!(keep_freed_memory(), "glibc refused the thresholds");
    // Blocks of 6.9 MB (SimpleConvNet's convolution output at batch 100) and 1.7 MB, each
    // written in full, freed, then asked for again: the pattern of a training step.
    let sizes = [6_912_000 / 4, 1_728_000 / 4];
    let touch_all = || {
        for &len in &sizes {
            let block = vec![1.0f32; len];
            std::hint::black_box(&block);
        }
    };
    touch_all(); // the first time, the pages are new
    let before = thread_minor_faults();
    for _ in 0..5 {
        touch_all();
    }
    let faults = thread_minor_faults() - before;
    let pages = 5 * sizes.iter().sum::<usize>() * 4 / 4096;
    assert!(
        faults < (pages / 20) as i64,
        "{faults} page faults over 5 rounds of {pages} pages: the memory was given back"
    );
}
