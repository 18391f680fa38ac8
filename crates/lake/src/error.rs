use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("writing Parquet {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },

    #[error("building Arrow batch for `{dataset}`: {source}")]
    Arrow {
        dataset: String,
        source: arrow_schema::ArrowError,
    },

    #[error(
        "commit log entry {path} is unreadable: {message}; the lake was edited by hand or the disk is damaged"
    )]
    CorruptLog { path: PathBuf, message: String },

    #[error("another process is writing to the lake {0} (its lock is held); wait for it to finish")]
    Locked(PathBuf),

    #[error("commit {0} already exists: two writers raced; re-run the ingest")]
    CommitConflict(PathBuf),

    #[error("lake URL `{url}`: {message}")]
    BadLakeUrl { url: String, message: String },

    #[error("object storage {url}: {source}")]
    ObjectStore {
        url: String,
        source: object_store::Error,
    },

    #[error(
        "the lake {0} is on object storage: it is written by publishing a local lake to it (`hedui publish`), not directly"
    )]
    RemoteWrite(String),

    #[error(transparent)]
    Model(#[from] hedui_model::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach the path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
