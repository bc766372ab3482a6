//! A white RGB pixel buffer that tiles are copied into directly and that plotters draws
//! text and charts onto; then encoded as PNG.

use std::sync::Once;

use image::ImageEncoder;
use plotters::backend::BitMapBackend;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::colour::Rgb;
use super::{Picture, PlotError};

/// DejaVu Sans, bundled so text renders without any system font (licence in
/// `assets/fonts/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/fonts/DejaVuSans.ttf"
));

/// Registers the bundled font as plotters' "sans-serif" family, once per process.
pub(crate) fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let registered =
            plotters::style::register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS);
        assert!(
            registered.is_ok(),
            "the bundled DejaVuSans.ttf failed to load"
        );
    });
}

/// The font every picture uses, at `size` pixels.
pub(crate) fn font(size: u32) -> FontDesc<'static> {
    ensure_font();
    FontDesc::new(FontFamily::SansSerif, f64::from(size), FontStyle::Normal)
}

/// Width in pixels of `text` drawn at `size`.
pub(crate) fn text_width(text: &str, size: u32) -> u32 {
    text.lines()
        .map(|line| {
            font(size)
                .box_size(line)
                .map_or(line.len() as u32 * size, |(w, _)| w)
        })
        .max()
        .unwrap_or(0)
}

pub(crate) const TITLE_SIZE: u32 = 24;
pub(crate) const LABEL_SIZE: u32 = 16;
pub(crate) const FRAME: Rgb = [150, 150, 150];

pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![255; width as usize * height as usize * 3],
        }
    }

    pub fn put(&mut self, x: i64, y: i64, colour: Rgb) {
        if (0..i64::from(self.width)).contains(&x) && (0..i64::from(self.height)).contains(&y) {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&colour);
        }
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: u32, h: u32, colour: Rgb) {
        for yy in y..y + i64::from(h) {
            for xx in x..x + i64::from(w) {
                self.put(xx, yy, colour);
            }
        }
    }

    /// A one-pixel frame just outside the rectangle (x, y, w, h).
    pub fn frame(&mut self, x: i64, y: i64, w: u32, h: u32, colour: Rgb) {
        let (w, h) = (i64::from(w), i64::from(h));
        for xx in x - 1..=x + w {
            self.put(xx, y - 1, colour);
            self.put(xx, y + h, colour);
        }
        for yy in y - 1..=y + h {
            self.put(x - 1, yy, colour);
            self.put(x + w, yy, colour);
        }
    }

    /// Copies an `h` x `w` image whose pixel (i, j) has colour `pixel(i, j)`, each pixel
    /// enlarged to a `scale` x `scale` square (nearest neighbour, so pixels stay visible).
    pub fn blit(
        &mut self,
        x: i64,
        y: i64,
        (h, w): (usize, usize),
        scale: u32,
        pixel: impl Fn(usize, usize) -> Rgb,
    ) {
        let s = i64::from(scale);
        for i in 0..h {
            for j in 0..w {
                self.fill_rect(
                    x + j as i64 * s,
                    y + i as i64 * s,
                    scale,
                    scale,
                    pixel(i, j),
                );
            }
        }
    }

    /// Lets plotters draw on top of the pixels already here (text, axes, lines).
    pub fn draw(
        &mut self,
        f: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), PlotError>,
    ) -> Result<(), PlotError> {
        ensure_font();
        let root = BitMapBackend::with_buffer(&mut self.rgb, (self.width, self.height))
            .into_drawing_area();
        f(&root)?;
        root.present()?;
        Ok(())
    }

    /// Draws `text` (lines split at `\n`) with its top edge at `y`, horizontally
    /// centred on `x` or starting at `x`.
    pub fn text(
        &mut self,
        text: &str,
        (x, y): (i32, i32),
        size: u32,
        centred: bool,
        colour: Rgb,
    ) -> Result<(), PlotError> {
        let h = if centred { HPos::Center } else { HPos::Left };
        let style = font(size)
            .color(&RGBColor(colour[0], colour[1], colour[2]))
            .pos(Pos::new(h, VPos::Top));
        let line_height = (size as f32 * 1.25).round() as i32;
        self.draw(|root| {
            for (k, line) in text.lines().enumerate() {
                root.draw(&Text::new(line, (x, y + k as i32 * line_height), &style))?;
            }
            Ok(())
        })
    }

    pub fn into_picture(self) -> Result<Picture, PlotError> {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&self.rgb, self.width, self.height, image::ColorType::Rgb8)
            .map_err(PlotError::Encode)?;
        Ok(Picture::new(self.width, self.height, png))
    }
}

/// Number of text lines in `text` times the line height used by [`Canvas::text`].
pub(crate) fn text_height(text: &str, size: u32) -> u32 {
    let lines = text.lines().count() as u32;
    if lines == 0 {
        0
    } else {
        (lines - 1) * (size as f32 * 1.25).round() as u32 + size + 4
    }
}
