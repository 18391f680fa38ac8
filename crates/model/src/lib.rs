//! The canonical model of hedui: the datasets every connector writes into, the resident ID
//! (GB 11643-1999) that joins them, and the parsers that turn departments' cell values into
//! typed values. Nothing here touches a file or the network.

pub mod dataset;
pub mod error;
pub mod money;
pub mod region;
pub mod resident_id;
pub mod value;

pub use dataset::{
    Catalog, ColumnDef, ColumnType, DatasetDef, LINEAGE_COLUMNS, RegionScope, Sensitivity,
};
pub use error::{Error, Result};
pub use money::Money;
pub use resident_id::{IdError, ResidentId, Sex};
pub use value::{ParseError, Parser, Value};

/// The city's offset from UTC (Asia/Shanghai): dates a person reads ("today", the day a source
/// was pulled) are the city's.
pub const CITY_UTC_OFFSET_HOURS: i64 = 8;

/// Today in the city.
pub fn city_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(CITY_UTC_OFFSET_HOURS)).date_naive()
}
