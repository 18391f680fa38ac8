//! Which text encoding a file is in. Departments rarely say: Chinese Excel and many legacy
//! systems write GBK, newer systems UTF-8, some with a BOM.

use std::io::Read;
use std::path::Path;

use encoding_rs::{Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};

use crate::Result;
use crate::error::io_at;
use crate::mapping::Encoding as Choice;

/// The encoding of the file: a BOM decides; otherwise UTF-8 if every byte sequence of the whole
/// file is valid UTF-8, else GB18030 (which decodes GBK and GB2312 exactly).
pub fn detect(path: &Path, choice: Choice) -> Result<&'static Encoding> {
    if let Choice::Fixed(enc) = choice {
        return Ok(enc);
    }
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let n = f.read(&mut buf).map_err(io_at(path))?;
        if first {
            first = false;
            if let Some((enc, _)) = Encoding::for_bom(&buf[..n]) {
                return Ok(enc);
            }
        }
        if n == 0 {
            // A truncated multi-byte sequence at the very end is not UTF-8.
            return Ok(if carry.is_empty() { UTF_8 } else { GB18030 });
        }
        carry.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&carry) {
            Ok(_) => carry.clear(),
            Err(e) if e.error_len().is_none() => {
                // The chunk ends inside a character: keep the tail for the next chunk.
                carry.drain(..e.valid_up_to());
            }
            Err(_) => return Ok(GB18030),
        }
    }
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
        detect(&p, Choice::Auto).unwrap()
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
