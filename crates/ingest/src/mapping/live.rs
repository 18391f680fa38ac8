//! The live parts of a mapping: a database a source is pulled from, its schedule and the
//! cadence its data is expected at. Credentials are never in the mapping: it names where they
//! are (an environment variable or a file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::spec::{DatabaseSpec, HttpSpec, PagingSpec};

/// Where a source's rows come from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Files delivered into the data directory (matched by `files`).
    Files,
    /// A database table or query, pulled.
    Database(DatabaseSource),
    /// A paged JSON API, pulled.
    Http(HttpSource),
}

#[derive(Debug, Clone)]
pub struct HttpSource {
    pub url: String,
    pub records: String,
    pub key: Vec<String>,
    pub auth: Option<Auth>,
    pub paging: Paging,
    pub total: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub pages_per_batch: u32,
}

#[derive(Debug, Clone)]
pub enum Auth {
    Bearer(Secret),
    Header(String, Secret),
    Query(String, Secret),
}

#[derive(Debug, Clone)]
pub enum Paging {
    Page {
        page: String,
        size: Option<String>,
        page_size: u64,
        first: u64,
    },
    Offset {
        offset: String,
        limit: String,
        page_size: u64,
    },
    Token {
        next: String,
        param: String,
    },
}

#[derive(Debug, Clone)]
pub struct DatabaseSource {
    pub url: Secret,
    pub relation: Relation,
    pub key: Vec<String>,
    pub cursor: Option<String>,
    pub deleted: Option<DeleteMarker>,
    pub compare_keys_every: Duration,
    pub page_rows: usize,
    pub batch_rows: u64,
}

#[derive(Debug, Clone)]
pub enum Relation {
    /// `schema.table` or `table`, as parts (quoted when used).
    Table(Vec<String>),
    Query(String),
}

#[derive(Debug, Clone)]
pub struct DeleteMarker {
    pub column: String,
    pub values: Vec<String>,
}

/// Where a credential is kept. Its value is read when a pull starts and never logged.
#[derive(Debug, Clone)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    /// The credential's value (trimmed first line of a file).
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ => Err(format!(
                    "环境变量 {name} 未设置 (the environment variable {name} that should hold the connection is not set)"
                )),
            },
            Secret::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| {
                    text.lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| format!("{} is empty", path.display()))
                }),
        }
    }

    /// Where the credential is, for messages (never its value).
    pub fn describe(&self) -> String {
        match self {
            Secret::Env(name) => format!("${name}"),
            Secret::File(path) => path.display().to_string(),
        }
    }
}

const DEFAULT_PAGE_ROWS: usize = 10_000;
const DEFAULT_BATCH_ROWS: u64 = 200_000;
const DEFAULT_COMPARE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Check `[source.database]`. `dir` is the mapping file's directory (a `url_file` is relative
/// to it).
pub(super) fn database(spec: &DatabaseSpec, dir: &Path) -> Result<DatabaseSource, String> {
    let url = match (&spec.url_env, &spec.url_file) {
        (Some(name), None) => {
            if name.contains("://") || name.contains('@') {
                return Err("`url_env` names the environment variable that holds the connection URL; the URL itself (with its password) must not be written in the mapping".into());
            }
            Secret::Env(name.clone())
        }
        (None, Some(file)) => Secret::File(dir.join(file)),
        _ => {
            return Err(
                "name where the connection URL is kept: `url_env = \"VARIABLE\"` or `url_file = \"path\"` (never the URL itself)".into(),
            );
        }
    };
    let relation = match (&spec.table, &spec.query) {
        (Some(table), None) => {
            let parts: Vec<String> = table.split('.').map(str::to_string).collect();
            if parts.len() > 2 || parts.iter().any(|p| !is_identifier(p)) {
                return Err(format!(
                    "`table = \"{table}\"` is not a table name (`table` or `schema.table`)"
                ));
            }
            Relation::Table(parts)
        }
        (None, Some(query)) => {
            let q = query.trim().trim_end_matches(';');
            if !q.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("select"))
                && !q.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("with"))
            {
                return Err("`query` must be one SELECT statement".into());
            }
            Relation::Query(q.to_string())
        }
        _ => return Err("give either `table` or `query`".into()),
    };
    let key = spec.key.clone().into_vec();
    if key.is_empty() {
        return Err("`key` names no column".into());
    }
    for column in key
        .iter()
        .chain(&spec.cursor)
        .chain(spec.deleted.as_ref().map(|d| &d.column))
    {
        if !is_identifier(column) {
            return Err(format!("`{column}` is not a column name"));
        }
    }
    let compare_keys_every = match &spec.compare_keys_every {
        None => DEFAULT_COMPARE_EVERY,
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| format!("`compare_keys_every = \"{text}\"`: {e} (write e.g. 1d, 12h)"))?,
    };
    let page_rows = spec.page_rows.unwrap_or(DEFAULT_PAGE_ROWS);
    if !(100..=1_000_000).contains(&page_rows) {
        return Err("`page_rows` is between 100 and 1000000".into());
    }
    let batch_rows = spec.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS);
    if batch_rows < page_rows as u64 {
        return Err("`batch_rows` is at least `page_rows`".into());
    }
    Ok(DatabaseSource {
        url,
        relation,
        key,
        cursor: spec.cursor.clone(),
        deleted: spec.deleted.as_ref().map(|d| DeleteMarker {
            column: d.column.clone(),
            values: d.values.clone(),
        }),
        compare_keys_every,
        page_rows,
        batch_rows,
    })
}

fn secret(
    env: &Option<String>,
    file: &Option<String>,
    dir: &Path,
    what: &str,
) -> Result<Option<Secret>, String> {
    match (env, file) {
        (None, None) => Ok(None),
        (Some(name), None) => Ok(Some(Secret::Env(name.clone()))),
        (None, Some(f)) => Ok(Some(Secret::File(dir.join(f)))),
        _ => Err(format!("give `{what}_env` or `{what}_file`, not both")),
    }
}

/// Check `[source.http]`.
pub(super) fn http(spec: &HttpSpec, dir: &Path) -> Result<HttpSource, String> {
    let url = spec.url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "`url = \"{url}\"` is not an http:// or https:// address"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "`url = \"{url}\"` is not an http:// or https:// address"
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("the URL carries credentials; put them in `auth` (from the environment or a file), never in the mapping".into());
    }
    let auth = match &spec.auth {
        None => None,
        Some(a) => {
            let bearer = secret(&a.bearer_env, &a.bearer_file, dir, "bearer")?;
            let key = secret(&a.api_key_env, &a.api_key_file, dir, "api_key")?;
            match (bearer, key) {
                (Some(b), None) if a.header.is_none() && a.query.is_none() => Some(Auth::Bearer(b)),
                (None, Some(k)) => match (&a.header, &a.query) {
                    (Some(h), None) => Some(Auth::Header(h.clone(), k)),
                    (None, Some(q)) => Some(Auth::Query(q.clone(), k)),
                    (None, None) => Some(Auth::Header("X-API-Key".into(), k)),
                    _ => return Err("an API key goes in a `header` or a `query` parameter, not both".into()),
                },
                _ => return Err("`auth` is a bearer token (`bearer_env`/`bearer_file`) or an API key (`api_key_env`/`api_key_file` with `header` or `query`)".into()),
            }
        }
    };
    let paging = match &spec.paging {
        PagingSpec::Page {
            page,
            size,
            page_size,
            first,
        } => Paging::Page {
            page: page.clone(),
            size: size.clone(),
            page_size: *page_size,
            first: first.unwrap_or(1),
        },
        PagingSpec::Offset {
            offset,
            limit,
            page_size,
        } => Paging::Offset {
            offset: offset.clone(),
            limit: limit.clone(),
            page_size: *page_size,
        },
        PagingSpec::Token { next, param } => Paging::Token {
            next: next.clone(),
            param: param.clone(),
        },
    };
    if let Paging::Page { page_size: 0, .. } | Paging::Offset { page_size: 0, .. } = paging {
        return Err("`page_size` is at least 1".into());
    }
    let duration = |text: &Option<String>, default: Duration, name: &str| match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t).map_err(|e| format!("`{name} = \"{t}\"`: {e}")),
    };
    let key = spec.key.clone().into_vec();
    if key.is_empty() {
        return Err("`key` names no field".into());
    }
    Ok(HttpSource {
        url: url.to_string(),
        records: spec.records.clone().unwrap_or_default(),
        key,
        auth,
        paging,
        total: spec.total.clone(),
        timeout: duration(&spec.timeout, Duration::from_secs(30), "timeout")?,
        retries: spec.retries.unwrap_or(5),
        backoff: duration(&spec.backoff, Duration::from_secs(1), "backoff")?,
        pages_per_batch: spec.pages_per_batch.unwrap_or(50).max(1),
    })
}

/// A table or column name that can be quoted safely: no quotes, no control characters.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 63
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '`' | '\'' | '\\' | '.' | ';'))
}

/// A cron schedule (seconds first, as the `cron` crate reads it: `0 0 2 * * *` is 02:00 daily).
pub fn schedule(text: &str) -> Result<cron::Schedule, String> {
    text.parse::<cron::Schedule>().map_err(|e| {
        format!("`schedule = \"{text}\"` is not a cron expression ({e}); write seconds first, e.g. \"0 0 2 * * *\" for 02:00 daily")
    })
}

/// An expected cadence like `1d` or `31d`.
pub fn cadence(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`cadence = \"{text}\"`: {e} (write e.g. 1d, 7d, 31d)"))
}
