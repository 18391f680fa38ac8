//! Appending to the log. One thread writes; callers wait until their entry is on disk (group
//! commit: whatever arrived meanwhile is written and synced together, so a busy server pays one
//! fsync per group, not per request). The file is locked while writing, so the server and the
//! command line can append to the same log.
//!
//! The head file follows every group. The signed checkpoint (which names the log's last entry)
//! is written when the writer goes idle, and under a steady load at least every
//! [`MARK_EVERY_ENTRIES`] entries and every [`MARK_EVERY`]: a checkpoint per group cost a second
//! fsync per request under load. `hedui audit verify` accepts up to `checkpoint_window` (512)
//! entries after the last checkpoint, which this stays well within. A caller that will not wait
//! (the command line, which exits right after) has its entry checkpointed at once. A checkpoint
//! that cannot be written fails the next group (tried again first): the server does not go on
//! answering while its log cannot be proved.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{AuditEvent, Entry, Error, GENESIS, Result, Signer, head_path};

struct Job {
    event: AuditEvent,
    reply: tokio::sync::oneshot::Sender<std::result::Result<u64, String>>,
    /// Sign the checkpoint right after this entry, not when the writer is idle.
    mark_now: bool,
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

/// Entries written after the last checkpoint before one is signed although the writer is busy.
const MARK_EVERY_ENTRIES: u64 = 256;
/// The longest a written entry waits for its checkpoint under a steady load.
const MARK_EVERY: Duration = Duration::from_secs(1);
/// A writer that received nothing for this long signs a checkpoint for what it wrote.
const IDLE: Duration = Duration::from_millis(2);

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
            .send(Job {
                event,
                reply,
                mark_now: false,
            })
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
            .send(Job {
                event,
                reply,
                mark_now: true,
            })
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

/// Where the signed checkpoints stand against what the writer appended.
struct Marks {
    /// Entries written since the last checkpoint.
    unmarked: u64,
    marked_at: Instant,
    /// Why the last checkpoint could not be written, while it could not.
    failed: Option<String>,
}

impl Marks {
    fn due(&self) -> bool {
        self.unmarked >= MARK_EVERY_ENTRIES || self.marked_at.elapsed() >= MARK_EVERY
    }

    fn mark(&mut self, path: &Path, file: &mut File, signer: Option<&Signer>) {
        let Some(signer) = signer else {
            self.unmarked = 0;
            return;
        };
        match checkpoint_end(path, file, signer) {
            Ok(()) => {
                self.unmarked = 0;
                self.failed = None;
                self.marked_at = Instant::now();
            }
            Err(e) => {
                tracing::error!(error = %e, "the audit log's checkpoint could not be written");
                self.failed = Some(e.to_string());
            }
        }
    }
}

fn writer_loop(path: PathBuf, mut file: File, rx: mpsc::Receiver<Job>, signer: Option<Signer>) {
    let signer = signer.as_ref();
    let mut marks = Marks {
        unmarked: 0,
        marked_at: Instant::now(),
        failed: None,
    };
    loop {
        let first = if marks.unmarked > 0 && marks.failed.is_none() {
            match rx.recv_timeout(IDLE) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    marks.mark(&path, &mut file, signer);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    marks.mark(&path, &mut file, signer);
                    break;
                }
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if marks.failed.is_some() {
            marks.mark(&path, &mut file, signer);
        }
        let events: Vec<&AuditEvent> = group.iter().map(|j| &j.event).collect();
        let written = match &marks.failed {
            Some(why) => Err(Error::Stopped(format!(
                "the last checkpoint could not be written: {why}"
            ))),
            None => append(&path, &mut file, &events),
        };
        match written {
            Ok(first_seq) => {
                marks.unmarked += group.len() as u64;
                let now = group.iter().any(|j| j.mark_now);
                if now || marks.due() {
                    marks.mark(&path, &mut file, signer);
                }
                for (i, job) in group.into_iter().enumerate() {
                    let outcome = match &marks.failed {
                        // The command line waits for its checkpoint: tell it.
                        Some(why) if job.mark_now => Err(why.clone()),
                        _ => Ok(first_seq + i as u64),
                    };
                    let _ = job.reply.send(outcome);
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

/// Under the file lock: find the chain's end, append the entries, sync.
fn append(path: &Path, file: &mut File, events: &[&AuditEvent]) -> Result<u64> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    locked(path, file, |file| {
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
        write_head(path, last_seq + events.len() as u64, &prev)?;
        Ok(last_seq + 1)
    })
}

/// Under the file lock: sign a checkpoint naming the log's last entry (the log's, not this
/// writer's: another process may have appended since), so checkpoints come in the log's order.
fn checkpoint_end(path: &Path, file: &mut File, signer: &Signer) -> Result<()> {
    locked(path, file, |file| {
        let (last, hash, _) = chain_end(path, file)?;
        if last > 0 {
            signer.checkpoint(last, &hash)?;
        }
        Ok(())
    })
}

/// Run `work` holding the log's file lock (shared with other processes appending to it).
fn locked<T>(path: &Path, file: &mut File, work: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    file.lock().map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let result = work(file);
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
