//! Hits become cases once; runs are recorded and can be reproduced exactly.

use std::path::Path;

use crate::common::*;

/// Run `hedui check` (table output) and return (run id, summary line).
fn check(lake: &Path, extra: &[&str]) -> (String, String) {
    let out = run_ok(hedui().args(["check", "--lake"]).arg(lake).args(extra));
    let summary = out.lines().last().unwrap().to_string();
    let id = summary
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    (id, summary)
}

fn raises_once_then_only_new_hits(cases_url: Option<String>) {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&city.data(), &data);
    let lake = dir.path().join("lake");
    ingest(&data, &lake);
    let extra: Vec<&str> = cases_url
        .as_deref()
        .map(|u| vec!["--cases", u])
        .unwrap_or_default();
    let planted: usize = city.truth()["rules"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["hits"].as_array().unwrap().len())
        .sum();

    let (first_run, summary) = check(&lake, &extra);
    assert!(
        summary.contains(&format!("cases: {planted} new, 0 already open")),
        "{summary}"
    );
    let (_, summary) = check(&lake, &extra);
    assert!(
        summary.contains(&format!("cases: 0 new, {planted} already open")),
        "unchanged lake: {summary}"
    );

    // A new month of pensions arrives: one more payment to someone who died (a near miss until now).
    let decoy = city.truth()["rules"]["R1"]["decoys"][0]["subject"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        data.join("人社/养老金发放明细_202601.csv"),
        format!("个人编号,姓名,公民身份号码,险种,发放年月,发放金额\n1,某某,{decoy},企业职工基本养老保险,202601,3000.00\n"),
    )
    .unwrap();
    ingest(&data, &lake);
    let (_, summary) = check(&lake, &extra);
    assert!(
        summary.contains(&format!("cases: 1 new, {planted} already open")),
        "only the new hit: {summary}"
    );

    // The first run, on the lake as it was then, gives the same hits.
    let out = run_ok(
        hedui()
            .args(["check", "--lake"])
            .arg(&lake)
            .args(&extra)
            .args(["--rerun", &first_run]),
    );
    assert!(
        out.lines().last().unwrap().contains(&format!(
            "run {first_run} reproduced exactly: {planted} hits"
        )),
        "{out}"
    );
    let out = run(hedui()
        .args(["check", "--lake"])
        .arg(&lake)
        .args(&extra)
        .args(["--rerun", "run-none"]));
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no run `run-none`")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let target = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
    }
}

#[test]
fn sqlite_case_store_beside_the_lake() {
    raises_once_then_only_new_hits(None);
}

#[test]
fn postgres_case_store() {
    let base = std::env::var("HEDUI_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("hedui_it_{}", std::process::id());
    let psql = |sql: &str| {
        let ok = std::process::Command::new("psql")
            .arg(&base)
            .args(["-q", "-c", sql])
            .status()
            .expect("psql is installed")
            .success();
        assert!(ok, "psql {sql}");
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    raises_once_then_only_new_hits(Some(format!("{base}?options=-c%20search_path%3D{schema}")));
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// Several `hedui check` at once on a store none of them has created yet: the schema is made
/// once, each case is raised once with one "raised" event, and every run is recorded.
fn concurrent_checks(cases_url: &str, runs: usize, count_sql: &dyn Fn(&str) -> String) {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.data(), &lake);
    let children: Vec<_> = (0..runs)
        .map(|_| {
            hedui()
                .args(["check", "--cases", cases_url, "--lake"])
                .arg(&lake)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n = |sql: &str| -> i64 { count_sql(sql).trim().parse().unwrap() };
    let cases = n("SELECT count(*) FROM cases");
    assert!(cases > 0);
    assert_eq!(
        n("SELECT count(DISTINCT rule_id || subject) FROM cases"),
        cases
    );
    assert_eq!(
        n("SELECT count(*) FROM case_events WHERE from_state IS NULL"),
        cases
    );
    assert_eq!(n("SELECT count(*) FROM runs"), runs as i64);
    assert_eq!(
        n("SELECT count(*) FROM hedui_schema"),
        n("SELECT max(version) FROM hedui_schema")
    );
}

#[test]
fn concurrent_checks_on_a_new_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cases.db");
    let url = format!("sqlite://{}", db.display());
    let query = |sql: &str| -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"])
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    concurrent_checks(&url, 2, &query);
}

#[test]
fn concurrent_checks_on_a_new_postgres_store() {
    let base = std::env::var("HEDUI_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("hedui_cc_{}", std::process::id());
    let psql = |sql: &str| -> String {
        let out = std::process::Command::new("psql")
            .arg(&base)
            .args(["-q", "-t", "-A", "-c"])
            .arg(format!("SET search_path TO {schema}; {sql}"))
            .output()
            .expect("psql is installed");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    concurrent_checks(
        &format!("{base}?options=-c%20search_path%3D{schema}"),
        8,
        &|sql| psql(sql).lines().last().unwrap_or_default().to_string(),
    );
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
