//! Connectors: read what departments really export (CSV in any common encoding, Excel with title
//! rows and several sheets, JSON and NDJSON page dumps), map each row to a canonical dataset
//! through an editable mapping file, quarantine every row that cannot be used, and commit each
//! delivered file to the lake as one batch. Live sources (department databases) are pulled
//! through the same mappings ([`live`]).

pub mod as_of;
pub mod connector;
pub mod error;
mod files;
pub mod live;
pub mod mapping;
pub mod pipeline;
mod read_ahead;
pub mod report;
mod table;

pub use error::{Error, Result};
pub use live::{PullOptions, PullReport, pull};
pub use mapping::{Mapping, load_mappings};
pub use pipeline::{IngestOptions, ingest};
pub use report::{FileReport, FileStatus, IngestReport};
