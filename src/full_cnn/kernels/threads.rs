//! How a pass through the network uses the cores: on rayon's pool, with the other workers
//! kept awake from one parallel loop to the next.
//!
//! The layers' fast paths split their work over rayon's threads, one parallel loop per
//! layer (or two). Between the loops the calling worker runs the serial parts: a bias, a
//! ReLU, the small last Affine layer, the loss. Left to itself, an idle rayon worker looks
//! for work a few dozen times and then sleeps, and the next loop has to wake it: a system
//! call, and on a virtual machine whose processor was halted, tens of microseconds before
//! it takes its share. A SimpleConvNet step has about ten loops, so the wake-ups were
//! 5-10% of it. [`on_worker`] keeps the other workers looking for work for as long as the
//! pass lasts: they take each loop's pieces at once. They burn their core while they
//! wait, as a spinning worker does, so `bench`'s "cores busy" counts that wait too.
//!
//! Measured on an Intel Xeon (2 vCPUs, whose speed moved by a third from minute to minute
//! that evening), with and without it: in one process, blocks of steps alternating,
//! SimpleConvNet's training step 1.03-1.07x and DeepConvNet's 1.03-1.05x (medians of 20-60
//! rounds); `bench` binaries alternating, SimpleConvNet's step 1.00-1.19x (four runs),
//! DeepConvNet's 1.03-1.07x, inference at batch 100 1.00-1.03x (SimpleConvNet) and
//! 1.06-1.07x (DeepConvNet), at batch 1 1.01-1.33x and 1.10-1.19x. Which thread computes
//! what changes nothing in the results: each piece of work is the same arithmetic wherever
//! it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a kept-awake worker looks for work without finding any before it stops
/// looking (and sleeps, as rayon's workers do): far longer than the serial parts between
/// two loops of a pass (tens of microseconds), and short enough that a worker never
/// waits long for the end of a call it is not part of (see [`on_worker`]).
const IDLE_LIMIT: Duration = Duration::from_millis(1);

/// Runs `work` on one of rayon's worker threads (the calling thread waits for it; on a
/// worker it runs at once), with the pool's other workers kept looking for work until it
/// is done.
///
/// Entering the pool: a parallel loop started from a thread outside rayon's pool is handed
/// to the pool, and the caller sleeps until it is done; a DeepConvNet step has dozens of
/// loops (in a two-thread profile the wake-ups were a quarter of the calling thread's
/// time). Started from a worker, a loop is split on the spot, that worker takes a share at
/// once, and it runs the serial parts between the loops too.
///
/// Keeping the others awake: one task per other worker, spawned first, that runs whatever
/// work it can find in the pool ([`rayon::yield_now`]) until `work` returns, or until it
/// has found none for [`IDLE_LIMIT`]. One that ends up on the calling worker itself
/// returns at once. The limit matters when several calls share the pool (threads outside
/// it each calling in, as tests do): a worker waiting inside a piece of one call may pick
/// up another call's task, and that task must not wait for its own call's end, which may
/// in turn wait for the piece underneath.
pub(crate) fn on_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    let done = &done;
    rayon::scope(|scope| {
        let caller = rayon::current_thread_index();
        for _ in 1..rayon::current_num_threads() {
            scope.spawn(move |_| {
                if rayon::current_thread_index() == caller {
                    return;
                }
                let mut idle_since = Instant::now();
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        idle_since = Instant::now();
                    } else if idle_since.elapsed() > IDLE_LIMIT {
                        return;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let result = work();
        done.store(true, Ordering::Release);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// The work runs on a worker of rayon's pool, called from outside it (as a test's
    /// thread is) and from inside it.
    #[test]
    fn on_worker_runs_the_work_on_a_pool_thread() {
        assert_eq!(rayon::current_thread_index(), None, "a test's own thread");
        assert!(on_worker(rayon::current_thread_index).is_some());
        let nested = rayon::scope(|_| on_worker(rayon::current_thread_index));
        assert!(nested.is_some());
    }

    /// Calls inside the parallel loops of other calls, in pools of one to four threads
    /// (the kept-awake workers take pieces of loops that are not their own call's): all
    /// finish, with the sums a plain loop gives.
    #[test]
    fn parallel_loops_inside_finish_with_every_pool_size() {
        let expected: u64 = (0..1000u64).map(|i| i * i).sum();
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            let sums: Vec<u64> = pool.install(|| {
                (0..8)
                    .into_par_iter()
                    .map(|_| {
                        on_worker(|| {
                            (0..10)
                                .into_par_iter()
                                .map(|j| {
                                    on_worker(|| {
                                        (0..100u64)
                                            .into_par_iter()
                                            .map(|i| (j * 100 + i) * (j * 100 + i))
                                            .sum::<u64>()
                                    })
                                })
                                .sum::<u64>()
                        })
                    })
                    .collect()
            });
            assert_eq!(sums, vec![expected; 8], "{threads} threads");
        }
    }

    /// Several threads outside the pool (as `cargo test` runs tests) each passing work
    /// with parallel loops into the same two-thread pool at once: every call finishes,
    /// with the sums a plain loop gives. (The wait that [`IDLE_LIMIT`] bounds, two
    /// kept-awake tasks each on top of a piece of the other's call, needs an unlucky
    /// order of steals; this test did not hit it even without the limit, so it checks
    /// that shared calls work, not that the limit is needed.)
    #[test]
    fn calls_from_several_threads_at_once_all_finish() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool");
        let expected: u64 = (0..10_000u64).sum();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..30 {
                        let sum = pool.install(|| {
                            on_worker(|| {
                                (0..100u64)
                                    .into_par_iter()
                                    .map(|i| {
                                        (0..100u64)
                                            .into_par_iter()
                                            .map(|j| {
                                                (0..2000u64).map(std::hint::black_box).sum::<u64>();
                                                i * 100 + j
                                            })
                                            .sum::<u64>()
                                    })
                                    .sum::<u64>()
                            })
                        });
                        assert_eq!(sum, expected);
                    }
                });
            }
        });
    }
}
