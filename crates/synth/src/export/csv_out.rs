//! A CSV file in a department's encoding, counting lines so that every broken or repeated row
//! the generator adds is recorded with the line a person would find it at.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::truth::{BrokenRow, DuplicateRow, FileTruth, Truth};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Utf8,
    Utf8Bom,
    Gbk,
}

impl Enc {
    fn name(self) -> &'static str {
        match self {
            Enc::Utf8 => "UTF-8",
            Enc::Utf8Bom => "UTF-8 BOM",
            Enc::Gbk => "GBK",
        }
    }
}

pub struct CsvOut {
    pub rel: String,
    dataset: String,
    w: BufWriter<File>,
    enc: Enc,
    /// Lines written so far (the next line's number is `line + 1`).
    line: u64,
    data_rows: u64,
    buf: String,
    broken: Vec<BrokenRow>,
    duplicates: Vec<DuplicateRow>,
    /// Broken rows written so far: two identical broken rows would be one broken row and one
    /// duplicate to ingest (a month replaced by `2025-13` makes a household's months alike).
    broken_lines: std::collections::HashSet<Vec<String>>,
}

fn quote(field: &str, out: &mut String) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

impl CsvOut {
    pub fn create(root: &Path, rel: &str, dataset: &str, enc: Enc) -> Result<CsvOut> {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        if enc == Enc::Utf8Bom {
            w.write_all(b"\xEF\xBB\xBF")
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(CsvOut {
            rel: rel.to_string(),
            dataset: dataset.to_string(),
            w,
            enc,
            line: 0,
            data_rows: 0,
            buf: String::new(),
            broken: Vec::new(),
            duplicates: Vec::new(),
            broken_lines: std::collections::HashSet::new(),
        })
    }

    fn write_line(&mut self, fields: &[&str]) -> Result<u64> {
        self.buf.clear();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            quote(f, &mut self.buf);
        }
        self.buf.push_str("\r\n");
        let bytes: std::borrow::Cow<[u8]> = match self.enc {
            Enc::Gbk => encoding_rs::GB18030.encode(&self.buf).0,
            _ => std::borrow::Cow::Borrowed(self.buf.as_bytes()),
        };
        self.w
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.rel, e))?;
        self.line += 1;
        Ok(self.line)
    }

    /// A line that is not data (title, header).
    pub fn layout(&mut self, fields: &[&str]) -> Result<()> {
        self.write_line(fields).map(|_| ())
    }

    pub fn row(&mut self, fields: &[&str]) -> Result<u64> {
        self.data_rows += 1;
        self.write_line(fields)
    }

    /// A row repeated verbatim right after itself.
    pub fn duplicate(&mut self, fields: &[&str]) -> Result<()> {
        let line = self.row(fields)?;
        self.duplicates.push(DuplicateRow {
            file: self.rel.clone(),
            sheet: None,
            row: line,
        });
        Ok(())
    }

    /// A row broken on purpose; `problem` is the reason code ingest must give.
    pub fn broken(&mut self, fields: &[&str], problem: &str, what: &str) -> Result<()> {
        if !self
            .broken_lines
            .insert(fields.iter().map(|f| f.to_string()).collect())
        {
            return Ok(());
        }
        let line = self.row(fields)?;
        self.broken.push(BrokenRow {
            file: self.rel.clone(),
            sheet: None,
            row: line,
            dataset: self.dataset.clone(),
            problem: problem.to_string(),
            what: what.to_string(),
        });
        Ok(())
    }

    /// A row whose unquoted comma shifts every later column (a hand-edited export).
    pub fn misaligned(&mut self, fields: &[&str], at: usize) -> Result<()> {
        let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        let split = f[at].clone();
        let cut = split
            .char_indices()
            .nth(split.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        f[at] = split[..cut].to_string();
        f.insert(at + 1, split[cut..].to_string());
        let refs: Vec<&str> = f.iter().map(String::as_str).collect();
        self.broken(
            &refs,
            "row.misaligned",
            "unquoted comma in a field shifts the columns",
        )
    }

    pub fn finish(mut self, truth: &mut Truth) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.rel, e))?;
        truth.broken_rows.append(&mut self.broken);
        truth.duplicate_rows.append(&mut self.duplicates);
        truth.files.insert(
            self.rel.clone(),
            FileTruth {
                dataset: vec![self.dataset.clone()],
                data_rows: self.data_rows,
                encoding: self.enc.name().into(),
            },
        );
        Ok(())
    }
}
