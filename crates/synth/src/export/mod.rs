//! Department files as departments write them: encodings, title rows, mixed date forms, ID
//! habits; plus the rows the generator breaks or repeats on purpose, recorded in the truth.

mod breakage;
mod csv_out;
mod departments;
mod habits;
mod ledgers;
mod xlsx_out;

use std::path::{Path, PathBuf};

use crate::Result;
use crate::city::City;
use crate::rng::Rng;
use crate::truth::Truth;

/// Shared state of all department writers.
pub struct Exporter<'a> {
    pub city: &'a City,
    pub root: PathBuf,
    pub truth: &'a mut Truth,
    pub rng: Rng,
}

impl Exporter<'_> {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Write every department's export under `root`.
pub fn write_all(city: &City, root: &Path, truth: &mut Truth, seed: u64) -> Result<()> {
    let mut ex = Exporter {
        city,
        root: root.to_path_buf(),
        truth,
        rng: Rng::new(seed).fork(1234),
    };
    departments::write_all(&mut ex)
}
