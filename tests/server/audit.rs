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

/// `hedui audit verify` passes on the server's log.
fn assert_log_verifies(srv: &Server) {
    let out = run(hedui()
        .args(["audit", "verify", "--log"])
        .arg(srv.lake.parent().unwrap().join("hedui-audit.log")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The log's entries, parsed.
fn entries_of(srv: &Server) -> Vec<serde_json::Value> {
    let log = srv.lake.parent().unwrap().join("hedui-audit.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_query_is_on_the_record_before_its_first_byte_even_if_the_server_is_killed() {
    let mut srv = start();
    let admin = token(&srv.lake, "admin", None);
    // A long answer; read only its first bytes, then kill the server outright.
    let body =
        serde_json::json!({"sql": "SELECT * FROM pension_payments", "format": "csv"}).to_string();
    let mut s = std::net::TcpStream::connect(&srv.http).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /api/v1/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nx-request-id: killed-mid-answer\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 512];
    let n = s.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    srv.kill_now();
    let entries = entries_of(&srv);
    let started: Vec<_> = entries
        .iter()
        .filter(|e| e["request_id"] == "killed-mid-answer")
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["outcome"], "started");
    assert_eq!(started[0]["statement"], "SELECT * FROM pension_payments");
    assert_eq!(
        started[0]["datasets"],
        serde_json::json!(["pension_payments"])
    );
    // The log that was cut off mid-answer still verifies.
    assert_log_verifies(&srv);
}

#[test]
fn when_the_audit_log_cannot_be_written_nothing_is_answered() {
    let srv = start();
    let analyst = token(&srv.lake, "analyst", None);
    let sql = "SELECT count(*) AS n FROM persons";
    assert_eq!(sql_http(&srv, &analyst, sql, "json").0, 200);
    // The log's head file becomes a directory: no entry can be completed.
    let head = srv.lake.parent().unwrap().join("hedui-audit.log.head");
    // (The first answer's outcome entry is written as its body ends: let it land first.)
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(&head).unwrap();
    std::fs::create_dir(&head).unwrap();
    let (status, body) = sql_http(&srv, &analyst, sql, "json");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("audit log cannot be written"));
    let (status, _) = call(&srv, "GET", "/api/v1/whoami", &analyst, None);
    assert_eq!(status, 503);
    let out = psql(&srv, &analyst, &[sql]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit log cannot be written"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    // Once the log can be written again, answers come again.
    std::fs::remove_dir(&head).unwrap();
    assert_eq!(sql_http(&srv, &analyst, sql, "json").0, 200);
}

#[test]
fn a_committed_case_step_always_has_its_audit_entry_even_after_kill_9() {
    let mut srv = start_checked(None);
    let admin = token(&srv.lake, "admin", None);
    let (_, page) = call(
        &srv,
        "GET",
        "/api/v1/cases?state=new&limit=200",
        &admin,
        None,
    );
    let ids: Vec<String> = page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() > 20);
    // Steps as fast as they go, and the server killed among them.
    let (addr, t) = (srv.http.clone(), admin.clone());
    let worker = std::thread::spawn(move || {
        for id in ids {
            let body =
                serde_json::json!({"assignee": "grid-team-7", "note": "kill test"}).to_string();
            let auth = format!("Bearer {t}");
            let r = std::panic::catch_unwind(|| {
                http(
                    &addr,
                    "POST",
                    &format!("/api/v1/cases/{id}/assign"),
                    &[
                        ("Authorization", &auth),
                        ("Content-Type", "application/json"),
                    ],
                    &body,
                )
            });
            if r.is_err() {
                break;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    srv.kill_now();
    let _ = worker.join();
    // Every step the case store committed has its entry in the log.
    let db = srv.lake.parent().unwrap().join("hedui-cases.db");
    let committed: Vec<String> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query_scalar(
            "SELECT case_id FROM case_events WHERE to_state = 'assigned' AND note = 'kill test'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    assert!(
        !committed.is_empty(),
        "no step was committed before the kill"
    );
    let entries = entries_of(&srv);
    for id in &committed {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == "POST /api/v1/cases/{id}/assign"
                    && e["statement"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(&format!("assign case {id} "))
                            && s.ends_with("grid-team-7"))),
            "case {id}: a committed step without its audit entry"
        );
    }
    assert_log_verifies(&srv);
}

#[test]
fn signed_checkpoints_prove_the_served_log_and_its_extract() {
    let srv = start();
    let t = token(&srv.lake, "analyst", None);
    for _ in 0..4 {
        assert_eq!(sql_http(&srv, &t, "SELECT 1 AS one", "json").0, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = srv.lake.parent().unwrap();
    let public = dir.join("hedui-audit-signing.pub");
    let verify = |log: &Path, key: Option<&Path>| {
        let mut cmd = hedui();
        cmd.args(["audit", "verify", "--log"]).arg(log);
        if let Some(k) = key {
            cmd.arg("--public-key").arg(k);
        }
        run(&mut cmd)
    };
    let log = dir.join("hedui-audit.log");
    let out = verify(&log, Some(&public));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An extract verifies on its own.
    let extract = dir.join("extract");
    run_ok(
        hedui()
            .args(["audit", "export", "--log"])
            .arg(&log)
            .arg("--lake")
            .arg(&srv.lake)
            .arg("--out")
            .arg(&extract),
    );
    let out = verify(
        &extract.join("hedui-audit.log"),
        Some(&extract.join("hedui-audit-signing.pub")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Cut the extract's end and remove its head: the chain alone cannot tell, the checkpoints
    // can.
    let text = std::fs::read_to_string(extract.join("hedui-audit.log")).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(extract.join("hedui-audit.log"), kept.join("\n") + "\n").unwrap();
    let _ = std::fs::remove_file(extract.join("hedui-audit.log.head"));
    assert!(
        verify(&extract.join("hedui-audit.log"), None)
            .status
            .success()
    );
    let out = verify(
        &extract.join("hedui-audit.log"),
        Some(&extract.join("hedui-audit-signing.pub")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut from the end"));
    // An empty log never verifies.
    std::fs::write(extract.join("hedui-audit.log"), b"").unwrap();
    assert_eq!(
        verify(&extract.join("hedui-audit.log"), None).status.code(),
        Some(1)
    );
}
