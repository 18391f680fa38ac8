//! Connectors turn a delivered file into tables of raw rows: a CSV file is one table, a workbook
//! one table per selected sheet, a JSON page dump one table of records. Rows keep the number a
//! person would use to find them (CSV line, spreadsheet row, JSON record index).
//!
//! A file is read once ([`delivered`]): streamed when one table of delimited text is all that is
//! wanted, otherwise read whole into memory (bounded) and every target parsed from those bytes.

pub mod csv;
pub mod delivered;
pub mod encoding;
pub mod excel;
pub mod json;
pub mod text;

use std::sync::Arc;

use hedui_model::value::Cell;

use crate::Result;
use crate::mapping::{Format, Mapping, Target};
use delivered::{Delivered, Tap};

/// Workbooks and JSON documents are parsed from memory; larger files are refused.
pub const MAX_WHOLE_FILE_BYTES: u64 = 256 << 20;

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
    /// Delimited text: the encoding the decoder settled on.
    pub text: Option<text::Shared>,
    /// Whether rows may be layout (title, blank, 合计, footer, repeated header rows of an
    /// export made for print); never for a database's rows, every one of which is data.
    pub layout: bool,
}

/// The bytes of a file for its targets: a stream for the one table of a text file, or the whole
/// file for workbooks, JSON documents and mappings with several targets.
pub enum Body {
    Stream(Option<Tap>),
    Whole(Bytes),
}

impl Body {
    /// Take the file's bytes in the way `mapping` needs them.
    pub fn of(file: &mut Delivered, rel: &str, mapping: &Mapping) -> Result<Body> {
        let streamable = matches!(
            mapping.format_of(rel),
            Format::Csv | Format::Auto | Format::Ndjson
        ) && mapping.targets.len() == 1;
        Ok(if streamable {
            Body::Stream(Some(file.tap()))
        } else {
            Body::Whole(Bytes(Arc::new(file.read_all(MAX_WHOLE_FILE_BYTES)?)))
        })
    }
}

/// A whole file's bytes, shared by the tables read from it.
#[derive(Clone)]
pub struct Bytes(pub Arc<Vec<u8>>);

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Open the tables of the file that `target` reads.
pub fn open_tables<'a>(
    body: &mut Body,
    rel: &str,
    mapping: &Mapping,
    target: &Target,
) -> Result<Vec<Table<'a>>> {
    let fixed = match mapping.encoding {
        crate::mapping::Encoding::Fixed(e) => Some(e),
        crate::mapping::Encoding::Auto => None,
    };
    let format = mapping.format_of(rel);
    match body {
        Body::Whole(bytes) => match format {
            Format::Excel => excel::tables(bytes.clone(), rel, target),
            Format::Json => json::document(bytes.as_ref(), rel, target).map(|t| vec![t]),
            Format::Ndjson => {
                json::lines(std::io::Cursor::new(bytes.clone()), rel).map(|t| vec![t])
            }
            Format::Csv | Format::Auto => csv::table(
                std::io::Cursor::new(bytes.clone()),
                rel,
                fixed,
                mapping.delimiter,
            )
            .map(|t| vec![t]),
        },
        Body::Stream(tap) => {
            let tap = tap.take().expect("one streamed target");
            match format {
                Format::Ndjson => json::lines(tap, rel).map(|t| vec![t]),
                _ => csv::table(tap, rel, fixed, mapping.delimiter).map(|t| vec![t]),
            }
        }
    }
}
