//! "Chelsea the cat", the colour picture the filtering examples use, and PNG loading.

use std::path::Path;

use image::RgbImage;
use ndarray::{Array2, Array3, ArrayView3};

use super::PlotError;

/// Chelsea the cat, 226x150, halved from scikit-image's `chelsea.png` (CC0, photo by
/// Stefan van der Walt); see `assets/README.md`.
static CHELSEA_PNG: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/chelsea.png"));

/// "Chelsea the cat" as a colour image `(3, 150, 226)`, values in `[0, 1]`.
///
/// The picture ships inside the crate, so the filtering examples run without a download.
///
/// ```
/// let cat = cnn_from_scratch::viz::chelsea();
/// assert_eq!(cat.dim(), (3, 150, 226));
/// ```
pub fn chelsea() -> Array3<f32> {
    let image = image::load_from_memory_with_format(CHELSEA_PNG, image::ImageFormat::Png)
        .expect("the bundled assets/chelsea.png is a valid PNG");
    rgb_array(&image.to_rgb8())
}

/// Reads an image file (PNG) as a colour image `(3, H, W)` with values in `[0, 1]`.
///
/// ```
/// // Doc tests run from the package root, where the bundled cat lives.
/// let cat = cnn_from_scratch::viz::load_png_rgb("assets/chelsea.png")?;
/// assert_eq!(cat.dim(), (3, 150, 226));
/// # Ok::<(), cnn_from_scratch::viz::PlotError>(())
/// ```
pub fn load_png_rgb(path: impl AsRef<Path>) -> Result<Array3<f32>, PlotError> {
    let path = path.as_ref();
    let image = image::open(path).map_err(|source| PlotError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(rgb_array(&image.to_rgb8()))
}

/// Brightness of a colour image `(3, H, W)` as a grey image `(H, W)`, with the ITU-R
/// BT.601 weights 0.299 R + 0.587 G + 0.114 B (green looks brightest to the eye).
///
/// ```
/// use ndarray::Array3;
/// let white = Array3::<f32>::ones((3, 2, 2));
/// let grey = cnn_from_scratch::viz::rgb_to_grey(white.view());
/// assert!((grey[[1, 1]] - 1.0).abs() < 1e-6);
/// ```
pub fn rgb_to_grey(image: ArrayView3<f32>) -> Array2<f32> {
    assert_eq!(
        image.dim().0,
        3,
        "rgb_to_grey needs shape (3, H, W), got {:?}",
        image.shape()
    );
    let (_, h, w) = image.dim();
    Array2::from_shape_fn((h, w), |(i, j)| {
        0.299 * image[[0, i, j]] + 0.587 * image[[1, i, j]] + 0.114 * image[[2, i, j]]
    })
}

fn rgb_array(image: &RgbImage) -> Array3<f32> {
    let (w, h) = image.dimensions();
    Array3::from_shape_fn((3, h as usize, w as usize), |(c, i, j)| {
        f32::from(image.get_pixel(j as u32, i as u32)[c]) / 255.0
    })
}
