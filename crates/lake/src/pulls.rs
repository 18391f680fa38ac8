//! The attempts to pull each live source, kept beside the lake in `_pulls/<source>.json`: the
//! last attempt and success, the last error, failures in a row and in all, and whether a pull
//! is running (left set by a pull that was killed). Not part of the commit log: a pull that
//! finds nothing new changes only this.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::error::IoContext;

/// Where pull attempts are recorded inside the lake.
pub const PULLS_DIR: &str = "_pulls";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullStatus {
    pub source: String,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Failed attempts ever (a counter for the metrics).
    pub failures_total: u64,
    /// Set while a pull runs; still set after a crash.
    #[serde(default)]
    pub running_since: Option<DateTime<Utc>>,
    /// The mapping's expected cadence (seconds), as of the last attempt: a source that has
    /// never been pulled successfully is stale from the start.
    #[serde(default)]
    pub cadence_secs: Option<u64>,
}

fn status_path(lake: &Path, source: &str) -> PathBuf {
    lake.join(PULLS_DIR).join(format!("{source}.json"))
}

/// The recorded attempts of `source` (empty when it was never pulled).
pub fn read_status(lake: &Path, source: &str) -> PullStatus {
    std::fs::read(status_path(lake, source))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| PullStatus {
            source: source.to_string(),
            ..Default::default()
        })
}

/// Replace the recorded attempts of a source (written whole: a temporary file renamed).
pub fn write_status(lake: &Path, status: &PullStatus) -> Result<()> {
    let path = status_path(lake, &status.source);
    let dir = path.parent().expect("pulls dir");
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = dir.join(format!(".{}.tmp", status.source));
    std::fs::write(&tmp, serde_json::to_vec_pretty(status).expect("serialises")).at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)
}
