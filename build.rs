//! Embeds the pictures of `docs/images/` in the rustdoc tutorial, so the generated HTML shows
//! them offline with no files outside the docs.
//!
//! Each tutorial page `src/tutorial/_NN_*.md` is copied to `$OUT_DIR/tutorial/` with, after
//! its text, one Markdown link reference definition per picture it shows:
//! `[fig-NAME]: data:image/png;base64,...` for `docs/images/NAME.png`. So `![caption][fig-NAME]`
//! on a page becomes an image inside the HTML. `src/tutorial/mod.rs` includes the copies.
//! A page that names a picture missing from `docs/images/` still builds (the reference stays
//! text, and the tutorial's test `every_picture_is_embedded` fails).

use std::{env, fs, path::Path};

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (RFC 4648), enough for a data URI.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            // A chunk of `len` bytes gives `len + 1` characters; the rest is padding.
            if k <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The files in `dir` whose name ends in `.ext`, sorted; none if `dir` does not exist.
fn files(dir: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    paths.retain(|path| path.extension().is_some_and(|e| e == ext));
    paths.sort();
    paths
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn main() {
    println!("cargo::rerun-if-changed=docs/images");
    println!("cargo::rerun-if-changed=src/tutorial");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("tutorial");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));

    let pictures = files("docs/images", "png");
    for page in files("src/tutorial", "md") {
        let mut text = String::from_utf8(read(&page))
            .unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", page.display()));
        for picture in &pictures {
            let name = picture.file_stem().unwrap_or_default().to_string_lossy();
            let label = format!("[fig-{name}]");
            if text.contains(&label) {
                let data = base64(&read(picture));
                text += &format!("\n{label}: data:image/png;base64,{data}\n");
            }
        }
        let target = out.join(page.file_name().expect("a file"));
        fs::write(&target, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
    }
}
