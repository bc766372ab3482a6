//! The four networks the experiments compare, all for `(1, 28, 28)` digits and 10 classes.

use crate::full_cnn::{
    Init, Layer, Network, NetworkError, Pooling, SimpleConvNetConfig, mlp, simple_conv_net,
};

/// A network of the experiments. Each differs from SimpleConvNet in one thing only, so a
/// difference in accuracy has one cause:
///
/// ```text
/// FullyConnected  Affine 784->100 -> ReLU -> Affine 100->100 -> ReLU -> Affine 100->10  (He init)
/// ConvNoPooling   Conv 30x5x5 -> ReLU ->                 Affine 17280->100 -> ReLU -> Affine 100->10
/// ConvMaxPooling  Conv 30x5x5 -> ReLU -> max pool 2x2 -> Affine 4320->100 -> ReLU -> Affine 100->10
/// ConvAvgPooling  Conv 30x5x5 -> ReLU -> avg pool 2x2 -> Affine 4320->100 -> ReLU -> Affine 100->10
/// ```
///
/// The convolutional ones use the book's initialisation (`0.01 * N(0, 1)`).
///
/// ```
/// use cnn_from_scratch::experiments::Net;
/// let net = Net::ConvNoPooling.build(0).unwrap();
/// assert_eq!(net.output_shapes()[1], vec![30, 24, 24]);   // straight into the Affine layer
/// assert_eq!(net.layers().len(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Net {
    /// The fully connected net of §1 (the book's `MultiLayerNet` with two hidden layers).
    FullyConnected,
    /// SimpleConvNet with its pooling layer taken out.
    ConvNoPooling,
    /// The book's SimpleConvNet, with 2x2 max pooling.
    ConvMaxPooling,
    /// SimpleConvNet with 2x2 average pooling instead of max.
    ConvAvgPooling,
}

impl Net {
    /// All four, in the order of the tables.
    pub const ALL: [Net; 4] = [
        Net::FullyConnected,
        Net::ConvNoPooling,
        Net::ConvMaxPooling,
        Net::ConvAvgPooling,
    ];

    /// A fresh network with weights drawn from `seed`.
    pub fn build(self, seed: u64) -> Result<Network, NetworkError> {
        match self {
            Net::FullyConnected => mlp(&[784, 100, 100, 10], Init::He, seed),
            Net::ConvMaxPooling => simple_conv_net(&SimpleConvNetConfig::default(), seed),
            Net::ConvAvgPooling => {
                let mut layers = Net::ConvMaxPooling.build(seed)?.into_layers();
                layers[2] = Box::new(Pooling::average(2, 2, 2, 0));
                Network::new(&[1, 28, 28], layers)
            }
            Net::ConvNoPooling => {
                // A 1x1 "pooling" makes the Affine layer the right size (30*24*24 inputs);
                // then the pooling layer is taken out altogether.
                let config = SimpleConvNetConfig {
                    pool: 1,
                    ..SimpleConvNetConfig::default()
                };
                let mut layers: Vec<Box<dyn Layer>> = simple_conv_net(&config, seed)?.into_layers();
                layers.remove(2);
                Network::new(&[1, 28, 28], layers)
            }
        }
    }

    /// Its name in tables and charts.
    pub fn name(self) -> &'static str {
        match self {
            Net::FullyConnected => "fully connected",
            Net::ConvNoPooling => "CNN without pooling",
            Net::ConvMaxPooling => "SimpleConvNet (max pooling)",
            Net::ConvAvgPooling => "SimpleConvNet, average pooling",
        }
    }

    /// A short name without spaces, for the TSV file.
    pub fn key(self) -> &'static str {
        match self {
            Net::FullyConnected => "fc",
            Net::ConvNoPooling => "cnn_no_pool",
            Net::ConvMaxPooling => "cnn_max_pool",
            Net::ConvAvgPooling => "cnn_avg_pool",
        }
    }
}
