//! The Pooling layer (プーリング層) with its backward pass: max pooling (and average
//! pooling) over windows of each channel.

use ndarray::{Array2, Array4, ArrayView4, Axis};

use crate::batching::{col2im, im2col};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// Which statistic of each window a [`Pooling`] layer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (the book's and the usual choice).
    Max,
    /// The mean of the window (padding counts as zeros in the mean).
    Average,
}

/// A pooling layer: each channel of a batch `(N, C, H, W)` is cut into
/// `pool_h x pool_w` windows (with a stride and zero padding) and each window becomes one
/// number, giving `(N, C, OH, OW)`. No parameters; the channel count is kept.
///
/// ## Backward
///
/// Max pooling: `y = max(x_1, ..., x_k)` has derivative 1 for the winning input and 0 for
/// the others, so each output's gradient is routed to the position that won and nowhere
/// else (the layer remembers the winners, the book's `arg_max`):
///
/// ```text
/// dL/dx_i = dL/dy  if x_i was the window's maximum, else 0   (summed where windows overlap)
/// ```
///
/// Average pooling: `y = (x_1 + ... + x_k) / k`, so every input of the window receives
/// `dL/dy / k`.
///
/// ```
/// use cnn_from_scratch::full_cnn::Pooling;
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f32, 4.0, 3.0, 2.0]).unwrap();
/// let mut pool = Pooling::new(2, 2, 2, 0);
/// assert_eq!(pool.forward(x.view()).unwrap()[[0, 0, 0, 0]], 4.0);
/// let dx = pool.backward(Array4::from_elem((1, 1, 1, 1), 1.0).view());
/// assert_eq!(dx.into_raw_vec_and_offset().0, vec![0.0, 1.0, 0.0, 0.0]); // only the winner
/// ```
#[derive(Debug, Clone)]
pub struct Pooling {
    /// Window height.
    pub pool_h: usize,
    /// Window width.
    pub pool_w: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on each side of the input.
    pub pad: usize,
    /// Max or average.
    pub kind: PoolKind,
    /// The forward input's shape.
    x_shape: [usize; 4],
    /// For max pooling: the winner's index inside each window, one per output value in
    /// the order `(n, oh, ow, c)`.
    arg_max: Vec<usize>,
}

impl Pooling {
    /// Max pooling with a `pool_h x pool_w` window (the book's `Pooling(pool_h, pool_w,
    /// stride, pad)`).
    pub fn new(pool_h: usize, pool_w: usize, stride: usize, pad: usize) -> Self {
        Self::with_kind(PoolKind::Max, pool_h, pool_w, stride, pad)
    }

    /// Average pooling with a `pool_h x pool_w` window.
    pub fn average(pool_h: usize, pool_w: usize, stride: usize, pad: usize) -> Self {
        Self::with_kind(PoolKind::Average, pool_h, pool_w, stride, pad)
    }

    /// Pooling of the given kind.
    pub fn with_kind(
        kind: PoolKind,
        pool_h: usize,
        pool_w: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        Self {
            pool_h,
            pool_w,
            stride,
            pad,
            kind,
            x_shape: [0; 4],
            arg_max: Vec::new(),
        }
    }

    /// Output shape `(N, C, OH, OW)` for an input `(N, C, H, W)`, or the setting error.
    pub fn output_shape(
        &self,
        (n, c, h, w): (usize, usize, usize, usize),
    ) -> Result<(usize, usize, usize, usize), SettingError> {
        if self.pool_h == 0 || self.pool_w == 0 {
            return Err(SettingError::EmptyFilter {
                filter_h: self.pool_h,
                filter_w: self.pool_w,
            });
        }
        Ok((
            n,
            c,
            conv_output_size(h, self.pool_h, self.pad, self.stride)?,
            conv_output_size(w, self.pool_w, self.pad, self.stride)?,
        ))
    }

    /// Pool a batch `(N, C, H, W)` into `(N, C, OH, OW)`; remembers what backward needs.
    pub fn forward(&mut self, x: ArrayView4<f32>) -> Result<Array4<f32>, SettingError> {
        let (n, c, oh, ow) = self.output_shape(x.dim())?;
        let window = self.pool_h * self.pool_w;
        // As in the book: im2col gives one row per (n, oh, ow) holding every channel's
        // window; reshaped, each row is one window of one channel, in the order (n, oh, ow, c).
        let col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)?;
        let col = col
            .into_shape_with_order((n * oh * ow * c, window))
            .expect("a fresh im2col matrix reshapes without copying");
        let pooled: Vec<f32> = match self.kind {
            PoolKind::Max => {
                self.arg_max = col
                    .axis_iter(Axis(0))
                    .map(|w| {
                        w.iter()
                            .enumerate()
                            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                                if v > bv { (i, v) } else { (bi, bv) }
                            })
                            .0
                    })
                    .collect();
                self.arg_max
                    .iter()
                    .zip(col.axis_iter(Axis(0)))
                    .map(|(&i, w)| w[i])
                    .collect()
            }
            PoolKind::Average => col.mean_axis(Axis(1)).expect("non-empty window").to_vec(),
        };
        self.x_shape = [x.dim().0, x.dim().1, x.dim().2, x.dim().3];
        let out = Array4::from_shape_vec((n, oh, ow, c), pooled)
            .expect("one value per window")
            .permuted_axes([0, 3, 1, 2]);
        Ok(out.as_standard_layout().into_owned())
    }

    /// Given `dL/dout` `(N, C, OH, OW)`, returns `dL/dx` `(N, C, H, W)`.
    /// Panics if called before forward or with a wrong shape.
    pub fn backward(&mut self, dout: ArrayView4<f32>) -> Array4<f32> {
        let [xn, xc, xh, xw] = self.x_shape;
        let expected = self
            .output_shape((xn, xc, xh, xw))
            .expect("Pooling::backward called before a successful Pooling::forward");
        assert_eq!(
            dout.dim(),
            expected,
            "Pooling::backward: dout has shape {:?} but the forward output had shape {:?}",
            dout.shape(),
            expected
        );
        let (n, c, oh, ow) = expected;
        let window = self.pool_h * self.pool_w;
        // dout in the (n, oh, ow, c) order of the windows.
        let dout = dout.permuted_axes([0, 2, 3, 1]);
        let mut dcol = Array2::<f32>::zeros((n * oh * ow * c, window));
        match self.kind {
            PoolKind::Max => {
                assert_eq!(
                    self.arg_max.len(),
                    dcol.nrows(),
                    "Pooling::backward before forward"
                );
                for ((mut row, &i), &g) in dcol
                    .axis_iter_mut(Axis(0))
                    .zip(&self.arg_max)
                    .zip(dout.iter())
                {
                    row[i] = g;
                }
            }
            PoolKind::Average => {
                let share = 1.0 / window as f32;
                for (mut row, &g) in dcol.axis_iter_mut(Axis(0)).zip(dout.iter()) {
                    row.fill(g * share);
                }
            }
        }
        let dcol = dcol
            .into_shape_with_order((n * oh * ow, c * window))
            .expect("a fresh matrix reshapes without copying");
        col2im(
            dcol.view(),
            self.x_shape,
            self.pool_h,
            self.pool_w,
            self.stride,
            self.pad,
        )
        .expect("the same settings fitted in forward")
    }
}
