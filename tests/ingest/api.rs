//! Live HTTP sources: the generated city's death certificates served as a paged JSON API (by
//! page number, by offset and by next-page token) that fails some requests with 503 and answers
//! others too late; every record is loaded exactly once, also when the pull is killed half-way
//! and run again.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

pub(crate) const TOKEN: &str = "tok-never-logged";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Paging {
    Page,
    Offset,
    Token,
}

/// A department API on loopback: `records` served `size` per page, every `fail_every`th request
/// answered 503 and every `slow_every`th after `slow` (the client gives up first).
pub(crate) struct Api {
    pub(crate) port: u16,
    pub(crate) requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

pub(crate) struct Faults {
    pub(crate) fail_every: usize,
    pub(crate) slow_every: usize,
    pub(crate) slow: Duration,
    /// Every answer waits this long (to give a test time to kill the pull).
    pub(crate) delay: Duration,
}

impl Api {
    pub(crate) fn start(records: Vec<Value>, paging: Paging, size: usize, faults: Faults) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(records);
        let faults = Arc::new(faults);
        let (r, s) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                let (records, faults) = (records.clone(), faults.clone());
                std::thread::spawn(move || answer(conn, n, &records, paging, size, &faults));
            }
        });
        Api {
            port,
            requests,
            stop,
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(
    mut conn: TcpStream,
    n: usize,
    records: &[Value],
    paging: Paging,
    size: usize,
    faults: &Faults,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut authorised = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if h.to_ascii_lowercase().starts_with("authorization:") && h.contains(TOKEN) {
            authorised = true;
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let query: Vec<(String, String)> = target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    std::thread::sleep(faults.delay);
    let reply = |conn: &mut TcpStream, status: &str, body: String| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if !authorised {
        return reply(&mut conn, "401 Unauthorized", "{}".into());
    }
    if faults.fail_every > 0 && n.is_multiple_of(faults.fail_every) {
        return reply(
            &mut conn,
            "503 Service Unavailable",
            "{\"msg\":\"busy\"}".into(),
        );
    }
    if faults.slow_every > 0 && n.is_multiple_of(faults.slow_every) {
        std::thread::sleep(faults.slow);
    }
    let start = match paging {
        Paging::Page => {
            (param("pageNo")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(1)
                - 1)
                * size
        }
        Paging::Offset => param("offset").and_then(|p| p.parse().ok()).unwrap_or(0),
        Paging::Token => param("pageToken")
            .and_then(|t| t.strip_prefix("after-").and_then(|n| n.parse().ok()))
            .unwrap_or(0),
    };
    let page: Vec<Value> = records.iter().skip(start).take(size).cloned().collect();
    let end = start + page.len();
    let next = (end < records.len()).then(|| format!("after-{end}"));
    let body = json!({
        "code": 0,
        "data": { "total": records.len(), "list": page, "nextToken": next }
    });
    reply(&mut conn, "200 OK", body.to_string());
}

pub(crate) fn mapping(dir: &Path, port: u16, paging: Paging, size: usize, pages_per_batch: u32) {
    let paging = match paging {
        Paging::Page => format!(
            "{{ kind = \"page\", page = \"pageNo\", size = \"pageSize\", page_size = {size} }}"
        ),
        Paging::Offset => {
            format!(
                "{{ kind = \"offset\", offset = \"offset\", limit = \"limit\", page_size = {size} }}"
            )
        }
        Paging::Token => {
            "{ kind = \"token\", next = \"/data/nextToken\", param = \"pageToken\" }".into()
        }
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("deaths.toml"),
        format!(
            r#"[source]
id = "deaths_api"
title = "卫健委 死亡医学证明接口"
as_of = {{ column = "death_date" }}
[source.http]
url = "http://127.0.0.1:{port}/api/death-certificates"
records = "/data/list"
key = "zmbh"
total = "/data/total"
auth = {{ bearer_env = "HEDUI_TEST_API_TOKEN" }}
paging = {paging}
timeout = "700ms"
retries = 6
backoff = "20ms"
pages_per_batch = {pages_per_batch}

[[target]]
dataset = "death_certificates"
[target.columns]
person_id = "sfzh"
name = "xm"
death_date = "swrq"
cause = "swyy"
hospital = "jgmc"
"#
        ),
    )
    .unwrap();
}

/// The city's death certificates as the health commission's API returns them, each with a
/// certificate number.
pub(crate) fn certificates() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let rows = sql(
        &lake,
        "SELECT person_id AS sfzh, name AS xm, CAST(death_date AS VARCHAR) AS swrq, cause AS swyy, \
         hospital AS jgmc FROM death_certificates ORDER BY person_id, death_date",
    );
    assert!(rows.len() > 40, "the city has {} certificates", rows.len());
    rows.into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r["zmbh"] = json!(format!("SW{:08}", i + 1));
            r
        })
        .collect()
}

fn pull(connectors: &Path, lake: &Path) -> std::process::Command {
    let mut cmd = hedui();
    cmd.env("HEDUI_TEST_API_TOKEN", TOKEN)
        .args(["-v", "pull", "deaths_api", "--connectors"])
        .arg(connectors)
        .arg("--lake")
        .arg(lake)
        .arg("--report")
        .arg(lake.with_extension("json"));
    cmd
}

pub(crate) fn assert_loaded_once(lake: &Path, records: &[Value]) {
    let mut lake_rows: Vec<String> = sql(
        lake,
        "SELECT person_id, CAST(death_date AS VARCHAR) AS d FROM death_certificates",
    )
    .iter()
    .map(|r| {
        format!(
            "{}|{}",
            r["person_id"].as_str().unwrap(),
            r["d"].as_str().unwrap()
        )
    })
    .collect();
    let mut source: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{}|{}",
                r["sfzh"].as_str().unwrap(),
                r["swrq"].as_str().unwrap()
            )
        })
        .collect();
    lake_rows.sort();
    source.sort();
    assert_eq!(
        lake_rows.len(),
        source.len(),
        "records in the lake and at the API"
    );
    assert!(
        lake_rows == source,
        "the lake's certificates are not the API's"
    );
}

#[test]
fn every_record_of_a_flaky_paged_api_is_loaded_once() {
    let records = certificates();
    for paging in [Paging::Page, Paging::Offset, Paging::Token] {
        let api = Api::start(
            records.clone(),
            paging,
            7,
            Faults {
                fail_every: 4,
                slow_every: 7,
                slow: Duration::from_millis(1500),
                delay: Duration::ZERO,
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let connectors = dir.path().join("connectors");
        let lake = dir.path().join("lake");
        mapping(&connectors, api.port, paging, 7, 3);
        let out = run_ok(&mut pull(&connectors, &lake));
        let report: Value =
            serde_json::from_slice(&std::fs::read(lake.with_extension("json")).unwrap()).unwrap();
        assert_eq!(
            report["rows_taken"],
            records.len() as u64,
            "{out}\n{report}"
        );
        assert_eq!(
            report["totals"]["rows_loaded"],
            records.len() as u64,
            "{report}"
        );
        assert!(
            api.requests.load(Ordering::SeqCst) > records.len() / 7 + 3,
            "the faults were not exercised"
        );
        assert_loaded_once(&lake, &records);

        // Again: nothing new; then the API drops a record and changes another.
        run_ok(&mut pull(&connectors, &lake));
        assert_loaded_once(&lake, &records);
        drop(api);
        let mut changed = records.clone();
        changed.remove(3);
        changed[10]["swrq"] = json!("2025-12-31");
        let api = Api::start(
            changed.clone(),
            paging,
            7,
            Faults {
                fail_every: 0,
                slow_every: 0,
                slow: Duration::ZERO,
                delay: Duration::ZERO,
            },
        );
        mapping(&connectors, api.port, paging, 7, 3);
        run_ok(&mut pull(&connectors, &lake));
        let report: Value =
            serde_json::from_slice(&std::fs::read(lake.with_extension("json")).unwrap()).unwrap();
        assert_eq!(report["rows_deleted"], 1, "{report}");
        assert_eq!(report["rows_updated"], 1, "{report}");
        assert_loaded_once(&lake, &changed);
    }
}

#[test]
fn an_api_that_keeps_failing_stops_the_pull_clearly_and_wrong_credentials_are_not_retried() {
    let records = certificates();
    let api = Api::start(
        records,
        Paging::Page,
        7,
        Faults {
            fail_every: 1,
            slow_every: 0,
            slow: Duration::ZERO,
            delay: Duration::ZERO,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    let lake = dir.path().join("lake");
    mapping(&connectors, api.port, Paging::Page, 7, 3);
    let out = run(&mut pull(&connectors, &lake));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed 7 times") && stderr.contains("503"),
        "{stderr}"
    );
    assert_eq!(api.requests.load(Ordering::SeqCst), 7);

    let before = api.requests.load(Ordering::SeqCst);
    let out = run(pull(&connectors, &lake).env("HEDUI_TEST_API_TOKEN", "wrong"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert_eq!(
        api.requests.load(Ordering::SeqCst),
        before + 1,
        "a 401 was retried"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

/// `kill -9` half-way through a pull, then the pull again: it resumes after the last committed
/// page, and every record is in the lake once.
#[test]
fn a_pull_killed_half_way_resumes_and_loads_every_record_once() {
    let records = certificates();
    let api = Api::start(
        records.clone(),
        Paging::Offset,
        5,
        Faults {
            fail_every: 0,
            slow_every: 0,
            slow: Duration::ZERO,
            delay: Duration::from_millis(120),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    let lake = dir.path().join("lake");
    mapping(&connectors, api.port, Paging::Offset, 5, 2);
    let mut child = pull(&connectors, &lake)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let commits = |lake: &Path| {
        std::fs::read_dir(lake.join("_log"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
                })
                .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while commits(&lake) < 2 {
        assert!(Instant::now() < deadline, "the pull committed nothing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let requests_before = api.requests.load(Ordering::SeqCst);
    let out = run_ok(&mut pull(&connectors, &lake));
    assert!(out.contains("deaths_api"), "{out}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(lake.with_extension("json")).unwrap()).unwrap();
    let pages = records.len().div_ceil(5);
    assert!(
        api.requests.load(Ordering::SeqCst) - requests_before < pages,
        "the second pull started again from the first page: {report}"
    );
    assert_loaded_once(&lake, &records);
}
