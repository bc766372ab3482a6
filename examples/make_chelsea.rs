//! One-off tool that made `assets/chelsea.png`: halves "Chelsea the cat" (451x300, CC0,
//! scikit-image 0.26.0 `skimage/data/chelsea.png`) to 226x150 so the crate ships a small
//! colour picture for the filtering examples.
//!
//! ```text
//! cargo run --example make_chelsea -- ../shared/data/chelsea.png assets/chelsea.png
//! ```

use image::imageops::FilterType;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let input = args
        .get(1)
        .map_or("../shared/data/chelsea.png", String::as_str);
    let output = args.get(2).map_or("assets/chelsea.png", String::as_str);
    let cat = image::open(input)?.to_rgb8();
    let small = image::imageops::resize(&cat, 226, 150, FilterType::Lanczos3);
    small.save(output)?;
    println!(
        "{input} ({}x{}) -> {output} (226x150)",
        cat.width(),
        cat.height()
    );
    Ok(())
}
