//! Delimited text decoded line by line. Departments rarely say which encoding they write: the
//! first line with non-ASCII bytes decides (UTF-8 if it is valid UTF-8, else GB18030, which
//! decodes GBK and GB2312 exactly), and every later line is checked against that choice, so a
//! file whose lines were pasted together from a GBK and a UTF-8 export shows the odd lines as
//! such instead of loading garbled names. Quoted fields are followed across lines, and one left
//! open is a file error at its line instead of swallowing the rest of the file.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use encoding_rs::{Encoding, GB18030, UTF_8};

/// A physical line longer than this is not a table row.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// A quoted field may hold line breaks (an address on two lines), but not this many.
pub const MAX_QUOTED_LINES: u64 = 100;

/// What the decoder learned, shared with the row reader.
#[derive(Debug, Default)]
pub struct TextState {
    /// The encoding decided on (a mapping's, a BOM's, or the first non-ASCII line's).
    pub encoding: Option<&'static Encoding>,
    /// Lines that read as the other encoding, in order, not yet claimed by a row.
    pub foreign: VecDeque<u64>,
}

pub type Shared = Rc<RefCell<TextState>>;

/// Raw bytes in, UTF-8 with `\n` line ends out.
pub struct TextLines<R> {
    inner: R,
    delimiter: u8,
    state: Shared,
    line: u64,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    in_quotes: bool,
    at_field_start: bool,
    quote_opened: Option<u64>,
    done: bool,
}

impl<R: BufRead> TextLines<R> {
    pub fn new(inner: R, fixed: Option<&'static Encoding>, delimiter: u8) -> (Self, Shared) {
        let state: Shared = Rc::new(RefCell::new(TextState {
            encoding: fixed,
            foreign: VecDeque::new(),
        }));
        (
            TextLines {
                inner,
                delimiter,
                state: Rc::clone(&state),
                line: 0,
                raw: Vec::with_capacity(4096),
                out: Vec::with_capacity(4096),
                pos: 0,
                in_quotes: false,
                at_field_start: true,
                quote_opened: None,
                done: false,
            },
            state,
        )
    }

    /// Read one physical line (with its `\n`, if any) into `raw`, bounded.
    fn read_line(&mut self) -> io::Result<bool> {
        self.raw.clear();
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(!self.raw.is_empty());
            }
            let (take, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.raw.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            if self.raw.len() > MAX_LINE_BYTES {
                return Err(invalid(format!(
                    "第 {} 行超过 {} 字节，不是表格行 (line {} is longer than {MAX_LINE_BYTES} bytes)",
                    self.line + 1,
                    MAX_LINE_BYTES,
                    self.line + 1
                )));
            }
            if end {
                return Ok(true);
            }
        }
    }

    fn next_line(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        if !self.read_line()? {
            self.done = true;
            if let Some(opened) = self.quote_opened.filter(|_| self.in_quotes) {
                return Err(unterminated(opened, "到文件末尾 (to the end of the file)"));
            }
            return Ok(());
        }
        self.line += 1;
        let mut bytes: &[u8] = &self.raw;
        if self.line == 1
            && let Some((enc, bom)) = Encoding::for_bom(bytes)
        {
            self.state.borrow_mut().encoding.get_or_insert(enc);
            bytes = &bytes[bom..];
        }
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let ascii = body.is_ascii();
        if !ascii {
            let mut st = self.state.borrow_mut();
            let as_utf8 = std::str::from_utf8(body).ok();
            let utf8_chinese = as_utf8.is_some_and(looks_chinese);
            // GBK text is now and then valid UTF-8 by chance (谢志霞 reads as Cyrillic): what
            // the bytes say in each encoding decides, not validity alone.
            let gb_chinese = || looks_chinese(&GB18030.decode_without_bom_handling(body).0);
            let enc = *st.encoding.get_or_insert_with(|| {
                if as_utf8.is_some() && (utf8_chinese || !gb_chinese()) {
                    UTF_8
                } else {
                    GB18030
                }
            });
            let foreign = if enc == UTF_8 {
                as_utf8.is_none() || (!utf8_chinese && gb_chinese())
            } else {
                enc == GB18030 && utf8_chinese
            };
            if foreign {
                st.foreign.push_back(self.line);
            }
        }
        let enc = self.state.borrow().encoding.unwrap_or(UTF_8);
        if ascii {
            self.out.extend_from_slice(body);
        } else {
            let (text, _) = enc.decode_without_bom_handling(body);
            self.out.extend_from_slice(text.as_bytes());
        }
        self.out.push(b'\n');
        self.follow_quotes();
        if self.in_quotes {
            let opened = *self.quote_opened.get_or_insert(self.line);
            if self.line - opened >= MAX_QUOTED_LINES {
                return Err(unterminated(
                    opened,
                    &format!("超过 {MAX_QUOTED_LINES} 行 (over {MAX_QUOTED_LINES} lines)"),
                ));
            }
        } else {
            self.quote_opened = None;
        }
        Ok(())
    }

    /// Follow quoting as the CSV reader will: a quote opens a field only at the field's start,
    /// `""` inside a quoted field is a quote.
    fn follow_quotes(&mut self) {
        if !self.in_quotes && memchr::memchr(b'"', &self.out).is_none() {
            self.at_field_start = true;
            return;
        }
        let mut i = 0;
        let b = &self.out;
        while i < b.len() {
            let c = b[i];
            if self.in_quotes {
                if c == b'"' {
                    if b.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        self.in_quotes = false;
                    }
                }
                self.at_field_start = false;
            } else if self.at_field_start && c == b'"' {
                self.in_quotes = true;
                self.at_field_start = false;
            } else {
                self.at_field_start = c == self.delimiter || c == b'\n';
            }
            i += 1;
        }
    }
}

impl<R: BufRead> Read for TextLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.next_line()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Whether every non-ASCII character of `text` is one Chinese text uses: CJK ideographs,
/// CJK and general punctuation, full-width forms, the middle dot of minority names.
fn looks_chinese(text: &str) -> bool {
    text.chars().filter(|c| !c.is_ascii()).all(|c| {
        matches!(c,
            '\u{00B7}' | '\u{2000}'..='\u{206F}' | '\u{2E80}'..='\u{2FDF}' | '\u{3000}'..='\u{303F}'
            | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}'
            | '\u{FE30}'..='\u{FE4F}' | '\u{FF00}'..='\u{FFEF}' | '\u{20000}'..='\u{3134F}'
            | '\u{2460}'..='\u{24FF}' | '\u{2100}'..='\u{214F}' | '\u{25A0}'..='\u{25FF}')
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn unterminated(line: u64, how: &str) -> io::Error {
    invalid(format!(
        "第 {line} 行开始的引号字段没有闭合，{how} (unterminated quoted field from line {line}); 请检查该行的双引号"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (io::Result<String>, TextState) {
        let (mut r, state) = TextLines::new(io::BufReader::new(bytes), None, b',');
        let mut s = String::new();
        let res = r.read_to_string(&mut s).map(|_| s);
        drop(r);
        let st = Rc::try_unwrap(state).ok().unwrap().into_inner();
        (res, st)
    }

    #[test]
    fn gbk_is_decided_by_the_first_chinese_line_and_a_utf8_line_is_flagged() {
        let mut bytes = b"id,amount\r\n1,2\r\n".to_vec();
        bytes.extend_from_slice(&encoding_rs::GBK.encode("3,张三\r\n").0);
        bytes.extend_from_slice(&encoding_rs::GBK.encode("5,谢志霞\r\n").0);
        bytes.extend_from_slice("4,张斌\r\n".as_bytes());
        let (text, st) = decode(&bytes);
        let text = text.unwrap();
        assert!(
            text.starts_with("id,amount\n1,2\n3,张三\n5,谢志霞\n4,"),
            "{text}"
        );
        assert!(
            !text.contains("张斌"),
            "the odd line is not taken for what it is"
        );
        assert_eq!(st.encoding, Some(GB18030));
        assert_eq!(
            st.foreign,
            [5],
            "line 5 (UTF-8) is flagged; line 4 (谢志霞 in GBK, valid UTF-8 by chance) is not"
        );
    }

    #[test]
    fn quoted_line_breaks_are_followed_and_an_open_quote_fails_at_its_line() {
        let (ok, _) = decode(b"a,b\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,5\"x\n");
        assert_eq!(
            ok.unwrap(),
            "a,b\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,5\"x\n"
        );
        let mut open = b"a,b\n1,\"never closed\n".to_vec();
        for i in 0..200 {
            open.extend_from_slice(format!("{i},x\n").as_bytes());
        }
        let err = decode(&open).0.unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = decode(b"a,b\n1,\"open at the end\n2,x\n")
            .0
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("end of the file"),
            "{err}"
        );
    }

    #[test]
    fn a_bom_decides_and_is_dropped_and_a_missing_last_newline_is_added() {
        let (text, st) = decode("\u{feff}姓名\n张三".as_bytes());
        assert_eq!(text.unwrap(), "姓名\n张三\n");
        assert_eq!(st.encoding, Some(UTF_8));
    }
}
