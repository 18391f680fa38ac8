//! CSV in any of the encodings departments use, streamed: a pension ledger has millions of rows.

use std::path::Path;

use encoding_rs_io::DecodeReaderBytesBuilder;
use hedui_model::value::Cell;

use super::{RawRow, Table, encoding};
use crate::error::io_at;
use crate::mapping::Encoding;
use crate::{Error, Result};

pub fn table<'a>(path: &'a Path, rel: &str, choice: Encoding, delimiter: u8) -> Result<Table<'a>> {
    let enc = encoding::detect(path, choice)?;
    tracing::debug!(file = rel, encoding = encoding::name(enc), "reading CSV");
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(enc))
        .bom_sniffing(true)
        .strip_bom(true)
        .build(std::io::BufReader::with_capacity(1 << 20, file));
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 20)
        .from_reader(decoded);
    let rel = rel.to_string();
    let mut record = csv::StringRecord::new();
    let mut reader = reader;
    let rows = std::iter::from_fn(move || match reader.read_record(&mut record) {
        Ok(false) => None,
        Ok(true) => {
            let number = record.position().map_or(0, |p| p.line());
            let cells = record
                .iter()
                .map(|s| if s.is_empty() { Cell::Empty } else { Cell::Text(s.to_string()) })
                .collect();
            Some(Ok(RawRow { number, cells }))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            Some(Err(Error::Unreadable { file: rel.clone(), message: format!("CSV line {line}: {e}") }))
        }
    });
    Ok(Table { sheet: None, header: None, rows: Box::new(rows), fixed_width: true })
}
