//! A playground in the browser: draw a digit and watch SimpleConvNet's filters, feature maps
//! and pooling respond.
//!
//! ```text
//! cargo run --release --example playground                 # trains for a few seconds, then serves
//! cargo run --release --example playground -- --params simple_conv_net.safetensors
//! cargo run --release --example playground -- --port 0     # any free port
//! ```
//!
//! Then open the printed address (`http://127.0.0.1:8000/` by default). The page draws with
//! the mouse or a finger; your drawing is turned into a 28x28 input the way MNIST's digits were
//! made (the strokes' bounding box scaled into 20x20, then centred in 28x28 by its centre of
//! mass), and after every stroke it shows the ten class probabilities, the 30 first-layer
//! filters, their 30 feature maps after ReLU and after 2x2 max pooling (the strongest marked),
//! and buttons that shift the input by 1-3 pixels to see how much the maps and the prediction
//! change (the pooling section's shift experiment, live). "A test digit" loads a real digit
//! with its label. Everything is local: one page of plain HTML and JavaScript compiled into
//! this binary, no framework, nothing fetched from elsewhere.
//!
//! Without `--params` the server first trains SimpleConvNet on the embedded sample's 4,000
//! training digits (`--epochs`, default 4: about 95% test accuracy, a few seconds in release
//! mode) with a progress bar. It prints the address only once it is ready to answer, and
//! listens on 127.0.0.1 only, unless `--host` says otherwise (`--host 0.0.0.0` for the LAN).
//!
//! # The JSON API
//!
//! Images are 784 numbers, 28x28 row-major, each in `0..=1` (0 background, 1 ink).
//!
//! - `GET /api/info`: the networks (`id`, `name`, `origin`, `architecture`,
//!   `test_accuracy`, and `filters`: `{"size": [5, 5], "values": [[25 numbers] x 30]}` or
//!   `null` for a network without convolution), `test_digits` (how many), `test_digits_source`,
//!   `max_shift` and `strongest` (how many maps a prediction marks).
//! - `POST /api/predict` with `{"pixels": [784 numbers]}` answers
//!   `{"network": "simple_conv_net", "label": k, "probabilities": [10], "scores": [10]}`.
//!   Optional fields: `"maps": true` adds `"maps": {"conv_size": [24, 24], "pooled_size":
//!   [12, 12], "conv": [[576] x 30], "pooled": [[144] x 30], "strength": [30],
//!   "strongest": [5 indices]}` (ReLU maps, pooled maps, each map's mean and the strongest
//!   first); `"network": "simple_conv_net"` or `"mlp"` (the fully connected net) picks the
//!   network; `"maps"` is `null` for the fully connected net, which has none.
//! - `POST /api/shift` with `{"pixels": [784], "dx": -3..3, "dy": -3..3}` (right and down
//!   are positive) moves the image, answers the moved `pixels`, `before` and `after` (two
//!   predictions, `after` with its maps), `conv_change` and `pooled_change`
//!   (`‖after − before‖ / ‖before‖` of all maps, `null` for a blank image),
//!   `probability_change` (half the summed absolute change of the probabilities, 0..1) and
//!   `label_changed`.
//! - `GET /api/test-digit` (or `?index=N`): `{"index", "label", "source", "pixels"}`, a random
//!   (or the N-th) digit of the test split.
//!
//! ```text
//! curl -s 'localhost:8000/api/test-digit?index=0' | python3 -c 'import json,sys; print(json.dumps({"pixels": json.load(sys.stdin)["pixels"]}))' \
//!   | curl -s -d @- localhost:8000/api/predict
//! ```
//!
//! Errors are one line of JSON, `{"error": "what was wrong"}`, with the status saying which
//! kind: 400 the body is not JSON (NaN and Infinity are not JSON numbers, so they land here),
//! or a malformed HTTP request; 422 JSON of the wrong shape or values (not 784 pixels, a
//! pixel outside 0..1, a missing or unknown field, a shift over 3); 413 a body over 64 KiB;
//! 404 an unknown path (or test digit); 405 a known path with the wrong method (with
//! `Allow`); 411 a chunked body; 408 a request that does not arrive in time; 431 headers over
//! 16 KiB; 503 more than 64 open connections. The server keeps serving after every one.
//!
//! # Why no web framework
//!
//! The page makes a few small requests at a time, so a blocking server with a thread per
//! connection is plenty. The obvious crate for that, `tiny_http` 0.12, takes its body
//! limits on trust: a request that merely *declares* `Content-Length: 1000000000000000`
//! makes it allocate that many bytes when the request is dropped, which aborts the whole
//! process (tried). So the HTTP here is a few hundred lines of `std::net` in [`http`], with every
//! limit in one struct, on top of `httparse` (the request-head parser under hyper and ureq,
//! already built for this crate's downloads); JSON is `serde_json`.
//!
//! Layout: [`model`] is everything done with a network, [`api`] the routes and their
//! checks, [`http`] the transport, `page.html` the page; the tests start the server on port
//! 0 and talk to it over TCP.

mod api;
mod http;
mod model;
#[cfg(test)]
mod tests;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cnn_from_scratch::data::{Dataset, Source};

use crate::api::{App, TestDigits};
use crate::http::Limits;
use crate::model::{Model, TrainSettings};

/// Serve a page to draw digits on and watch SimpleConvNet's filters, feature maps, pooling
/// and prediction respond.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; 127.0.0.1 is this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the address printed says which).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Load SimpleConvNet's parameters from FILE (saved by `examples/train.rs --save FILE`)
    /// instead of training at start.
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
    /// Epochs of training at start on the embedded sample (without --params).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100))]
    epochs: u64,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Do not draw the training progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let message = e.to_string();
            eprintln!("{}", message.lines().next().unwrap_or("bad arguments"));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    // Bind first: a busy port is reported at once, not after the training.
    let listener = TcpListener::bind((args.host.as_str(), args.port)).map_err(|e| {
        format!(
            "cannot listen on {}:{}: {e} (try another --port, or --port 0 for any free one)",
            args.host, args.port
        )
    })?;

    let sample = Dataset::sample();
    let model = match &args.params {
        Some(path) => Model::load_simple_conv_net(path)?,
        None => {
            println!(
                "training SimpleConvNet on the embedded sample ({} epochs; --params FILE loads saved weights instead)",
                args.epochs
            );
            let settings = TrainSettings {
                epochs: args.epochs as usize,
                seed: args.seed,
                show_progress: !args.no_progress,
            };
            Model::train_simple_conv_net(&sample, settings)?
        }
    };
    println!("{}", model.origin());
    // The fully connected net of §1, to compare: no feature maps, and how it takes shifts.
    let fc = Model::train_mlp(
        &sample,
        TrainSettings {
            epochs: args.epochs as usize,
            seed: args.seed,
            show_progress: !args.no_progress,
        },
    )?;
    println!("fully connected net: {}", fc.origin());

    let digits = test_digits(sample);
    let app = Arc::new(App::new(vec![model, fc], digits));
    for (id, accuracy) in app.accuracies() {
        println!("{id}: test accuracy {:.1}%", 100.0 * accuracy);
    }
    let handler = Arc::new(move |request: &http::Request| app.handle(request));
    let running = http::serve(listener, Limits::default(), handler)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    // Printed only now, when requests are answered: scripts wait for this line.
    println!(
        "playground ready at http://{}/ (Ctrl-C stops it)",
        running.addr()
    );
    running.wait();
    Ok(())
}

/// The digits "a test digit" picks from: full MNIST's test set if its files are already on
/// disk (never downloaded here), otherwise the sample's 1,000 test digits.
fn test_digits(sample: Dataset) -> TestDigits {
    let data = match Source::best_available() {
        (Source::Mnist, _) => match Dataset::load(Source::Mnist) {
            Ok(mnist) => mnist,
            Err(e) => {
                eprintln!("MNIST could not be read ({e}); using the sample's test digits");
                sample
            }
        },
        _ => sample,
    };
    TestDigits {
        source: format!("{}, test split", data.name),
        images: data.test_images,
        labels: data.test_labels,
    }
}
