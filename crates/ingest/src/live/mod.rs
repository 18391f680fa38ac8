//! Live sources: department databases (and APIs) that hedui pulls rather than files delivered
//! to it. A pull reads the source through its mapping exactly as a file is read (same column
//! mapping, parsers and quarantine), keeps one version of every source key in the lake (updated
//! rows replace their earlier version, deleted rows are taken out) and records where it stands
//! only in the commit of the batch that consumed it.
//!
//! Each attempt, successful or not, is also recorded in the lake's pull status
//! ([`hedui_lake::pulls`]): what the data page, the metrics and the scheduler show.

mod database;
mod http;
mod keyed;

use std::path::Path;

use chrono::{DateTime, Utc};
use hedui_lake::pulls::{read_status, write_status};
use hedui_lake::{Counts, LakeWriter};
use serde::Serialize;

use crate::mapping::{Mapping, Origin};
use crate::report::FileReport;
use crate::{Error, Result};

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

/// Pull one live source into the lake at `lake_dir` now. Blocking (it runs its own runtime for
/// the database driver): call it from a thread, not from async code.
pub fn pull(mapping: &Mapping, lake_dir: &Path, opts: &PullOptions) -> Result<PullReport> {
    let started_at = Utc::now();
    // The lake's lock first: a pull that waits for another writer has not failed.
    let lake = LakeWriter::open(lake_dir)?;
    let mut status = read_status(lake_dir, &mapping.id);
    status.last_attempt_at = Some(started_at);
    status.running_since = Some(started_at);
    status.cadence_secs = mapping.cadence.map(|d| d.as_secs());
    // Written before the pull too: a pull killed half-way is seen as interrupted.
    write_status(lake_dir, &status)?;
    let result = pull_now(lake, mapping, opts, started_at);
    status.running_since = None;
    match &result {
        Ok(_) => {
            status.last_success_at = Some(Utc::now());
            status.last_error = None;
            status.failures = 0;
        }
        Err(e) => {
            tracing::error!(source = %mapping.id, error = %e, "pull failed");
            status.last_error = Some(e.public_message());
            status.failures += 1;
            status.failures_total += 1;
        }
    }
    write_status(lake_dir, &status)?;
    result
}

fn pull_now(
    mut lake: LakeWriter,
    mapping: &Mapping,
    opts: &PullOptions,
    started_at: DateTime<Utc>,
) -> Result<PullReport> {
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
