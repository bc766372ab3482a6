//! Grids of small pictures: images, filters, feature maps, and panels side by side.
//!
//! All four are the same drawing: cells in rows and columns, each cell one or more tiles
//! (a filter with C channels is C tiles) with a caption underneath. Only the colouring
//! differs, so each public function turns its data into coloured tiles and hands them to
//! one layout routine.

use ndarray::{ArrayView2, ArrayView3, ArrayView4, Axis};

use super::canvas::{Canvas, FRAME, LABEL_SIZE, TITLE_SIZE, text_height, text_width};
use super::colour::{Rgb, diverging, grey, min_max, unit};
use super::{Picture, PlotError};

/// Already coloured pixels of one image, row-major.
struct Tile {
    h: usize,
    w: usize,
    pixels: Vec<Rgb>,
}

struct Cell {
    tiles: Vec<Tile>,
    caption: String,
}

const MARGIN: u32 = 20;
const CELL_GAP: u32 = 16;
const TILE_GAP: u32 = 6;
const CAPTION_GAP: u32 = 6;

/// Colours a `(C, H, W)` image with C = 1 (grey) or 3 (RGB), mapping `lo..=hi` to black..white.
fn colour_tile(image: ArrayView3<f32>, lo: f32, hi: f32) -> Tile {
    let (c, h, w) = image.dim();
    assert!(
        c == 1 || c == 3,
        "an image must have 1 (grey) or 3 (RGB) channels, got shape {:?}",
        image.shape()
    );
    let at = |k: usize, i: usize, j: usize| unit(image[[k, i, j]], lo, hi);
    let pixels = (0..h)
        .flat_map(|i| (0..w).map(move |j| (i, j)))
        .map(|(i, j)| {
            if c == 1 {
                grey(at(0, i, j))
            } else {
                std::array::from_fn(|k| grey(at(k, i, j))[0])
            }
        })
        .collect();
    Tile { h, w, pixels }
}

/// A pixel scale that makes the largest side of a tile about `target` pixels.
fn scale_for(side: usize, target: u32) -> u32 {
    (target / side.max(1) as u32).max(1)
}

/// Lays out `cells` in rows of `cols`, every tile enlarged `scale` times, framed in grey,
/// with an optional blue-white-red colour bar for values in `-bar..=bar`.
fn render_cells(
    title: &str,
    cells: &[Cell],
    cols: usize,
    scale: u32,
    bar: Option<f32>,
) -> Result<Picture, PlotError> {
    let cols = cols.clamp(1, cells.len().max(1));
    let rows = cells.len().div_ceil(cols);
    let tiles_size = |cell: &Cell| {
        let w: u32 = cell.tiles.iter().map(|t| t.w as u32 * scale).sum::<u32>()
            + TILE_GAP * (cell.tiles.len().saturating_sub(1) as u32);
        let h = cell
            .tiles
            .iter()
            .map(|t| t.h as u32 * scale)
            .max()
            .unwrap_or(0);
        (w, h)
    };
    let caption_h = |cell: &Cell| match text_height(&cell.caption, LABEL_SIZE) {
        0 => 0,
        h => h + CAPTION_GAP,
    };
    let mut col_w = vec![0u32; cols];
    let mut row_h = vec![0u32; rows];
    for (k, cell) in cells.iter().enumerate() {
        let (w, h) = tiles_size(cell);
        col_w[k % cols] = col_w[k % cols]
            .max(w)
            .max(text_width(&cell.caption, LABEL_SIZE));
        row_h[k / cols] = row_h[k / cols].max(h + caption_h(cell));
    }
    let grid_w = col_w.iter().sum::<u32>() + CELL_GAP * (cols as u32 - 1);
    let grid_h = row_h.iter().sum::<u32>() + CELL_GAP * (rows as u32 - 1);

    let bar_labels = bar.map(|m| [format!("+{m:.3}"), "0".to_string(), format!("−{m:.3}")]);
    let bar_extra = bar_labels.as_ref().map_or(0, |labels| {
        30 + 20
            + 8
            + labels
                .iter()
                .map(|l| text_width(l, LABEL_SIZE))
                .max()
                .unwrap_or(0)
    });
    let bar_h = grid_h.clamp(120, 300);

    let title_h = text_height(title, TITLE_SIZE) + 12;
    let content_w = grid_w + bar_extra;
    let width = (content_w + 2 * MARGIN).max(text_width(title, TITLE_SIZE) + 2 * MARGIN);
    let height = MARGIN + title_h + grid_h.max(if bar.is_some() { bar_h + 10 } else { 0 }) + MARGIN;
    let mut canvas = Canvas::new(width, height);
    canvas.text(
        title,
        (width as i32 / 2, MARGIN as i32 / 2),
        TITLE_SIZE,
        true,
        [0, 0, 0],
    )?;

    let x0 = (width - content_w) / 2;
    let y0 = MARGIN + title_h;
    let mut y = y0;
    for (r, &rh) in row_h.iter().enumerate() {
        let mut x = x0;
        for (c, &cw) in col_w.iter().enumerate() {
            if let Some(cell) = cells.get(r * cols + c) {
                let (tw, th) = tiles_size(cell);
                let mut tx = i64::from(x + (cw - tw) / 2);
                for tile in &cell.tiles {
                    let (tw, th) = (tile.w as u32 * scale, tile.h as u32 * scale);
                    canvas.blit(tx, i64::from(y), (tile.h, tile.w), scale, |i, j| {
                        tile.pixels[i * tile.w + j]
                    });
                    canvas.frame(tx, i64::from(y), tw, th, FRAME);
                    tx += i64::from(tw + TILE_GAP);
                }
                let caption_pos = ((x + cw / 2) as i32, (y + th + CAPTION_GAP) as i32);
                canvas.text(&cell.caption, caption_pos, LABEL_SIZE, true, [0, 0, 0])?;
            }
            x += cw + CELL_GAP;
        }
        y += rh + CELL_GAP;
    }

    if let (Some(labels), Some(_)) = (bar_labels, bar) {
        let bx = i64::from(x0 + grid_w + 30);
        let by = i64::from(y0 + 5);
        for i in 0..bar_h {
            let t = 1.0 - 2.0 * i as f32 / (bar_h - 1) as f32;
            canvas.fill_rect(bx, by + i64::from(i), 20, 1, diverging(t));
        }
        canvas.frame(bx, by, 20, bar_h, FRAME);
        let lx = (bx + 28) as i32;
        let half = LABEL_SIZE as i32 / 2;
        for (k, label) in labels.iter().enumerate() {
            let ly = by as i32 + k as i32 * (bar_h as i32 - 1) / 2 - half;
            canvas.text(label, (lx, ly), LABEL_SIZE, false, [0, 0, 0])?;
        }
    }
    canvas.into_picture()
}

/// A grid of images `(N, C, H, W)` (C = 1 grey or 3 RGB), `cols` per row, each with the
/// caption of the same index underneath (pass `&[]` for none).
///
/// All images share one brightness scale, from the smallest to the largest value in
/// `images`, so digits in `[0, 1]` are shown exactly as stored. Use it for samples of a
/// data set (caption: the label) and for misclassified digits (caption: true and
/// predicted label).
///
/// Panics if `captions` is non-empty and its length differs from N, or if C is not 1 or 3.
///
/// ```
/// use cnn_from_scratch::viz;
/// use ndarray::Array4;
///
/// let digits = Array4::from_shape_fn((6, 1, 28, 28), |(n, _, i, j)| {
///     if (i as i32 - 14).abs() + (j as i32 - 14).abs() < 4 + n as i32 { 1.0 } else { 0.0 }
/// });
/// let captions: Vec<String> = (0..6).map(|n| format!("true {n} → pred {}", (n + 1) % 6)).collect();
/// let picture = viz::image_grid("Misclassified digits", digits.view(), &captions, 3)?;
/// assert_eq!(picture.png_bytes()[1..4], *b"PNG");
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn image_grid(
    title: &str,
    images: ArrayView4<f32>,
    captions: &[String],
    cols: usize,
) -> Result<Picture, PlotError> {
    let (n, _, h, w) = images.dim();
    assert!(
        captions.is_empty() || captions.len() == n,
        "image_grid: {} captions for images of shape {:?}",
        captions.len(),
        images.shape()
    );
    if n == 0 {
        return Err(PlotError::Nothing(format!(
            "image_grid {title:?} got no images"
        )));
    }
    let (lo, hi) = min_max(images.iter());
    let cells: Vec<Cell> = images
        .outer_iter()
        .enumerate()
        .map(|(k, image)| Cell {
            tiles: vec![colour_tile(image, lo, hi)],
            caption: captions.get(k).cloned().unwrap_or_default(),
        })
        .collect();
    let cols = cols.clamp(1, n);
    let scale = scale_for(h.max(w), (960 / cols as u32).min(300));
    render_cells(title, &cells, cols, scale, None)
}

/// A filter bank `(FN, C, FH, FW)` as tiles: blue for negative weights, white for zero, red
/// for positive, one scale for the whole bank (±largest |weight|), with a colour bar.
///
/// Filters run in reading order (left to right, then down); a filter with C > 1 channels
/// is C tiles side by side, channel 0 first. This is the book's picture of the first
/// layer's filters: noise before training, edge and blob detectors after.
///
/// ```
/// use cnn_from_scratch::viz;
/// use ndarray::Array4;
///
/// // 30 random-looking 5x5 filters, like SimpleConvNet's first layer before training.
/// let bank = Array4::from_shape_fn((30, 1, 5, 5), |(f, _, i, j)| ((f * 31 + i * 7 + j * 3) % 11) as f32 - 5.0);
/// let picture = viz::filter_grid("Filters before training", bank.view())?;
/// assert!(picture.width() >= 600);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn filter_grid(title: &str, filters: ArrayView4<f32>) -> Result<Picture, PlotError> {
    let (fn_, c, fh, fw) = filters.dim();
    if fn_ == 0 || c == 0 || fh == 0 || fw == 0 {
        return Err(PlotError::Nothing(format!(
            "filter_grid {title:?} got a filter bank of shape {:?}",
            filters.shape()
        )));
    }
    let largest = filters.iter().fold(
        0.0f32,
        |m, v| if v.is_finite() { m.max(v.abs()) } else { m },
    );
    let m = if largest > 0.0 { largest } else { 1.0 };
    let cells: Vec<Cell> = filters
        .outer_iter()
        .map(|filter| Cell {
            tiles: filter
                .outer_iter()
                .map(|channel| Tile {
                    h: fh,
                    w: fw,
                    pixels: channel.iter().map(|&v| diverging(v / m)).collect(),
                })
                .collect(),
            caption: String::new(),
        })
        .collect();
    let cols = ((fn_ as f32 / c as f32).sqrt().ceil() as usize).max(1);
    let scale = scale_for(fh.max(fw), (800 / (cols * c) as u32).min(110));
    let title = if c > 1 {
        format!("{title}\n(each filter: its {c} channels left to right)")
    } else {
        title.to_string()
    };
    render_cells(&title, &cells, cols, scale, Some(m))
}

/// The feature maps `(FN, OH, OW)` a layer makes from one input, as a grid of grey tiles.
///
/// Each map is stretched to its own min..max (black = its smallest value, white = its
/// largest), so a map with small activations is still visible; the title says so. A
/// constant map (say, all zero after ReLU: a filter that found nothing) is mid-grey. The
/// caption under each map is its index, the index of the filter that made it.
///
/// ```
/// use cnn_from_scratch::viz;
/// use ndarray::Array3;
///
/// let maps = Array3::from_shape_fn((8, 24, 24), |(k, i, j)| ((i * (k + 1) + j) % 24) as f32);
/// let picture = viz::feature_maps("Conv1 feature maps of one digit", maps.view())?;
/// assert!(picture.height() > 100);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn feature_maps(title: &str, maps: ArrayView3<f32>) -> Result<Picture, PlotError> {
    let (n, h, w) = maps.dim();
    if n == 0 {
        return Err(PlotError::Nothing(format!(
            "feature_maps {title:?} got no maps"
        )));
    }
    let cells: Vec<Cell> = maps
        .outer_iter()
        .enumerate()
        .map(|(k, map)| {
            let (lo, hi) = min_max(map.iter());
            Cell {
                tiles: vec![colour_tile(map.insert_axis(Axis(0)), lo, hi)],
                caption: k.to_string(),
            }
        })
        .collect();
    let cols = (n as f32).sqrt().ceil() as usize;
    let scale = scale_for(h.max(w), (900 / cols as u32).min(160));
    let title = format!("{title}\n(each map scaled to its own min..max: black = min, white = max)");
    render_cells(&title, &cells, cols, scale, None)
}

/// One image in a [`side_by_side`] picture: grey `(1, H, W)` or RGB `(3, H, W)`, with a
/// caption (it may span several lines, split at `\n`).
#[derive(Clone, Debug)]
pub struct Panel {
    image: ndarray::Array3<f32>,
    caption: String,
}

impl Panel {
    /// A single-channel image `(H, W)`.
    pub fn grey(image: ArrayView2<f32>, caption: impl Into<String>) -> Self {
        Panel {
            image: image.insert_axis(Axis(0)).to_owned(),
            caption: caption.into(),
        }
    }

    /// A colour image `(3, H, W)`. Panics if the first axis is not 3.
    pub fn rgb(image: ArrayView3<f32>, caption: impl Into<String>) -> Self {
        assert_eq!(
            image.dim().0,
            3,
            "Panel::rgb needs shape (3, H, W), got {:?}",
            image.shape()
        );
        Panel {
            image: image.to_owned(),
            caption: caption.into(),
        }
    }
}

/// Images side by side, all enlarged by the *same* factor so their sizes can be compared,
/// at most four per row, each captioned underneath.
///
/// One function serves every before/after picture of the chapter: an image and its Sobel
/// or averaging output, the outputs of several padding/stride settings (with the sizes
/// from equation 7.1 in the captions), max vs average pooling. Each panel is stretched to
/// its own min..max (for RGB, over all three channels), so compare shapes, not brightness.
///
/// ```
/// use cnn_from_scratch::viz::{self, Panel};
/// use ndarray::Array2;
///
/// let image = Array2::from_shape_fn((28, 28), |(i, j)| if j > 10 && j < 18 { 1.0 } else { 0.0 });
/// let edges = Array2::from_shape_fn((26, 26), |(_, j)| if j == 9 { 4.0 } else if j == 16 { -4.0 } else { 0.0 });
/// let picture = viz::side_by_side(
///     "A vertical bar and its Sobel x response",
///     &[Panel::grey(image.view(), "input 28x28"), Panel::grey(edges.view(), "Sobel x, pad 0, stride 1\n→ 26x26")],
/// )?;
/// assert!(picture.width() > 300);
/// # Ok::<(), viz::PlotError>(())
/// ```
pub fn side_by_side(title: &str, panels: &[Panel]) -> Result<Picture, PlotError> {
    if panels.is_empty() {
        return Err(PlotError::Nothing(format!(
            "side_by_side {title:?} got no panels"
        )));
    }
    let cols = panels.len().min(4);
    let max_h = panels.iter().map(|p| p.image.dim().1).max().unwrap_or(1);
    let widest_row = panels
        .chunks(cols)
        .map(|row| row.iter().map(|p| p.image.dim().2).sum::<usize>())
        .max()
        .unwrap_or(1);
    let scale = scale_for(max_h, 320).min(scale_for(widest_row, 1100));
    let cells: Vec<Cell> = panels
        .iter()
        .map(|p| {
            let (lo, hi) = min_max(p.image.iter());
            Cell {
                tiles: vec![colour_tile(p.image.view(), lo, hi)],
                caption: p.caption.clone(),
            }
        })
        .collect();
    render_cells(title, &cells, cols, scale, None)
}
