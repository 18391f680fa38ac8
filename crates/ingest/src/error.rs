use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mapping file is wrong; nothing has been read. `line` is 1-based.
    #[error("{file}:{line}: {message}")]
    Mapping {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// A file is taken by more than one mapping: it would be loaded twice.
    #[error("{file} 同时被多个映射选中，会被重复导入；请收窄这些映射的 files 模式 (the file is matched by more than one mapping: {}); nothing was read", mappings.join(", "))]
    Overlap { file: String, mappings: Vec<String> },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A source file cannot be read at all (not one of its rows is usable).
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },

    /// A live source could not be pulled (unreachable, refused, a query failed); nothing of
    /// this pull after its last committed batch was kept.
    #[error("{source_id}: {message}")]
    Pull { source_id: String, message: String },

    /// A live source dropped or retyped a column the mapping uses: nothing was loaded.
    #[error("{source_id}: {message}")]
    SchemaDrift { source_id: String, message: String },

    #[error(transparent)]
    Lake(#[from] hedui_lake::Error),
}

impl Error {
    /// What may be shown to whoever reads the source's status (the data page, `/metrics`
    /// readers): a database's or an API's own error text can quote the values it choked on (a
    /// cursor value, a record), so a failed pull says only that it failed and where the
    /// details are. The other errors are hedui's own words about mappings, columns and files.
    pub fn public_message(&self) -> String {
        match self {
            Error::Pull { source_id, .. } => format!(
                "{source_id}: 拉取失败，详情见服务器日志 (the pull failed; the server log has the details)"
            ),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
