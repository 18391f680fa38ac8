//! The one read of a delivered file. Every byte a connector parses passes through a [`Tap`] that
//! feeds the fingerprint, so the fingerprint committed with a batch is that of exactly the bytes
//! that were parsed. A file that changes while it is read (truncated, rewritten, appended to) is
//! detected when the read ends and nothing of it is believed.

use std::cell::RefCell;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use crate::{Error, Result};

/// Size and modification time of an open file: what must not change while it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub bytes: u64,
    pub modified: Option<SystemTime>,
}

impl Stamp {
    fn of(file: &File) -> std::io::Result<Stamp> {
        let meta = file.metadata()?;
        Ok(Stamp {
            bytes: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    /// Modification time as Unix nanoseconds (kept in the commit to recognise an unchanged file
    /// without parsing it).
    pub fn modified_ns(&self) -> Option<i128> {
        let t = self.modified?;
        Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        })
    }
}

#[derive(Default)]
struct Progress {
    fingerprint: hedui_lake::Fingerprinter,
    bytes: u64,
    eof: bool,
}

/// A delivered file opened for its one read.
pub struct Delivered {
    path: PathBuf,
    rel: String,
    file: Option<File>,
    opened: Stamp,
    progress: Rc<RefCell<Progress>>,
}

/// What was read: the fingerprint and size of the bytes that were parsed.
#[derive(Debug, Clone)]
pub struct ReadBytes {
    pub fingerprint: String,
    pub bytes: u64,
}

impl Delivered {
    /// Open the file. A file that is gone or unreadable is that file's failure, not the ingest's.
    pub fn open(path: &Path, rel: &str) -> Result<Delivered> {
        let file = File::open(path)
            .map_err(|e| unreadable(rel, format!("无法打开 (cannot open): {e}")))?;
        let opened = Stamp::of(&file).map_err(|e| unreadable(rel, e.to_string()))?;
        Ok(Delivered {
            path: path.to_path_buf(),
            rel: rel.to_string(),
            file: Some(file),
            opened,
            progress: Rc::default(),
        })
    }

    pub fn stamp(&self) -> Stamp {
        self.opened
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes as a stream; every byte read is fingerprinted. Only one reader exists.
    pub fn tap(&mut self) -> Tap {
        Tap {
            file: self.file.take().expect("a delivered file is read once"),
            progress: Rc::clone(&self.progress),
        }
    }

    /// The whole file in memory (workbooks and JSON documents need random access), refused
    /// beyond `limit` bytes before anything is read.
    pub fn read_all(&mut self, limit: u64) -> Result<Vec<u8>> {
        if self.opened.bytes > limit {
            return Err(unreadable(
                &self.rel,
                format!(
                    "文件 {} 字节，超过可读上限 {limit} 字节 (file of {} bytes exceeds the {limit}-byte limit for this format)",
                    self.opened.bytes, self.opened.bytes
                ),
            ));
        }
        let mut buf = Vec::with_capacity(self.opened.bytes as usize);
        self.tap()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| unreadable(&self.rel, format!("读取失败 (read failed): {e}")))?;
        if buf.len() as u64 > limit {
            return Err(changed(&self.rel, "grew past the size limit"));
        }
        self.progress.borrow_mut().eof = true;
        Ok(buf)
    }

    /// Read to the end without parsing: the fingerprint alone (for a file that looks unchanged).
    pub fn fingerprint_only(mut self) -> Result<ReadBytes> {
        let mut tap = self.tap();
        std::io::copy(&mut tap, &mut std::io::sink())
            .map_err(|e| unreadable(&self.rel, format!("读取失败 (read failed): {e}")))?;
        self.finish()
    }

    /// End the read: the bytes parsed must be the whole file as it was when opened, and the file
    /// must not have been modified meanwhile.
    pub fn finish(self) -> Result<ReadBytes> {
        let mut progress = self.progress.borrow_mut();
        if !progress.eof {
            // A parser that stopped before the end fingerprinted only part of the file: what
            // it parsed is not the file.
            return Err(unreadable(
                &self.rel,
                "文件未读完 (the file was not read to its end)".into(),
            ));
        }
        let now = File::open(&self.path)
            .and_then(|f| Stamp::of(&f))
            .map_err(|e| changed(&self.rel, &format!("it can no longer be opened ({e})")))?;
        if progress.bytes != self.opened.bytes {
            return Err(changed(
                &self.rel,
                &format!(
                    "{} bytes when opened, {} bytes read",
                    self.opened.bytes, progress.bytes
                ),
            ));
        }
        if now != self.opened {
            return Err(changed(&self.rel, "it was modified while being read"));
        }
        let fingerprint = std::mem::take(&mut progress.fingerprint).finish();
        Ok(ReadBytes {
            fingerprint,
            bytes: progress.bytes,
        })
    }
}

/// The bytes of a delivered file as they are read, each fed to its fingerprint.
pub struct Tap {
    file: File,
    progress: Rc<RefCell<Progress>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let mut p = self.progress.borrow_mut();
        if n == 0 {
            p.eof = true;
        } else {
            p.bytes += n as u64;
            p.fingerprint.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn unreadable(rel: &str, message: String) -> Error {
    Error::Unreadable {
        file: rel.to_string(),
        message,
    }
}

fn changed(rel: &str, how: &str) -> Error {
    unreadable(
        rel,
        format!(
            "文件在读取过程中发生变化，本次未入库，请在文件稳定后重新导入 (the file changed while it was read: {how}; nothing of it was loaded)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_of_the_bytes_read_and_a_change_during_the_read_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, b"id,name\n1,x\n").unwrap();
        let whole = Delivered::open(&p, "a.csv")
            .unwrap()
            .fingerprint_only()
            .unwrap();
        assert_eq!(whole.bytes, 12);
        let mut fp = hedui_lake::Fingerprinter::default();
        fp.update(b"id,name\n1,x\n");
        assert_eq!(whole.fingerprint, fp.finish());

        let mut d = Delivered::open(&p, "a.csv").unwrap();
        let mut tap = d.tap();
        let mut first = [0u8; 4];
        tap.read_exact(&mut first).unwrap();
        std::fs::write(&p, b"id,name\n").unwrap(); // truncated while being read
        std::io::copy(&mut tap, &mut std::io::sink()).unwrap();
        let err = d.finish().unwrap_err().to_string();
        assert!(err.contains("changed while it was read"), "{err}");
    }

    #[test]
    fn a_file_larger_than_its_format_allows_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, vec![b' '; 100]).unwrap();
        let mut d = Delivered::open(&p, "a.json").unwrap();
        assert!(d.read_all(10).unwrap_err().to_string().contains("limit"));
    }
}
