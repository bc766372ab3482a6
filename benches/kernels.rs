//! Criterion benchmarks of the hot kernels, at the book's SimpleConvNet sizes (batch 100,
//! 1x28x28 images, 30 filters 5x5, 2x2 max pooling):
//!
//! ```text
//! cargo bench -p cnn-benches                     # all
//! cargo bench -p cnn-benches -- im2col           # those whose name contains "im2col"
//! RAYON_NUM_THREADS=1 cargo bench -p cnn-benches   # one thread
//! ```
//!
//! (This file is the package `cnn-benches`, `benches/Cargo.toml`, so that criterion is not
//! built for the walk-through or `cargo test`.)
//!
//! For the whole-network numbers next to PyTorch, see `cargo run --release --example bench`.

use cnn_from_scratch::batching::{col2im, conv_forward_im2col, im2col};
use cnn_from_scratch::full_cnn::{
    Adam, Convolution, Optimizer, SimpleConvNetConfig, simple_conv_net,
};
use cnn_from_scratch::pooling::max_pool_with_argmax;
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array1, Array4};
use std::hint::black_box;

const BATCH: usize = 100;

fn images() -> Array4<f32> {
    Array4::from_shape_fn((BATCH, 1, 28, 28), |(n, _, i, j)| {
        ((n * 31 + i * 7 + j * 3) % 256) as f32 / 255.0
    })
}

fn filters() -> Array4<f32> {
    Array4::from_shape_fn((30, 1, 5, 5), |(f, _, i, j)| {
        ((f * 7 + i * 5 + j) % 11) as f32 / 50.0 - 0.1
    })
}

fn kernels(c: &mut Criterion) {
    let x = images();
    let w = filters();
    let b = Array1::<f32>::zeros(30);

    c.bench_function("im2col b100 1x28x28 5x5", |bench| {
        bench.iter(|| im2col(black_box(x.view()), 5, 5, 1, 0).unwrap())
    });
    let col = im2col(x.view(), 5, 5, 1, 0).unwrap();
    c.bench_function("col2im b100 1x28x28 5x5", |bench| {
        bench.iter(|| col2im(black_box(col.view()), [BATCH, 1, 28, 28], 5, 5, 1, 0).unwrap())
    });
    c.bench_function("conv_forward_im2col b100 30x5x5", |bench| {
        bench.iter(|| conv_forward_im2col(black_box(x.view()), w.view(), b.view(), 1, 0).unwrap())
    });

    let mut conv = Convolution::new(w.clone(), b.clone(), 1, 0);
    c.bench_function("Convolution::forward b100 30x5x5", |bench| {
        bench.iter(|| conv.forward(black_box(x.view())).unwrap())
    });
    let y = conv.forward(x.view()).unwrap();
    let dout = y.mapv(|v| v.sin());
    c.bench_function("Convolution::backward b100 30x5x5", |bench| {
        bench.iter(|| conv.backward(black_box(dout.view())))
    });
    c.bench_function("max_pool_with_argmax b100 30x24x24 2x2", |bench| {
        bench.iter(|| max_pool_with_argmax(black_box(y.view()), 2, 2, 2, 0).unwrap())
    });

    let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 0).unwrap();
    let labels = Array1::from_shape_fn(BATCH, |i| (i % 10) as u8);
    let mut adam = Adam::default();
    c.bench_function("SimpleConvNet train step b100", |bench| {
        bench.iter(|| {
            let (loss, grads) = net.gradient(black_box(x.view()), labels.view());
            adam.update(net.params_mut(), &grads);
            loss
        })
    });
    c.bench_function("SimpleConvNet predict b100", |bench| {
        bench.iter(|| net.predict(black_box(x.view())))
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
