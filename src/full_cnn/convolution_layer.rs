//! The Convolution layer (畳み込み層) with its backward pass, computed with
//! [`im2col`](crate::batching::im2col) as one matrix product each way.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::batching::{col2im, im2col};
use crate::error::SettingError;
use crate::padding_stride::conv_output_size;

/// A convolution layer: `FN` filters of shape `(C, FH, FW)` slid over a batch
/// `(N, C, H, W)` with a stride and zero padding, plus one bias per filter, giving
/// `(N, FN, OH, OW)`. As in the book it works through im2col:
///
/// ```text
/// col = im2col(x)                       (N*OH*OW, C*FH*FW)   one row per filter position
/// out = col · Wᵀ + b                    (N*OH*OW, FN)        W flattened to (FN, C*FH*FW)
///     -> reshape (N, OH, OW, FN) -> transpose (N, FN, OH, OW)
/// ```
///
/// (The code computes the same products one image at a time, `W · col_nᵀ`, which lands
/// directly in the `(FN, OH*OW)` layout of the output and saves the transposing copy; the
/// images run in parallel.)
///
/// ## Backward
///
/// In im2col form the layer *is* an Affine layer, `out = col · Wᵀ + b`, so its gradients
/// are the Affine ones (see [`Affine`](crate::full_cnn::Affine)) with `dout` brought to
/// the same `(N*OH*OW, FN)` layout:
///
/// ```text
/// dW = doutᵀ · col      db = Σ_rows dout      dcol = dout · W      dx = col2im(dcol)
/// ```
///
/// The last step is the chain rule through im2col: im2col copied each pixel into every
/// row whose window covers it, so the pixel's gradient is the sum of those copies'
/// gradients, which is what [`col2im`] adds up.
///
/// ```
/// use cnn_from_scratch::full_cnn::Convolution;
/// use ndarray::{array, Array4};
/// // One 2x2 filter of ones, bias 1, on a 3x3 image of ones: every output is 4 + 1.
/// let mut conv = Convolution::new(Array4::ones((1, 1, 2, 2)), array![1.0], 1, 0);
/// let y = conv.forward(Array4::ones((1, 1, 3, 3)).view()).unwrap();
/// assert_eq!(y, Array4::from_elem((1, 1, 2, 2), 5.0));
/// let dx = conv.backward(Array4::ones((1, 1, 2, 2)).view());
/// assert_eq!(dx[[0, 0, 1, 1]], 4.0);   // the centre pixel is under all four windows
/// assert_eq!(conv.db, array![4.0]);     // four outputs, each with gradient 1
/// // A filter that does not fit is an error, not a panic:
/// assert!(conv.forward(Array4::ones((1, 1, 1, 1)).view()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Convolution {
    /// Filters `(FN, C, FH, FW)`.
    pub w: Array4<f32>,
    /// One bias per filter, `(FN)`.
    pub b: Array1<f32>,
    /// Step between filter positions.
    pub stride: usize,
    /// Zeros added on each side of the input.
    pub pad: usize,
    /// `dL/dW` from the last [`Convolution::backward`] (zeros before).
    pub dw: Array4<f32>,
    /// `dL/db` from the last [`Convolution::backward`] (zeros before).
    pub db: Array1<f32>,
    /// The forward input's shape `(N, C, H, W)`.
    x_shape: [usize; 4],
    /// The im2col matrix of the forward input, kept for `dW`.
    col: Option<Array2<f32>>,
}

impl Convolution {
    /// A convolution layer with filters `w` `(FN, C, FH, FW)`, bias `b` `(FN)`, a stride
    /// and a padding (the book's `Convolution(W, b, stride, pad)`).
    ///
    /// Panics if `b.len() != FN`. Whether stride and padding fit is checked against the
    /// input in [`Convolution::forward`].
    pub fn new(w: Array4<f32>, b: Array1<f32>, stride: usize, pad: usize) -> Self {
        assert_eq!(
            w.dim().0,
            b.len(),
            "Convolution::new: filters have shape {:?} (FN, C, FH, FW) but the bias has shape {:?}",
            w.shape(),
            b.shape()
        );
        // Standard layout lets the filters be viewed as a (FN, C*FH*FW) matrix for free.
        let w = if w.is_standard_layout() {
            w
        } else {
            w.as_standard_layout().into_owned()
        };
        let (dw, db) = (Array4::zeros(w.raw_dim()), Array1::zeros(b.raw_dim()));
        Self {
            w,
            b,
            stride,
            pad,
            dw,
            db,
            x_shape: [0; 4],
            col: None,
        }
    }

    /// Output shape `(N, FN, OH, OW)` for an input of shape `(N, C, H, W)`, by equation
    /// (7.1), or the [`SettingError`] saying why the filter, stride and padding do not fit.
    ///
    /// Panics if `C` differs from the filters' channel count.
    pub fn output_shape(
        &self,
        (n, c, h, w): (usize, usize, usize, usize),
    ) -> Result<(usize, usize, usize, usize), SettingError> {
        let (fnum, fc, fh, fw) = self.w.dim();
        assert_eq!(
            c,
            fc,
            "Convolution: input of shape {:?} has {} channels but the filters have shape {:?}",
            (n, c, h, w),
            c,
            self.w.shape()
        );
        if fh == 0 || fw == 0 {
            return Err(SettingError::EmptyFilter {
                filter_h: fh,
                filter_w: fw,
            });
        }
        Ok((
            n,
            fnum,
            conv_output_size(h, fh, self.pad, self.stride)?,
            conv_output_size(w, fw, self.pad, self.stride)?,
        ))
    }

    /// The filters as the `(FN, C*FH*FW)` matrix that multiplies im2col's rows.
    fn w_matrix(&self) -> ndarray::ArrayView2<'_, f32> {
        let fnum = self.w.dim().0;
        let k = self.w.len() / fnum.max(1);
        self.w
            .view()
            .into_shape_with_order((fnum, k))
            .expect("the filters are kept in standard layout")
    }

    /// Convolve a batch `(N, C, H, W)` into `(N, FN, OH, OW)`. Keeps the im2col matrix
    /// for the backward pass. Returns a [`SettingError`] if filter, stride and padding do
    /// not fit the input; panics if the channel counts differ.
    pub fn forward(&mut self, x: ArrayView4<f32>) -> Result<Array4<f32>, SettingError> {
        let (n, fnum, oh, ow) = self.output_shape(x.dim())?;
        let (_, _, fh, fw) = self.w.dim();
        let col = im2col(x, fh, fw, self.stride, self.pad)?;
        let (positions, k) = (oh * ow, col.ncols());
        let w = self.w_matrix();
        let mut out = Array4::<f32>::zeros((n, fnum, oh, ow));
        // The book computes all images at once, `col · Wᵀ` of shape (N*OH*OW, FN), and then
        // transposes it to (N, FN, OH, OW), a copy. Image by image, `W · col_nᵀ` is
        // (FN, OH*OW): already the output's layout, so it is written in place.
        let (Some(out_flat), Some(col_flat)) = (out.as_slice_mut(), col.as_slice()) else {
            unreachable!("fresh arrays are contiguous")
        };
        out_flat
            .par_chunks_mut(fnum * positions)
            .zip(col_flat.par_chunks(positions * k))
            .for_each(|(out_n, col_n)| {
                let mut out_n = ArrayViewMut2::from_shape((fnum, positions), out_n)
                    .expect("chunk of FN*OH*OW values");
                let col_n = ArrayView2::from_shape((positions, k), col_n)
                    .expect("chunk of OH*OW rows of im2col");
                for (mut row, &b) in out_n.outer_iter_mut().zip(&self.b) {
                    row.fill(b);
                }
                general_mat_mul(1.0, &w, &col_n.t(), 1.0, &mut out_n);
            });
        self.col = Some(col);
        self.x_shape = [x.dim().0, x.dim().1, x.dim().2, x.dim().3];
        Ok(out)
    }

    /// Given `dL/dout` `(N, FN, OH, OW)`, stores `dw` and `db` and returns `dL/dx`
    /// `(N, C, H, W)`. Panics if called before forward or with a wrong shape.
    pub fn backward(&mut self, dout: ArrayView4<f32>) -> Array4<f32> {
        self.backward_params(dout);
        let col = self.col.as_ref().expect("checked in backward_params");
        let (n, fnum, oh, ow) = dout.dim();
        let (positions, k) = (oh * ow, col.ncols());
        let dout = dout.as_standard_layout();
        let w = self.w_matrix();
        // dcol = dout · W, image by image: dout_nᵀ (OH*OW, FN) · W (FN, C*FH*FW).
        let mut dcol = Array2::<f32>::zeros(col.raw_dim());
        let (Some(dcol_flat), Some(dout_flat)) = (dcol.as_slice_mut(), dout.as_slice()) else {
            unreachable!("standard-layout arrays are contiguous")
        };
        dcol_flat
            .par_chunks_mut(positions * k)
            .zip(dout_flat.par_chunks(fnum * positions))
            .for_each(|(dcol_n, dout_n)| {
                let mut dcol_n = ArrayViewMut2::from_shape((positions, k), dcol_n)
                    .expect("chunk of OH*OW rows of im2col");
                let dout_n =
                    ArrayView2::from_shape((fnum, positions), dout_n).expect("chunk of FN*OH*OW");
                general_mat_mul(1.0, &dout_n.t(), &w, 0.0, &mut dcol_n);
            });
        let (_, _, fh, fw) = self.w.dim();
        debug_assert_eq!(dcol.nrows(), n * positions);
        col2im(dcol.view(), self.x_shape, fh, fw, self.stride, self.pad)
            .expect("the same settings fitted in forward")
    }

    /// The weight part of [`Convolution::backward`]: stores `dw` and `db` without computing
    /// `dL/dx`, which a network's first layer does not need (its input is the images).
    pub fn backward_params(&mut self, dout: ArrayView4<f32>) {
        let col = self
            .col
            .as_ref()
            .expect("Convolution::backward called before Convolution::forward");
        let (n, fnum, oh, ow) = dout.dim();
        let (positions, k) = (oh * ow, col.ncols());
        assert_eq!(
            (n * positions, fnum),
            (col.nrows(), self.w.dim().0),
            "Convolution::backward: dout has shape {:?}, which does not match the forward output",
            dout.shape()
        );
        self.db = dout.sum_axis(Axis(3)).sum_axis(Axis(2)).sum_axis(Axis(0));
        // dW = Σ_n dout_n (FN, OH*OW) · col_n (OH*OW, C*FH*FW). Each image's product is
        // computed in parallel, then they are added in image order, so the result is the
        // same on every run (a parallel reduction would add in a varying order).
        let dout = dout.as_standard_layout();
        let (Some(dout_flat), Some(col_flat)) = (dout.as_slice(), col.as_slice()) else {
            unreachable!("standard-layout arrays are contiguous")
        };
        let per_image: Vec<Array2<f32>> = dout_flat
            .par_chunks(fnum * positions)
            .zip(col_flat.par_chunks(positions * k))
            .map(|(dout_n, col_n)| {
                let dout_n =
                    ArrayView2::from_shape((fnum, positions), dout_n).expect("chunk of FN*OH*OW");
                let col_n = ArrayView2::from_shape((positions, k), col_n)
                    .expect("chunk of OH*OW rows of im2col");
                dout_n.dot(&col_n)
            })
            .collect();
        let mut dw = Array2::<f32>::zeros((fnum, k));
        for part in &per_image {
            dw += part;
        }
        self.dw = dw
            .into_shape_with_order(self.w.raw_dim())
            .expect("a fresh matrix reshapes without copying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution written as the seven nested loops of its definition.
    fn naive(
        x: &Array4<f32>,
        w: &Array4<f32>,
        b: &Array1<f32>,
        stride: usize,
        pad: usize,
    ) -> Array4<f32> {
        let (n, c, h, wd) = x.dim();
        let (fnum, _, fh, fw) = w.dim();
        let (oh, ow) = (
            (h + 2 * pad - fh) / stride + 1,
            (wd + 2 * pad - fw) / stride + 1,
        );
        Array4::from_shape_fn((n, fnum, oh, ow), |(i, f, oy, ox)| {
            let mut sum = b[f];
            for ch in 0..c {
                for ky in 0..fh {
                    for kx in 0..fw {
                        let (y, xx) = (
                            (oy * stride + ky) as isize - pad as isize,
                            (ox * stride + kx) as isize - pad as isize,
                        );
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                            sum += x[[i, ch, y as usize, xx as usize]] * w[[f, ch, ky, kx]];
                        }
                    }
                }
            }
            sum
        })
    }

    #[test]
    fn forward_matches_the_naive_loops_with_stride_and_padding() {
        let x = Array4::from_shape_fn((2, 2, 7, 7), |(n, c, i, j)| {
            ((n * 31 + c * 17 + i * 7 + j * 3) % 11) as f32 - 5.0
        });
        let w = Array4::from_shape_fn((3, 2, 3, 3), |(f, c, i, j)| {
            ((f * 5 + c * 3 + i * 2 + j) % 7) as f32 / 7.0 - 0.4
        });
        let b = Array1::from(vec![0.5, -1.0, 0.25]);
        for (stride, pad) in [(1, 0), (2, 1), (1, 2)] {
            let mut conv = Convolution::new(w.clone(), b.clone(), stride, pad);
            let y = conv.forward(x.view()).unwrap();
            let expected = naive(&x, &w, &b, stride, pad);
            assert_eq!(y.dim(), expected.dim());
            assert!(
                y.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-4),
                "stride {stride} pad {pad}"
            );
        }
    }

    #[test]
    fn settings_that_do_not_fit_are_errors() {
        let mut conv = Convolution::new(Array4::zeros((1, 1, 3, 3)), Array1::zeros(1), 2, 0);
        // (6 - 3) / 2 is not whole.
        assert!(matches!(
            conv.forward(Array4::zeros((1, 1, 6, 6)).view()),
            Err(SettingError::NotWhole {
                numerator: 3,
                stride: 2,
                ..
            })
        ));
    }
}
