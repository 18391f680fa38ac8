//! The audit log: every query and API call, accepted or refused, appended to a file where each
//! entry carries the SHA-256 of the previous one. Editing, removing or reordering any entry
//! breaks the chain at that entry, and `verify` names it.
//!
//! One line per entry, JSON, with the hash as its last field:
//! `{"seq":7,"ts":"…","prev":"<hash of entry 6>",…,"hash":"<sha256(prev ‖ line without hash)>"}`.
//! The hash covers the line's exact bytes, so any changed byte shows. A head file beside the
//! log records the last sequence number and hash, so entries cut from the end show too.

pub mod checkpoint;
mod entry;
mod verify;
mod writer;

pub use checkpoint::{Checkpoint, Signer, checkpoint_path, read_public_key};
pub use entry::{AuditEvent, Entry, Interface, Outcome};
pub use verify::{Problem, SignedCheck, Verified, verify, verify_signed};
pub use writer::AuditLog;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit log {path}: {message}")]
    Corrupt { path: String, message: String },
    /// The writer has stopped (it failed earlier); nothing more can be recorded.
    #[error("the audit log writer has stopped: {0}")]
    Stopped(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The chain's start: the `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn chain_hash(prev: &str, body: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(body);
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The head file that goes with a log file.
pub fn head_path(log: &std::path::Path) -> std::path::PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    log.with_file_name(name)
}
