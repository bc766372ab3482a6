//! Everything the playground does with a network, in one place: make one (train it on the
//! embedded sample, or load saved parameters), ask it for class probabilities, and open it
//! up for the first layer's filters and feature maps.
//!
//! The rest of the playground only sees [`Model`] and plain numbers, so a second kind of
//! network (the fully connected net) is one more constructor here and a `None` from
//! [`Model::maps`] and [`Model::filters`]: it has no convolution layer to look into.

use std::path::Path;
use std::time::Instant;

use cnn_from_scratch::batching::conv_forward_im2col;
use cnn_from_scratch::data::Dataset;
use cnn_from_scratch::full_cnn::params_io::load_params;
use cnn_from_scratch::full_cnn::simple_conv_net::argmax_rows;
use cnn_from_scratch::full_cnn::trainer::{Trainer, evaluate};
use cnn_from_scratch::full_cnn::{Adam, SimpleConvNet, SimpleConvNetConfig, softmax};
use cnn_from_scratch::pooling::max_pool;
use ndarray::{Array1, Array3, Array4, Axis};

/// Side of an input image: MNIST's 28 pixels.
pub const SIDE: usize = 28;
/// Pixels of one input image, row-major.
pub const PIXELS: usize = SIDE * SIDE;
/// One grey image, row-major, every value in `0..=1` (0 background, 1 ink).
pub type Pixels = [f32; PIXELS];

/// How to train the network when no saved parameters are given.
#[derive(Debug, Clone, Copy)]
pub struct TrainSettings {
    /// Passes over the sample's 4,000 training digits.
    pub epochs: usize,
    /// Seed of the initial weights and of the shuffling.
    pub seed: u64,
    /// Draw the progress bar on the terminal.
    pub show_progress: bool,
}

impl TrainSettings {
    /// Smaller mini-batches and a larger learning rate than the book's (100, 0.001): twice the
    /// steps per epoch and bigger ones, so four epochs on the sample reach ~95% test accuracy
    /// in a few seconds instead of ~91%.
    const BATCH_SIZE: usize = 50;
    const LEARNING_RATE: f32 = 0.002;
}

/// A network the page can talk to, with a name and a line saying where its weights came from.
#[derive(Debug, Clone)]
pub struct Model {
    id: &'static str,
    name: &'static str,
    origin: String,
    net: SimpleConvNet,
}

/// What the network says about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable class.
    pub label: usize,
    /// The scores before softmax, one per class.
    pub scores: Vec<f32>,
    /// Softmax of the scores: the class probabilities, summing to 1.
    pub probabilities: Vec<f32>,
}

/// The first convolution layer's output for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMaps {
    /// After the convolution and ReLU: `(filters, 24, 24)` for the book's network.
    pub conv: Array3<f32>,
    /// After max pooling those: `(filters, 12, 12)`.
    pub pooled: Array3<f32>,
}

impl Model {
    /// Wraps a SimpleConvNet (trained or loaded by the caller).
    pub fn from_simple_conv_net(net: SimpleConvNet, origin: String) -> Model {
        Model {
            id: "simple_conv_net",
            name: "SimpleConvNet",
            origin,
            net,
        }
    }

    /// Trains the book's SimpleConvNet on the sample's training digits.
    pub fn train_simple_conv_net(
        sample: &Dataset,
        settings: TrainSettings,
    ) -> Result<Model, String> {
        let mut net = SimpleConvNet::new(SimpleConvNetConfig::default(), settings.seed)
            .map_err(|e| e.to_string())?;
        let mut trainer = Trainer {
            epochs: settings.epochs,
            batch_size: TrainSettings::BATCH_SIZE,
            seed: settings.seed,
            optimizer: Box::new(Adam::new(TrainSettings::LEARNING_RATE, 0.9, 0.999)),
            // The trainer's own per-epoch evaluation is skipped; the server measures the
            // test accuracy once at the end.
            eval_subset: Some(0),
            show_progress: settings.show_progress,
        };
        let started = Instant::now();
        trainer.fit(&mut net, sample).map_err(|e| e.to_string())?;
        let origin = format!(
            "trained at start: {} epochs on the {} training digits of the {} in {:.1} s",
            settings.epochs,
            sample.train_labels.len(),
            sample.name,
            started.elapsed().as_secs_f64()
        );
        Ok(Model::from_simple_conv_net(net, origin))
    }

    /// Loads SimpleConvNet parameters saved by `examples/train.rs --save FILE`.
    pub fn load_simple_conv_net(path: &Path) -> Result<Model, String> {
        let config = SimpleConvNetConfig::default();
        let params = load_params(path, &config).map_err(|e| e.to_string())?;
        let net = SimpleConvNet::from_params(config, params).map_err(|e| e.to_string())?;
        Ok(Model::from_simple_conv_net(
            net,
            format!("loaded from {}", path.display()),
        ))
    }

    /// Short identifier used in the API's `network` field.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// Name shown on the page.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where the weights came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The layer-by-layer table the network prints.
    pub fn architecture(&self) -> String {
        self.net.architecture()
    }

    /// Fraction of `images` `(N, 1, 28, 28)` classified as their `labels`.
    pub fn accuracy(&mut self, images: &Array4<f32>, labels: &Array1<u8>) -> f32 {
        evaluate(&mut self.net, images, labels, labels.len()).1
    }

    /// The class probabilities for one image: the network's `predict` on a batch of one,
    /// then softmax.
    pub fn probabilities(&mut self, pixels: &Pixels) -> Prediction {
        let scores = self.net.predict(as_batch(pixels).view());
        let label = argmax_rows(&scores)[0];
        let probabilities = softmax(scores.view());
        Prediction {
            label,
            scores: scores.row(0).to_vec(),
            probabilities: probabilities.row(0).to_vec(),
        }
    }

    /// The first layer's filters `(filters, channels, height, width)`, or `None` for a
    /// network without a convolution layer.
    pub fn filters(&self) -> Option<Array4<f32>> {
        Some(self.net.params().w1.clone())
    }

    /// The first layer's feature maps for one image after ReLU, and after max pooling, as
    /// the network computes them on its way to the prediction; `None` for a network without
    /// a convolution layer.
    pub fn maps(&self, pixels: &Pixels) -> Option<FeatureMaps> {
        let config = self.net.config();
        let params = self.net.params();
        let conv = conv_forward_im2col(
            as_batch(pixels).view(),
            params.w1.view(),
            params.b1.view(),
            config.stride,
            config.pad,
        )
        .expect("the network's own settings fit its input")
        .mapv(|v| v.max(0.0));
        let pooled = max_pool(conv.view(), config.pool, config.pool, config.pool, 0)
            .expect("the network's own settings fit its feature maps");
        Some(FeatureMaps {
            conv: conv.index_axis_move(Axis(0), 0),
            pooled: pooled.index_axis_move(Axis(0), 0),
        })
    }
}

/// One image as a batch `(1, 1, 28, 28)`, the shape the network takes.
fn as_batch(pixels: &Pixels) -> Array4<f32> {
    Array4::from_shape_vec((1, 1, SIDE, SIDE), pixels.to_vec()).expect("784 pixels make 28x28")
}
