//! The MNIST sample embedded in the crate: counts, classes, pixel statistics, and that it
//! is exactly the CSV it was derived from.

use std::io::Read;
use std::path::PathBuf;

use cnn_from_scratch::data::{Dataset, Source, mini_batches};
use ndarray::{Axis, s};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn per_class(labels: &ndarray::Array1<u8>) -> [usize; 10] {
    let mut counts = [0; 10];
    for &l in labels {
        counts[usize::from(l)] += 1;
    }
    counts
}

#[test]
fn sample_has_4000_train_and_1000_test_images_stratified() {
    let data = Dataset::load(Source::Sample).expect("the sample always loads");
    assert_eq!(data.name, "MNIST sample");
    assert_eq!(data.train_images.shape(), &[4000, 1, 28, 28]);
    assert_eq!(data.test_images.shape(), &[1000, 1, 28, 28]);
    assert_eq!(per_class(&data.train_labels), [400; 10]);
    assert_eq!(per_class(&data.test_labels), [100; 10]);
    assert_eq!(data.class_names[7], "7");
}

#[test]
fn sample_pixels_look_like_real_digits() {
    let data = Dataset::sample();
    for images in [&data.train_images, &data.test_images] {
        let min = images.iter().cloned().fold(f32::INFINITY, f32::min);
        let max = images.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((min, max), (0.0, 1.0));
        // MNIST's mean intensity is about 0.13: mostly black background, thin strokes.
        let mean = images.mean().unwrap();
        assert!((0.11..0.15).contains(&mean), "mean intensity {mean}");
        // About 80% of pixels are pure background.
        let zeros = images.iter().filter(|&&p| p == 0.0).count() as f32 / images.len() as f32;
        assert!((0.7..0.9).contains(&zeros), "background fraction {zeros}");
        // The border of a centred digit is (almost) empty, the centre is not.
        let border = images.slice(s![.., .., 0, ..]).mean().unwrap();
        let centre = images.slice(s![.., .., 10..18, 10..18]).mean().unwrap();
        assert!(
            border < 0.01 && centre > 0.3,
            "border {border}, centre {centre}"
        );
    }
}

#[test]
fn sample_is_identical_to_the_csv_it_came_from() {
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist_5k.csv.gz");
    if !csv.exists() {
        println!(
            "SKIP: {} not found (expected outside this repo's workspace)",
            csv.display()
        );
        return;
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&csv).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let rows: Vec<Vec<u8>> = text
        .lines()
        .map(|line| line.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 5000);

    // The documented split, recomputed here: within each class in CSV order, positions
    // 4, 9, 14, ... go to test; each set is stored round-robin over the classes.
    let mut train = vec![Vec::new(); 10];
    let mut test = vec![Vec::new(); 10];
    let mut seen = [0usize; 10];
    for row in &rows {
        let label = usize::from(row[784]);
        let set = if seen[label] % 5 == 4 {
            &mut test
        } else {
            &mut train
        };
        set[label].push(row);
        seen[label] += 1;
    }
    let interleave = |per_class: &Vec<Vec<&Vec<u8>>>| -> Vec<Vec<u8>> {
        let n = per_class[0].len();
        (0..n)
            .flat_map(|i| (0..10).map(move |c| per_class[c][i].clone()))
            .collect()
    };

    let data = Dataset::sample();
    for (expected, images, labels) in [
        (interleave(&train), &data.train_images, &data.train_labels),
        (interleave(&test), &data.test_images, &data.test_labels),
    ] {
        assert_eq!(expected.len(), labels.len());
        for (i, row) in expected.iter().enumerate() {
            assert_eq!(labels[i], row[784], "label {i}");
            let image = images.index_axis(Axis(0), i);
            let bytes: Vec<u8> = image.iter().map(|&p| (p * 255.0).round() as u8).collect();
            assert_eq!(&bytes[..], &row[..784], "image {i}");
        }
    }
}

#[test]
fn mini_batches_cover_every_image_once_and_repeat_with_the_seed() {
    let data = Dataset::sample();
    let (images, labels) = (&data.test_images, &data.test_labels);
    let batches: Vec<_> =
        mini_batches(images, labels, 300, &mut StdRng::seed_from_u64(1)).collect();
    assert_eq!(
        batches.iter().map(|(_, y)| y.len()).collect::<Vec<_>>(),
        [300, 300, 300, 100]
    );

    // Every image appears exactly once, with its own label: match each batch image to its
    // index in the data set by content (the sample has no duplicate digits in a class).
    let mut used = vec![false; labels.len()];
    for (x, y) in &batches {
        assert_eq!(x.shape()[1..], [1, 28, 28]);
        for (image, &label) in x.outer_iter().zip(y) {
            let i = (0..labels.len())
                .find(|&i| !used[i] && images.index_axis(Axis(0), i) == image)
                .expect("a batch image comes from the data set");
            assert_eq!(labels[i], label);
            used[i] = true;
        }
    }
    assert!(used.iter().all(|&u| u));

    // The order is shuffled, and the same seed gives the same order.
    let first_labels = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        mini_batches(images, labels, 300, &mut rng)
            .next()
            .unwrap()
            .1
    };
    assert_eq!(first_labels(1), batches[0].1);
    assert_ne!(first_labels(1), first_labels(2));
    assert_ne!(batches[0].1, labels.slice(s![..300]));
}
