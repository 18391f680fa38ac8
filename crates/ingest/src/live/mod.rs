//! Live sources: department databases (and APIs) that hedui pulls rather than files delivered
//! to it. A pull reads the source through its mapping exactly as a file is read (same column
//! mapping, parsers and quarantine), keeps one version of every source key in the lake (updated
//! rows replace their earlier version, deleted rows are taken out) and records where it stands
//! only in the commit of the batch that consumed it.
//!
//! Each attempt, successful or not, is also recorded in `_pulls/<source>.json` (last success,
//! last error, failures in a row): what the data page, the metrics and the scheduler show.

mod database;
mod http;
mod keyed;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hedui_lake::{Counts, LakeWriter};
use serde::{Deserialize, Serialize};

use crate::mapping::{Mapping, Origin};
use crate::report::FileReport;
use crate::{Error, Result};

/// Where pull attempts are recorded inside the lake.
pub const PULLS_DIR: &str = "_pulls";

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Accept a changed source schema (a column the mapping uses dropped or retyped) after the
    /// mapping was checked against it.
    pub accept_schema: bool,
    /// Compare every key with the source now, whatever `compare_keys_every` says.
    pub compare_keys: bool,
}

/// What one pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The batches committed (one per `batch_rows` rows, and the last), or one `unchanged`.
    pub batches: Vec<FileReport>,
    pub totals: Counts,
    /// Rows the source returned in this pull.
    pub rows_taken: u64,
    /// Rows that replaced an earlier version in the lake.
    pub rows_updated: u64,
    /// Rows taken out of the lake because the source deleted them.
    pub rows_deleted: u64,
    /// Keys the lake held for the source before the pull.
    pub keys_before: u64,
    /// Whether every key was compared with the source (deleted rows found).
    pub keys_compared: bool,
    /// Columns the source has that it did not have at the last pull (reported once).
    pub columns_added: Vec<String>,
    pub lake_version: u64,
}

/// The last attempts to pull a source, kept beside the lake.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullStatus {
    pub source: String,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Failed attempts ever (for the metrics).
    pub failures_total: u64,
}

fn status_path(lake: &Path, source: &str) -> PathBuf {
    lake.join(PULLS_DIR).join(format!("{source}.json"))
}

/// The recorded attempts of `source` (default when it was never pulled).
pub fn read_status(lake: &Path, source: &str) -> PullStatus {
    std::fs::read(status_path(lake, source))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| PullStatus {
            source: source.to_string(),
            ..Default::default()
        })
}

fn write_status(lake: &Path, status: &PullStatus) -> Result<()> {
    let path = status_path(lake, &status.source);
    let dir = path.parent().expect("pulls dir");
    let io = |e| Error::Io {
        path: path.clone(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{}.tmp", status.source));
    std::fs::write(&tmp, serde_json::to_vec_pretty(status).expect("serialises")).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Pull one live source into the lake at `lake_dir` now. Blocking (it runs its own runtime for
/// the database driver): call it from a thread, not from async code.
pub fn pull(mapping: &Mapping, lake_dir: &Path, opts: &PullOptions) -> Result<PullReport> {
    let started_at = Utc::now();
    let mut status = read_status(lake_dir, &mapping.id);
    status.last_attempt_at = Some(started_at);
    let result = pull_now(mapping, lake_dir, opts, started_at);
    match &result {
        Ok(_) => {
            status.last_success_at = Some(Utc::now());
            status.last_error = None;
            status.failures = 0;
        }
        Err(e) => {
            tracing::error!(source = %mapping.id, error = %e, "pull failed");
            status.last_error = Some(e.to_string());
            status.failures += 1;
            status.failures_total += 1;
        }
    }
    // The lake must exist for the status to be kept beside it.
    if lake_dir.is_dir() {
        write_status(lake_dir, &status)?;
    }
    result
}

fn pull_now(
    mapping: &Mapping,
    lake_dir: &Path,
    opts: &PullOptions,
    started_at: DateTime<Utc>,
) -> Result<PullReport> {
    let mut lake = LakeWriter::open(lake_dir)?;
    let mut report = PullReport {
        source: mapping.id.clone(),
        started_at,
        finished_at: started_at,
        batches: Vec::new(),
        totals: Counts::default(),
        rows_taken: 0,
        rows_updated: 0,
        rows_deleted: 0,
        keys_before: 0,
        keys_compared: false,
        columns_added: Vec::new(),
        lake_version: 0,
    };
    // The drivers are async; the pull runs them on a runtime of its own, on a thread of its
    // own (the caller may be inside another runtime).
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Pull {
                    source_id: mapping.id.clone(),
                    message: format!("cannot start the pull's runtime: {e}"),
                })?;
            match &mapping.origin {
                Origin::Database(db) => {
                    runtime.block_on(database::pull(&mut lake, mapping, db, opts, &mut report))
                }
                Origin::Http(api) => {
                    runtime.block_on(http::pull(&mut lake, mapping, api, opts, &mut report))
                }
                Origin::Files => Err(Error::Pull {
                    source_id: mapping.id.clone(),
                    message: "这是文件来源，请用 hedui ingest 导入 (a source of delivered files: use `hedui ingest`)".into(),
                }),
            }
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Pull {
                source_id: mapping.id.clone(),
                message: "the pull stopped unexpectedly (a bug in hedui; see the log)".into(),
            })
        })
    })?;
    for b in &report.batches {
        report.totals.add(&b.counts());
    }
    report.finished_at = Utc::now();
    report.lake_version = lake.snapshot().version();
    tracing::info!(
        source = %mapping.id,
        taken = report.rows_taken,
        loaded = report.totals.rows_loaded,
        updated = report.rows_updated,
        deleted = report.rows_deleted,
        "pull finished"
    );
    Ok(report)
}
