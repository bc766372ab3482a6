//! The value every plotting function returns: a finished PNG, in memory.

use std::path::Path;

use super::PlotError;

/// A finished picture: PNG-encoded bytes plus its size in pixels.
///
/// Keeping the PNG in memory (instead of writing a file straight away) lets the same
/// picture be saved to disk or shown inline in a notebook.
#[derive(Clone, Debug)]
pub struct Picture {
    width: u32,
    height: u32,
    png: Vec<u8>,
}

impl Picture {
    pub(crate) fn new(width: u32, height: u32, png: Vec<u8>) -> Self {
        Picture { width, height, png }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The PNG file's bytes.
    pub fn png_bytes(&self) -> &[u8] {
        &self.png
    }

    /// Writes the PNG to `path`, creating missing parent folders.
    ///
    /// ```
    /// # use cnn_from_scratch::viz;
    /// let picture = viz::training_curves("Training", &[2.3, 1.1, 0.4], &[0.9], &[0.88])?;
    /// let path = std::env::temp_dir().join("cnn-from-scratch-doc/training.png");
    /// picture.save(&path)?;
    /// assert!(std::fs::metadata(&path).map_or(false, |m| m.len() > 1000));
    /// # Ok::<(), viz::PlotError>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PlotError> {
        let path = path.as_ref();
        let write_err = |source| PlotError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        std::fs::write(path, &self.png).map_err(write_err)
    }

    /// Shows the picture inline in a Jupyter notebook running the evcxr kernel.
    ///
    /// evcxr looks for this method on the value of a cell's last expression, so a cell
    /// ending in a picture displays it:
    ///
    /// ```text
    /// :dep cnn-from-scratch = { path = ".." }
    /// use cnn_from_scratch::viz;
    /// viz::filter_grid("Filters", bank.view())?
    /// ```
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
            base64(&self.png)
        );
    }
}

/// Standard base64 (RFC 4648, with `=` padding): the text form notebooks expect for images.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_examples() {
        // The test vectors of RFC 4648, section 10.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "base64({plain:?})");
        }
    }
}
