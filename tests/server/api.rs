//! The HTTP API: formats, documents, city policies, reloading, the single-person check.

use serde_json::Value;

use super::*;
use crate::common::*;

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
    // Rule by rule (nothing precomputed), then from the index of the lake version: the same.
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let config = dir.path().join("hedui.toml");
    std::fs::write(&config, "[server]\nprecompute_person_checks = false\n").unwrap();
    person_check(&start_with(dir, lake, Some(config)), false);
    person_check(&start(), true);
}

fn person_check(srv: &Server, precomputed: bool) {
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
    let mut answer: Value = serde_json::from_slice(&body).unwrap();
    // The index is built at start, in the background: wait for it.
    let started = std::time::Instant::now();
    while precomputed && answer["precomputed"] != true {
        assert!(started.elapsed().as_secs() < 30, "no precomputed checks");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (_, _, body) = http(
            &srv.http,
            "GET",
            &format!("{path}?purpose=CASE-2025-0009"),
            &[("Authorization", &auth)],
            "",
        );
        answer = serde_json::from_slice(&body).unwrap();
    }
    assert_eq!(answer["precomputed"], precomputed);
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
