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

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
