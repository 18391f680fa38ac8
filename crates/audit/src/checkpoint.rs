//! Signed checkpoints: after every write the writer signs (Ed25519) the last entry's sequence
//! number and hash and appends that to a checkpoint file beside the log and to any copies set in
//! `hedui.toml` (another directory, another machine's mount). The chain alone proves only that
//! entries fit together; whoever can write the log can drop an entry and hash the rest again.
//! A checkpoint they cannot forge (the key is kept apart from the log; verification needs only
//! the public key) pins the chain: a re-hashed, dropped or truncated entry no longer matches it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One signed checkpoint: entry `seq` has hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub ts: chrono::DateTime<chrono::Utc>,
    /// Hex Ed25519 signature over [`Checkpoint::message`].
    pub sig: String,
}

impl Checkpoint {
    fn message(seq: u64, hash: &str, ts: &chrono::DateTime<chrono::Utc>) -> Vec<u8> {
        format!("hedui-audit-checkpoint\0{seq}\0{hash}\0{}", ts.to_rfc3339()).into_bytes()
    }

    /// Whether `public_key` (32 raw bytes) signed this checkpoint.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = hex::decode(self.sig.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&Self::message(self.seq, &self.hash, &self.ts), &sig)
            .is_ok()
    }
}

/// The checkpoint file of the log at `log` (or of its copy in `dir`).
pub fn checkpoint_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoints");
    log.with_file_name(name)
}

/// A public key file: the 32-byte key in hex.
pub fn read_public_key(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    hex::decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| Error::Corrupt {
            path: path.display().to_string(),
            message: "not an Ed25519 public key (64 hex digits)".into(),
        })
}

/// The writer's signing key and where its checkpoints go.
pub struct Signer {
    key: Ed25519KeyPair,
    targets: Vec<PathBuf>,
}

impl Signer {
    /// Load the key at `key_file` (PKCS#8), making it on first start (mode 0600) and writing
    /// its public key beside it (`.pub`, hex). Checkpoints go beside `log` and into each of
    /// `copies` (directories).
    pub fn open(key_file: &Path, log: &Path, copies: &[PathBuf]) -> Result<Signer> {
        let io = |p: &Path, source| Error::Io {
            path: p.display().to_string(),
            source,
        };
        if !key_file.exists() {
            if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(|_| {
                    Error::Corrupt {
                        path: key_file.display().to_string(),
                        message: "the system random source failed".into(),
                    }
                })?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(key_file) {
                Ok(mut f) => f
                    .write_all(pkcs8.as_ref())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| io(key_file, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(key_file, e)),
            }
        }
        let bytes = std::fs::read(key_file).map_err(|e| io(key_file, e))?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| Error::Corrupt {
            path: key_file.display().to_string(),
            message: "not an Ed25519 PKCS#8 key".into(),
        })?;
        let public = key_file.with_extension("pub");
        std::fs::write(&public, hex::encode(key.public_key().as_ref()))
            .map_err(|e| io(&public, e))?;
        let mut targets = vec![checkpoint_path(log)];
        for dir in copies {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            targets.push(checkpoint_path(
                &dir.join(log.file_name().unwrap_or_default()),
            ));
        }
        Ok(Signer { key, targets })
    }

    /// Sign entry `seq` with hash `hash` and append the checkpoint everywhere, synced.
    pub fn checkpoint(&self, seq: u64, hash: &str) -> Result<()> {
        let ts = chrono::Utc::now();
        let sig = self.key.sign(&Checkpoint::message(seq, hash, &ts));
        let line = serde_json::to_string(&Checkpoint {
            seq,
            hash: hash.to_string(),
            ts,
            sig: hex::encode(sig.as_ref()),
        })
        .expect("checkpoint serialises");
        for target in &self.targets {
            let io = |source| Error::Io {
                path: target.display().to_string(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)
                .map_err(io)?;
            f.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
            f.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

/// The checkpoints in `path`, oldest first (none if the file does not exist); a line that is
/// not a checkpoint is an error: the file was edited.
pub fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            message: format!("line {}: not a checkpoint ({e})", i + 1),
        })?);
    }
    Ok(out)
}
