use std::path::PathBuf;

/// Errors of the model crate: all of them are about the canonical dataset definitions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("schema {file}: {message}")]
    Schema { file: PathBuf, message: String },

    #[error("unknown dataset `{0}`")]
    UnknownDataset(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
