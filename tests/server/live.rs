//! `hedui serve` pulling live sources on their schedules: `kill -9` in the middle of a database
//! pull and of an API pull loses and duplicates nothing once the server is back; a source that
//! keeps failing is retried, logged, counted and shown, and holds up no other source.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::ingest::api::{self, Api, Faults};
use crate::ingest::databases::{Db, Dialect, PG_URL, T0, insert_persons, source_rows};

fn status(lake: &Path, source: &str) -> Value {
    std::fs::read(lake.join("_pulls").join(format!("{source}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn commits_of(lake: &Path, source: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(lake.join("_log")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| {
            let c: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            c["source"] == source
        })
        .count()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The API mapping as `hedui serve` runs it: its token from a file beside it (the server's
/// environment is not the test's), pulled on `schedule` (lines for `[source]`).
fn on_schedule(connectors: &Path, schedule: &str) {
    std::fs::write(connectors.join("token"), api::TOKEN).unwrap();
    let path = connectors.join("deaths.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "bearer_env = \"HEDUI_TEST_API_TOKEN\"",
            "bearer_file = \"token\"",
        )
        .replace("[source.http]", &format!("{schedule}\n[source.http]"));
    std::fs::write(path, text).unwrap();
}

/// Serve `lake` with the mappings of `connectors` (a hedui.toml naming them).
fn serve(dir: &Path, lake: &Path, connectors: &Path) -> Server {
    let config = dir.join("hedui.toml");
    std::fs::write(
        &config,
        format!("[sources]\nconnectors = \"{}\"\n", connectors.display()),
    )
    .unwrap();
    start_with(
        tempfile::tempdir().unwrap(),
        lake.to_path_buf(),
        Some(config),
    )
}

/// Kill the server once `source` has committed a batch of a pull that is still running; then
/// serve again until a pull of it has finished after the restart.
fn kill_mid_pull_and_restart(dir: &Path, lake: &Path, connectors: &Path, source: &str) {
    let mut srv = serve(dir, lake, connectors);
    wait_for(
        "a committed batch of a running pull",
        Duration::from_secs(120),
        || commits_of(lake, source) >= 1 && !status(lake, source)["running_since"].is_null(),
    );
    srv.kill_now();
    assert!(
        !status(lake, source)["running_since"].is_null(),
        "the pull was not killed half-way"
    );
    let restarted = chrono::Utc::now();
    let srv = serve(dir, lake, connectors);
    wait_for(
        "a pull finished after the restart",
        Duration::from_secs(120),
        || {
            let s = status(lake, source);
            s["running_since"].is_null()
                && s["last_success_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > restarted)
        },
    );
    drop(srv);
}

#[test]
fn kill_9_during_a_database_pull_and_an_api_pull_loses_and_duplicates_nothing() {
    // A database pull that takes a few seconds: every row of the source costs a millisecond.
    let source = source_rows();
    let db = Db::new(Dialect::Postgres);
    let db = Db {
        suffix: format!("{}_serve", db.suffix),
        ..db
    };
    db.create();
    insert_persons(&db, &source.persons[..600], T0);
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::write(connectors.join("registry.url"), format!("{PG_URL}\n")).unwrap();
    std::fs::write(
        connectors.join("registry.toml"),
        format!(
            r#"[source]
id = "registry_live"
schedule = "*/2 * * * * *"
cadence = "1h"
[source.database]
url_file = "registry.url"
query = "SELECT r.*, pg_sleep(0.001) AS pause FROM {table} r"
key = "id_no"
cursor = "updated_at"
page_rows = 100
batch_rows = 200

[[target]]
dataset = "persons"
[target.columns]
person_id = "id_no"
name = "name"
status = "status"
"#,
            table = db.table("registry")
        ),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    kill_mid_pull_and_restart(dir.path(), &lake, &connectors, "registry_live");
    let mut ids: Vec<String> = sql(&lake, "SELECT person_id FROM persons")
        .iter()
        .map(|r| r["person_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = source.persons[..600]
        .iter()
        .map(|p| p["id_no"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(ids.len(), 600, "persons in the lake after the restart");
    assert!(ids == expected, "the lake's persons are not the source's");
    db.drop_tables();

    // An API pull, slow enough to be killed half-way.
    let records = api::certificates();
    let server = Api::start(
        records.clone(),
        api::Paging::Page,
        5,
        Faults {
            fail_every: 0,
            slow_every: 0,
            slow: Duration::ZERO,
            delay: Duration::from_millis(150),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    api::mapping(&connectors, server.port, api::Paging::Page, 5, 2);
    on_schedule(&connectors, "schedule = \"*/2 * * * * *\"");
    let lake = dir.path().join("lake");
    kill_mid_pull_and_restart(dir.path(), &lake, &connectors, "deaths_api");
    api::assert_loaded_once(&lake, &records);
}

#[test]
fn a_failing_source_is_retried_counted_and_shown_and_holds_up_no_other() {
    let records = api::certificates();
    let server = Api::start(
        records.clone(),
        api::Paging::Token,
        9,
        Faults {
            fail_every: 0,
            slow_every: 0,
            slow: Duration::ZERO,
            delay: Duration::ZERO,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    api::mapping(&connectors, server.port, api::Paging::Token, 9, 50);
    on_schedule(
        &connectors,
        "schedule = \"*/1 * * * * *\"\ncadence = \"1h\"",
    );
    // A registry database that is not there: every pull fails.
    std::fs::write(
        connectors.join("broken.url"),
        "postgres://postgres@127.0.0.1:1/test\n",
    )
    .unwrap();
    std::fs::write(
        connectors.join("broken.toml"),
        r#"[source]
id = "registry_down"
schedule = "*/1 * * * * *"
cadence = "1s"
[source.database]
url_file = "broken.url"
table = "registry"
key = "id_no"

[[target]]
dataset = "persons"
[target.columns]
person_id = "id_no"
name = "name"
status = "status"
"#,
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let srv = serve(dir.path(), &lake, &connectors);
    wait_for(
        "the failing source to be retried",
        Duration::from_secs(60),
        || {
            status(&lake, "registry_down")["failures"]
                .as_u64()
                .unwrap_or(0)
                >= 2
        },
    );
    wait_for(
        "the good source to be pulled",
        Duration::from_secs(60),
        || !status(&lake, "deaths_api")["last_success_at"].is_null(),
    );
    api::assert_loaded_once(&lake, &records);

    let (code, _, body) = http(&srv.http, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    let metrics = String::from_utf8(body).unwrap();
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("hedui_source_pull_failures_total{source=\"registry_down\"}"))
        .unwrap_or_else(|| panic!("no failure counter: {metrics}"));
    assert!(
        failures.rsplit(' ').next().unwrap().parse::<f64>().unwrap() >= 2.0,
        "{failures}"
    );
    assert!(
        metrics.contains("hedui_source_pull_failures{source=\"deaths_api\"} 0"),
        "{metrics}"
    );

    let admin = token(&lake, "admin", None);
    let (code, lake_page) = call(&srv, "GET", "/api/v1/lake", &admin, None);
    assert_eq!(code, 200, "{lake_page}");
    let sources = lake_page["sources"].as_array().unwrap();
    let down = sources
        .iter()
        .find(|s| s["source"] == "registry_down")
        .unwrap_or_else(|| panic!("{lake_page}"));
    // Which source failed, and where to look; not the driver's own words, which can quote
    // the values it choked on.
    let said = down["last_error"].as_str().unwrap();
    assert!(
        said.contains("registry_down") && said.contains("服务器日志"),
        "{down}"
    );
    assert!(!said.to_lowercase().contains("connect"), "{down}");
    assert!(down["failures"].as_u64().unwrap() >= 2, "{down}");
    assert_eq!(
        down["stale"], true,
        "never pulled, with a cadence of 1s: {down}"
    );
    let good = sources
        .iter()
        .find(|s| s["source"] == "deaths_api")
        .unwrap();
    assert_eq!(good["failures"], 0, "{good}");
    assert_eq!(good["stale"], false, "{good}");
    assert_eq!(good["cadence_secs"], 3600, "{good}");
    assert!(
        metrics.contains("hedui_source_stale{source=\"registry_down\"} 1"),
        "{metrics}"
    );
    let log = std::fs::read_to_string(&srv.stderr).unwrap();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("pull failed")
            && l.contains("registry_down")),
        "no ERROR line for the failing source: {log}"
    );
}
