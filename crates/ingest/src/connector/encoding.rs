//! Names of text encodings for reports. Departments rarely say which encoding they write:
//! Chinese Excel and many legacy systems write GBK, newer systems UTF-8, some with a BOM; the
//! decoder in [`super::text`] decides per file and checks every line.

use encoding_rs::{Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};

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
