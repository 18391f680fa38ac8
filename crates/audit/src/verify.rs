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
}

/// Check every entry of the log at `path`. `Ok(Err(problem))` is a broken chain; `Err` is a log
/// that cannot be read at all.
pub fn verify(path: &Path) -> Result<std::result::Result<Verified, Problem>> {
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
            if let Err(p) = check_line(&line, line_no, expected, &prev).map(|hash| prev = hash) {
                return Ok(Err(p));
            }
            expected += 1;
        }
    }
    let last = expected - 1;
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
