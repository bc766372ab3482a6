//! The Dropout layer (ドロップアウト, book chapter 6): during training, each activation is
//! switched off at random, so the network cannot rely on any single unit.

use ndarray::{ArrayD, Zip};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Dropout as the book writes it: in training, every input is kept with probability
/// `1 - ratio` and set to 0 otherwise (a new random mask each forward pass); at inference
/// every input is scaled by `1 - ratio` instead, the mean of what training passed on.
///
/// ## Backward
///
/// `y = x ⊙ mask`, so `dL/dx = dL/dy ⊙ mask`: the gradient flows only through the units
/// that were kept.
///
/// ```
/// use cnn_from_scratch::full_cnn::{Dropout, Layer};
/// use ndarray::ArrayD;
/// let mut drop = Dropout::new(0.5, 7);
/// let y = drop.forward(ArrayD::ones(vec![1, 1000]), true);
/// let kept = y.iter().filter(|&&v| v == 1.0).count();
/// assert!((400..600).contains(&kept));                     // about half
/// let dx = drop.backward(ArrayD::from_elem(vec![1, 1000], 3.0));
/// assert_eq!(dx.iter().filter(|&&v| v == 3.0).count(), kept); // the same units pass
/// assert_eq!(drop.forward(ArrayD::ones(vec![1, 2]), false)[[0, 0]], 0.5); // inference
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    /// Probability of dropping each unit in training (the book's `dropout_ratio`).
    pub ratio: f32,
    seed: u64,
    rng: StdRng,
    /// Draw the same mask on every pass (for gradient checks).
    fixed_mask: bool,
    /// `true` where the last training pass kept the unit.
    mask: Option<ArrayD<bool>>,
}

impl Dropout {
    /// Dropout of `ratio` (0.5 in the book's DeepConvNet), its masks drawn from a generator
    /// seeded with `seed`. Panics unless `0 <= ratio < 1` (a programming error: builders
    /// and the command line check the value first).
    pub fn new(ratio: f32, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&ratio),
            "Dropout: ratio must be in [0, 1), got {ratio}"
        );
        Self {
            ratio,
            seed,
            rng: StdRng::seed_from_u64(seed),
            fixed_mask: false,
            mask: None,
        }
    }

    /// Dropout that draws the *same* mask on every training pass (the generator restarts
    /// from `seed` each time), so the loss is a fixed function of the weights and a
    /// numerical gradient check makes sense.
    pub fn with_fixed_mask(ratio: f32, seed: u64) -> Self {
        Self {
            fixed_mask: true,
            ..Self::new(ratio, seed)
        }
    }

    pub(crate) fn forward_dropout(&mut self, mut x: ArrayD<f32>, train: bool) -> ArrayD<f32> {
        if !train {
            self.mask = None;
            x *= 1.0 - self.ratio;
            return x;
        }
        if self.fixed_mask {
            self.rng = StdRng::seed_from_u64(self.seed);
        }
        let ratio = self.ratio;
        let rng = &mut self.rng;
        let mask = ArrayD::from_shape_simple_fn(x.raw_dim(), || rng.random::<f32>() >= ratio);
        Zip::from(&mut x).and(&mask).for_each(|v, &keep| {
            if !keep {
                *v = 0.0;
            }
        });
        self.mask = Some(mask);
        x
    }

    pub(crate) fn backward_dropout(&self, mut dout: ArrayD<f32>) -> ArrayD<f32> {
        let mask = self
            .mask
            .as_ref()
            .expect("Dropout::backward needs a forward pass in training mode first");
        assert_eq!(
            mask.shape(),
            dout.shape(),
            "Dropout::backward: dout has shape {:?} but the forward input had shape {:?}",
            dout.shape(),
            mask.shape()
        );
        Zip::from(&mut dout).and(mask).for_each(|g, &keep| {
            if !keep {
                *g = 0.0;
            }
        });
        dout
    }
}
