//! Where the data sets are looked for: `$MNIST_DIR`, `$FASHION_MNIST_DIR`, the cache folder,
//! and `Source::best_available`. Environment variables are process-wide, so everything that
//! sets them lives in this one test, alone in its own test binary.

use std::fs;
use std::path::{Path, PathBuf};

use cnn_from_scratch::data::{
    DIGIT_CLASS_NAMES, DataError, Dataset, FASHION_CLASS_NAMES, Source, mnist_cache_dir,
    mnist_search_dirs, write_idx_images, write_idx_labels,
};
use ndarray::{Array1, Array4};

fn write_tiny_set(dir: &Path, train: usize, test: usize) {
    fs::create_dir_all(dir).unwrap();
    let images = |n| Array4::from_shape_fn((n, 1, 28, 28), |(i, _, r, _)| ((i + r) % 2) as f32);
    let labels = |n| Array1::from_shape_fn(n, |i| (i % 10) as u8);
    write_idx_images(dir.join("train-images-idx3-ubyte.gz"), &images(train)).unwrap();
    write_idx_labels(dir.join("train-labels-idx1-ubyte.gz"), &labels(train)).unwrap();
    write_idx_images(dir.join("t10k-images-idx3-ubyte.gz"), &images(test)).unwrap();
    write_idx_labels(dir.join("t10k-labels-idx1-ubyte.gz"), &labels(test)).unwrap();
}

fn set(name: &str, value: &Path) {
    // SAFETY: this test binary runs a single test, so no other thread reads the environment.
    unsafe { std::env::set_var(name, value) };
}

#[test]
fn search_order_env_vars_and_best_available() {
    let root = std::env::temp_dir().join(format!("cnn-data-sources-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let cache = root.join("cache");
    let empty = root.join("empty");
    fs::create_dir_all(&empty).unwrap();

    // The cache folder follows XDG_CACHE_HOME.
    set("XDG_CACHE_HOME", &cache);
    let cache_dir = cache.join("cnn-from-scratch").join("mnist");
    assert_eq!(mnist_cache_dir(), Some(cache_dir.clone()));

    // Search order: $MNIST_DIR, ./data/mnist, the cache.
    set("MNIST_DIR", &empty);
    assert_eq!(
        mnist_search_dirs(),
        [
            empty.clone(),
            PathBuf::from("data/mnist"),
            cache_dir.clone()
        ]
    );

    // Nothing anywhere (unless this checkout has ./data/mnist): the sample, with a reason.
    if !Path::new("data/mnist").exists() {
        let (source, why) = Source::best_available();
        assert_eq!(source, Source::Sample);
        assert!(
            why.contains("sample") && why.contains(&empty.display().to_string()),
            "{why}"
        );
        // A build without the `download` feature (the notebooks') cannot fetch the files, so
        // loading them is an error naming every folder searched. (With the feature this
        // would go to the network, which the tests do not.)
        if cfg!(not(feature = "download")) {
            match Dataset::load(Source::Mnist) {
                Err(DataError::MnistNotFound { searched }) => {
                    assert_eq!(searched, mnist_search_dirs())
                }
                other => panic!("expected DataError::MnistNotFound, got {other:?}"),
            }
        }
    }

    // Files in the cache folder are found there...
    write_tiny_set(&cache_dir, 3, 2);
    if !Path::new("data/mnist").exists() {
        let (source, why) = Source::best_available();
        assert_eq!(source, Source::Mnist);
        assert!(why.contains(&cache_dir.display().to_string()), "{why}");
    }
    // ... but $MNIST_DIR comes first.
    let mnist_dir = root.join("mnist");
    write_tiny_set(&mnist_dir, 5, 4);
    set("MNIST_DIR", &mnist_dir);
    let (source, why) = Source::best_available();
    assert_eq!(source, Source::Mnist);
    assert!(why.contains(&mnist_dir.display().to_string()), "{why}");
    let data = Dataset::load(Source::Mnist).unwrap();
    assert_eq!(
        (
            data.name.as_str(),
            data.train_labels.len(),
            data.test_labels.len()
        ),
        ("MNIST", 5, 4)
    );
    assert_eq!(data.class_names, DIGIT_CLASS_NAMES);

    // Fashion-MNIST: $FASHION_MNIST_DIR first, with clothing class names.
    let fashion_dir = root.join("fashion");
    write_tiny_set(&fashion_dir, 7, 3);
    set("FASHION_MNIST_DIR", &fashion_dir);
    let data = Dataset::load(Source::FashionMnist).unwrap();
    assert_eq!(data.name, "Fashion-MNIST");
    assert_eq!((data.train_labels.len(), data.test_labels.len()), (7, 3));
    assert_eq!(data.class_names, FASHION_CLASS_NAMES);
    assert_eq!(data.class_names[0], "T-shirt/top");

    // Without it and without Debian's package: an error that says how to install it.
    set("FASHION_MNIST_DIR", &empty);
    if !Path::new("/usr/share/datasets/fashion-mnist").exists() {
        let error = Dataset::load(Source::FashionMnist).unwrap_err();
        assert!(
            matches!(&error, DataError::FashionMnistNotFound { searched } if searched.len() == 2)
        );
        assert!(
            error
                .to_string()
                .contains("apt-get install dataset-fashion-mnist"),
            "{error}"
        );
    }

    fs::remove_dir_all(&root).unwrap();
}
