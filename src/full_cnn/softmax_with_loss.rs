//! Softmax with cross-entropy loss (Softmax-with-Loss レイヤ): turns scores into
//! probabilities and measures how wrong they are.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, Zip};

/// The last layer of a classifier: softmax turns each row of scores into probabilities,
/// and the loss is the mean cross-entropy against the true labels,
///
/// ```text
/// y[n, k] = exp(s[n, k]) / Σ_j exp(s[n, j])        L = -(1/N) Σ_n log y[n, t_n]
/// ```
///
/// The log is computed as `s[n, t] - max - log Σ exp(s - max)` (log-softmax), which never
/// takes `log 0`; the book adds `1e-7` inside the log instead.
///
/// ## Backward
///
/// Writing `log y[n, t] = s[n, t] - log Σ_j exp(s[n, j])` and differentiating: the first
/// term gives `-1` at the true class, the second gives `exp(s[n, k]) / Σ_j exp(s[n, j]) =
/// y[n, k]`. So the gradient of the loss with respect to the scores is the famous
///
/// ```text
/// dL/ds = (y - onehot(t)) / N
/// ```
///
/// ```
/// use cnn_from_scratch::full_cnn::SoftmaxWithLoss;
/// use ndarray::array;
/// let mut last = SoftmaxWithLoss::new();
/// // Equal scores over 4 classes: every class gets 1/4, the loss is ln 4.
/// let loss = last.forward(array![[0.0f32, 0.0, 0.0, 0.0]].view(), array![2u8].view());
/// assert!((loss - 4f32.ln()).abs() < 1e-6);
/// let ds = last.backward();
/// assert_eq!(ds, array![[0.25, 0.25, -0.75, 0.25]]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SoftmaxWithLoss {
    /// Softmax probabilities from the last forward pass, `(N, classes)`.
    pub y: Array2<f32>,
    /// Labels from the last forward pass.
    labels: Vec<u8>,
}

/// Softmax of each row of `scores`, computed stably (the row's maximum is subtracted first,
/// which does not change the result).
///
/// ```
/// use cnn_from_scratch::full_cnn::softmax;
/// use ndarray::array;
/// let y = softmax(array![[1000.0f32, 1000.0]].view()); // no overflow
/// assert_eq!(y, array![[0.5, 0.5]]);
/// ```
pub fn softmax(scores: ArrayView2<f32>) -> Array2<f32> {
    let mut y = scores.to_owned();
    for mut row in y.axis_iter_mut(Axis(0)) {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
    y
}

impl SoftmaxWithLoss {
    /// A softmax-with-loss layer; it has no parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mean cross-entropy of `softmax(scores)` against `labels` (one class index per row).
    /// Keeps the probabilities and labels for the backward pass.
    ///
    /// Panics if `labels.len()` differs from the number of rows or a label is not a class.
    pub fn forward(&mut self, scores: ArrayView2<f32>, labels: ArrayView1<u8>) -> f32 {
        let (n, classes) = scores.dim();
        assert_eq!(
            labels.len(),
            n,
            "SoftmaxWithLoss::forward: scores have shape {:?} but labels have shape {:?}",
            scores.shape(),
            labels.shape()
        );
        let mut total = 0.0f64; // the sum over the batch in f64: the loss is compared to 1e-6
        for (row, &t) in scores.axis_iter(Axis(0)).zip(labels.iter()) {
            assert!(
                (t as usize) < classes,
                "SoftmaxWithLoss::forward: label {t} is not one of the {classes} classes"
            );
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let log_sum: f64 = row
                .iter()
                .map(|&v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
            total += log_sum - (row[t as usize] - max) as f64;
        }
        self.y = softmax(scores);
        self.labels = labels.to_vec();
        (total / n.max(1) as f64) as f32
    }

    /// `dL/dscores = (y - onehot(t)) / N`, the gradient for an upstream `dL/dL = 1`.
    /// Panics if called before forward.
    pub fn backward(&self) -> Array2<f32> {
        assert!(
            self.y.nrows() == self.labels.len() && !self.labels.is_empty(),
            "SoftmaxWithLoss::backward called before SoftmaxWithLoss::forward"
        );
        let n = self.labels.len() as f32;
        let mut dx = self.y.clone();
        Zip::from(dx.axis_iter_mut(Axis(0)))
            .and(&self.labels)
            .for_each(|mut row, &t| row[t as usize] -= 1.0);
        dx /= n;
        dx
    }
}
