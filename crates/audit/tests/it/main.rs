//! The audit chain: written by several writers, and every kind of tampering found and located.

use std::path::Path;

use hedui_audit::{
    AuditEvent, AuditLog, Interface, Outcome, Problem, SignedCheck, Signer, checkpoint_path,
    read_public_key, verify, verify_signed,
};

fn event(n: u64) -> AuditEvent {
    let mut e = AuditEvent::new(Interface::Http, "127.0.0.1:5000", "sql");
    e.actor = format!("user{n}");
    e.roles = vec!["analyst".into()];
    e.statement = Some(format!("SELECT count(*) FROM persons -- {n} 张三"));
    e.datasets = vec!["persons".into()];
    e.rows = Some(n);
    e
}

fn write_log(path: &Path, n: u64) {
    let log = AuditLog::open(path).unwrap();
    for i in 1..=n {
        assert_eq!(log.record_blocking(event(i)).unwrap(), i);
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_make_one_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit/hedui-audit.log");
    // Two handles, as the server and a command line would have, writing at once.
    let a = AuditLog::open(&path).unwrap();
    let b = AuditLog::open(&path).unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(
            async move { log.record(event(i)).await.unwrap() },
        ));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "every entry got its own number"
    );
    let ok = verify(&path).unwrap().unwrap();
    assert_eq!(ok.entries, 200);
    let entries: Vec<hedui_audit::Entry> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.iter().all(|e| e.event.outcome == Outcome::Ok));
    assert!(
        entries[0]
            .event
            .statement
            .as_deref()
            .unwrap()
            .contains("张三")
    );
}

#[test]
fn editing_one_byte_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    write_log(&path, 10);
    let original = std::fs::read(&path).unwrap();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            original
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    // Change one byte of entry 6 (the `rows` value), anywhere in it.
    let text = String::from_utf8(original.clone()).unwrap();
    let line6 = line_starts[5];
    let at = line6 + text[line6..].find("\"rows\":6").unwrap() + 7;
    let mut edited = original.clone();
    edited[at] = b'7';
    std::fs::write(&path, &edited).unwrap();
    assert_eq!(
        verify(&path).unwrap(),
        Err(Problem::Edited { line: 6, seq: 6 })
    );
    let msg = verify(&path).unwrap().unwrap_err().to_string();
    assert!(msg.contains("line 6") && msg.contains("entry 6"), "{msg}");
    // A byte of the hash itself.
    let mut edited = original.clone();
    let hash_at = line_starts[2] - 4; // the last hex digit of line 2's hash
    edited[hash_at] = if edited[hash_at] == b'a' { b'b' } else { b'a' };
    std::fs::write(&path, &edited).unwrap();
    assert_eq!(
        verify(&path).unwrap(),
        Err(Problem::Edited { line: 2, seq: 2 })
    );
}

#[test]
fn removed_and_reordered_entries_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    write_log(&path, 8);
    let all = lines(&path);

    let mut removed = all.clone();
    removed.remove(3);
    write_lines(&path, &removed);
    assert!(matches!(
        verify(&path).unwrap(),
        Err(Problem::OutOfSequence {
            line: 4,
            seq: 5,
            expected: 4
        })
    ));

    let mut swapped = all.clone();
    swapped.swap(2, 5);
    write_lines(&path, &swapped);
    assert!(matches!(
        verify(&path).unwrap(),
        Err(Problem::OutOfSequence { line: 3, .. })
    ));

    // Cut from the end: the head file remembers entry 8.
    write_lines(&path, &all[..6]);
    assert_eq!(
        verify(&path).unwrap(),
        Err(Problem::Truncated { last: 6, head: 8 })
    );

    write_lines(&path, &all);
    assert_eq!(verify(&path).unwrap().unwrap().entries, 8);
}

#[test]
fn a_rewritten_chain_with_renumbered_entries_still_breaks_at_the_link() {
    // Someone deletes entry 3 and renumbers the rest by hand: the hashes no longer match.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    write_log(&path, 5);
    let mut all = lines(&path);
    all.remove(2);
    for (i, l) in all.iter_mut().enumerate().skip(2) {
        *l = l.replacen(
            &format!("\"seq\":{}", i + 2),
            &format!("\"seq\":{}", i + 1),
            1,
        );
    }
    write_lines(&path, &all);
    assert_eq!(
        verify(&path).unwrap(),
        Err(Problem::Edited { line: 3, seq: 3 })
    );
}

#[test]
fn a_partial_line_from_a_crash_is_dropped_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    write_log(&path, 3);
    // A crash in the middle of writing entry 4 (never acknowledged).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":4,\"ts\":\"2026-").unwrap();
    drop(f);
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.record_blocking(event(4)).unwrap(), 4);
    assert_eq!(verify(&path).unwrap().unwrap().entries, 4);
}

#[test]
fn an_empty_or_missing_log_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.log");
    assert_eq!(verify(&missing).unwrap(), Err(Problem::Empty));
    std::fs::write(dir.path().join("empty.log"), b"").unwrap();
    assert_eq!(
        verify(&dir.path().join("empty.log")).unwrap(),
        Err(Problem::Empty)
    );
}

/// A signed log of `n` entries in `dir`, with a copy of its checkpoints in `dir/copy`.
fn signed_log(dir: &Path, n: u64) -> (std::path::PathBuf, Vec<u8>, Vec<std::path::PathBuf>) {
    let path = dir.join("audit.log");
    let key = dir.join("keys/audit-signing.key");
    let copy = dir.join("copy");
    let signer = Signer::open(&key, &path, std::slice::from_ref(&copy)).unwrap();
    let log = AuditLog::open_signed(&path, signer).unwrap();
    for i in 1..=n {
        assert_eq!(log.record_blocking(event(i)).unwrap(), i);
    }
    let public = read_public_key(&key.with_extension("pub")).unwrap();
    let files = vec![
        checkpoint_path(&path),
        checkpoint_path(&copy.join("audit.log")),
    ];
    (path, public, files)
}

fn check<'a>(public: &'a [u8], files: &'a [std::path::PathBuf]) -> SignedCheck<'a> {
    SignedCheck {
        public_key: public,
        checkpoints: files,
        window: 0,
    }
}

/// Rewrite `lines` as a fresh chain (what someone with write access to the log, but not the
/// key, can do), with a matching head file.
fn rehash(path: &Path, lines: &[String]) {
    let mut out = Vec::new();
    let mut prev = "0".repeat(64);
    for (i, l) in lines.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("hash");
        m.insert("seq".into(), (i as u64 + 1).into());
        m.insert("prev".into(), prev.clone().into());
        let body = serde_json::to_string(&v).unwrap();
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(prev.as_bytes());
        ctx.update(body.as_bytes());
        let hash: String = ctx
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push(format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]));
        prev = hash;
    }
    write_lines(path, &out);
    std::fs::write(
        path.with_file_name("audit.log.head"),
        format!("{} {prev}\n", out.len()),
    )
    .unwrap();
}

#[test]
fn signed_checkpoints_catch_what_the_chain_alone_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (path, public, files) = signed_log(dir.path(), 10);
    assert_eq!(
        verify_signed(&path, &check(&public, &files))
            .unwrap()
            .unwrap()
            .entries,
        10
    );
    let original = lines(&path);
    let head = std::fs::read(path.with_file_name("audit.log.head")).unwrap();
    let restore = || {
        write_lines(&path, &original);
        std::fs::write(path.with_file_name("audit.log.head"), &head).unwrap();
    };
    // An entry dropped and the rest hashed again: the plain chain verifies, the checkpoints
    // do not.
    let mut dropped = original.clone();
    dropped.remove(4);
    rehash(&path, &dropped);
    assert!(
        verify(&path).unwrap().is_ok(),
        "the re-hashed chain is consistent"
    );
    assert!(matches!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::Rehashed { .. } | Problem::Truncated { .. })
    ));
    restore();
    // Reordered, re-hashed.
    let mut swapped = original.clone();
    swapped.swap(2, 3);
    rehash(&path, &swapped);
    assert!(
        verify_signed(&path, &check(&public, &files))
            .unwrap()
            .is_err()
    );
    restore();
    // An edited byte.
    let mut edited = original.clone();
    edited[6] = edited[6].replacen("user7", "user8", 1);
    write_lines(&path, &edited);
    assert!(matches!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::Edited { .. })
    ));
    restore();
    // Cut at the end, with the head file rewritten or removed: the checkpoints remember.
    write_lines(&path, &original[..7]);
    std::fs::remove_file(path.with_file_name("audit.log.head")).unwrap();
    assert!(
        verify(&path).unwrap().is_ok(),
        "the chain alone misses the cut"
    );
    assert!(matches!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::Truncated { last: 7, head: 10 })
    ));
    // ... also when the checkpoints beside the log are cut too: the copy has them.
    let beside = hedui_audit::checkpoint::read_checkpoints(&files[0]).unwrap();
    let cut: Vec<String> = beside
        .iter()
        .filter(|c| c.seq <= 7)
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    write_lines(&files[0], &cut);
    assert!(matches!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::Truncated { last: 7, head: 10 })
    ));
    restore();
    // A checkpoint forged with another key, and one removed everywhere, are both caught.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public, _) = signed_log(other.path(), 1);
    assert!(matches!(
        verify_signed(&path, &check(&other_public, &files)).unwrap(),
        Err(Problem::BadSignature { .. })
    ));
    for f in &files {
        std::fs::remove_file(f).unwrap();
    }
    assert_eq!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::NoCheckpoints)
    );
    // An empty log never verifies.
    std::fs::write(&path, b"").unwrap();
    assert_eq!(
        verify_signed(&path, &check(&public, &files)).unwrap(),
        Err(Problem::Empty)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_log_is_checkpointed_within_the_window_and_a_checkpoint_that_fails_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = dir.path().join("keys/audit-signing.key");
    let copy = dir.path().join("copy");
    let signer = Signer::open(&key, &path, std::slice::from_ref(&copy)).unwrap();
    let log = AuditLog::open_signed(&path, signer).unwrap();
    let public = read_public_key(&key.with_extension("pub")).unwrap();
    let files = vec![
        checkpoint_path(&path),
        checkpoint_path(&copy.join("audit.log")),
    ];
    // A burst as a busy server makes: checkpoints are signed as the writer goes, not per entry.
    let tasks: Vec<_> = (0..2000u64)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Within moments of the writer falling idle, the last entry is signed.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for file in &files {
        let last = hedui_audit::checkpoint::read_checkpoints(file).unwrap();
        assert_eq!(last.last().unwrap().seq, 2000, "{}", file.display());
    }
    let window = SignedCheck {
        public_key: &public,
        checkpoints: &files,
        window: 512,
    };
    assert!(verify_signed(&path, &window).unwrap().is_ok());
    // A checkpoint copy that can no longer be written: the server stops answering (at once for
    // the command line, which waits for its checkpoint) ...
    let copied = checkpoint_path(&copy.join("audit.log"));
    std::fs::remove_file(&copied).unwrap();
    std::fs::create_dir(&copied).unwrap();
    let _ = log.record(event(1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(log.record(event(2)).await.is_err());
    let blocking = log.clone();
    let refused = tokio::task::spawn_blocking(move || blocking.record_blocking(event(3)))
        .await
        .unwrap();
    assert!(refused.is_err());
    // ... and goes on once it can: the next entry is written and signed.
    std::fs::remove_dir(&copied).unwrap();
    let seq = log.record(event(4)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let last = hedui_audit::checkpoint::read_checkpoints(&files[0]).unwrap();
    assert_eq!(last.last().unwrap().seq, seq);
    assert!(verify_signed(&path, &window).unwrap().is_ok());
}
