//! The synthetic city: a Yichang-like population, every department's export written in its real
//! form and habits, true cases planted for every rule of rules.md with near misses beside them,
//! and `truth.json` saying what is there.
//!
//! ```text
//! OUT/data/<department>/<export files>   what departments hand over
//! OUT/truth.json                          planted hits, decoys, broken and repeated rows
//! ```

mod background;
pub mod city;
mod export;
pub mod names;
mod oracle;
mod plant;
pub mod rng;
pub mod truth;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use plant::DIBAO_LINE_CENTS;
pub use truth::Truth;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing Excel: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("--persons must be at least 100 (got {0})")]
    TooSmall(u64),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct CityConfig {
    pub persons: u64,
    pub seed: u64,
}

/// What was generated, for the CLI to print.
#[derive(Debug, Clone)]
pub struct Generated {
    pub data_dir: PathBuf,
    pub truth_path: PathBuf,
    pub persons: u64,
    pub households: usize,
    pub files: usize,
    pub data_rows: u64,
    pub hits_per_rule: Vec<(String, usize)>,
    pub broken_rows: usize,
    pub seconds: f64,
}

/// Generate the city into `out`: `out/data/...` and `out/truth.json`. Deterministic per seed.
pub fn generate(config: &CityConfig, out: &Path) -> Result<Generated> {
    if config.persons < 100 {
        return Err(Error::TooSmall(config.persons));
    }
    let started = Instant::now();
    let mut city = background::build(config.persons, config.seed);
    let mut truth = Truth {
        seed: config.seed,
        persons: config.persons,
        year: city::YEAR,
        dibao_line: city::yuan(DIBAO_LINE_CENTS),
        ..Default::default()
    };
    plant::plant(&mut city, config.seed, &mut truth);
    oracle::evaluate(&city, &mut truth);
    tracing::info!(
        persons = config.persons,
        "city built; writing department exports"
    );

    let data_dir = out.join("data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    }
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    export::write_all(&city, &data_dir, &mut truth, config.seed)?;
    truth.broken_rows.sort();
    truth.duplicate_rows.sort();

    let truth_path = out.join("truth.json");
    let body = serde_json::to_vec_pretty(&truth).expect("truth serialises");
    std::fs::write(&truth_path, body).map_err(|e| Error::io(&truth_path, e))?;
    Ok(Generated {
        data_dir,
        truth_path,
        persons: config.persons,
        households: city.households.len(),
        files: truth.files.len() + truth.redelivered_files.len(),
        data_rows: truth.files.values().map(|f| f.data_rows).sum(),
        hits_per_rule: truth
            .rules
            .iter()
            .map(|(k, v)| (k.clone(), v.hits.len()))
            .collect(),
        broken_rows: truth.broken_rows.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
