//! The audit chain: written by several writers, and every kind of tampering found and located.

use std::path::Path;

use hedui_audit::{AuditEvent, AuditLog, Interface, Outcome, Problem, verify};

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
fn an_empty_or_missing_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        verify(&dir.path().join("none.log"))
            .unwrap()
            .unwrap()
            .entries,
        0
    );
}
