//! Appending to the log. One thread writes; callers wait until their entry is on disk (group
//! commit: whatever arrived meanwhile is written and synced together, so a busy server pays one
//! fsync per group, not per request). The file is locked while writing, so the server and the
//! command line can append to the same log.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::{AuditEvent, Entry, Error, GENESIS, Result, Signer, head_path};

struct Job {
    event: AuditEvent,
    reply: tokio::sync::oneshot::Sender<std::result::Result<u64, String>>,
}

/// A handle on the audit log; cheap to clone, shared by every interface of a process.
#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

const MAX_GROUP: usize = 512;

impl AuditLog {
    /// Open (creating if needed) the log at `path` and start its writer.
    pub fn open(path: &Path) -> Result<AuditLog> {
        Self::open_with(path, None)
    }

    /// The same, signing a checkpoint after every write with `signer`.
    pub fn open_signed(path: &Path, signer: Signer) -> Result<AuditLog> {
        Self::open_with(path, Some(signer))
    }

    fn open_with(path: &Path, signer: Option<Signer>) -> Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let file = open_file(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let owned = path.to_path_buf();
        std::thread::Builder::new()
            .name("hedui-audit".into())
            .spawn(move || writer_loop(owned, file, rx, signer))
            .map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            jobs: tx,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append an event; returns its sequence number once it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<u64> {
        let event = capped(event);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { event, reply })
            .map_err(|_| Error::Stopped("the writer thread has ended".into()))?;
        answer
            .await
            .map_err(|_| Error::Stopped("the writer thread has ended".into()))?
            .map_err(Error::Stopped)
    }

    /// The same, for code that is not async (the command line).
    pub fn record_blocking(&self, event: AuditEvent) -> Result<u64> {
        let event = capped(event);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { event, reply })
            .map_err(|_| Error::Stopped("the writer thread has ended".into()))?;
        answer
            .blocking_recv()
            .map_err(|_| Error::Stopped("the writer thread has ended".into()))?
            .map_err(Error::Stopped)
    }
}

/// Statements longer than this are kept as their first bytes and the hash of the whole: a
/// 30 MB statement must not make a 30 MB entry.
pub const STATEMENT_BYTES: usize = 4096;

fn capped(mut event: AuditEvent) -> AuditEvent {
    if let Some(s) = &event.statement
        && s.len() > STATEMENT_BYTES
    {
        let mut end = STATEMENT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        event.statement = Some(format!("{}… [{} bytes, sha256 {hex}]", &s[..end], s.len()));
    }
    event
}

fn open_file(path: &Path) -> Result<File> {
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

fn writer_loop(path: PathBuf, mut file: File, rx: mpsc::Receiver<Job>, signer: Option<Signer>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let events: Vec<&AuditEvent> = group.iter().map(|j| &j.event).collect();
        match append(&path, &mut file, &events, signer.as_ref()) {
            Ok(first_seq) => {
                for (i, job) in group.into_iter().enumerate() {
                    let _ = job.reply.send(Ok(first_seq + i as u64));
                }
            }
            Err(e) => {
                // Data loss for the audit trail: the operator must act.
                tracing::error!(error = %e, entries = group.len(), "audit entries could not be written");
                for job in group {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Under the file lock: find the chain's end, append the entries, sync, update the head.
fn append(
    path: &Path,
    file: &mut File,
    events: &[&AuditEvent],
    signer: Option<&Signer>,
) -> Result<u64> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    file.lock().map_err(io)?;
    let result = (|| {
        let (last_seq, last_hash, valid_len) = chain_end(path, file)?;
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        if valid_len < len {
            // An entry cut short by a crash was never acknowledged: drop its partial line.
            file.set_len(valid_len).map_err(io)?;
        }
        file.seek(SeekFrom::Start(valid_len)).map_err(io)?;
        let mut prev = last_hash;
        let mut out = String::new();
        let now = chrono::Utc::now();
        for (i, event) in events.iter().enumerate() {
            let (entry, line) = Entry {
                seq: last_seq + 1 + i as u64,
                ts: now,
                prev: prev.clone(),
                event: (*event).clone(),
                hash: String::new(),
            }
            .seal();
            out.push_str(&line);
            out.push('\n');
            prev = entry.hash;
        }
        file.write_all(out.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        let last = last_seq + events.len() as u64;
        write_head(path, last, &prev)?;
        // Signed while the log is still locked, so checkpoints come in the log's order.
        if let Some(signer) = signer {
            signer.checkpoint(last, &prev)?;
        }
        Ok(last_seq + 1)
    })();
    let _ = file.unlock();
    result
}

/// The last complete entry's sequence number and hash, and the length of the file up to the
/// end of that entry's line.
fn chain_end(path: &Path, file: &mut File) -> Result<(u64, String, u64)> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok((0, GENESIS.to_string(), 0));
    }
    // Entries are short; read back far enough to hold the last two lines.
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        file.take(len - start).read_to_end(&mut buf).map_err(io)?;
        // Up to the last newline is complete; anything after it is a partial line.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok((0, GENESIS.to_string(), 0));
            }
            window *= 4;
            continue;
        };
        let line_start = buf[..end].iter().rposition(|&b| b == b'\n').map(|p| p + 1);
        let Some(line_start) = line_start.or((start == 0).then_some(0)) else {
            window *= 4;
            continue;
        };
        let entry: Entry =
            serde_json::from_slice(&buf[line_start..end]).map_err(|e| Error::Corrupt {
                path: path.display().to_string(),
                message: format!("the last entry cannot be read ({e}); run `hedui audit verify`"),
            })?;
        return Ok((entry.seq, entry.hash, start + end as u64 + 1));
    }
}

fn write_head(path: &Path, seq: u64, hash: &str) -> Result<()> {
    let head = head_path(path);
    let tmp = head.with_extension("head.tmp");
    std::fs::write(&tmp, format!("{seq} {hash}\n"))
        .and_then(|_| std::fs::rename(&tmp, &head))
        .map_err(|source| Error::Io {
            path: head.display().to_string(),
            source,
        })
}
