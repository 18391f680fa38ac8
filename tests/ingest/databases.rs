//! Live database sources: the generated city's registry and contribution tables served from
//! this machine's PostgreSQL and MariaDB, pulled incrementally in several steps with inserts,
//! updates and deletes in between (rows with equal cursor values among them, across page
//! boundaries); after every pull the lake holds exactly the source's rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

pub(crate) const PG_URL: &str = "postgres://postgres:pw-never-logged@127.0.0.1:5432/test";
const MARIA_URL: &str = "mysql://root@127.0.0.1:3306/test";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Dialect {
    Postgres,
    MariaDb,
}

pub(crate) struct Db {
    pub(crate) dialect: Dialect,
    /// Table names unique to this test process.
    pub(crate) suffix: String,
}

impl Db {
    pub(crate) fn new(dialect: Dialect) -> Db {
        Db {
            dialect,
            suffix: format!("{}", std::process::id()),
        }
    }

    fn url(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => PG_URL,
            Dialect::MariaDb => MARIA_URL,
        }
    }

    pub(crate) fn table(&self, name: &str) -> String {
        format!("live_{name}_{}", self.suffix)
    }

    /// Run SQL through the database's own client; its tab-separated output.
    pub(crate) fn run(&self, sql: &str) -> String {
        use std::io::Write;
        let mut cmd = match self.dialect {
            Dialect::Postgres => {
                let mut c = Command::new("psql");
                c.args(["-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
                    .arg("postgres://postgres@127.0.0.1:5432/test");
                c
            }
            Dialect::MariaDb => {
                let mut c = Command::new("mariadb");
                c.args([
                    "-h",
                    "127.0.0.1",
                    "-P",
                    "3306",
                    "-u",
                    "root",
                    "-N",
                    "-B",
                    "test",
                ]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the database client runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{sql:.300}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn timestamp_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "timestamptz",
            Dialect::MariaDb => "datetime(6)",
        }
    }

    pub(crate) fn create(&self) {
        let (reg, con) = (self.table("registry"), self.table("contributions"));
        let ts = self.timestamp_type();
        self.run(&format!(
            "DROP TABLE IF EXISTS {reg}; DROP TABLE IF EXISTS {con};
             CREATE TABLE {reg} (id_no varchar(18) PRIMARY KEY, name varchar(64) NOT NULL,
               sex varchar(4), birth_date date, household_no varchar(32), address varchar(200),
               region varchar(12), status varchar(16), cancel_date date, updated_at {ts} NOT NULL);
             CREATE TABLE {con} (id bigint PRIMARY KEY, id_no char(18) NOT NULL,
               employer varchar(200), credit_code varchar(18), pay_month char(6) NOT NULL,
               base decimal(12,2), updated_at {ts} NOT NULL);"
        ));
    }

    pub(crate) fn drop_tables(&self) {
        self.run(&format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
            self.table("registry"),
            self.table("contributions")
        ));
    }

    fn mappings(&self, dir: &Path) {
        let env = self.url_env();
        let reg = format!(
            r#"[source]
id = "registry_live"
title = "公安局 人口库"
department = "公安局"
[source.database]
url_env = "{env}"
table = "{table}"
key = "id_no"
cursor = "updated_at"
page_rows = 100
batch_rows = 700
compare_keys_every = "0s"

[[target]]
dataset = "persons"
[target.columns]
person_id = "id_no"
name = "name"
sex = "sex"
birth_date = "birth_date"
household_no = "household_no"
address = "address"
region_code = "region"
status = "status"
cancel_date = "cancel_date"
"#,
            table = self.table("registry")
        );
        let con = format!(
            r#"[source]
id = "contributions_live"
title = "人社局 缴费库"
[source.database]
url_env = "{env}"
table = "{table}"
key = "id"
cursor = "updated_at"
page_rows = 250

[[target]]
dataset = "contributions"
[target.columns]
person_id = "id_no"
employer_name = "employer"
employer_credit_code = "credit_code"
month = "pay_month"
base = "base"
"#,
            table = self.table("contributions")
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("registry.toml"), reg).unwrap();
        std::fs::write(dir.join("contributions.toml"), con).unwrap();
    }

    fn url_env(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "HEDUI_TEST_LIVE_PG",
            Dialect::MariaDb => "HEDUI_TEST_LIVE_MARIA",
        }
    }

    /// `hedui pull` of one source; its JSON report (`Null` when it failed) and output.
    fn pull(
        &self,
        connectors: &Path,
        lake: &Path,
        source: &str,
        extra: &[&str],
    ) -> (std::process::Output, Value) {
        let report = lake.with_extension(format!("{source}.json"));
        let _ = std::fs::remove_file(&report);
        let out = run(hedui()
            .env(self.url_env(), self.url())
            .args(["-v", "pull", source, "--connectors"])
            .arg(connectors)
            .arg("--lake")
            .arg(lake)
            .arg("--report")
            .arg(&report)
            .args(extra));
        let report = std::fs::read(&report)
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or(Value::Null);
        (out, report)
    }
}

fn quote(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{other}'"),
    }
}

/// The registry and contribution rows of the generated city, as the departments' databases
/// would hold them.
pub(crate) struct Source {
    pub(crate) persons: Vec<BTreeMap<String, Value>>,
    contributions: Vec<BTreeMap<String, Value>>,
}

pub(crate) fn source_rows() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let rows = |q: &str| -> Vec<BTreeMap<String, Value>> {
        sql(&lake, q)
            .into_iter()
            .map(|r| {
                r.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect()
    };
    Source {
        persons: rows(
            "SELECT person_id AS id_no, name, sex, CAST(birth_date AS VARCHAR) AS birth_date, \
             household_no, address, region_code AS region, status, \
             CAST(cancel_date AS VARCHAR) AS cancel_date FROM persons ORDER BY person_id",
        ),
        contributions: rows(
            "SELECT person_id AS id_no, employer_name AS employer, employer_credit_code AS credit_code, \
             to_char(month, '%Y%m') AS pay_month, CAST(base AS VARCHAR) AS base \
             FROM contributions ORDER BY person_id, month, employer_name LIMIT 6000",
        ),
    }
}

pub(crate) const T0: &str = "2026-11-01 08:00:00";
const T1: &str = "2026-11-15 09:30:00";
const T2: &str = "2026-11-20 10:00:00";

pub(crate) fn insert_persons(db: &Db, rows: &[BTreeMap<String, Value>], at: &str) {
    let cols = [
        "id_no",
        "name",
        "sex",
        "birth_date",
        "household_no",
        "address",
        "region",
        "status",
        "cancel_date",
    ];
    for chunk in rows.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|r| {
                let v: Vec<String> = cols
                    .iter()
                    .map(|c| quote(r.get(*c).unwrap_or(&Value::Null)))
                    .collect();
                format!("({}, '{at}')", v.join(", "))
            })
            .collect();
        db.run(&format!(
            "INSERT INTO {} ({}, updated_at) VALUES {};",
            db.table("registry"),
            cols.join(", "),
            values.join(",\n")
        ));
    }
}

/// A column of a row (`hedui sql --format json` leaves NULLs out).
fn field<'r>(row: &'r BTreeMap<String, Value>, name: &str) -> &'r Value {
    row.get(name).unwrap_or(&Value::Null)
}

fn insert_contributions(db: &Db, rows: &[(i64, &BTreeMap<String, Value>)], at: &str) {
    for chunk in rows.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(id, r)| {
                format!(
                    "({id}, {}, {}, {}, {}, {}, '{at}')",
                    quote(field(r, "id_no")),
                    quote(field(r, "employer")),
                    quote(field(r, "credit_code")),
                    quote(field(r, "pay_month")),
                    quote(field(r, "base")),
                )
            })
            .collect();
        db.run(&format!(
            "INSERT INTO {} (id, id_no, employer, credit_code, pay_month, base, updated_at) VALUES {};",
            db.table("contributions"),
            values.join(",\n")
        ));
    }
}

/// The lake's rows of each table next to the source's, in one comparable form.
fn assert_lake_equals_source(db: &Db, lake: &Path, step: &str) {
    let source_persons = db.run(&format!(
        "SELECT id_no, name, coalesce(address, ''), coalesce(status, '') FROM {} ORDER BY id_no;",
        db.table("registry")
    ));
    let lake_persons: Vec<String> = sql(
        lake,
        "SELECT person_id, name, coalesce(address, '') AS a, coalesce(status, '') AS s \
         FROM persons ORDER BY person_id",
    )
    .iter()
    .map(|r| {
        format!(
            "{}\t{}\t{}\t{}",
            r["person_id"].as_str().unwrap(),
            r["name"].as_str().unwrap(),
            r["a"].as_str().unwrap(),
            r["s"].as_str().unwrap()
        )
    })
    .collect();
    let source_persons: Vec<&str> = source_persons.lines().collect();
    assert_eq!(
        lake_persons.len(),
        source_persons.len(),
        "{step}: the lake has {} persons, the source {}",
        lake_persons.len(),
        source_persons.len()
    );
    for (l, s) in lake_persons.iter().zip(&source_persons) {
        assert_eq!(l, s, "{step}: a person differs");
    }

    let mut source_contributions: Vec<String> = db
        .run(&format!(
            "SELECT id_no, pay_month, base FROM {};",
            db.table("contributions")
        ))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!(
                "{}|{}-{}-01|{:.2}",
                f[0],
                &f[1][..4],
                &f[1][4..],
                f[2].parse::<f64>().unwrap()
            )
        })
        .collect();
    source_contributions.sort();
    let mut lake_contributions: Vec<String> = sql(
        lake,
        "SELECT person_id, CAST(month AS VARCHAR) AS m, CAST(base AS VARCHAR) AS b FROM contributions",
    )
    .iter()
    .map(|r| {
        format!(
            "{}|{}|{:.2}",
            r["person_id"].as_str().unwrap(),
            r["m"].as_str().unwrap(),
            r["b"].as_str().unwrap().parse::<f64>().unwrap()
        )
    })
    .collect();
    lake_contributions.sort();
    assert_eq!(
        lake_contributions.len(),
        source_contributions.len(),
        "{step}: contribution rows in the lake and at the source"
    );
    assert!(
        lake_contributions == source_contributions,
        "{step}: the lake's contributions are not the source's"
    );
}

fn assert_balanced(report: &Value) {
    let t = &report["totals"];
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(
        n("rows_read"),
        n("rows_loaded") + n("rows_quarantined") + n("rows_duplicate"),
        "{report}"
    );
}

fn pull_ok(db: &Db, connectors: &Path, lake: &Path, source: &str) -> Value {
    let (out, report) = db.pull(connectors, lake, source, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("pw-never-logged") && !stdout.contains("pw-never-logged"),
        "the password appears in the output"
    );
    assert_balanced(&report);
    report
}

fn pulled_in_steps(dialect: Dialect) {
    let source = source_rows();
    let db = Db::new(dialect);
    db.create();
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    let lake = dir.path().join("lake");
    db.mappings(&connectors);
    let persons = &source.persons;
    let n = persons.len();
    assert!(n > 1000, "the city has {n} persons");
    let contributions: Vec<(i64, &BTreeMap<String, Value>)> = source
        .contributions
        .iter()
        .enumerate()
        .map(|(i, r)| (i as i64 + 1, r))
        .collect();
    let m = contributions.len();

    // Step 1: most of both tables, every row with the same cursor value.
    insert_persons(&db, &persons[..n * 7 / 10], T0);
    insert_contributions(&db, &contributions[..m * 7 / 10], T0);
    let r = pull_ok(&db, &connectors, &lake, "registry_live");
    assert_eq!(r["totals"]["rows_loaded"], (n * 7 / 10) as u64, "{r}");
    assert!(
        r["batches"].as_array().unwrap().len() >= 2,
        "a pull larger than batch_rows commits in several batches: {r}"
    );
    pull_ok(&db, &connectors, &lake, "contributions_live");
    assert_lake_equals_source(&db, &lake, "first pull");

    // Step 2: rows committed later with the cursor value the last pull ended at, updates with
    // a newer one, and rows deleted outright.
    let reg = db.table("registry");
    let con = db.table("contributions");
    insert_persons(&db, &persons[n * 7 / 10..n * 8 / 10], T0);
    insert_contributions(&db, &contributions[m * 7 / 10..m * 8 / 10], T0);
    let id = |i: usize| persons[i]["id_no"].as_str().unwrap().to_string();
    let deleted_at: std::collections::HashSet<usize> = (5..n * 7 / 10).step_by(23).collect();
    let updated: Vec<String> = (0..n * 7 / 10)
        .step_by(17)
        .map(|i| quote(&Value::String(id(i))))
        .collect();
    let updated_kept = (0..n * 7 / 10)
        .step_by(17)
        .filter(|i| !deleted_at.contains(i))
        .count();
    db.run(&format!(
        "UPDATE {reg} SET address = concat(coalesce(address, ''), '已迁'), updated_at = '{T1}' WHERE id_no IN ({});",
        updated.join(", ")
    ));
    let deleted: Vec<String> = (5..n * 7 / 10)
        .step_by(23)
        .map(|i| quote(&Value::String(id(i))))
        .collect();
    db.run(&format!(
        "DELETE FROM {reg} WHERE id_no IN ({});",
        deleted.join(", ")
    ));
    db.run(&format!(
        "UPDATE {con} SET base = base + 100, updated_at = '{T1}' WHERE id % 13 = 0; DELETE FROM {con} WHERE id % 29 = 0;"
    ));
    let r = pull_ok(&db, &connectors, &lake, "registry_live");
    assert_eq!(r["rows_updated"], updated_kept as u64, "{r}");
    assert_eq!(r["rows_deleted"], deleted.len() as u64, "{r}");
    let r = pull_ok(&db, &connectors, &lake, "contributions_live");
    assert_eq!(
        r["rows_deleted"], 0,
        "deletions wait for the key comparison (compare_keys_every): {r}"
    );
    let (out, r) = db.pull(
        &connectors,
        &lake,
        "contributions_live",
        &["--compare-keys"],
    );
    assert!(out.status.success());
    assert!(r["rows_deleted"].as_u64().unwrap() > 0, "{r}");
    assert_lake_equals_source(
        &db,
        &lake,
        "after inserts with the same cursor value, updates and deletes",
    );

    // Step 3: the rest, with the newest cursor value again; one row updated twice and one
    // deleted and inserted again.
    insert_persons(&db, &persons[n * 8 / 10..], T1);
    insert_contributions(&db, &contributions[m * 8 / 10..], T1);
    let twice = quote(&Value::String(id(1)));
    let again = id(2);
    db.run(&format!(
        "UPDATE {reg} SET name = '改名一', updated_at = '{T2}' WHERE id_no = {twice};
         UPDATE {reg} SET name = '改名二', updated_at = '{T2}' WHERE id_no = {twice};
         DELETE FROM {reg} WHERE id_no = '{again}';"
    ));
    insert_persons(&db, &persons[2..3], T2);
    pull_ok(&db, &connectors, &lake, "registry_live");
    pull_ok(&db, &connectors, &lake, "contributions_live");
    let (out, _) = db.pull(
        &connectors,
        &lake,
        "contributions_live",
        &["--compare-keys"],
    );
    assert!(out.status.success());
    assert_lake_equals_source(&db, &lake, "after the last rows");

    // Nothing changed: the pull finds only duplicates and the lake does not move.
    let version = |lake: &Path| {
        sql(lake, "SELECT max(seq) AS v FROM batches")[0]["v"]
            .as_i64()
            .unwrap_or(0)
    };
    let before = version(&lake);
    let r = pull_ok(&db, &connectors, &lake, "contributions_live");
    assert_eq!(r["totals"]["rows_loaded"], 0, "{r}");
    assert_eq!(version(&lake), before, "an idle pull committed something");
    db.drop_tables();
}

#[test]
fn postgres_tables_pulled_in_steps_end_as_the_source() {
    pulled_in_steps(Dialect::Postgres);
}

#[test]
fn mariadb_tables_pulled_in_steps_end_as_the_source() {
    pulled_in_steps(Dialect::MariaDb);
}

/// A column the source adds keeps the pull going and is reported once; a mapped column dropped
/// or retyped stops it with a clear error, and nothing is loaded.
#[test]
fn schema_drift_is_reported_or_stops_the_pull() {
    let db = Db::new(Dialect::Postgres);
    let db = Db {
        suffix: format!("{}_drift", db.suffix),
        ..db
    };
    db.create();
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    let lake = dir.path().join("lake");
    db.mappings(&connectors);
    let reg = db.table("registry");
    let person = |id: &str| {
        BTreeMap::from([
            ("id_no".to_string(), Value::String(id.into())),
            ("name".to_string(), Value::String("张三".into())),
            ("sex".to_string(), Value::String("男".into())),
            ("birth_date".to_string(), Value::String("1949-12-31".into())),
            ("household_no".to_string(), Value::String("H1".into())),
            ("address".to_string(), Value::String("宜昌市".into())),
            ("region".to_string(), Value::String("420502".into())),
            ("status".to_string(), Value::String("正常".into())),
            ("cancel_date".to_string(), Value::Null),
        ])
    };
    insert_persons(&db, &[person("11010519491231002X")], T0);
    pull_ok(&db, &connectors, &lake, "registry_live");

    db.run(&format!("ALTER TABLE {reg} ADD COLUMN phone varchar(20);"));
    let r = pull_ok(&db, &connectors, &lake, "registry_live");
    assert_eq!(r["columns_added"], serde_json::json!(["phone"]), "{r}");
    let r = pull_ok(&db, &connectors, &lake, "registry_live");
    assert_eq!(
        r["columns_added"],
        serde_json::json!([]),
        "reported once: {r}"
    );

    let versions = |lake: &Path| std::fs::read_dir(lake.join("_log")).unwrap().count();
    let before = versions(&lake);
    db.run(&format!(
        "ALTER TABLE {reg} ALTER COLUMN birth_date TYPE varchar(20); UPDATE {reg} SET updated_at = '{T1}';"
    ));
    let (out, _) = db.pull(&connectors, &lake, "registry_live", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("birth_date") && stderr.contains("changed type"),
        "{stderr}"
    );
    assert_eq!(versions(&lake), before, "a retyped column loaded something");

    db.run(&format!("ALTER TABLE {reg} DROP COLUMN address;"));
    let (out, _) = db.pull(&connectors, &lake, "registry_live", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`address`") && stderr.contains("gone"),
        "{stderr}"
    );
    assert_eq!(versions(&lake), before, "a dropped column loaded something");
    db.drop_tables();
}

/// The connection URL is named by the mapping, never written in it; a failed connection says
/// so without the password.
#[test]
fn credentials_stay_out_of_mappings_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    let mapping = |url_line: &str| {
        format!(
            "[source]\nid = \"reg\"\n[source.database]\n{url_line}\ntable = \"t\"\nkey = \"id_no\"\n\n[[target]]\ndataset = \"persons\"\n[target.columns]\nperson_id = \"id_no\"\nname = \"name\"\nstatus = \"status\"\n"
        )
    };
    std::fs::write(
        connectors.join("reg.toml"),
        mapping("url_env = \"postgres://u:hunter2@db/x\""),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let out = run(hedui()
        .args(["pull", "reg", "--connectors"])
        .arg(&connectors)
        .arg("--lake")
        .arg(&lake));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("must not be written in the mapping"),
        "{stderr}"
    );

    std::fs::write(
        connectors.join("reg.toml"),
        mapping("url_env = \"HEDUI_TEST_REG_URL\""),
    )
    .unwrap();
    let out = run(hedui()
        .env("HEDUI_TEST_REG_URL", "postgres://u:hunter2@127.0.0.1:1/x")
        .args(["-v", "pull", "reg", "--connectors"])
        .arg(&connectors)
        .arg("--lake")
        .arg(&lake));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reg"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is in the message: {stderr}"
    );
}
