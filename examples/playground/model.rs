//! Everything the playground does with a network, in one place: make one (train it on the
//! embedded sample, or load saved parameters), ask it for class probabilities, and open it
//! up for the first layer's filters and feature maps.
//!
//! The rest of the playground only sees [`Model`] and plain numbers. Two kinds of network
//! are offered: the book's SimpleConvNet and the fully connected net of §1, which gives
//! `None` from [`Model::maps`] and [`Model::filters`]: it has no convolution layer to look
//! into.

use std::any::Any;
use std::path::Path;
use std::time::Instant;

use cnn_from_scratch::batching::conv_forward_im2col;
use cnn_from_scratch::data::Dataset;
use cnn_from_scratch::full_cnn::params_io::load_params;
use cnn_from_scratch::full_cnn::trainer::{Trainer, evaluate};
use cnn_from_scratch::full_cnn::{
    Adam, Convolution, Init, Network, PoolKind, Pooling, SimpleConvNetConfig, argmax_rows, mlp,
    simple_conv_net, softmax,
};
use cnn_from_scratch::pooling::max_pool;
use ndarray::{Array1, Array3, Array4, Axis, Ix1, Ix4};

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
    net: Network,
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
    pub fn from_simple_conv_net(net: Network, origin: String) -> Model {
        Model {
            id: "simple_conv_net",
            name: "SimpleConvNet",
            origin,
            net,
        }
    }

    /// Wraps a fully connected net 784-100-100-10 (trained by the caller).
    pub fn from_mlp(net: Network, origin: String) -> Model {
        Model {
            id: "mlp",
            name: "fully connected 784-100-100-10",
            origin,
            net,
        }
    }

    /// Trains the book's SimpleConvNet on the sample's training digits.
    pub fn train_simple_conv_net(
        sample: &Dataset,
        settings: TrainSettings,
    ) -> Result<Model, String> {
        let net = simple_conv_net(&SimpleConvNetConfig::default(), settings.seed)
            .map_err(|e| e.to_string())?;
        let (net, origin) = train(net, sample, settings)?;
        Ok(Model::from_simple_conv_net(net, origin))
    }

    /// Trains the fully connected net of §1 on the sample's training digits.
    pub fn train_mlp(sample: &Dataset, settings: TrainSettings) -> Result<Model, String> {
        let net = mlp(&[784, 100, 100, 10], Init::He, settings.seed).map_err(|e| e.to_string())?;
        let (net, origin) = train(net, sample, settings)?;
        Ok(Model::from_mlp(net, origin))
    }

    /// Loads SimpleConvNet parameters saved by `examples/train.rs --save FILE`.
    pub fn load_simple_conv_net(path: &Path) -> Result<Model, String> {
        let mut net =
            simple_conv_net(&SimpleConvNetConfig::default(), 0).map_err(|e| e.to_string())?;
        load_params(path, &mut net).map_err(|e| e.to_string())?;
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
        self.first_block()?;
        let w1 = self.net.param("W1")?.to_owned();
        Some(
            w1.into_dimensionality::<Ix4>()
                .expect("a convolution's filters"),
        )
    }

    /// The first convolution and the max pooling after it (Conv, ReLU, Pool), if the
    /// network starts that way.
    fn first_block(&self) -> Option<(&Convolution, &Pooling)> {
        let layers = self.net.layers();
        let conv = (layers.first()?.as_ref() as &dyn Any).downcast_ref::<Convolution>()?;
        let pool = (layers.get(2)?.as_ref() as &dyn Any).downcast_ref::<Pooling>()?;
        (pool.kind == PoolKind::Max).then_some((conv, pool))
    }

    /// The first layer's feature maps for one image after ReLU, and after max pooling, as
    /// the network computes them on its way to the prediction; `None` for a network without
    /// a convolution layer.
    pub fn maps(&self, pixels: &Pixels) -> Option<FeatureMaps> {
        let (conv_layer, pool) = self.first_block()?;
        let conv = conv_forward_im2col(
            as_batch(pixels).view(),
            conv_layer.w.view(),
            conv_layer.b.view().into_dimensionality::<Ix1>().ok()?,
            conv_layer.stride,
            conv_layer.pad,
        )
        .expect("the network's own settings fit its input")
        .mapv(|v| v.max(0.0));
        let pooled = max_pool(conv.view(), pool.pool_h, pool.pool_w, pool.stride, pool.pad)
            .expect("the network's own settings fit its feature maps");
        Some(FeatureMaps {
            conv: conv.index_axis_move(Axis(0), 0),
            pooled: pooled.index_axis_move(Axis(0), 0),
        })
    }
}

/// Trains `net` on the sample with the playground's recipe; returns it and a line saying so.
fn train(
    mut net: Network,
    sample: &Dataset,
    settings: TrainSettings,
) -> Result<(Network, String), String> {
    let mut trainer = Trainer {
        epochs: settings.epochs,
        batch_size: TrainSettings::BATCH_SIZE,
        seed: settings.seed,
        optimizer: Box::new(Adam::new(TrainSettings::LEARNING_RATE, 0.9, 0.999)),
        // The trainer's own per-epoch evaluation is skipped; the server measures the
        // test accuracy once at the end.
        eval_subset: Some(0),
        show_progress: settings.show_progress,
        ..Trainer::default()
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
    Ok((net, origin))
}

/// One image as a batch `(1, 1, 28, 28)`, the shape the network takes.
fn as_batch(pixels: &Pixels) -> Array4<f32> {
    Array4::from_shape_vec((1, 1, SIDE, SIDE), pixels.to_vec()).expect("784 pixels make 28x28")
}
