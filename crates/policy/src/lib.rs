//! Who may see what. A caller's session knows each dataset only as the view its policy makes
//! (rows of its region, filtered inside the scan; columns shown as their sensitivity class
//! allows unless its role and a stated purpose unmask them) and only the public functions, so
//! HTTP, the Postgres wire protocol and the command line give the same identity the same answer.
//! Queries are read-only, anything singling out a person needs a purpose (judged by lineage on
//! the optimised plan), aggregate-only roles get cells of few persons suppressed, errors carry
//! no data, and every query has time, row and memory limits.

mod audit_table;
mod batch_guard;
pub mod config;
mod errors;
pub mod functions;
pub mod grant;
pub mod inspect;
pub mod lineage;
mod masks;
pub mod planner;
pub mod privacy;
mod rows;
mod scope;
mod session;
mod shapes;
mod stream;
mod suppress;
pub mod view;

pub use config::{
    AccessConfig, CaseAccess, CaseAccessRule, CaseRules, PolicyRule, PrivacyConfig, QueryLimits,
    RowScope, Unmask, default_case_access, default_policies,
};
pub use grant::{AUDIT_TABLE, Grant};
pub use rows::RuleRows;
pub use session::{PolicyEngine, Query, QueryInfo, Session, check_purpose};
pub use stream::QueryStream;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not allowed for this caller (HTTP 403): policy, purpose or read-only rules.
    #[error("{0}")]
    Refused(String),
    /// The query is wrong (HTTP 400); the message is for its author.
    #[error("{0}")]
    Query(String),
    /// A limit was reached (time, memory); the query was stopped.
    #[error("{0}")]
    Limit(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Engine(#[from] hedui_engine::Error),
    /// An internal failure; its details go to the server log, not to the caller.
    #[error("internal query engine error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A code for the audit log and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused(_) => "refused",
            Error::Query(_) => "invalid_query",
            Error::Limit(_) => "limit",
            Error::Config(_) => "config",
            Error::Engine(_) | Error::Internal(_) => "internal",
        }
    }
}
