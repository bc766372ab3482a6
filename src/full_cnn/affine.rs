//! The Affine layer (全結合層): `y = x·W + b`, the fully connected layer at the end of a CNN.

use ndarray::{Array, Array1, Array2, ArrayD, ArrayView2, Axis, Dimension, IxDyn};

use super::kernels::matmul::mat_mul;

/// A fully connected layer, `y = x·W + b` with `W` of shape `(in, out)` as in the book.
///
/// It accepts a batch of any rank, `(N, in)` or `(N, C, H, W)` with `C*H*W == in`: each
/// example is flattened to a row (this is where the shape of an image is thrown away, see
/// [`crate::fc_limits`]) and the gradient is given back in the original shape.
///
/// ## Backward
///
/// Each output is `y[n, j] = Σ_i x[n, i] W[i, j] + b[j]`. By the chain rule, a weight
/// collects the upstream gradient times the input it multiplied, an input collects it
/// times every weight it met, and the bias collects it once per example:
///
/// ```text
/// dL/dx = dL/dy · Wᵀ      dL/dW = xᵀ · dL/dy      dL/db = Σ_n dL/dy[n, :]
/// ```
///
/// The layer keeps `x` (as the flattened matrix) for `dW`, and exposes `dw`, `db` after
/// [`Affine::backward`]. The three products are split over the threads when they are
/// large (the module `matmul`: same result on every run, whatever the thread count).
///
/// ```
/// use cnn_from_scratch::full_cnn::Affine;
/// use ndarray::{array, Array4};
/// // Two 1x2x2 "images" of ones into 3 outputs: every output is 4 * 0.5 + bias.
/// let mut affine = Affine::new(Array4::from_elem((1, 4, 1, 3), 0.5f32).into_shape_with_order((4, 3)).unwrap(),
///                              array![0.0, 1.0, 2.0]);
/// let y = affine.forward(Array4::<f32>::ones((2, 1, 2, 2)));
/// assert_eq!(y, array![[2.0, 3.0, 4.0], [2.0, 3.0, 4.0]]);
/// let dx = affine.backward(array![[1.0f32, 0.0, 0.0], [0.0, 0.0, 1.0]].view());
/// assert_eq!(dx.shape(), &[2, 1, 2, 2]);            // the image shape is restored
/// assert_eq!(affine.db, array![1.0, 0.0, 1.0]);
/// assert_eq!(affine.dw.dim(), (4, 3));
/// ```
#[derive(Debug, Clone)]
pub struct Affine {
    /// Weights `(in, out)`.
    pub w: Array2<f32>,
    /// Bias `(out)`.
    pub b: Array1<f32>,
    /// `dL/dW` from the last [`Affine::backward`] (zeros before).
    pub dw: Array2<f32>,
    /// `dL/db` from the last [`Affine::backward`] (zeros before).
    pub db: Array1<f32>,
    /// The forward input, flattened to `(N, in)`.
    x: Option<Array2<f32>>,
    /// The forward input's shape, to give `dx` back in it.
    x_shape: Vec<usize>,
}

impl Affine {
    /// An Affine layer with weights `w` of shape `(in, out)` and bias `b` of length `out`.
    ///
    /// Panics if `b.len() != out`.
    pub fn new(w: Array2<f32>, b: Array1<f32>) -> Self {
        assert_eq!(
            w.ncols(),
            b.len(),
            "Affine::new: weights have shape {:?} (in, out) but the bias has shape {:?}",
            w.shape(),
            b.shape()
        );
        let (dw, db) = (Array2::zeros(w.raw_dim()), Array1::zeros(b.raw_dim()));
        Self {
            w,
            b,
            dw,
            db,
            x: None,
            x_shape: Vec::new(),
        }
    }

    /// `x·W + b` for a batch `x` of shape `(N, ...)` whose trailing axes hold `in` numbers.
    /// Takes `x` by value because it must keep it for `dW`. Panics on a size mismatch.
    pub fn forward<D: Dimension>(&mut self, x: Array<f32, D>) -> Array2<f32> {
        let x_shape = x.shape().to_vec();
        let n = x_shape.first().copied().unwrap_or(1);
        let features: usize = x_shape.iter().skip(1).product();
        assert_eq!(
            features,
            self.w.nrows(),
            "Affine::forward: input of shape {:?} has {} features per example but the weights have shape {:?}",
            x_shape,
            features,
            self.w.shape()
        );
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let x = x
            .into_shape_with_order((n, features))
            .expect("a standard-layout array reshapes without copying");
        let mut y = mat_mul(x.view(), self.w.view());
        y += &self.b;
        self.x = Some(x);
        self.x_shape = x_shape;
        y
    }

    /// Given `dL/dy` of shape `(N, out)`, stores `dw`, `db` and returns `dL/dx` in the
    /// forward input's shape. Panics if called before forward or with a wrong shape.
    pub fn backward(&mut self, dout: ArrayView2<f32>) -> ArrayD<f32> {
        let x = self
            .x
            .as_ref()
            .expect("Affine::backward called before Affine::forward");
        assert_eq!(
            dout.dim(),
            (x.nrows(), self.w.ncols()),
            "Affine::backward: dout has shape {:?} but the forward output had shape {:?}",
            dout.shape(),
            [x.nrows(), self.w.ncols()]
        );
        // dW = xᵀ · dout and dx = dout · Wᵀ side by side: neither needs the other, and the
        // pieces of both share the threads, so neither waits for the last piece of the
        // other (SimpleConvNet's step +2-6% on 2 threads, steps alternating in one process).
        let (dw, dx) = rayon::join(|| mat_mul(x.t(), dout), || mat_mul(dout, self.w.t()));
        self.dw = dw;
        self.db = dout.sum_axis(Axis(0));
        dx.into_shape_with_order(IxDyn(&self.x_shape))
            .expect("a fresh matrix product reshapes without copying")
    }
}
