//! Walk the chain from the first entry and say where it breaks.

use std::io::BufRead;
use std::path::Path;

use crate::{Entry, Error, GENESIS, Result, chain_hash, head_path};

/// The chain is intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub last_hash: String,
}

/// Where and how the chain breaks. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("line {line}: not an audit entry ({why})")]
    Unreadable { line: u64, why: String },
    #[error("line {line} (entry {seq}): its content was changed (the hash does not match)")]
    Edited { line: u64, seq: u64 },
    #[error(
        "line {line} (entry {seq}): entry {expected} should come here; entries were removed or reordered"
    )]
    OutOfSequence { line: u64, seq: u64, expected: u64 },
    #[error(
        "line {line} (entry {seq}): it does not follow the entry before it (an entry before it was changed, removed or reordered)"
    )]
    BrokenLink { line: u64, seq: u64 },
    #[error(
        "the log ends at entry {last} but entry {head} was recorded: entries were cut from the end"
    )]
    Truncated { last: u64, head: u64 },
    #[error("the head file does not match entry {seq}: the log or the head file was changed")]
    HeadMismatch { seq: u64 },
    #[error("the audit log is missing or empty: a serving hub always has entries")]
    Empty,
    #[error("no signed checkpoint was found beside the log or in its copies")]
    NoCheckpoints,
    #[error("the checkpoint of entry {seq} is not signed by the audit key")]
    BadSignature { seq: u64 },
    #[error(
        "entry {seq} is not the entry its signed checkpoint names: entries were removed, changed and hashed again"
    )]
    Rehashed { seq: u64 },
    #[error(
        "{unanchored} entries after the last signed checkpoint (entry {last_checkpoint}), more than the {window} a crash can leave: entries were added or the checkpoints cut"
    )]
    Unanchored {
        unanchored: u64,
        last_checkpoint: u64,
        window: u64,
    },
}

/// How a signed verification is done.
pub struct SignedCheck<'a> {
    /// The audit key's public half (32 bytes).
    pub public_key: &'a [u8],
    /// Checkpoint files: beside the log, and the copies.
    pub checkpoints: &'a [std::path::PathBuf],
    /// Entries a crash may leave after the last checkpoint.
    pub window: u64,
}

/// [`verify`], and then every signed checkpoint against the chain: each must be signed by the
/// key and name an entry of the log with that hash, and the log may run past the last one by at
/// most `window` entries.
pub fn verify_signed(
    path: &Path,
    check: &SignedCheck<'_>,
) -> Result<std::result::Result<Verified, Problem>> {
    let mut hashes = Vec::new();
    let verified = match walk(path, Some(&mut hashes))? {
        Ok(v) => v,
        Err(p) => return Ok(Err(p)),
    };
    let mut checkpoints = Vec::new();
    for file in check.checkpoints {
        checkpoints.extend(crate::checkpoint::read_checkpoints(file)?);
    }
    if checkpoints.is_empty() {
        return Ok(Err(Problem::NoCheckpoints));
    }
    if let Some(c) = checkpoints.iter().find(|c| !c.signed_by(check.public_key)) {
        return Ok(Err(Problem::BadSignature { seq: c.seq }));
    }
    let last_checkpoint = checkpoints.iter().map(|c| c.seq).max().unwrap_or(0);
    if last_checkpoint > verified.entries {
        return Ok(Err(Problem::Truncated {
            last: verified.entries,
            head: last_checkpoint,
        }));
    }
    if let Some(c) = checkpoints
        .iter()
        .find(|c| c.seq == 0 || hashes[c.seq as usize - 1] != c.hash)
    {
        return Ok(Err(Problem::Rehashed { seq: c.seq }));
    }
    let unanchored = verified.entries - last_checkpoint;
    if unanchored > check.window {
        return Ok(Err(Problem::Unanchored {
            unanchored,
            last_checkpoint,
            window: check.window,
        }));
    }
    Ok(Ok(verified))
}

/// Check every entry of the log at `path`. `Ok(Err(problem))` is a broken chain; `Err` is a log
/// that cannot be read at all.
pub fn verify(path: &Path) -> Result<std::result::Result<Verified, Problem>> {
    walk(path, None)
}

/// Walk the chain; with `hashes`, collect every entry's hash in order.
fn walk(
    path: &Path,
    mut hashes: Option<&mut Vec<String>>,
) -> Result<std::result::Result<Verified, Problem>> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let mut prev = GENESIS.to_string();
    let mut expected = 1u64;
    if let Some(file) = file {
        for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
            let line_no = i as u64 + 1;
            let line = line.map_err(io)?;
            match check_line(&line, line_no, expected, &prev) {
                Ok(hash) => {
                    if let Some(h) = hashes.as_deref_mut() {
                        h.push(hash.clone());
                    }
                    prev = hash;
                }
                Err(p) => return Ok(Err(p)),
            }
            expected += 1;
        }
    }
    let last = expected - 1;
    if last == 0 {
        return Ok(Err(Problem::Empty));
    }
    if let Some((head_seq, head_hash)) = read_head(path)? {
        if head_seq > last {
            return Ok(Err(Problem::Truncated {
                last,
                head: head_seq,
            }));
        }
        // The head may lag the log by the entries of a write that was cut short before the
        // head was updated; where it points, it must agree.
        if head_seq == last && head_hash != prev {
            return Ok(Err(Problem::HeadMismatch { seq: head_seq }));
        }
    }
    Ok(Ok(Verified {
        entries: last,
        last_hash: prev,
    }))
}

fn check_line(line: &[u8], line_no: u64, expected: u64, prev: &str) -> Result<String, Problem> {
    let unreadable = |why: &str| Problem::Unreadable {
        line: line_no,
        why: why.into(),
    };
    let text = std::str::from_utf8(line).map_err(|_| unreadable("not UTF-8"))?;
    const MARK: &str = ",\"hash\":\"";
    let at = text.rfind(MARK).ok_or_else(|| unreadable("no hash"))?;
    let stated = text[at + MARK.len()..]
        .strip_suffix("\"}")
        .ok_or_else(|| unreadable("the hash is not the last field"))?;
    let body = format!("{}}}", &text[..at]);
    let entry: Entry = serde_json::from_str(text).map_err(|e| unreadable(&e.to_string()))?;
    if chain_hash(&entry.prev, body.as_bytes()) != stated || entry.hash != stated {
        return Err(Problem::Edited {
            line: line_no,
            seq: entry.seq,
        });
    }
    if entry.seq != expected {
        return Err(Problem::OutOfSequence {
            line: line_no,
            seq: entry.seq,
            expected,
        });
    }
    if entry.prev != prev {
        return Err(Problem::BrokenLink {
            line: line_no,
            seq: entry.seq,
        });
    }
    Ok(entry.hash)
}

pub(crate) fn read_head(path: &Path) -> Result<Option<(u64, String)>> {
    let head = head_path(path);
    match std::fs::read_to_string(&head) {
        Ok(text) => {
            let (seq, hash) = text.trim().split_once(' ').ok_or_else(|| Error::Corrupt {
                path: head.display().to_string(),
                message: "not `<seq> <hash>`".into(),
            })?;
            let seq = seq.parse().map_err(|_| Error::Corrupt {
                path: head.display().to_string(),
                message: "not `<seq> <hash>`".into(),
            })?;
            Ok(Some((seq, hash.to_string())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: head.display().to_string(),
            source,
        }),
    }
}
