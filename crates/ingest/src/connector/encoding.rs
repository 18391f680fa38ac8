//! Which text encoding a file is in. Departments rarely say: Chinese Excel and many legacy
//! systems write GBK, newer systems UTF-8, some with a BOM.

use std::io::Read;
use std::path::Path;

use encoding_rs::{Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};

use crate::Result;
use crate::error::io_at;
use crate::mapping::Encoding as Choice;

/// One read of a delivered file: its fingerprint, size and text encoding.
#[derive(Debug, Clone)]
pub struct Scan {
    pub fingerprint: String,
    pub bytes: u64,
    pub encoding: &'static Encoding,
}

/// Read the file once: SHA-256 over every byte, and the encoding: a BOM decides; otherwise UTF-8
/// if every byte sequence of the whole file is valid UTF-8, else GB18030 (which decodes GBK and
/// GB2312 exactly). A mapping's fixed encoding wins.
pub fn scan(path: &Path, choice: Choice) -> Result<Scan> {
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let mut fp = hedui_lake::Fingerprinter::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    let mut detected: Option<&'static Encoding> = match choice {
        Choice::Fixed(enc) => Some(enc),
        Choice::Auto => None,
    };
    loop {
        let n = f.read(&mut buf).map_err(io_at(path))?;
        if bytes == 0 && detected.is_none() {
            detected = Encoding::for_bom(&buf[..n]).map(|(enc, _)| enc);
        }
        if n == 0 {
            break;
        }
        bytes += n as u64;
        fp.update(&buf[..n]);
        if detected.is_none() {
            carry.extend_from_slice(&buf[..n]);
            match std::str::from_utf8(&carry) {
                Ok(_) => carry.clear(),
                // The chunk ends inside a character: keep the tail for the next chunk.
                Err(e) if e.error_len().is_none() => {
                    carry.drain(..e.valid_up_to());
                }
                Err(_) => detected = Some(GB18030),
            }
        }
    }
    // A truncated multi-byte sequence at the very end is not UTF-8.
    let encoding = detected.unwrap_or(if carry.is_empty() { UTF_8 } else { GB18030 });
    Ok(Scan {
        fingerprint: fp.finish(),
        bytes,
        encoding,
    })
}

/// Names for reports.
pub fn name(enc: &'static Encoding) -> &'static str {
    if enc == UTF_8 {
        "UTF-8"
    } else if enc == GB18030 {
        "GB18030/GBK"
    } else if enc == UTF_16LE || enc == UTF_16BE {
        "UTF-16"
    } else {
        enc.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_bytes(bytes: &[u8]) -> &'static Encoding {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, bytes).unwrap();
        scan(&p, Choice::Auto).unwrap().encoding
    }

    #[test]
    fn tells_utf8_bom_and_gbk_apart() {
        assert_eq!(detect_bytes("身份证号,姓名\n".as_bytes()), UTF_8);
        assert_eq!(detect_bytes(b"\xEF\xBB\xBFid\n"), UTF_8);
        let (gbk, _, _) = encoding_rs::GBK.encode("身份证号,姓名\n张三\n");
        assert_eq!(detect_bytes(&gbk), GB18030);
        assert_eq!(detect_bytes(b"plain ascii\n"), UTF_8);
    }
}
