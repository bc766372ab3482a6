//! Training is deterministic: two copies of a network trained the same steps with the same
//! seed end with bit-identical weights, on 2 threads (the benchmark's setting) and on 1.
//! The parallel parts (images split over threads, matrix products cut into pieces, the
//! optimiser's chunks) are all cut by the shapes, never by the thread count, and their
//! partial sums are added in a fixed order, so even 1 and 2 threads agree.

use cnn_from_scratch::full_cnn::{
    Adam, Network, Optimizer, SimpleConvNetConfig, deep_conv_net, simple_conv_net,
};
use ndarray::{Array1, Array4};

/// Seeded "images" in [0, 1) and labels, MNIST-shaped.
fn batch(n: usize, seed: usize) -> (Array4<f32>, Array1<u8>) {
    let x = Array4::from_shape_fn((n, 1, 28, 28), |(i, _, y, x)| {
        ((i * 7919 + y * 131 + x * 17 + seed * 31) % 256) as f32 / 256.0
    });
    let t = Array1::from_shape_fn(n, |i| ((i * 3 + seed) % 10) as u8);
    (x, t)
}

/// The weights' bits after `steps` Adam steps on `threads` threads, and the losses'.
fn train(
    build: &(dyn Fn() -> Network + Sync),
    steps: usize,
    threads: usize,
) -> (Vec<u32>, Vec<u32>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let mut net = build();
        let mut adam = Adam::default();
        let mut losses = Vec::new();
        for step in 0..steps {
            let (x, t) = batch(100, step);
            let (loss, grads) = net.gradient(x.view(), t.view());
            adam.update(net.params_mut(), &grads);
            losses.push(loss.to_bits());
        }
        let weights = net
            .params()
            .named()
            .iter()
            .flat_map(|(_, t)| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect();
        (weights, losses)
    })
}

fn check(build: &(dyn Fn() -> Network + Sync), steps: usize) {
    let initial: Vec<u32> = build()
        .params()
        .named()
        .iter()
        .flat_map(|(_, t)| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect();
    let (a, losses_a) = train(build, steps, 2);
    let (b, losses_b) = train(build, steps, 2);
    assert_ne!(
        a, initial,
        "training changed no weight: the test would be vacuous"
    );
    assert_eq!(
        losses_a, losses_b,
        "losses differ between two 2-thread runs"
    );
    assert!(a == b, "weights differ between two 2-thread runs");
    let (c, losses_c) = train(build, steps, 1);
    assert_eq!(losses_a, losses_c, "losses differ between 2 threads and 1");
    assert!(a == c, "weights differ between 2 threads and 1");
}

#[test]
fn simple_conv_net_trains_bit_for_bit_the_same() {
    check(
        &|| simple_conv_net(&SimpleConvNetConfig::default(), 5).unwrap(),
        4,
    );
}

#[test]
fn deep_conv_net_trains_bit_for_bit_the_same() {
    // Dropout draws its masks from its own seeded generators: the same in every run.
    check(&|| deep_conv_net(5).unwrap(), 3);
}
