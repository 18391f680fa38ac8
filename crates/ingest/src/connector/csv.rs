//! CSV in any of the encodings departments use, streamed: a pension ledger has millions of rows.

use std::path::Path;

use encoding_rs_io::DecodeReaderBytesBuilder;
use hedui_model::value::Cell;

use super::{RawRow, Table, encoding};
use crate::error::io_at;
use crate::{Error, Result};
use encoding_rs::Encoding;

pub fn table<'a>(
    path: &'a Path,
    rel: &str,
    enc: &'static Encoding,
    delimiter: u8,
) -> Result<Table<'a>> {
    tracing::debug!(file = rel, encoding = encoding::name(enc), "reading CSV");
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(enc))
        .bom_sniffing(true)
        .strip_bom(true)
        .build(std::io::BufReader::with_capacity(1 << 20, file));
    let decoded = CrlfToLf::new(decoded);
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
                .map(|s| {
                    if s.is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Text(s.to_string())
                    }
                })
                .collect();
            Some(Ok(RawRow {
                number,
                cells,
                defect: None,
            }))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            Some(Err(Error::Unreadable {
                file: rel.clone(),
                message: format!("CSV line {line}: {e}"),
            }))
        }
    });
    Ok(Table {
        sheet: None,
        header: None,
        rows: Box::new(rows),
        fixed_width: true,
    })
}

/// Turns CRLF line ends into LF. The csv crate counts a CRLF record as starting on the line
/// before (it consumes the `\n` of the previous `\r\n` as part of the next record), and line
/// numbers are how a person finds a quarantined row.
struct CrlfToLf<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl<R> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut w = 0;
        while w < out.len() {
            if self.pos == self.len {
                if w > 0 {
                    break;
                }
                self.pos = 0;
                self.len = self.inner.read(&mut self.buf)?;
                if self.len == 0 {
                    break;
                }
            }
            let b = self.buf[self.pos];
            if b == b'\r' {
                if self.pos + 1 == self.len {
                    // Look at the byte after a `\r` that ends the buffer.
                    self.buf[0] = b'\r';
                    self.pos = 0;
                    self.len = 1 + self.inner.read(&mut self.buf[1..])?;
                }
                if self.pos + 1 < self.len && self.buf[self.pos + 1] == b'\n' {
                    self.pos += 1;
                    continue;
                }
            }
            out[w] = b;
            w += 1;
            self.pos += 1;
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::CrlfToLf;

    #[test]
    fn crlf_becomes_lf_across_reads() {
        // A reader that hands out one byte at a time splits every \r\n.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut out = String::new();
        CrlfToLf::new(OneByte(b"a,b\r\nc\rd\r\n\r\ne\r"))
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "a,b\nc\rd\n\ne\r");
    }
}
