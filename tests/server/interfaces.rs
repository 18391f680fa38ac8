//! The same identity, the same answer, on every interface; escapes refused everywhere.

use serde_json::Value;

use super::*;
use crate::common::*;

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
            // Each of a statistician's answers spends their privacy budget: one statistician
            // per dataset, so that the budget is not what this test meets.
            let token = if *role == "statistician" {
                token_as(&srv.lake, role, &format!("statistician-{dataset}"))
            } else {
                token.clone()
            };
            let sql = if *role == "statistician" {
                format!("SELECT count(*) AS n FROM {dataset}")
            } else {
                format!("SELECT {cols} FROM {dataset} ORDER BY {order} LIMIT 30")
            };
            let h = via_http(&srv, &token, &sql);
            let p = via_psql(&srv, &token, &sql);
            let c = via_cli(&srv, &token, &sql);
            if *role == "statistician" {
                // Each answer carries fresh noise: the same within the noise, not the same.
                close(&h, &p, &format!("{dataset}: HTTP and psql"));
                close(&h, &c, &format!("{dataset}: HTTP and the CLI"));
            } else {
                assert_eq!(h, p, "{role} {dataset}: HTTP and psql differ");
                if dataset != "audit_log" {
                    // The audit log grows with each of these calls; the others must match
                    // exactly.
                    assert_eq!(h, c, "{role} {dataset}: HTTP and the CLI differ");
                }
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

/// Two noisy counts of the same thing: both refused, or both within noise of each other
/// (Laplace of scale 8 with the defaults; 200 is 25 scales).
fn close(a: &Answer, b: &Answer, what: &str) {
    let n = |x: &Answer| match x {
        Answer::Rows(r) if r.len() == 1 => r[0].parse::<f64>().ok().or(Some(0.0)),
        _ => None,
    };
    match (n(a), n(b)) {
        (Some(x), Some(y)) => assert!((x - y).abs() < 200.0, "{what}: {a:?} vs {b:?}"),
        (None, None) => assert_eq!(a, b, "{what}"),
        _ => panic!("{what}: {a:?} vs {b:?}"),
    }
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
