use std::path::PathBuf;

/// Everything a command can fail with, each said in one line: what, where, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Ingest(#[from] hedui_ingest::Error),
    #[error("{0}")]
    Synth(#[from] hedui_synth::Error),
    #[error("{0}")]
    Query(#[from] hedui_engine::Error),
    #[error("{0}")]
    Lake(#[from] hedui_lake::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Cases(#[from] hedui_cases::Error),
    #[error("{0}")]
    Service(#[from] hedui_service::Error),
    #[error("{file}:{line}: {message}")]
    Config {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("no lake at {0}: run `hedui ingest --lake {0}` first")]
    NoLake(PathBuf),
    #[error("{0}")]
    Auth(#[from] hedui_auth::Error),
    #[error("{0}")]
    Policy(#[from] hedui_policy::Error),
    #[error("{0}")]
    Audit(#[from] hedui_audit::Error),
    #[error("{0}")]
    Server(#[from] hedui_server::Error),
    /// A wrong argument: said plainly, exit code 2.
    #[error("{0}")]
    Usage(String),
    /// `hedui audit verify` found the chain broken.
    #[error("the audit log {path} has been tampered with: {problem}")]
    Tampered { path: PathBuf, problem: String },
}

impl Error {
    /// 2 for a problem in what the user gave (mapping, query), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Ingest(
                hedui_ingest::Error::Mapping { .. }
                | hedui_ingest::Error::Overlap { .. }
                | hedui_ingest::Error::SchemaDrift { .. },
            )
            | Error::Query(hedui_engine::Error::Query(_))
            | Error::Query(hedui_engine::Error::Rule { .. })
            | Error::Service(hedui_service::Error::Engine(
                hedui_engine::Error::Query(_) | hedui_engine::Error::Rule { .. },
            ))
            | Error::NoLake(_)
            | Error::Usage(_)
            | Error::Auth(hedui_auth::Error::Unauthenticated(_))
            | Error::Policy(hedui_policy::Error::Refused(_) | hedui_policy::Error::Query(_))
            | Error::Config { .. } => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
