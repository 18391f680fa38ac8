//! `hedui serve` on a generated city: each role through HTTP, the Postgres wire protocol (the
//! real `psql`) and the command line gets the same rows and masks; escapes are refused and
//! audited; the audit chain catches an edited byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::*;

struct Server {
    child: Child,
    http: String,
    pg: (String, u16),
    lake: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    start_on(dir, lake)
}

fn start_on(dir: tempfile::TempDir, lake: PathBuf) -> Server {
    let mut child = hedui()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--pg",
            "127.0.0.1:0",
            "--lake",
        ])
        .arg(&lake)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut pg) = (None, None);
    while http.is_none() || pg.is_none() {
        let line = lines.next().expect("serve prints its addresses").unwrap();
        if let Some(rest) = line.trim().strip_prefix("HTTP      http://") {
            http = Some(rest.split('/').next().unwrap().to_string());
        }
        if line.trim().starts_with("Postgres") {
            let host = line
                .split("host=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let port = line
                .split("port=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            pg = Some((host.to_string(), port.parse().unwrap()));
        }
    }
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        http: http.unwrap(),
        pg: pg.unwrap(),
        lake,
        _dir: dir,
    }
}

fn token(lake: &Path, role: &str, region: Option<&str>) -> String {
    let mut cmd = hedui();
    cmd.args(["token", "--role", role, "--lake"]).arg(lake);
    if let Some(r) = region {
        cmd.args(["--region", r]);
    }
    run_ok(&mut cmd).trim().to_string()
}

/// A minimal HTTP/1.1 client: status, headers (lower-cased) and the de-chunked body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (status, headers, body)
}

fn sql_http(srv: &Server, token: &str, sql: &str, format: &str) -> (u16, Vec<u8>) {
    let body = serde_json::json!({"sql": sql, "format": format}).to_string();
    let auth = format!("Bearer {token}");
    let (status, _, body) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[("Authorization", &auth)],
        &body,
    );
    (status, body)
}

/// What each interface answered: rows as `a|b|c` lines, or refused.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Rows(Vec<String>),
    Refused,
}

fn via_http(srv: &Server, token: &str, sql: &str) -> Answer {
    let (status, body) = sql_http(srv, token, sql, "csv");
    match status {
        200 => Answer::Rows(
            String::from_utf8(body)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.replace(',', "|"))
                .collect(),
        ),
        403 => Answer::Refused,
        other => panic!("{sql}: HTTP {other}"),
    }
}

fn psql(srv: &Server, token: &str, commands: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("psql");
    cmd.env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "10")
        .arg("-X")
        .arg("-A")
        .arg("-t")
        .args(["-F", "|"])
        .arg(format!(
            "host={} port={} user=tester dbname=hedui",
            srv.pg.0, srv.pg.1
        ));
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.output().expect("psql is installed")
}

fn via_psql(srv: &Server, token: &str, sql: &str) -> Answer {
    let out = psql(srv, token, &[sql]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ERROR") {
        assert!(
            stderr.contains("not available") || stderr.contains("aggregates only"),
            "{sql}: {stderr}"
        );
        return Answer::Refused;
    }
    assert!(out.status.success(), "{sql}: {stderr}");
    Answer::Rows(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect(),
    )
}

fn via_cli(srv: &Server, token: &str, sql: &str) -> Answer {
    let out = run(hedui()
        .args(["sql", "--format", "csv", "--token", token, "--lake"])
        .arg(&srv.lake)
        .arg(sql));
    if out.status.code() == Some(2) {
        return Answer::Refused;
    }
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Answer::Rows(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.replace(',', "|"))
            .collect(),
    )
}

const DISTRICT: &str = "420502";

#[test]
fn every_role_gets_the_same_rows_and_masks_over_http_psql_and_the_cli() {
    let srv = start();
    let roles: &[(&str, Option<&str>)] = &[
        ("admin", None),
        ("analyst", None),
        ("reviewer", Some(DISTRICT)),
        ("dibao_reviewer", Some(DISTRICT)),
        ("statistician", None),
        ("auditor", None),
        ("connector", None),
    ];
    // Text columns only, so every interface prints them the same way.
    let datasets = [
        ("persons", "person_id, name, region_code", "_batch, _row"),
        (
            "pension_payments",
            "person_id, name, scheme",
            "_batch, _row",
        ),
        ("dibao_payments", "household_no", "_batch, _row"),
        ("vehicles", "owner_id, owner_name, plate", "_batch, _row"),
        ("quarantine", "dataset, reasons", "_batch, _row"),
        ("audit_log", "interface", "seq"),
    ];
    let mut seen_rows = 0;
    for (role, region) in roles {
        let token = token(&srv.lake, role, *region);
        for (dataset, cols, order) in datasets {
            let sql = if *role == "statistician" {
                format!("SELECT count(*) AS n FROM {dataset}")
            } else {
                format!("SELECT {cols} FROM {dataset} ORDER BY {order} LIMIT 30")
            };
            let h = via_http(&srv, &token, &sql);
            let p = via_psql(&srv, &token, &sql);
            let c = via_cli(&srv, &token, &sql);
            assert_eq!(h, p, "{role} {dataset}: HTTP and psql differ");
            if dataset != "audit_log" {
                // The audit log grows with each of these calls; the others must match exactly.
                assert_eq!(h, c, "{role} {dataset}: HTTP and the CLI differ");
            }
            if let Answer::Rows(rows) = &h {
                seen_rows += rows.len();
                let masked = matches!(*role, "analyst" | "reviewer" | "dibao_reviewer" | "admin");
                if masked && ["persons", "pension_payments", "vehicles"].contains(&dataset) {
                    for r in rows {
                        let f: Vec<&str> = r.split('|').collect();
                        assert_eq!(&f[0][6..14], "********", "{role} {dataset}: {r}");
                        assert!(f[1].ends_with('*'), "{role} {dataset}: {r}");
                    }
                }
                if region.is_some() && dataset == "persons" {
                    assert!(
                        rows.iter().all(|r| r.ends_with(&format!("|{DISTRICT}"))),
                        "{role}: {rows:?}"
                    );
                }
            }
            // What each role may read, whatever the interface.
            let allowed = match (*role, dataset) {
                ("admin", "audit_log") => false,
                ("admin", _) => true,
                ("analyst" | "statistician", d) => !["quarantine", "audit_log"].contains(&d),
                ("reviewer", d) => ["persons", "pension_payments"].contains(&d),
                ("dibao_reviewer", d) => {
                    ["persons", "pension_payments", "dibao_payments", "vehicles"].contains(&d)
                }
                ("auditor", d) => d == "audit_log",
                _ => false,
            };
            assert_eq!(
                matches!(h, Answer::Rows(_)),
                allowed,
                "{role} {dataset}: {h:?}"
            );
        }
    }
    assert!(seen_rows > 200);
}

#[test]
fn escapes_are_refused_on_every_interface_and_audited() {
    let srv = start();
    let analyst = token(&srv.lake, "analyst", None);
    let reviewer = token(&srv.lake, "reviewer", Some(DISTRICT));
    let attempts = [
        (&analyst, "CREATE TABLE stolen AS SELECT * FROM persons"),
        (&analyst, "INSERT INTO persons (person_id) VALUES ('x')"),
        (
            &analyst,
            "COPY (SELECT * FROM persons) TO '/tmp/hedui-stolen.csv'",
        ),
        (
            &analyst,
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        ),
        (&analyst, "SELECT * FROM '/etc/passwd'"),
        (&analyst, "SET datafusion.execution.target_partitions = 1"),
        (
            &reviewer,
            "SELECT * FROM persons WHERE person_id = '420502199001011234'",
        ),
    ];
    for (token, sql) in attempts {
        let (status, body) = sql_http(&srv, token, sql, "json");
        assert!(status == 403 || status == 400, "{sql}: HTTP {status}");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert!(err["error"]["message"].as_str().unwrap().len() > 10);
        let out = psql(&srv, token, &[sql]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ERROR"),
            "{sql}: psql ran it"
        );
        let cli = run(hedui()
            .args(["sql", "--token", token, "--lake"])
            .arg(&srv.lake)
            .arg(sql));
        assert_eq!(cli.status.code(), Some(2), "{sql}: CLI ran it");
    }
    assert!(!Path::new("/tmp/hedui-stolen.csv").exists());
    // With a purpose, the person lookup runs (HTTP body, psql SET, CLI flag).
    let lookup = "SELECT count(*) FROM persons WHERE person_id = '420502199001011234'";
    let body = serde_json::json!({"sql": lookup, "purpose": "CASE-2025-0007"}).to_string();
    let auth = format!("Bearer {reviewer}");
    let (status, _, _) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[("Authorization", &auth)],
        &body,
    );
    assert_eq!(status, 200);
    let out = psql(
        &srv,
        &reviewer,
        &["SET hedui.purpose = 'CASE-2025-0007'", lookup],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(
        hedui()
            .args([
                "sql",
                "--purpose",
                "CASE-2025-0007",
                "--token",
                &reviewer,
                "--lake",
            ])
            .arg(&srv.lake)
            .arg(lookup),
    );

    // Bad tokens: none, forged, expired, unsigned.
    let key_hex =
        std::fs::read_to_string(srv.lake.parent().unwrap().join("hedui-jwt.key")).unwrap();
    let key: Vec<u8> = (0..key_hex.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: Value, key: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let claims = |exp: u64| serde_json::json!({"sub": "mallory", "roles": ["admin"], "iss": "hedui", "iat": now - 10, "exp": exp});
    let bad = [
        ("expired", sign(claims(now - 3600), &key)),
        (
            "forged",
            sign(claims(now + 3600), b"not-the-servers-key-not-the-servers"),
        ),
        (
            "none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(claims(now + 3600).to_string().as_bytes())
            ),
        ),
        ("malformed", "not-a-token".to_string()),
    ];
    for (what, t) in &bad {
        let (status, _) = sql_http(&srv, t, "SELECT 1", "json");
        assert_eq!(status, 401, "{what}");
        let out = psql(&srv, t, &["SELECT 1"]);
        assert!(!out.status.success(), "{what}: psql signed in");
        let cli = run(hedui()
            .args(["sql", "--token", t, "--lake"])
            .arg(&srv.lake)
            .arg("SELECT 1"));
        assert_eq!(cli.status.code(), Some(2), "{what}");
    }
    let (status, _, _) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[],
        r#"{"sql":"SELECT 1"}"#,
    );
    assert_eq!(status, 401);

    // Every refusal is on the record, from every interface, and the chain is intact.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(srv.lake.parent().unwrap().join("hedui-audit.log")).unwrap();
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Refused, or (a path that is no table, SQL that does not parse) failed: never run.
    let refused = |interface: &str| {
        entries
            .iter()
            .filter(|e| e["outcome"] != "ok" && e["interface"] == interface)
            .count()
    };
    assert!(
        refused("http") > attempts.len() + bad.len(),
        "http refusals: {}",
        refused("http")
    );
    assert!(
        refused("pgwire") >= attempts.len() + bad.len(),
        "pgwire refusals: {}",
        refused("pgwire")
    );
    assert!(
        refused("cli") >= attempts.len() + bad.len(),
        "cli refusals: {}",
        refused("cli")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["reason"].as_str().unwrap_or("").contains("expired"))
    );
    assert!(
        entries
            .iter()
            .any(|e| e["purpose"] == "CASE-2025-0007" && e["outcome"] == "ok")
    );
    run_ok(hedui().args(["audit", "verify", "--lake"]).arg(&srv.lake));
}

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

#[test]
fn results_come_as_json_csv_arrow_and_parquet_and_the_api_documents_itself() {
    let srv = start();
    let t = token(&srv.lake, "analyst", None);
    let sql =
        "SELECT region_code, count(*) AS n FROM persons GROUP BY region_code ORDER BY region_code";
    let (s, json) = sql_http(&srv, &t, sql, "json");
    assert_eq!(s, 200);
    let json: Value = serde_json::from_slice(&json).unwrap();
    let n = json["row_count"].as_u64().unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len() as u64, n);
    assert_eq!(json["truncated"], false);
    let (_, csv) = sql_http(&srv, &t, sql, "csv");
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count() as u64,
        n + 1
    );
    let (_, arrow) = sql_http(&srv, &t, sql, "arrow");
    assert_eq!(
        &arrow[..4],
        &[0xff, 0xff, 0xff, 0xff],
        "an Arrow IPC stream"
    );
    let (_, parquet) = sql_http(&srv, &t, sql, "parquet");
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(&parquet[parquet.len() - 4..], b"PAR1");
    // Accept header instead of a format field.
    let auth = format!("Bearer {t}");
    let body = serde_json::json!({"sql": sql}).to_string();
    let (s, headers, _) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[("Authorization", &auth), ("Accept", "text/csv")],
        &body,
    );
    assert_eq!(s, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/csv"))
    );
    assert!(headers.iter().any(|(k, _)| k == "x-request-id"));
    // Health, metrics, OpenAPI.
    let (s, _, body) = http(&srv.http, "GET", "/healthz", &[], "");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let (_, _, metrics) = http(&srv.http, "GET", "/metrics", &[], "");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("hedui_http_requests_total{route=\"/api/v1/sql\",status=\"200\"}"),
        "{metrics}"
    );
    let (_, _, doc) = http(&srv.http, "GET", "/api/v1/openapi.json", &[], "");
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/api/v1/sql",
        "/api/v1/whoami",
        "/api/v1/datasets",
        "/api/v1/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    let (s, _, who) = http(
        &srv.http,
        "GET",
        "/api/v1/whoami",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200);
    let who: Value = serde_json::from_slice(&who).unwrap();
    assert_eq!(who["roles"][0], "analyst");
}

#[test]
fn a_citys_own_policies_in_hedui_toml_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let config = dir.path().join("hedui.toml");
    std::fs::write(
        &config,
        r#"
[access]
small_cell_threshold = 10
[[access.policy]]
name = "analysts-registry-only"
roles = ["analyst"]
datasets = ["persons"]
rows = "all"
unmask = "never"
hide = ["birth_date"]
"#,
    )
    .unwrap();
    let token = run_ok(
        hedui()
            .arg("--config")
            .arg(&config)
            .args(["token", "--role", "analyst", "--lake"])
            .arg(&lake),
    );
    let sql = |q: &str| {
        run(hedui()
            .arg("--config")
            .arg(&config)
            .args(["sql", "--format", "json", "--token", token.trim(), "--lake"])
            .arg(&lake)
            .arg(q))
    };
    let out = sql("SELECT person_id, birth_date, sex FROM persons LIMIT 5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert!(
            r["birth_date"].is_null(),
            "hidden by the city's policy: {r}"
        );
        assert!(r["person_id"].as_str().unwrap().contains("********"));
        assert!(!r["sex"].is_null());
    }
    // Everything the city did not grant is denied, whatever the defaults would allow.
    let out = sql("SELECT count(*) FROM pension_payments");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not available"));
    // A broken policy is refused with the file and line.
    std::fs::write(&config, "[[access.policy]]\nroles = [\"analyst\"]\ndatasets = [\"*\"]\nrows = \"everything\"\nunmask = \"never\"\n").unwrap();
    let out = sql("SELECT 1");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hedui.toml:4"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

#[test]
fn batches_ingested_while_serving_are_answered_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&city().data(), &data);
    let aside = dir.path().join("司法-later");
    std::fs::rename(data.join("司法"), &aside).unwrap();
    let lake = dir.path().join("lake");
    ingest(&data, &lake);
    let srv = start_on(dir, lake.clone());
    let t = token(&srv.lake, "analyst", None);
    let count = || match via_http(&srv, &t, "SELECT count(*) AS n FROM incarcerations") {
        Answer::Rows(r) => r[0].parse::<u64>().unwrap(),
        Answer::Refused => panic!("refused"),
    };
    assert_eq!(count(), 0);
    std::fs::rename(&aside, data.join("司法")).unwrap();
    ingest(&data, &lake);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new batch was not picked up"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn a_person_check_runs_every_person_rule_for_one_person_with_a_purpose() {
    let srv = start();
    let truth = city().truth();
    let hit = &truth["rules"]["R1"]["hits"][0];
    let id = hit["subject"].as_str().unwrap();
    // The registry region of that person, for a reviewer of exactly that region.
    let admin = token(&srv.lake, "admin", None);
    let body = serde_json::json!({
        "sql": format!("SELECT region_code FROM persons WHERE person_id = '{id}'"),
        "purpose": "TEST-0001", "format": "csv"})
    .to_string();
    let auth = format!("Bearer {admin}");
    let (_, _, csv) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[("Authorization", &auth)],
        &body,
    );
    let region = String::from_utf8(csv)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let reviewer = token(&srv.lake, "reviewer", Some(&region));
    let auth = format!("Bearer {reviewer}");
    let path = format!("/api/v1/persons/{id}/check");

    let (status, _, _) = http(&srv.http, "GET", &path, &[("Authorization", &auth)], "");
    assert_eq!(status, 403, "no purpose");
    let (status, _, body) = http(
        &srv.http,
        "GET",
        &format!("{path}?purpose=CASE-2025-0009"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["person_id"], id);
    let rules = answer["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5, "the five person rules (R1-R4, R6)");
    let r1 = rules.iter().find(|r| r["rule"] == "R1").unwrap();
    assert_eq!(r1["hit"], true);
    assert_eq!(r1["months"], hit["months"], "the months truth.json planted");
    assert_eq!(r1["amount"], hit["amount"]);

    // Another region's reviewer does not learn whether the person exists.
    let other = if region.starts_with("420502") {
        "420503"
    } else {
        "420502"
    };
    let stranger = token(&srv.lake, "reviewer", Some(other));
    let auth = format!("Bearer {stranger}");
    let (status, _, _) = http(
        &srv.http,
        "GET",
        &format!("{path}?purpose=CASE-2025-0009"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(status, 404);
    // Analysts see persons masked: not for them.
    let analyst = format!("Bearer {}", token(&srv.lake, "analyst", None));
    let (status, _, _) = http(
        &srv.http,
        "GET",
        &format!("{path}?purpose=CASE-2025-0009"),
        &[("Authorization", &analyst)],
        "",
    );
    assert_eq!(status, 403);
    let (status, _, _) = http(
        &srv.http,
        "GET",
        "/api/v1/persons/123/check?purpose=CASE-1",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(status, 400);
}
