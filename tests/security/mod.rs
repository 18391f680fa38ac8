//! Attacks on the policies' guarantees (README, "Guarantees"), with ordinary tokens of every
//! role, through every interface: the HTTP API, the Postgres wire protocol with the simple
//! protocol (the real `psql`) and the extended one (a Rust client with prepared statements and
//! bound values), and the command line. Each attack is refused or returns nothing it should not.

mod connections;
mod limits;
mod privacy;
mod side_doors;
mod sql;

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::*;
use crate::server::*;

/// The interfaces a caller can query through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Http,
    Psql,
    Prepared,
    Cli,
}

pub const EVERY_INTERFACE: [Via; 4] = [Via::Http, Via::Psql, Via::Prepared, Via::Cli];

/// What a query answered: its cells as text, or the error message the caller was shown.
pub type Asked = Result<Vec<String>, String>;

/// Ask `sql` (every selected column text) through `via`, with `purpose` if given and `params`
/// bound to `$1`, `$2`, ... where the interface binds values (else written in by the caller).
pub fn ask(srv: &Server, via: Via, token: &str, purpose: Option<&str>, sql: &str) -> Asked {
    match via {
        Via::Http => {
            let mut body = json!({"sql": sql, "format": "json"});
            if let Some(p) = purpose {
                body["purpose"] = p.into();
            }
            let (status, v) = call(srv, "POST", "/api/v1/sql", token, Some(body));
            if status != 200 {
                return Err(v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string());
            }
            Ok(v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| match r {
                    Value::Object(m) => m.values().map(text).collect::<Vec<_>>(),
                    Value::Array(a) => a.iter().map(text).collect(),
                    other => vec![text(other)],
                })
                .collect())
        }
        Via::Psql => {
            let set;
            let mut commands = Vec::new();
            if let Some(p) = purpose {
                set = format!("SET hedui.purpose = '{p}'");
                commands.push(set.as_str());
            }
            commands.push(sql);
            let out = psql(srv, token, &commands);
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            if stderr.contains("ERROR") || stderr.contains("FATAL") {
                return Err(stderr);
            }
            Ok(String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| *l != "SET")
                .flat_map(|l| l.split('|').map(String::from).collect::<Vec<_>>())
                .collect())
        }
        Via::Prepared => prepared(srv, token, purpose, sql, &[]),
        Via::Cli => {
            let mut cmd = hedui();
            if let Some(c) = &srv.config {
                cmd.arg("--config").arg(c);
            }
            cmd.args(["sql", "--format", "json", "--token", token, "--lake"])
                .arg(&srv.lake);
            if let Some(p) = purpose {
                cmd.args(["--purpose", p]);
            }
            let out = run(cmd.arg(sql));
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).to_string());
            }
            let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
            Ok(rows
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| {
                    r.as_object()
                        .unwrap()
                        .values()
                        .map(text)
                        .collect::<Vec<_>>()
                })
                .collect())
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The extended protocol: the statement is prepared, `params` are bound as text values, the
/// result columns are read as text.
pub fn prepared(
    srv: &Server,
    token: &str,
    purpose: Option<&str>,
    sql: &str,
    params: &[&str],
) -> Asked {
    use sqlx::{Connection, Row};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = sqlx::postgres::PgConnectOptions::new()
            .host(&srv.pg.0)
            .port(srv.pg.1)
            .username("tester")
            .password(token)
            .database("hedui")
            .ssl_mode(sqlx::postgres::PgSslMode::Disable);
        let mut conn = sqlx::postgres::PgConnection::connect_with(&options)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(p) = purpose {
            sqlx::raw_sql(&format!("SET hedui.purpose = '{p}'"))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut q = sqlx::query(sql);
        for p in params {
            q = q.bind(*p);
        }
        let rows = q.fetch_all(&mut conn).await.map_err(|e| e.to_string())?;
        let mut cells = Vec::new();
        for r in rows {
            for i in 0..r.len() {
                cells.push(
                    r.try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                );
            }
        }
        Ok(cells)
    })
}

/// What the city's registry really holds, read as the local operator: every ID, ID key and
/// full name, and those of the persons outside `district`.
pub struct Truth {
    pub ids: HashSet<String>,
    pub keys: HashSet<String>,
    pub names: HashSet<String>,
    pub outside: HashSet<String>,
    /// A person of the district and one from outside it.
    pub inside_id: String,
    pub outside_id: String,
}

pub fn truth(srv: &Server, district: &str) -> Truth {
    let rows = sql(
        &srv.lake,
        "SELECT person_id, name, region_code FROM persons",
    );
    let mut t = Truth {
        ids: HashSet::new(),
        keys: HashSet::new(),
        names: HashSet::new(),
        outside: HashSet::new(),
        inside_id: String::new(),
        outside_id: String::new(),
    };
    let mut inside_names = HashSet::new();
    let mut outside_names = HashSet::new();
    for r in rows {
        let id = r["person_id"].as_str().unwrap().to_string();
        let name = r["name"].as_str().unwrap_or_default().to_string();
        let inside = r["region_code"]
            .as_str()
            .is_some_and(|c| c.starts_with(district));
        if inside {
            if t.inside_id.is_empty() {
                t.inside_id = id.clone();
            }
            inside_names.insert(name.clone());
        } else {
            if t.outside_id.is_empty() {
                t.outside_id = id.clone();
            }
            t.outside.insert(id.clone());
            t.outside.insert(id[..17].to_string());
            if name.chars().count() >= 2 {
                outside_names.insert(name.clone());
            }
        }
        t.keys.insert(id[..17].to_string());
        if name.chars().count() >= 2 {
            t.names.insert(name);
        }
        t.ids.insert(id);
    }
    assert!(!t.inside_id.is_empty() && !t.outside_id.is_empty());
    // A name also borne by someone of the district is no sign of a leak.
    t.outside
        .extend(outside_names.difference(&inside_names).cloned());
    t
}

/// The words of a text that are an ID, key or name the caller should not see.
pub fn secrets_in<'a>(texts: &'a [String], secret: &HashSet<String>) -> Vec<&'a str> {
    texts
        .iter()
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && secret.contains(*w))
        .collect()
}

/// No run of six digits (an ID or key) and no Chinese character (a name) in a message.
pub fn carries_no_data(message: &str) -> bool {
    let mut run = 0;
    for ch in message.chars() {
        if ('\u{4e00}'..='\u{9fff}').contains(&ch) {
            return false;
        }
        run = if ch.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 6 {
            return false;
        }
    }
    true
}
