//! What a caller sends cannot crash or stall the server: statements too deep or too large are
//! refused with a clear error before anything recurses over them, on every interface, with an
//! audit entry; the server keeps answering others. Tokens from the future, valid for centuries
//! or of any size are refused.

use std::time::Instant;

use super::*;

/// `SELECT 1+1+…+1` of `n` terms: a left-deep tree `n` levels deep.
fn sum_of_ones(n: usize) -> String {
    format!("SELECT {}", vec!["1"; n].join("+"))
}

#[test]
fn deep_and_huge_statements_are_refused_and_the_server_lives_on() {
    let srv = start();
    let connector = token(&srv.lake, "connector", None);
    let analyst = token(&srv.lake, "analyst", None);
    let deep = sum_of_ones(2000);
    let nested = format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000));
    let huge = format!("SELECT length('{}')", "x".repeat(300_000));
    for (sql, code) in [(&deep, "E_TOO_DEEP"), (&nested, ""), (&huge, "E_TOO_LARGE")] {
        for (who, t) in [("connector", &connector), ("analyst", &analyst)] {
            for via in [Via::Http, Via::Psql, Via::Prepared] {
                let started = Instant::now();
                let e = ask(&srv, via, t, None, sql)
                    .map(|a| format!("{who} {via:?} {} bytes answered {a:?}", sql.len()))
                    .unwrap_err();
                assert!(e.contains(code), "{who} {via:?}: {e}");
                assert!(
                    e.len() < 400,
                    "{who} {via:?}: the error repeats the statement"
                );
                assert!(
                    started.elapsed().as_secs() < 10,
                    "{who} {via:?}: slow refusal"
                );
                // The server is still there for everyone.
                let ok = ask(&srv, Via::Http, &analyst, None, "SELECT 'alive' AS a").unwrap();
                assert_eq!(ok, vec!["alive".to_string()], "after {who} {via:?}");
            }
        }
    }
    // Within the limits, arithmetic still works.
    let fine = ask(&srv, Via::Http, &analyst, None, &sum_of_ones(100)).unwrap();
    assert_eq!(fine, vec!["100".to_string()]);
    // Every refusal is in the audit log, with the statement cut to its start.
    let entries = audit_entries(&srv);
    let refused = entries
        .iter()
        .filter(|e| {
            e["outcome"] != "ok"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("E_TOO_DEEP") || r.contains("E_TOO_LARGE"))
        })
        .count();
    assert!(refused >= 8, "{refused} refusals audited");
}

#[test]
fn tokens_from_the_future_for_centuries_or_oversized_are_refused() {
    let srv = start();
    let hex = std::fs::read_to_string(srv.lake.parent().unwrap().join("hedui-jwt.key")).unwrap();
    let hex = hex.trim();
    let secret: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64| json!({"sub": "mallory", "roles": ["analyst"], "iss": "hedui", "iat": iat, "exp": exp});
    let good = sign(claims(now, now + 3600));
    assert!(ask(&srv, Via::Http, &good, None, "SELECT 1 AS one").is_ok());
    let mut nbf = claims(now, now + 7200);
    nbf["nbf"] = (now + 3600).into();
    let mut big = claims(now, now + 3600);
    big["pad"] = "x".repeat(267_000).into();
    for (what, t) in [
        ("issued in the future", sign(claims(now + 3600, now + 7200))),
        ("not valid before", sign(nbf)),
        ("valid until 2200", sign(claims(now, 7_258_118_400))),
        ("267 KB", sign(big)),
    ] {
        let (s, body) = call(&srv, "GET", "/api/v1/whoami", &t, None);
        assert_eq!(s, 401, "{what}: {body}");
        // Over the Postgres protocol (a client library: a 267 KB password is longer than an
        // environment variable may be for `psql`).
        let e = prepared(&srv, &t, None, "SELECT 1", &[]).unwrap_err();
        assert!(!e.is_empty(), "{what}: let in over Postgres");
    }
}

#[test]
fn oversized_bodies_and_bad_headers_are_refused_on_the_record() {
    let srv = start();
    let analyst = token(&srv.lake, "analyst", None);
    let auth = format!("Bearer {analyst}");
    let big = format!("{{\"sql\": \"SELECT '{}'\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, _, _) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &big,
    );
    assert_eq!(status, 413);
    // A purpose header that is not visible ASCII.
    let mut s = std::net::TcpStream::connect(&srv.http).unwrap();
    use std::io::{Read, Write};
    s.write_all(
        format!("GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\nx-hedui-purpose: ")
            .as_bytes(),
    )
    .unwrap();
    s.write_all(b"\xff\xfe\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let entries = audit_entries(&srv);
    assert!(
        entries.iter().any(|e| e["action"] == "POST /api/v1/sql"
            && e["outcome"] == "refused"
            && e["reason"].as_str().is_some_and(
                |r| r.to_lowercase().contains("length limit") || r.contains("too large")
            )),
        "the oversized body is not on the record"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["reason"] == "a bad x-hedui-purpose header")
    );
}
