//! The pieces of the experiments: the pixel permutation (a bijection, applied alike to
//! training and test images), the shift function (hand-made cases), shift augmentation in
//! the trainer (labels untouched, reproducible from the seed), and the experiment functions
//! themselves on tiny runs.

use std::sync::{Arc, Mutex};

use cnn_from_scratch::data::{Dataset, random_shifts, shift_images};
use cnn_from_scratch::experiments::report::TSV_HEADER;
use cnn_from_scratch::experiments::{
    Net, Training, learned_robustness, permute_dataset, shift_curve, shifted_test_digits,
    shuffled_pixels, subset,
};
use cnn_from_scratch::fc_limits::pixel_permutation;
use cnn_from_scratch::full_cnn::trainer::Trainer;
use cnn_from_scratch::full_cnn::{Affine, Layer, Network};
use ndarray::{Array1, Array2, Array4, ArrayD, Axis, s};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------- the permutation

#[test]
fn pixel_permutation_is_a_bijection_and_can_be_undone() {
    for seed in [0, 7, 12345] {
        let p = pixel_permutation(784, seed);
        let mut seen = [false; 784];
        for &k in &p {
            assert!(
                k < 784 && !seen[k],
                "seed {seed}: {k} out of range or repeated"
            );
            seen[k] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "seed {seed}: some pixel never used"
        );
        assert!(
            p.iter().enumerate().filter(|&(i, &k)| i == k).count() < 20,
            "barely shuffled"
        );

        // Undo it with the inverse permutation: every digit comes back exactly.
        let data = subset(&Dataset::sample(), 10, 10);
        let mut inverse = vec![0; 784];
        for (k, &from) in p.iter().enumerate() {
            inverse[from] = k;
        }
        let back = permute_dataset(&permute_dataset(&data, &p), &inverse);
        assert_eq!(back.train_images, data.train_images);
        assert_eq!(back.test_images, data.test_images);
    }
}

#[test]
fn permute_dataset_moves_the_same_pixels_in_training_and_test_images() {
    // Test images that are copies of the training images must stay copies.
    let sample = subset(&Dataset::sample(), 30, 0);
    let data = Dataset {
        test_images: sample.train_images.clone(),
        test_labels: sample.train_labels.clone(),
        ..sample
    };
    let p = pixel_permutation(784, 3);
    let shuffled = permute_dataset(&data, &p);
    assert_eq!(shuffled.train_images, shuffled.test_images);
    assert_eq!(shuffled.train_labels, data.train_labels);
    assert_eq!(shuffled.test_labels, data.test_labels);
    // Pixel by pixel, with plain index arithmetic: pixel k of a shuffled image is pixel p[k].
    for n in 0..30 {
        for (k, &from) in p.iter().enumerate() {
            let moved = shuffled.train_images[[n, 0, k / 28, k % 28]];
            assert_eq!(moved, data.train_images[[n, 0, from / 28, from % 28]]);
        }
    }
}

// ---------------------------------------------------------------- the shift function

fn image(rows: &[&[f32]]) -> Array4<f32> {
    let (h, w) = (rows.len(), rows[0].len());
    Array4::from_shape_fn((1, 1, h, w), |(_, _, i, j)| rows[i][j])
}

#[test]
fn shift_matches_hand_made_cases() {
    let x = image(&[&[1., 2., 3., 4.], &[5., 6., 7., 8.], &[9., 10., 11., 12.]]);
    let cases: [(isize, isize, Array4<f32>); 7] = [
        (0, 0, x.clone()),
        (
            1,
            0,
            image(&[&[0., 1., 2., 3.], &[0., 5., 6., 7.], &[0., 9., 10., 11.]]),
        ),
        (
            -2,
            0,
            image(&[&[3., 4., 0., 0.], &[7., 8., 0., 0.], &[11., 12., 0., 0.]]),
        ),
        (
            0,
            1,
            image(&[&[0., 0., 0., 0.], &[1., 2., 3., 4.], &[5., 6., 7., 8.]]),
        ),
        (
            1,
            -1,
            image(&[&[0., 5., 6., 7.], &[0., 9., 10., 11.], &[0., 0., 0., 0.]]),
        ),
        (
            -3,
            2,
            image(&[&[0., 0., 0., 0.], &[0., 0., 0., 0.], &[4., 0., 0., 0.]]),
        ),
        (4, 0, Array4::zeros((1, 1, 3, 4))), // moved out of the picture
    ];
    for (dx, dy, expected) in cases {
        assert_eq!(
            shift_images(x.view(), dx, dy),
            expected,
            "shift ({dx}, {dy})"
        );
    }
    assert_eq!(
        shift_images(x.view(), 0, -7),
        Array4::<f32>::zeros((1, 1, 3, 4))
    );
}

#[test]
fn shift_moves_every_image_and_channel_alike() {
    // Two images of two channels: each channel moves as the single image above did.
    let x = Array4::from_shape_fn((2, 2, 3, 4), |(n, c, i, j)| {
        (1 + 4 * i + j) as f32 * if n == 0 { 1.0 } else { -1.0 } + 100.0 * c as f32
    });
    let moved = shift_images(x.view(), 1, -1);
    for n in 0..2 {
        for c in 0..2 {
            for i in 0..3 {
                for j in 0..4 {
                    let expected = if i + 1 < 3 && j >= 1 {
                        x[[n, c, i + 1, j - 1]]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        moved[[n, c, i, j]],
                        expected,
                        "image {n} channel {c} ({i}, {j})"
                    );
                }
            }
        }
    }
}

/// The `(dx, dy)` in `-m..=m` that turns `from` into `to`, if any.
fn which_shift(from: &Array4<f32>, to: &Array4<f32>, m: isize) -> Option<(isize, isize)> {
    let mut found = None;
    for dy in -m..=m {
        for dx in -m..=m {
            if shift_images(from.view(), dx, dy) == *to {
                found.get_or_insert((dx, dy));
            }
        }
    }
    found
}

#[test]
fn random_shifts_draw_dx_then_dy_per_image_from_the_generator() {
    let digits = subset(&Dataset::sample(), 40, 0).train_images;
    let out = random_shifts(digits.clone(), 2, &mut StdRng::seed_from_u64(9));
    // The same draws, made here from an identically seeded generator.
    let mut rng = StdRng::seed_from_u64(9);
    let mut all = std::collections::HashSet::new();
    for n in 0..40 {
        let dx = rng.random_range(-2i64..=2) as isize;
        let dy = rng.random_range(-2i64..=2) as isize;
        let one = digits.slice(s![n..n + 1, .., .., ..]).to_owned();
        let expected = shift_images(one.view(), dx, dy);
        assert_eq!(out.slice(s![n..n + 1, .., .., ..]), expected, "image {n}");
        all.insert((dx, dy));
    }
    assert!(
        all.len() > 10,
        "only {} different shifts in 40 images",
        all.len()
    );
    // No shifts: the batch is returned as it was.
    assert_eq!(
        random_shifts(digits.clone(), 0, &mut StdRng::seed_from_u64(9)),
        digits
    );
}

// ---------------------------------------------------------------- augmentation in the trainer

/// Passes its input through and keeps a copy of every training batch it sees.
#[derive(Debug, Clone)]
struct RecordInputs(Arc<Mutex<Vec<ArrayD<f32>>>>);

impl Layer for RecordInputs {
    fn describe(&self) -> String {
        "RecordInputs".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: ArrayD<f32>, train: bool) -> ArrayD<f32> {
        if train {
            self.0.lock().unwrap().push(x.clone());
        }
        x
    }
    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        dout
    }
}

/// The last layer: passes the scores through and, in the backward pass, reads the labels
/// off the gradient. SoftmaxWithLoss sends back `(softmax - one_hot(label)) / N`, whose only
/// negative entry in each row is at the label.
#[derive(Debug, Clone)]
struct RecordLabels(Arc<Mutex<Vec<Vec<u8>>>>);

impl Layer for RecordLabels {
    fn describe(&self) -> String {
        "RecordLabels".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: ArrayD<f32>, _train: bool) -> ArrayD<f32> {
        x
    }
    fn backward(&mut self, dout: ArrayD<f32>) -> ArrayD<f32> {
        let labels = dout
            .outer_iter()
            .map(|row| {
                let negative: Vec<usize> = (0..row.len()).filter(|&k| row[k] < 0.0).collect();
                assert_eq!(negative.len(), 1, "one negative entry per row: {row}");
                negative[0] as u8
            })
            .collect();
        self.0.lock().unwrap().push(labels);
        dout
    }
}

struct Recorded {
    images: Vec<ArrayD<f32>>,
    labels: Vec<Vec<u8>>,
    params: Vec<u32>,
}

/// Trains `Record -> Affine 784->10 -> Record` with `augment_shift` and returns what the
/// network saw in every step.
fn train_recording(data: &Dataset, seed: u64, augment_shift: usize) -> Recorded {
    let images = Arc::new(Mutex::new(Vec::new()));
    let labels = Arc::new(Mutex::new(Vec::new()));
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(RecordInputs(images.clone())),
        Box::new(Affine::new(Array2::zeros((784, 10)), Array1::zeros(10))),
        Box::new(RecordLabels(labels.clone())),
    ];
    let mut net = Network::new(&[1, 28, 28], layers).unwrap();
    let mut trainer = Trainer {
        epochs: 2,
        batch_size: 50,
        seed,
        eval_subset: Some(10),
        show_progress: false,
        augment_shift,
        ..Trainer::default()
    };
    trainer.fit(&mut net, data).unwrap();
    let params = net
        .params()
        .named()
        .iter()
        .flat_map(|(_, t)| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect();
    let images = images.lock().unwrap().clone();
    let labels = labels.lock().unwrap().clone();
    Recorded {
        images,
        labels,
        params,
    }
}

#[test]
fn augmentation_shifts_the_images_but_never_changes_the_labels() {
    let data = subset(&Dataset::sample(), 200, 10);
    let plain = train_recording(&data, 3, 0);
    let shifted = train_recording(&data, 3, 2);
    assert_eq!(plain.images.len(), 8); // 2 epochs of 4 steps
    assert_eq!(shifted.images.len(), 8);

    let mut moved = 0;
    for (step, (p, a)) in plain.images.iter().zip(&shifted.images).enumerate() {
        // The labels of every step are the same with and without augmentation ...
        assert_eq!(plain.labels[step], shifted.labels[step], "step {step}");
        for n in 0..p.shape()[0] {
            let p_img = p
                .slice(s![n..n + 1, .., .., ..])
                .to_owned()
                .into_dimensionality()
                .unwrap();
            let a_img = a
                .slice(s![n..n + 1, .., .., ..])
                .to_owned()
                .into_dimensionality()
                .unwrap();
            // ... and they are the labels of the unshifted training digit, found in the data ...
            let index = (0..200)
                .find(|&i| data.train_images.slice(s![i..i + 1, .., .., ..]) == p_img)
                .expect("every image seen without augmentation is a training digit");
            assert_eq!(plain.labels[step][n], data.train_labels[index]);
            // ... of which the augmented image is a shift by at most 2 pixels each way.
            let shift = which_shift(&p_img, &a_img, 2)
                .unwrap_or_else(|| panic!("step {step} image {n} is no shift of its digit"));
            if shift != (0, 0) {
                moved += 1;
            }
        }
    }
    assert!(moved > 8 * 50 / 2, "only {moved} of 400 images moved");
}

#[test]
fn augmentation_is_reproducible_from_the_seed() {
    let data = subset(&Dataset::sample(), 200, 10);
    let a = train_recording(&data, 5, 2);
    let b = train_recording(&data, 5, 2);
    assert_eq!(a.images, b.images);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.params, b.params, "same seed, same weights bit for bit");

    let c = train_recording(&data, 6, 2);
    assert_ne!(a.images, c.images, "another seed, other shifts");
    // Without augmentation the network sees exactly the training digits.
    let plain = train_recording(&data, 5, 0);
    for batch in &plain.images {
        for image in batch.outer_iter() {
            assert!(
                data.train_images
                    .outer_iter()
                    .any(|d| d.into_dyn() == image)
            );
        }
    }
}

// ---------------------------------------------------------------- the experiments, tiny

#[test]
fn a_fully_connected_net_learns_the_same_from_shuffled_pixels() {
    // Shuffle the pixels and the rows of the first weights alike: the fully connected net
    // trains to the same predictions (up to the order of float sums), so it cannot tell.
    let data = subset(&Dataset::sample(), 300, 200);
    let p = pixel_permutation(784, 11);
    let shuffled = permute_dataset(&data, &p);

    let mut plain_net = Net::FullyConnected.build(4).unwrap();
    let mut shuffled_net = plain_net.clone();
    {
        let w1 = plain_net.params()["W1"].clone();
        let w1 = w1.into_dimensionality::<ndarray::Ix2>().unwrap();
        let mut params = shuffled_net.params_mut();
        params
            .get_mut("W1")
            .unwrap()
            .assign(&w1.select(Axis(0), &p).into_dyn());
    }
    for (net, set) in [(&mut plain_net, &data), (&mut shuffled_net, &shuffled)] {
        let mut trainer = Trainer {
            epochs: 2,
            seed: 1,
            eval_subset: Some(10),
            show_progress: false,
            ..Trainer::default()
        };
        trainer.fit(net, set).unwrap();
    }
    let a = plain_net.predict(data.test_images.view());
    let b = shuffled_net.predict(shuffled.test_images.view());
    let largest = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff < 1e-3 * largest,
        "scores differ by {diff} (largest {largest})"
    );
}

#[test]
fn shift_curve_measures_the_moved_test_digits() {
    let data = subset(&Dataset::sample(), 0, 100);
    let mut net = Net::ConvMaxPooling.build(0).unwrap();
    let curve = shift_curve(&mut net, &data.test_images, &data.test_labels, 2);
    assert_eq!(curve.len(), 3);
    // Two pixels left, built here with a plain loop over the pixels.
    let mut left = Array4::<f32>::zeros(data.test_images.raw_dim());
    for ((n, c, i, j), v) in left.indexed_iter_mut() {
        if j + 2 < 28 {
            *v = data.test_images[[n, c, i, j + 2]];
        }
    }
    let expected = net.accuracy(left.view(), data.test_labels.view(), 100);
    assert_eq!(
        curve[2][1], expected,
        "directions are right, left, down, up"
    );
    assert_eq!(curve[0], [curve[0][0]; 4]);
}

#[test]
fn experiments_give_one_number_per_seed_shift_and_direction() {
    let data = subset(&Dataset::sample(), 200, 60);
    let training = Training {
        epochs: 1,
        seeds: vec![0, 1],
        ..Training::default()
    };

    let r = shuffled_pixels(&data, &training, 7).unwrap();
    for (_, _, values) in r.cases() {
        assert_eq!(values.len(), 2);
        assert!(values.iter().all(|&a| (0.0..=1.0).contains(&a)));
    }
    assert_eq!(r.tsv_rows().len(), 8);
    assert_eq!(
        TSV_HEADER.split('\t').count(),
        r.tsv_rows()[0].split('\t').count()
    );

    let r = shifted_test_digits(
        &data,
        &training,
        &[Net::FullyConnected, Net::ConvAvgPooling],
        2,
    )
    .unwrap();
    assert_eq!(r.curves.len(), 4);
    assert!(r.curves.iter().all(|c| c.accuracy.len() == 3));
    assert_eq!(r.tsv_rows("2").len(), 4 * (1 + 4 * 2));
    assert_eq!(r.mean_curve(Net::FullyConnected, 0).len(), 3);
    assert!(r.mean_curve(Net::ConvNoPooling, 0).is_empty());

    let training = Training {
        seeds: vec![3],
        ..training
    };
    let r = learned_robustness(&data, &training, 2, 1).unwrap();
    assert_eq!(
        r.runs(),
        [(Net::ConvMaxPooling, 0), (Net::ConvMaxPooling, 2)]
    );
    // Same seed, same order of digits: without augmentation it is experiment 2's network.
    let plain = shifted_test_digits(&data, &training, &[Net::ConvMaxPooling], 1).unwrap();
    assert_eq!(plain.curves[0].accuracy, r.curves[0].accuracy);
}

#[test]
fn no_seeds_is_an_error() {
    let data = subset(&Dataset::sample(), 10, 10);
    let training = Training {
        seeds: vec![],
        ..Training::default()
    };
    assert!(shuffled_pixels(&data, &training, 0).is_err());
}
