//! The hedui lake: one Parquet directory per canonical dataset, written in batches (one batch per
//! delivered source file) and made visible only by an entry in the commit log `_log/`.
//!
//! ```text
//! lake/
//!   _log/00000000000000000001.json   one commit per batch, written whole or not at all
//!   _lock                             held by the one writer at a time
//!   persons/00000001-3fa2c1d0.parquet files of batch 00000001-3fa2c1d0
//!   quarantine/00000001-3fa2c1d0.parquet
//!   _keys/00000002-9c01d2e4.parquet   a keyed source's row keys (database tables, APIs)
//!   persons/00000001-3fa2c1d0~7.parquet the batch after commit 7 took updated rows out
//!   _pulls/<source>.json              a live source's pull attempts
//! ```
//!
//! A reader takes a [`Snapshot`] (the commits present when it looked) and reads only the files
//! those commits list, so a batch being written, or left half-written by a crash, is never seen.

pub mod append;
pub mod error;
pub mod freshness;
pub mod keys;
pub mod log;
pub mod pulls;
pub mod remote;
mod rewrite;
pub mod snapshot;
pub mod writer;

pub use append::DatasetAppender;
pub use error::{Error, Result};
pub use freshness::{SourceFreshness, freshness};
pub use keys::{KEYS_DATASET, KeyEntry, read_keys};
pub use log::{Commit, CommitMeta, Counts, DataFile, Delivery, PullState, Rewrite, SourceColumn};
pub use remote::{Published, RemoteLake, object_store_url};
pub use snapshot::Snapshot;
pub use writer::{BatchStarter, BatchWriter, LakeWriter};

use std::path::{Path, PathBuf};

/// Where the commit log lives inside a lake.
pub const LOG_DIR: &str = "_log";
/// The lock file of the lake's single writer.
pub const LOCK_FILE: &str = "_lock";

/// SHA-256 of a delivered file, fed in pieces as it is read: the file's fingerprint.
pub struct Fingerprinter(ring::digest::Context);

impl Default for Fingerprinter {
    fn default() -> Self {
        Fingerprinter(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Fingerprinter {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> String {
        self.0
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The directory of a dataset inside a lake.
pub fn dataset_dir(lake: &Path, dataset: &str) -> PathBuf {
    lake.join(dataset)
}
