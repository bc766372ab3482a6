//! Pictures: digits, filters, feature maps, filtered images, curves and a confusion matrix
//! (図で見る: フィルタ・特徴マップ・学習曲線).
//!
//! The chapter is full of figures: filters before and after training, the feature maps
//! they produce, an image before and after a Sobel filter. This module draws them as PNG
//! files, so every step of the crate can be *looked at*.
//!
//! Every plotting function takes plain `ndarray` data and returns a [`Picture`]: PNG bytes
//! held in memory. Save it with [`Picture::save`], or show it inline in a Jupyter notebook
//! running evcxr with [`Picture::evcxr_display`].
//!
//! | picture | function |
//! |---|---|
//! | a grid of images with captions (digits, misclassified digits) | [`image_grid`] |
//! | a filter bank `(FN, C, FH, FW)`, blue-white-red around zero, with a colour bar | [`filter_grid`] |
//! | the feature maps of one input, each scaled to its own range | [`feature_maps`] |
//! | images side by side at one scale (before/after a filter, padding and stride, pooling) | [`side_by_side`] |
//! | lines through points (the shift experiment), legend in any corner | [`line_chart`], [`line_chart_with_legend`] |
//! | grouped bars with every measurement as a dot (accuracy per network and seed) | [`bar_chart`] |
//! | loss per step and accuracy per epoch | [`training_curves`] |
//! | a confusion matrix with counts | [`confusion_matrix`] |
//!
//! Text is drawn with DejaVu Sans, bundled in the crate (`assets/fonts/`, Bitstream Vera
//! licence), so pictures render the same on a fresh machine without system fonts.
//!
//! ```
//! use cnn_from_scratch::viz;
//! use ndarray::Array3;
//!
//! // Two 5x5 "filters": a vertical and a horizontal edge detector.
//! let mut filters = Array3::<f32>::zeros((2, 5, 5));
//! filters.slice_mut(ndarray::s![0, .., 0]).fill(-1.0);
//! filters.slice_mut(ndarray::s![0, .., 4]).fill(1.0);
//! filters.slice_mut(ndarray::s![1, 0, ..]).fill(-1.0);
//! filters.slice_mut(ndarray::s![1, 4, ..]).fill(1.0);
//! let bank = filters.insert_axis(ndarray::Axis(1)); // (FN, C=1, FH, FW)
//! let picture = viz::filter_grid("Two edge filters", bank.view())?;
//! assert!(picture.width() > 200);
//! # Ok::<(), viz::PlotError>(())
//! ```

mod canvas;
mod charts;
mod chelsea;
mod colour;
mod grids;
mod picture;
mod table;

use std::path::PathBuf;

pub use charts::{
    LegendCorner, bar_chart, confusion_matrix, line_chart, line_chart_with_legend, training_curves,
};
pub use chelsea::{chelsea, load_png_rgb, rgb_to_grey};
pub use grids::{Panel, feature_maps, filter_grid, image_grid, side_by_side};
pub use picture::Picture;
pub use table::Table;

/// What can go wrong when drawing, encoding, saving or loading a picture.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The data holds nothing to draw (no images, no loss values).
    #[error("nothing to draw: {0}")]
    Nothing(String),
    /// plotters failed while drawing (text, lines, chart axes).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The finished pixels could not be encoded as PNG.
    #[error("could not encode the picture as PNG: {0}")]
    Encode(#[source] image::ImageError),
    /// The PNG file (or its folder) could not be written.
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be read or decoded.
    #[error("could not read image {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for PlotError
{
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        PlotError::Draw(e.to_string())
    }
}
