//! Saving and loading network parameters as safetensors: bit-exact round trips, a file
//! layout checked by reading the raw bytes by hand, an error (never a panic) for every kind
//! of bad file, and ten thousand damaged files fed to the loader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cnn_from_scratch::full_cnn::params_io::{ParamsError, load_params, save_params};
use cnn_from_scratch::full_cnn::{
    Init, Network, Params, SimpleConvNetConfig, deep_conv_net, mlp, simple_conv_net,
};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-params-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn book_net(seed: u64) -> Network {
    simple_conv_net(&SimpleConvNetConfig::default(), seed).unwrap()
}

/// The book's network with biases that are not zero, some of them awkward values whose
/// bits must survive too: negative zero, a subnormal, the largest finite, infinity, NaN.
fn trained_looking_net(seed: u64) -> Network {
    let mut net = book_net(seed);
    let mut params = net.params_mut();
    let b1 = params.get_mut("b1").unwrap();
    b1.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as f32 * 0.37 - 5.0);
    let b2 = params.get_mut("b2").unwrap();
    b2[[0]] = -0.0;
    b2[[1]] = f32::MIN_POSITIVE / 8.0;
    b2[[2]] = f32::MAX;
    b2[[3]] = f32::NEG_INFINITY;
    b2[[4]] = f32::from_bits(0x7fc0_1234); // a NaN with a payload
    params.get_mut("b3").unwrap()[[9]] = std::f32::consts::PI;
    net
}

fn bits(params: &Params) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    params
        .named()
        .into_iter()
        .map(|(name, t)| {
            (
                name.to_string(),
                t.shape().to_vec(),
                t.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn round_trip_is_bit_exact() {
    let net = trained_looking_net(3);
    let path = temp_file("round_trip.safetensors");
    save_params(&path, &net).unwrap();
    let mut loaded = book_net(4);
    load_params(&path, &mut loaded).unwrap();
    assert_eq!(bits(&loaded.params()), bits(&net.params()));

    // Saving the loaded parameters again gives the same bytes.
    let again = temp_file("round_trip_again.safetensors");
    save_params(&again, &loaded).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn round_trip_of_another_configuration() {
    let config = SimpleConvNetConfig {
        input: (3, 12, 12),
        filter_num: 4,
        filter_size: 3,
        pad: 1,
        stride: 1,
        hidden: 7,
        classes: 5,
        ..Default::default()
    };
    let net = simple_conv_net(&config, 11).unwrap();
    let path = temp_file("other_config.safetensors");
    save_params(&path, &net).unwrap();
    let mut loaded = simple_conv_net(&config, 12).unwrap();
    load_params(&path, &mut loaded).unwrap();
    assert_eq!(bits(&loaded.params()), bits(&net.params()));
    assert_eq!(loaded.params()["W1"].shape(), &[4, 3, 3, 3]);
}

#[test]
fn round_trip_of_the_other_networks_with_their_architecture() {
    for (what, net, mut fresh) in [
        (
            "mlp",
            mlp(&[784, 50, 10], Init::He, 1).unwrap(),
            mlp(&[784, 50, 10], Init::He, 2).unwrap(),
        ),
        ("deep", deep_conv_net(1).unwrap(), deep_conv_net(2).unwrap()),
    ] {
        let path = temp_file(&format!("{what}.safetensors"));
        save_params(&path, &net).unwrap();
        load_params(&path, &mut fresh).unwrap();
        assert_eq!(bits(&fresh.params()), bits(&net.params()), "{what}");
        // The architecture travels in the metadata.
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8_lossy(&bytes[8..8 + header_len]).to_string();
        assert!(
            header.contains(r#"\"layers\":[\"Affine 784 -> 50\""#) || what != "mlp",
            "{header}"
        );
        assert!(header.contains("Dropout 0.5") || what != "deep", "{header}");
    }
}

#[test]
fn loading_into_another_architecture_names_the_tensor_and_both_shapes() {
    // An MLP's file into SimpleConvNet: W1 is (784, 100) there, (30, 1, 5, 5) here.
    let path = temp_file("mlp_into_cnn.safetensors");
    save_params(&path, &mlp(&[784, 100, 10], Init::He, 0).unwrap()).unwrap();
    let mut net = book_net(0);
    let before = net.params();
    match load_params(&path, &mut net).unwrap_err() {
        ParamsError::WrongShape {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "W1");
            assert_eq!(expected, vec![30, 1, 5, 5]);
            assert_eq!(found, vec![784, 100]);
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
    assert_eq!(
        net.params(),
        before,
        "a failed load leaves the network unchanged"
    );
}

/// Reads the file as the safetensors specification describes it, without the crate:
/// 8 bytes little-endian header length, a JSON header, then the raw data. The JSON is
/// checked by searching for the entries a reader (numpy, torch) relies on.
#[test]
fn file_layout_follows_the_safetensors_format() {
    let net = trained_looking_net(5);
    let params = net.params();
    let path = temp_file("layout.safetensors");
    save_params(&path, &net).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    let expected_sizes = [30 * 25, 30, 4320 * 100, 100, 100 * 10, 10];
    assert_eq!(data.len(), 4 * expected_sizes.iter().sum::<usize>());

    for (name, shape) in [
        ("W1", "[30,1,5,5]"),
        ("b1", "[30]"),
        ("W2", "[4320,100]"),
        ("b2", "[100]"),
        ("W3", "[100,10]"),
        ("b3", "[10]"),
    ] {
        let entry = format!(r#""{name}":{{"dtype":"F32","shape":{shape},"data_offsets":["#);
        assert!(header.contains(&entry), "no {entry} in header {header}");
    }
    // The configuration, as a JSON string inside the JSON header.
    let config = r#""__metadata__":{"config":"{\"input\":[1,28,28],\"filter_num\":30,\"filter_size\":5,\"pad\":0,\"stride\":1,\"pool\":2,\"hidden\":100,\"classes\":10}"}"#;
    assert!(header.contains(config), "no {config} in header {header}");

    // Find W1's offsets in the header and compare its bytes with the values, row-major,
    // little-endian.
    let start = header.find(r#""W1":"#).unwrap();
    let offsets = &header[start..];
    let offsets = &offsets[offsets.find("data_offsets\":[").unwrap() + 15..];
    let offsets: Vec<usize> = offsets[..offsets.find(']').unwrap()]
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let w1_bytes = &data[offsets[0]..offsets[1]];
    let mut expected = Vec::new();
    for f in 0..30 {
        for i in 0..5 {
            for j in 0..5 {
                expected.extend_from_slice(&params["W1"][[f, 0, i, j]].to_le_bytes());
            }
        }
    }
    assert_eq!(w1_bytes, expected.as_slice());
}

#[test]
fn missing_file_is_an_io_error() {
    let path = temp_file("does_not_exist.safetensors");
    let err = load_params(&path, &mut book_net(0)).unwrap_err();
    assert!(matches!(err, ParamsError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does_not_exist.safetensors"),
        "{err}"
    );
}

#[test]
fn corrupt_files_are_errors_not_panics() {
    let mut net = book_net(0);
    let good_path = temp_file("good.safetensors");
    save_params(&good_path, &trained_looking_net(1)).unwrap();
    let good = std::fs::read(&good_path).unwrap();

    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut bad_json = good.clone();
    bad_json[8] = b'[';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        (
            "text",
            b"these are not the tensors you are looking for".to_vec(),
        ),
        ("truncated data", good[..good.len() - 100].to_vec()),
        ("truncated header", good[..20].to_vec()),
        ("huge header length", huge_header),
        ("header not JSON", bad_json),
    ];
    for (what, bytes) in cases {
        let path = temp_file(&format!("corrupt_{}.safetensors", what.replace(' ', "_")));
        std::fs::write(&path, &bytes).unwrap();
        match load_params(&path, &mut net) {
            Err(ParamsError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{what}: expected a Corrupt error, got {other:?}"),
        }
    }
}

/// Writes a file with the given tensors (name, dtype, shape) filled with zeros, as
/// another program might.
fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>)]) {
    let buffers: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dtype, shape)| vec![0u8; shape.iter().product::<usize>() * dtype.bitsize() / 8])
        .collect();
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .zip(&buffers)
        .map(|((name, dtype, shape), data)| {
            (
                name.to_string(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn book_tensors() -> Vec<(&'static str, Dtype, Vec<usize>)> {
    vec![
        ("W1", Dtype::F32, vec![30, 1, 5, 5]),
        ("b1", Dtype::F32, vec![30]),
        ("W2", Dtype::F32, vec![4320, 100]),
        ("b2", Dtype::F32, vec![100]),
        ("W3", Dtype::F32, vec![100, 10]),
        ("b3", Dtype::F32, vec![10]),
    ]
}

#[test]
fn a_file_without_metadata_written_elsewhere_loads() {
    let path = temp_file("foreign.safetensors");
    write_tensors(&path, &book_tensors());
    let mut net = book_net(0);
    load_params(&path, &mut net).unwrap();
    let params = net.params();
    assert_eq!(params["W2"].shape(), &[4320, 100]);
    assert!(params["W2"].iter().all(|&v| v == 0.0));
}

#[test]
fn missing_tensor_is_named() {
    let path = temp_file("missing_b2.safetensors");
    let tensors: Vec<_> = book_tensors().into_iter().filter(|t| t.0 != "b2").collect();
    write_tensors(&path, &tensors);
    let err = load_params(&path, &mut book_net(0)).unwrap_err();
    match &err {
        ParamsError::MissingTensor { name, .. } => assert_eq!(name, "b2"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    assert!(err.to_string().contains("b2"), "{err}");
}

#[test]
fn wrong_dtype_is_named() {
    let path = temp_file("f64_w3.safetensors");
    let mut tensors = book_tensors();
    tensors[4].1 = Dtype::F64;
    write_tensors(&path, &tensors);
    let err = load_params(&path, &mut book_net(0)).unwrap_err();
    match &err {
        ParamsError::WrongDtype { name, found, .. } => {
            assert_eq!((name.as_str(), found.as_str()), ("W3", "F64"))
        }
        other => panic!("expected WrongDtype, got {other:?}"),
    }
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    // Saved from a net with 20 filters, loaded as the book's net with 30.
    let small = SimpleConvNetConfig {
        filter_num: 20,
        ..Default::default()
    };
    let path = temp_file("twenty_filters.safetensors");
    save_params(&path, &simple_conv_net(&small, 0).unwrap()).unwrap();
    let err = load_params(&path, &mut book_net(0)).unwrap_err();
    match &err {
        ParamsError::WrongShape {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "W1");
            assert_eq!(expected, &vec![30, 1, 5, 5]);
            assert_eq!(found, &vec![20, 1, 5, 5]);
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("W1")
            && message.contains("[30, 1, 5, 5]")
            && message.contains("[20, 1, 5, 5]"),
        "{message}"
    );
}

#[test]
fn a_different_configuration_with_the_same_shapes_is_reported() {
    // 24x24 inputs padded by 2 give the same 24x24 feature maps as 28x28 inputs without
    // padding, so every tensor has the same shape; the metadata still tells them apart.
    let saved = SimpleConvNetConfig::default();
    let asked = SimpleConvNetConfig {
        input: (1, 24, 24),
        pad: 2,
        ..Default::default()
    };
    let mut asked_net = simple_conv_net(&asked, 0).unwrap();
    let shapes = |p: Params| -> Vec<Vec<usize>> {
        p.named().iter().map(|(_, t)| t.shape().to_vec()).collect()
    };
    assert_eq!(shapes(asked_net.params()), shapes(book_net(0).params()));
    let path = temp_file("pad.safetensors");
    assert_eq!(saved, SimpleConvNetConfig::default());
    save_params(&path, &trained_looking_net(2)).unwrap();
    match load_params(&path, &mut asked_net).unwrap_err() {
        ParamsError::WrongConfig {
            expected, found, ..
        } => {
            assert!(
                expected.contains(r#""input":[1,24,24]"#) && expected.contains(r#""pad":2"#),
                "{expected}"
            );
            assert!(
                found.contains(r#""input":[1,28,28]"#) && found.contains(r#""pad":0"#),
                "{found}"
            );
        }
        other => panic!("expected WrongConfig, got {other:?}"),
    }
}

#[test]
fn unwritable_path_is_an_io_error() {
    let path = temp_file("no_such_dir").join("params.safetensors");
    let err = save_params(&path, &trained_looking_net(0)).unwrap_err();
    assert!(matches!(err, ParamsError::Io { .. }), "{err:?}");
}

/// A small xorshift generator, so the damage is reproducible without depending on the
/// crate's own random numbers.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Ten thousand damaged parameter files (bytes flipped, set to digits or quotes,
/// truncated, spliced, header length rewritten) go through the loader: each one loads or
/// gives an error, never a panic, and a failed load leaves the network as it was.
#[test]
fn ten_thousand_damaged_files_never_panic() {
    let small = SimpleConvNetConfig {
        input: (1, 8, 8),
        filter_num: 2,
        filter_size: 3,
        hidden: 4,
        classes: 3,
        ..Default::default()
    };
    let source = simple_conv_net(&small, 1).unwrap();
    let good_path = temp_file("fuzz_good.safetensors");
    save_params(&good_path, &source).unwrap();
    let good = std::fs::read(&good_path).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut net = simple_conv_net(&small, 2).unwrap();
    let before = net.params();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let path = temp_file("fuzz.safetensors");
    let (mut loaded, mut errors) = (0, 0);
    for case in 0..10_000 {
        let mut bytes = good.clone();
        match case % 6 {
            0 => bytes.truncate(rng.below(good.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                // Inside the JSON header: digits and punctuation that keep it almost valid.
                let i = 8 + rng.below(header_len);
                let symbols = b"0123456789\",:[]{}e-";
                bytes[i] = symbols[rng.below(symbols.len())];
            }
            3 => {
                let len = rng.next() % (1 << 20);
                bytes[..8].copy_from_slice(&len.to_le_bytes());
            }
            4 => {
                let (a, b) = (rng.below(bytes.len()), rng.below(bytes.len()));
                let (a, b) = (a.min(b), a.max(b));
                bytes.drain(a..b);
            }
            _ => {
                let i = rng.below(bytes.len());
                let extra: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                bytes.splice(i..i, extra);
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        match load_params(&path, &mut net) {
            Ok(()) => {
                loaded += 1;
                net.set_params(&before).unwrap();
            }
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
                assert_eq!(bits(&net.params()), bits(&before), "case {case}: {e}");
            }
        }
    }
    eprintln!("damaged files: {loaded} loaded (damage in the numbers), {errors} refused");
    assert_eq!(loaded + errors, 10_000);
    assert!(errors > 5_000, "most damage must be caught: {errors}");
}
