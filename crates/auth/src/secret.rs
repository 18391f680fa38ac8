//! Server secrets kept in files: created once, on first start, readable by the owner only.

use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// Read a 32-byte secret (hex) from `path`, creating it with fresh random bytes if it does not
/// exist. Creation is exclusive, so two processes starting together agree on one secret.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    let key_err = |message: String| Error::Key {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| key_err(e.to_string()))?;
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| key_err("the system random source failed".into()))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut f) => {
                f.write_all(hex.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| key_err(e.to_string()))?;
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(key_err(e.to_string())),
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| key_err(e.to_string()))?;
    let text = text.trim();
    if text.len() < 32 || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(key_err(
            "not a hex secret of at least 16 bytes (delete it to have a new one made)".into(),
        ));
    }
    Ok((0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex checked"))
        .collect())
}
