//! The output folder and the list of files written to it.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use cnn_from_scratch::viz::{Picture, PlotError};

/// Where the files go, and one line per file saying what it shows.
pub struct Output {
    dir: PathBuf,
    files: Vec<(String, String)>,
}

/// The lines around the final table; `.ci/check_chapter7.sh` looks for them.
pub const TABLE_START: &str = "=== files written ===";
pub const TABLE_END: &str = "=== end of files ===";

impl Output {
    /// Creates `dir` if needed and proves it is writable with a probe file, so a bad
    /// `--out` fails in the first second with a message naming the folder.
    pub fn create(dir: &Path) -> Result<Self, Box<dyn Error>> {
        let fail =
            |e: std::io::Error| format!("cannot write to output folder {}: {e}", dir.display());
        fs::create_dir_all(dir).map_err(fail)?;
        let probe = dir.join(".chapter7-write-probe");
        fs::write(&probe, b"probe").map_err(fail)?;
        fs::remove_file(&probe).map_err(fail)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Saves a picture as `name` and records what it shows.
    pub fn picture(
        &mut self,
        name: &str,
        what: &str,
        picture: Result<Picture, PlotError>,
    ) -> Result<(), Box<dyn Error>> {
        picture?.save(self.path(name))?;
        self.record(name, what);
        println!("  wrote {name}");
        Ok(())
    }

    /// Records a file written by other means.
    pub fn record(&mut self, name: &str, what: &str) {
        self.files.push((name.to_string(), what.to_string()));
    }

    /// Writes `files.tsv` (file, tab, what it shows) and prints the same table between
    /// two marker lines, one file per line: `  <file>  <what it shows>`.
    pub fn finish(&self) -> Result<(), Box<dyn Error>> {
        let tsv: String = self
            .files
            .iter()
            .map(|(name, what)| format!("{name}\t{what}\n"))
            .collect();
        let manifest = self.path("files.tsv");
        fs::write(&manifest, tsv)
            .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;

        let width = self.files.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        println!(
            "\nEvery file written, in {} (also in files.tsv there):",
            self.dir.display()
        );
        println!("{TABLE_START}");
        for (name, what) in &self.files {
            println!("  {name:<width$}  {what}");
        }
        println!("{TABLE_END}");
        Ok(())
    }
}
