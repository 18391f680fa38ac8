//! What an ingest did, per delivered file: the numbers a data officer checks.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use hedui_lake::Counts;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Committed as a new batch.
    Loaded,
    /// The same bytes were already committed for this source (or are another file of this
    /// ingest, `same_as`): skipped.
    Unchanged,
    /// Read, but not committed: another file of the same delivery could not be read.
    Withheld,
    /// The file could not be read at all; nothing of it was committed.
    Failed,
    /// No mapping takes this file.
    Unmapped,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub source: Option<String>,
    pub status: FileStatus,
    pub batch: Option<String>,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
    /// Title rows, blank rows, unit lines, 合计 rows and repeated headers: not data.
    pub layout_rows: u64,
    /// Rows loaded per dataset.
    pub datasets: BTreeMap<String, u64>,
    /// Quarantined rows per reason code (`id.bad_check`, `date.form`, ...).
    pub quarantine_reasons: BTreeMap<String, u64>,
    pub encoding: Option<String>,
    pub as_of: Option<NaiveDate>,
    /// Where `as_of` came from; `modified` is a guess (the file's modification time).
    pub as_of_basis: Option<crate::as_of::Basis>,
    /// The file whose identical bytes this one repeats.
    pub same_as: Option<String>,
    pub supersedes: Vec<String>,
    pub error: Option<String>,
    /// Wall-clock seconds spent on this file (read, parse, write, commit).
    pub seconds: f64,
}

impl FileReport {
    pub fn new(file: &str, source: Option<&str>, status: FileStatus) -> Self {
        FileReport {
            file: file.to_string(),
            source: source.map(str::to_string),
            status,
            batch: None,
            rows_read: 0,
            rows_loaded: 0,
            rows_quarantined: 0,
            rows_duplicate: 0,
            layout_rows: 0,
            datasets: BTreeMap::new(),
            quarantine_reasons: BTreeMap::new(),
            encoding: None,
            as_of: None,
            as_of_basis: None,
            same_as: None,
            supersedes: Vec::new(),
            error: None,
            seconds: 0.0,
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            rows_read: self.rows_read,
            rows_loaded: self.rows_loaded,
            rows_quarantined: self.rows_quarantined,
            rows_duplicate: self.rows_duplicate,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub lake: String,
    pub data: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The lake's version (last commit) after the ingest.
    pub lake_version: u64,
    pub files: Vec<FileReport>,
    pub totals: Counts,
    /// Set when the lake itself could not be written (a full disk): the ingest stopped there.
    pub aborted: Option<String>,
}

impl IngestReport {
    /// Files that were not loaded because of what they are: failed, or held back with their
    /// delivery.
    pub fn failed(&self) -> impl Iterator<Item = &FileReport> {
        self.files
            .iter()
            .filter(|f| matches!(f.status, FileStatus::Failed | FileStatus::Withheld))
    }
}
