//! Decode files to prove they are whole: PNG pictures with the `image` crate, safetensors
//! files with the `safetensors` crate. Used by `.ci/check_chapter7.sh`.
//!
//! ```text
//! cargo run --release --example check_pngs -- target/chapter7/*.png target/chapter7/*.safetensors
//! ```
//!
//! Prints one line per file (size in pixels or tensor names) and exits with status 1,
//! naming every bad file, if any file is missing or does not decode.

use std::path::Path;
use std::process::ExitCode;

fn check(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
                .map_err(|e| format!("not a valid PNG: {e}"))?;
            if image.width() == 0 || image.height() == 0 {
                return Err("empty PNG".into());
            }
            Ok(format!("PNG {}x{}", image.width(), image.height()))
        }
        Some("safetensors") => {
            let tensors = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| format!("not a valid safetensors file: {e}"))?;
            let mut names = tensors.names();
            names.sort();
            if names.is_empty() {
                return Err("no tensors".into());
            }
            Ok(format!(
                "safetensors with {}",
                names
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
        _ => {
            if bytes.is_empty() {
                return Err("empty file".into());
            }
            Ok(format!("{} bytes", bytes.len()))
        }
    }
}

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: check_pngs FILE...");
        return ExitCode::from(2);
    }
    let mut bad = 0;
    for path in &paths {
        match check(Path::new(path)) {
            Ok(what) => println!("ok   {path}: {what}"),
            Err(why) => {
                println!("BAD  {path}: {why}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!(
            "error: {bad} of {} files missing or undecodable",
            paths.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
