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
    /// How fresh the source says its data is.
    pub as_of: Option<NaiveDate>,
    /// Where `as_of` came from: `stated` (the mapping), `file_name`, `column`, or `modified` (the
    /// file's modification time, which copying resets: a guess the data page points out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_basis: Option<String>,
    /// The file's modification time when read (Unix nanoseconds): with `bytes`, recognises an
    /// unchanged file without parsing it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<i64>,
    /// The delivery of a full extract this batch is part of: its batches become live together,
    /// when the last of them is committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Batches this one replaces (a corrected re-export, or a new snapshot of the source).
    #[serde(default)]
    pub supersedes: Vec<String>,
    pub files: Vec<DataFile>,
    pub counts: Counts,
    /// A live source (a database table, an API): where its pull stands after this batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullState>,
    /// How often the source's mapping expects new data (seconds): later than this, the
    /// source is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence_secs: Option<u64>,
    /// Earlier batches of a keyed source rewritten by this commit without the rows it updates or
    /// deletes: from here on these are their files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<Rewrite>,
}

/// Where a live source's pull stands, saved only in the commit of the batch that consumed it:
/// a crash before the commit leaves the previous position, so nothing is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullState {
    /// The pull this batch is part of (one pull may commit several batches).
    pub pull: String,
    /// Whether the pull is finished with this batch (its last batch).
    pub complete: bool,
    /// The incremental cursor: the cursor column's greatest value taken (the next pull starts
    /// from it again, inclusive, so rows committed later with the same value are not missed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// An API's next page, when the pull stopped between pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    /// When the source's keys were last compared in full (rows deleted at the source found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_at: Option<DateTime<Utc>>,
    /// The source's columns (name and type) as last read: a dropped or retyped column stops
    /// the next pull.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<SourceColumn>,
    /// Records the pull has received so far (an API's reported count is checked against it).
    #[serde(default)]
    pub taken: u64,
    /// Rows of earlier batches this batch updated and removed (keys deleted at the source).
    #[serde(default)]
    pub rows_updated: u64,
    #[serde(default)]
    pub rows_deleted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The files of an earlier batch after rows were taken out of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub batch: String,
    pub files: Vec<DataFile>,
}

/// Several files of one source taken in one ingest (城区 and 县市 extracts): one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    /// How many batches make it up; it is complete when all are committed.
    pub batches: u32,
}

/// What a batch's commit records besides its data files.
#[derive(Debug, Clone, Default)]
pub struct CommitMeta {
    pub fingerprint: String,
    pub bytes: u64,
    pub modified_ns: Option<i64>,
    pub counts: Counts,
    pub as_of: Option<NaiveDate>,
    pub as_of_basis: Option<String>,
    pub supersedes: Vec<String>,
    pub delivery: Option<Delivery>,
    pub pull: Option<PullState>,
    pub cadence_secs: Option<u64>,
    /// Rows to take out of earlier batches of the source (by batch, `_row` numbers): versions
    /// this batch updates and keys deleted at the source. Done in the same commit.
    pub remove: std::collections::BTreeMap<String, Vec<i64>>,
}

pub(crate) fn log_dir(lake: &Path) -> PathBuf {
    lake.join(LOG_DIR)
}

pub(crate) fn commit_path(lake: &Path, seq: u64) -> PathBuf {
    lake.join(commit_name(seq))
}

/// Where commit `seq`'s log entry is, relative to the lake (on disk or in a bucket).
pub(crate) fn commit_name(seq: u64) -> String {
    format!("{LOG_DIR}/{seq:020}.json")
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
        let expected = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        commits.push(parse_commit(&path, &text, expected)?);
    }
    Ok(commits)
}

/// One commit log entry, checked to hold the commit its name says (`expected`).
pub(crate) fn parse_commit(path: &Path, text: &[u8], expected: Option<u64>) -> Result<Commit> {
    let commit: Commit = serde_json::from_slice(text).map_err(|e| Error::CorruptLog {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if expected != Some(commit.seq) {
        return Err(Error::CorruptLog {
            path: path.to_path_buf(),
            message: format!("holds commit {} under another number", commit.seq),
        });
    }
    Ok(commit)
}
