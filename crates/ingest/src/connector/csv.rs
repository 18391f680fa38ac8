//! CSV in any of the encodings departments use, streamed: a pension ledger has millions of rows.

use std::io::{BufRead, Read};

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
use encoding_rs_io::DecodeReaderBytesBuilder;
use hedui_model::value::Cell;

use super::text::{self, TextLines};
use super::{RawRow, Table};
use crate::{Error, Result};

/// The rows of delimited text read from `bytes` (the file's one read). `fixed` is the mapping's
/// encoding, if it names one. UTF-16 (by BOM or mapping) is decoded whole-stream; every other
/// encoding line by line (see [`super::text`]).
pub fn table<'a>(
    bytes: impl Read + 'a,
    rel: &str,
    fixed: Option<&'static Encoding>,
    delimiter: u8,
) -> Result<Table<'a>> {
    let mut buffered = std::io::BufReader::with_capacity(1 << 20, bytes);
    let head = buffered.fill_buf().map_err(|e| Error::Unreadable {
        file: rel.to_string(),
        message: format!("读取失败 (read failed): {e}"),
    })?;
    let bom = Encoding::for_bom(head).map(|(e, _)| e);
    let utf16 = |e: &'static Encoding| e == UTF_16LE || e == UTF_16BE;
    let (decoded, text): (Box<dyn Read + 'a>, Option<text::Shared>) =
        if fixed.or(bom).is_some_and(utf16) {
            let enc = fixed.or(bom);
            let decoded = DecodeReaderBytesBuilder::new()
                .encoding(enc)
                .bom_sniffing(true)
                .strip_bom(true)
                .build(buffered);
            let state: text::Shared = Default::default();
            state.borrow_mut().encoding = enc;
            (Box::new(CrlfToLf::new(decoded)), Some(state))
        } else {
            let (lines, state) = TextLines::new(buffered, fixed, delimiter);
            (Box::new(lines), Some(state))
        };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 20)
        .from_reader(decoded);
    let rel = rel.to_string();
    let state = text.clone();
    let mut record = csv::StringRecord::new();
    let rows = std::iter::from_fn(move || match reader.read_record(&mut record) {
        Ok(false) => None,
        Ok(true) => {
            let number = record.position().map_or(0, |p| p.line());
            // Lines in the other encoding that belong to this record (it ends where the reader
            // now stands).
            let next = reader.position().line();
            let mut foreign = false;
            if let Some(st) = &state {
                let mut st = st.borrow_mut();
                while st.foreign.front().is_some_and(|l| *l < next) {
                    foreign |= st.foreign.pop_front().is_some_and(|l| l >= number);
                }
            }
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
                defect: foreign.then(|| {
                    (
                        "该行文字编码与文件其余部分不同（UTF-8 与 GBK 混用），按文件编码读出的是乱码 (the line is in another text encoding than the file)".to_string(),
                        "encoding.mixed",
                    )
                }),
            }))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            let message = match e.kind() {
                csv::ErrorKind::Io(io) => io.to_string(),
                _ => format!("CSV 第 {line} 行 (line {line}): {e}"),
            };
            Some(Err(Error::Unreadable {
                file: rel.clone(),
                message,
            }))
        }
    });
    Ok(Table {
        sheet: None,
        header: None,
        rows: Box::new(rows),
        fixed_width: true,
        text,
        layout: true,
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
