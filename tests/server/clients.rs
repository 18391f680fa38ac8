//! Analysts' Postgres clients as they are: psycopg 3 (server-side parameters over the extended
//! protocol, text results by default, binary on request) reads integers, text and dates, states
//! its purpose with `SET hedui.purpose`, and what it bound is in the audit log.

use super::*;
use crate::common::*;

/// A resident ID of the city, in clear (an administrator with a purpose).
fn some_person(srv: &Server, admin: &str) -> String {
    let (_, one) = call(
        srv,
        "POST",
        "/api/v1/sql",
        admin,
        Some(serde_json::json!({"sql": "SELECT person_id FROM persons LIMIT 1", "purpose": "T-1"})),
    );
    one["rows"][0]["person_id"].as_str().unwrap().to_string()
}

const SCRIPT: &str = r#"
import sys, psycopg
host, port, token, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with psycopg.connect(host=host, port=port, user="analyst", password=token, dbname="hedui") as conn:
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) AS n, max(birth_date) AS d FROM persons WHERE region_code LIKE %s", ("4205%",))
    n, d = cur.fetchone()
    print("text", type(n).__name__, n > 0, type(d).__name__)
    bcur = conn.cursor(binary=True)
    bcur.execute("SELECT count(*) AS n FROM persons WHERE region_code LIKE %s", ("4205%",))
    (bn,) = bcur.fetchone()
    print("binary", type(bn).__name__, bn == n)
    cur.execute("SET hedui.purpose = 'CASE-2026-0042'")
    cur.execute("SELECT name FROM persons WHERE person_id = %s", (pid,))
    print("lookup", len(cur.fetchall()))
"#;

#[test]
fn psycopg_reads_typed_results_states_a_purpose_and_its_bound_values_are_audited() {
    let srv = start();
    let admin = token(&srv.lake, "admin", None);
    let pid = some_person(&srv, &admin);
    let out = run(std::process::Command::new("python3").args([
        "-c",
        SCRIPT,
        &srv.pg.0,
        &srv.pg.1.to_string(),
        &admin,
        &pid,
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("text int True date"), "{stdout}");
    assert!(stdout.contains("binary int True"), "{stdout}");
    assert!(stdout.contains("lookup 1"), "{stdout}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let entries = audit_entries(&srv);
    assert!(
        entries.iter().any(|e| e["interface"] == "pgwire"
            && e["purpose"] == "CASE-2026-0042"
            && e["statement"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("$1 = {pid}")))),
        "the bound person is not in the audit log"
    );
    // Refused at Parse is on the record too.
    let analyst = token(&srv.lake, "analyst", None);
    let e = crate::security::prepared(&srv, &analyst, None, "SELECT * FROM audit_log", &[])
        .unwrap_err();
    assert!(!e.is_empty());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(audit_entries(&srv).iter().any(|e| {
        e["action"] == "parse"
            && e["outcome"] == "refused"
            && e["statement"]
                .as_str()
                .is_some_and(|s| s.contains("audit_log"))
    }));
}

#[test]
fn dbeavers_jdbc_driver_reads_prepared_results_in_binary_and_states_a_purpose() {
    let srv = start();
    let admin = token(&srv.lake, "admin", None);
    let pid = some_person(&srv, &admin);
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/jdbc/Main.java");
    let out = run(std::process::Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(program)
        .args([&srv.pg.0, &srv.pg.1.to_string(), &admin, &pid]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Six executions of one statement: from the first, server-prepared with binary results.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("row ") && l.contains(" true "))
            .count(),
        6,
        "{stdout}"
    );
    assert!(stdout.contains("lookup 1"), "{stdout}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(audit_entries(&srv).iter().any(|e| {
        e["purpose"] == "CASE-2026-0077"
            && e["statement"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("$1 = {pid}")))
    }));
}
