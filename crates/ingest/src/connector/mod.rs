//! Connectors turn a delivered file into tables of raw rows: a CSV file is one table, a workbook
//! one table per selected sheet, a JSON page dump one table of records. Rows keep the number a
//! person would use to find them (CSV line, spreadsheet row, JSON record index).

pub mod csv;
pub mod encoding;
pub mod excel;
pub mod json;

use std::path::Path;

use hedui_model::value::Cell;

use crate::Result;
use crate::mapping::{Format, Mapping, Target};

/// One row as read, with its 1-based number in the file or sheet.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub number: u64,
    pub cells: Vec<Cell>,
    /// A defect the connector found in the row itself (a line that is not a JSON object): the
    /// row is quarantined with this reason alone.
    pub defect: Option<(String, &'static str)>,
}

pub type Rows<'a> = Box<dyn Iterator<Item = Result<RawRow>> + 'a>;

/// A table of a file: a CSV file, a sheet, or a JSON record array.
pub struct Table<'a> {
    pub sheet: Option<String>,
    /// Known header (JSON keys); otherwise the header is found among the rows.
    pub header: Option<Vec<String>>,
    pub rows: Rows<'a>,
    /// Whether a row with a different number of fields than the header is misaligned (CSV).
    pub fixed_width: bool,
}

/// Open the tables of `path` that `target` reads.
pub fn open_tables<'a>(
    path: &'a Path,
    rel: &str,
    mapping: &Mapping,
    target: &Target,
    scan: &encoding::Scan,
) -> Result<Vec<Table<'a>>> {
    match mapping.format_of(rel) {
        Format::Excel => excel::tables(path, rel, target),
        Format::Json => json::table(path, rel, target, false).map(|t| vec![t]),
        Format::Ndjson => json::table(path, rel, target, true).map(|t| vec![t]),
        Format::Csv | Format::Auto => {
            csv::table(path, rel, scan.encoding, mapping.delimiter).map(|t| vec![t])
        }
    }
}
