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
    let decoded = CrlfToLf { inner: decoded, pending_cr: false };
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

/// Turns CRLF line ends into LF. The csv crate counts a CRLF record as starting on the line
/// before (it consumes the `\n` of the previous `\r\n` as part of the next record), and line
/// numbers are how a person finds a quarantined row.
struct CrlfToLf<R> {
    inner: R,
    pending_cr: bool,
}

impl<R: std::io::Read> std::io::Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            return self.inner.read(buf);
        }
        loop {
            // Leave room for a carried `\r`.
            let start = usize::from(self.pending_cr);
            let n = self.inner.read(&mut buf[start..])?;
            if self.pending_cr {
                buf[0] = b'\r';
            }
            let end = start + n;
            if n == 0 {
                self.pending_cr = false;
                return Ok(start);
            }
            let mut w = 0;
            let mut r = 0;
            self.pending_cr = false;
            while r < end {
                let b = buf[r];
                if b == b'\r' {
                    if r + 1 == end {
                        self.pending_cr = true;
                        r += 1;
                        continue;
                    }
                    if buf[r + 1] == b'\n' {
                        r += 1;
                        continue;
                    }
                }
                buf[w] = b;
                w += 1;
                r += 1;
            }
            if w > 0 {
                return Ok(w);
            }
        }
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
        CrlfToLf { inner: OneByte(b"a,b\r\nc\rd\r\n\r\ne\r"), pending_cr: false }.read_to_string(&mut out).unwrap();
        assert_eq!(out, "a,b\nc\rd\n\ne\r");
    }
}
