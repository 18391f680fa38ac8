//! The audit chain against an edited log.

use super::*;
use crate::common::*;

#[test]
fn editing_one_byte_of_the_audit_log_is_caught_and_the_entry_named() {
    let srv = start();
    let t = token(&srv.lake, "analyst", None);
    for _ in 0..5 {
        assert_eq!(
            sql_http(&srv, &t, "SELECT count(*) FROM persons", "json").0,
            200
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let path = srv.lake.parent().unwrap().join("hedui-audit.log");
    let mut bytes = std::fs::read(&path).unwrap();
    // Entry 3: change one digit of its duration.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let line = &bytes[starts[2]..starts[3]];
    let at = starts[2]
        + line
            .windows(14)
            .position(|w| w == b"\"duration_ms\":")
            .unwrap()
        + 14;
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
    std::fs::write(&path, &bytes).unwrap();
    let out = run(hedui().args(["audit", "verify", "--lake"]).arg(&srv.lake));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("entry 3"), "{err}");
}
