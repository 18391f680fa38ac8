//! The commit log: one JSON file per committed batch, named by its sequence number.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::{Error, LOG_DIR, Result};

/// Row accounting of one batch. Always `rows_read = rows_loaded + rows_quarantined +
/// rows_duplicate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.rows_read += other.rows_read;
        self.rows_loaded += other.rows_loaded;
        self.rows_quarantined += other.rows_quarantined;
        self.rows_duplicate += other.rows_duplicate;
    }

    pub fn balanced(&self) -> bool {
        self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate
    }
}

/// A Parquet file of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub dataset: String,
    /// Relative to the lake root.
    pub path: String,
    pub rows: u64,
}

/// One committed batch: a delivered source file turned into rows of one or more datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub seq: u64,
    pub batch: String,
    /// The mapping's source id.
    pub source: String,
    /// The delivered file, relative to the data directory.
    pub file: String,
    /// SHA-256 of the file's bytes.
    pub fingerprint: String,
    pub bytes: u64,
    pub committed_at: DateTime<Utc>,
    /// How fresh the source says its data is (from the file name or the delivery date).
    pub as_of: Option<NaiveDate>,
    /// Batches this one replaces (a corrected re-export, or a new snapshot of the source).
    #[serde(default)]
    pub supersedes: Vec<String>,
    pub files: Vec<DataFile>,
    pub counts: Counts,
}

pub(crate) fn log_dir(lake: &Path) -> PathBuf {
    lake.join(LOG_DIR)
}

pub(crate) fn commit_path(lake: &Path, seq: u64) -> PathBuf {
    log_dir(lake).join(format!("{seq:020}.json"))
}

/// Every commit in the log, in sequence order. Temporary files of an unfinished commit are not
/// commits and are skipped.
pub fn read_log(lake: &Path) -> Result<Vec<Commit>> {
    let dir = log_dir(lake);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .at(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    let mut commits = Vec::with_capacity(entries.len());
    for path in entries {
        let text = fs::read(&path).at(&path)?;
        let commit: Commit = serde_json::from_slice(&text).map_err(|e| Error::CorruptLog {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let expected = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        if expected != Some(commit.seq) {
            return Err(Error::CorruptLog {
                path,
                message: format!("holds commit {} under another number", commit.seq),
            });
        }
        commits.push(commit);
    }
    Ok(commits)
}
