//! Section 11: train SimpleConvNet and look at what it learned.

use std::error::Error;

use cnn_from_scratch::batching::conv_forward_im2col;
use cnn_from_scratch::data::{Dataset, Source};
use cnn_from_scratch::data::{mnist_search_dirs, mnist_standard_files};
use cnn_from_scratch::full_cnn::params_io::save_params;
use cnn_from_scratch::full_cnn::trainer::{Trainer, evaluate};
use cnn_from_scratch::full_cnn::{Network, SimpleConvNetConfig, argmax_rows, simple_conv_net};
use cnn_from_scratch::viz;
use ndarray::{Array2, Array4, Axis, s};

use crate::output::Output;
use crate::sections::heading;

/// Training and test images used by `--quick`.
const QUICK_TRAIN: usize = 2_000;
const QUICK_TEST: usize = 500;
/// Largest number of misclassified digits drawn.
const MISTAKES_SHOWN: usize = 30;

/// The first `train` training and `test` test images of `data`.
fn subset(data: Dataset, train: usize, test: usize) -> Dataset {
    let train = train.min(data.train_labels.len());
    let test = test.min(data.test_labels.len());
    Dataset {
        name: format!("{} (first {train} train / {test} test images)", data.name),
        train_images: data.train_images.slice(s![..train, .., .., ..]).to_owned(),
        train_labels: data.train_labels.slice(s![..train]).to_owned(),
        test_images: data.test_images.slice(s![..test, .., .., ..]).to_owned(),
        test_labels: data.test_labels.slice(s![..test]).to_owned(),
        class_names: data.class_names,
    }
}

/// The sample's 1,000 test digits are easy ones: say what the same network scores on the
/// 10,000 digits of the real MNIST test set, measured now if the files are on disk.
fn full_mnist_test(net: &mut Network) {
    let on_disk = mnist_search_dirs()
        .into_iter()
        .find(|dir| mnist_standard_files(dir).is_ok());
    match on_disk.map(|dir| Dataset::load_dir(&dir, "MNIST")) {
        Some(Ok(mnist)) => {
            let n = mnist.test_labels.len();
            let (_, acc) = evaluate(net, &mnist.test_images, &mnist.test_labels, n);
            println!(
                "The sample's test digits are easy ones. On the {n} digits of the real MNIST test set \
                 (found on disk) the same network scores {:.2}%.",
                100.0 * acc
            );
        }
        _ => println!(
            "The sample's test digits are easy ones: on the 10,000 digits of the real MNIST test set \
             the same 20 epochs score about {FULL_TEST_MEASURED} (measured with MNIST_DIR set; the book's \
             recipe on all 60,000 training digits reaches about 99%)."
        ),
    }
}

/// Measured: seed 0, 20 epochs on the 4,000-digit sample, tested on full MNIST.
const FULL_TEST_MEASURED: &str = "95.8%";

/// Predicted class of every image, a few hundred at a time.
fn predict_all(net: &mut Network, images: &Array4<f32>) -> Vec<usize> {
    let n = images.dim().0;
    (0..n)
        .step_by(500)
        .flat_map(|start| {
            let end = (start + 500).min(n);
            argmax_rows(&net.predict(images.slice(s![start..end, .., .., ..])))
        })
        .collect()
}

pub fn section11_train(
    out: &mut Output,
    data: Dataset,
    source: Source,
    epochs: usize,
    seed: u64,
    quick: bool,
) -> Result<(), Box<dyn Error>> {
    heading(11, "Implementing the CNN: train it", "CNN の実装");
    let mut data = data;
    if quick {
        data = subset(data, QUICK_TRAIN, QUICK_TEST);
    }
    let (_, c, h, w) = data.train_images.dim();
    let config = SimpleConvNetConfig {
        input: (c, h, w),
        ..SimpleConvNetConfig::default()
    };
    let mut net = simple_conv_net(&config, seed)?;
    println!(
        "Training on {}: {} training / {} test images, {epochs} epoch(s), mini-batches of 100, Adam (lr 0.001), seed {seed}.",
        data.name,
        data.train_labels.len(),
        data.test_labels.len()
    );
    out.picture(
        "11_filters_before.png",
        "§11 SimpleConvNet's 30 first-layer 5x5 filters before training: random noise",
        viz::filter_grid(
            "First-layer filters before training (30 x 5x5, random)",
            net.params()["W1"].view().into_dimensionality()?,
        ),
    )?;

    let mut trainer = Trainer {
        epochs,
        seed,
        show_progress: true,
        // Full MNIST: measure each epoch on 10,000 images, not all 70,000.
        eval_subset: (source != Source::Sample).then_some(10_000),
        ..Trainer::default()
    };
    println!("epoch   train loss   train acc   test loss   test acc   seconds");
    let history = trainer.fit_reporting(&mut net, &data, |e| {
        println!(
            "{:>5}   {:>10.4}   {:>8.2}%   {:>9.4}   {:>7.2}%   {:>7.1}",
            e.epoch,
            e.train_loss,
            100.0 * e.train_acc,
            e.test_loss,
            100.0 * e.test_acc,
            e.seconds
        );
        std::io::Write::flush(&mut std::io::stdout()).ok();
    })?;

    // Everything below looks at the trained net.
    let predicted = predict_all(&mut net, &data.test_images);
    let labels: Vec<usize> = data.test_labels.iter().map(|&l| l as usize).collect();
    let correct = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, t)| p == t)
        .count();
    println!(
        "Test accuracy on all {} test images: {:.2}% ({} wrong)",
        labels.len(),
        100.0 * correct as f64 / labels.len() as f64,
        labels.len() - correct
    );
    if source == Source::Sample && !quick {
        full_mnist_test(&mut net);
    }

    out.picture(
        "11_filters_after.png",
        "§11 the same 30 filters after training: edge and blob detectors",
        viz::filter_grid(
            "First-layer filters after training (30 x 5x5)",
            net.params()["W1"].view().into_dimensionality()?,
        ),
    )?;

    let params = net.params();
    // A 7 (or, for other data, the first test image): strokes in several directions.
    let pick = data.test_labels.iter().position(|&l| l == 7).unwrap_or(0);
    let first = data.test_images.slice(s![pick..pick + 1, .., .., ..]);
    let maps = conv_forward_im2col(
        first,
        params["W1"].view().into_dimensionality()?,
        params["b1"].view().into_dimensionality()?,
        config.stride,
        config.pad,
    )?
    .index_axis_move(Axis(0), 0)
    .mapv(|v| v.max(0.0));
    let label = data.class_names[data.test_labels[pick] as usize];
    out.picture(
        "11_feature_maps.png",
        "§11 the 30 feature maps (after ReLU) the trained first layer makes from one test image",
        viz::feature_maps(
            &format!(
                "Trained first layer on a test image ({label}): 30 feature maps {:?} after ReLU",
                maps.dim()
            ),
            maps.view(),
        ),
    )?;

    let train_acc: Vec<f32> = history.epochs.iter().map(|e| e.train_acc).collect();
    let test_acc: Vec<f32> = history.epochs.iter().map(|e| e.test_acc).collect();
    out.picture(
        "11_training_curves.png",
        "§11 loss of every mini-batch step and train/test accuracy after every epoch",
        viz::training_curves(
            &format!("SimpleConvNet on {}", data.name),
            &history.step_losses,
            &train_acc,
            &test_acc,
        ),
    )?;

    let mut counts = Array2::<usize>::zeros((10, 10));
    for (&t, &p) in labels.iter().zip(&predicted) {
        counts[[t, p]] += 1;
    }
    out.picture(
        "11_confusion_matrix.png",
        "§11 confusion matrix on the test images (rows: true class, columns: predicted)",
        viz::confusion_matrix(
            &format!("Confusion matrix, {} test images", labels.len()),
            counts.view(),
            &data.class_names,
        ),
    )?;

    let wrong: Vec<usize> = (0..labels.len())
        .filter(|&i| predicted[i] != labels[i])
        .collect();
    if wrong.is_empty() {
        println!("No test image misclassified: no picture of mistakes.");
    } else {
        let shown = &wrong[..wrong.len().min(MISTAKES_SHOWN)];
        // Digits have one-letter names; clothes ("Ankle boot → Sneaker") need wider cells.
        let short_names = data.class_names.iter().all(|n| n.len() <= 2);
        let cols = if short_names { 10 } else { 6 };
        let images = data.test_images.select(Axis(0), shown);
        let captions: Vec<String> = shown
            .iter()
            .map(|&i| {
                format!(
                    "{} → {}",
                    data.class_names[labels[i]], data.class_names[predicted[i]]
                )
            })
            .collect();
        out.picture(
            "11_misclassified.png",
            "§11 test images the trained net got wrong, captioned true -> predicted",
            viz::image_grid(
                &format!(
                    "Misclassified: {} of {} wrong, the first {} shown (true → predicted)",
                    wrong.len(),
                    labels.len(),
                    shown.len()
                ),
                images.view(),
                &captions,
                cols,
            ),
        )?;
    }

    let params_file = "simple_conv_net.safetensors";
    save_params(out.path(params_file), &net)?;
    out.record(
        params_file,
        "§11 the trained parameters W1 b1 W2 b2 W3 b3 (safetensors, config in the metadata)",
    );
    println!("  wrote {params_file}");
    Ok(())
}
