//! Pulling a department database table (or query) on PostgreSQL or MySQL/MariaDB.
//!
//! One pull reads one consistent snapshot of the source (a repeatable-read, read-only
//! transaction) in keyset pages ordered by the cursor column and then the key, every value
//! cast to text by the database so that the mapping's parsers read it exactly as they read a
//! file. With a cursor, a pull starts at the last cursor value taken, inclusive: rows that came
//! later with that same value are not missed, and those already taken are recognised by their
//! key and hash and counted as duplicates. The pull stops at the greatest cursor value present
//! when it began, so a row updated during the pull is taken by the next one, once.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use hedui_lake::{LakeWriter, PullState, SourceColumn};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Column, Connection, Executor, Row, TypeInfo};

use super::keyed::{KeyedPull, PulledRow, drift, key_hash};
use super::{PullOptions, PullReport};
use crate::mapping::{DatabaseSource, Mapping, Relation};
use crate::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A key is its columns' text joined by this (a control character no key contains).
const KEY_SEPARATOR: char = '\u{1f}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    MySql,
}

enum Conn {
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

impl Dialect {
    fn of(url: &str) -> Option<(Dialect, String)> {
        let (scheme, rest) = url.split_once("://")?;
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some((Dialect::Postgres, url.to_string())),
            "mysql" | "mariadb" => Some((Dialect::MySql, format!("mysql://{rest}"))),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{ident}\""),
            Dialect::MySql => format!("`{ident}`"),
        }
    }

    fn column(self, ident: &str) -> String {
        format!("src.{}", self.quote(ident))
    }

    fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr})::text"),
            Dialect::MySql => format!("CAST({expr} AS CHAR CHARACTER SET utf8mb4)"),
        }
    }

    /// The `n`th (1-based) bound text parameter, read back as a value of the column's type so
    /// that comparisons follow the column's own order.
    fn param(self, n: usize, type_name: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS {type_name})"),
            Dialect::MySql => {
                let t = type_name.to_ascii_uppercase();
                let is_int = t.contains("INT") && !t.contains("POINT") && !t.contains("INTERVAL");
                if is_int && t.contains("UNSIGNED") {
                    "CAST(? AS UNSIGNED)".into()
                } else if is_int {
                    "CAST(? AS SIGNED)".into()
                } else if t.starts_with("DECIMAL") || t.starts_with("NUMERIC") {
                    "CAST(? AS DECIMAL(65,30))".into()
                } else if t.starts_with("DATETIME") || t.starts_with("TIMESTAMP") {
                    "CAST(? AS DATETIME(6))".into()
                } else if t == "DATE" {
                    "CAST(? AS DATE)".into()
                } else if t == "FLOAT" || t == "DOUBLE" {
                    "CAST(? AS DOUBLE)".into()
                } else {
                    "?".into()
                }
            }
        }
    }

    fn relation(self, relation: &Relation) -> String {
        match relation {
            Relation::Table(parts) => parts
                .iter()
                .map(|p| self.quote(p))
                .collect::<Vec<_>>()
                .join("."),
            Relation::Query(q) => format!("({q})"),
        }
    }
}

/// The same code for either driver (their connection and row types differ).
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Postgres($c) => $body,
            Conn::MySql($c) => $body,
        }
    };
}

impl Conn {
    async fn connect(dialect: Dialect, url: &str) -> std::result::Result<Conn, String> {
        let connect = async {
            Ok::<_, sqlx::Error>(match dialect {
                Dialect::Postgres => Conn::Postgres(PgConnection::connect(url).await?),
                Dialect::MySql => Conn::MySql(MySqlConnection::connect(url).await?),
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "连接超时 (no connection within {} s)",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    /// Start the one consistent, read-only snapshot the pull reads, in the city's time zone
    /// (timestamps read as text keep their meaning from pull to pull).
    async fn begin_snapshot(&mut self) -> sqlx::Result<()> {
        match self {
            Conn::Postgres(c) => {
                c.execute("SET TIME ZONE 'Asia/Shanghai'").await?;
                c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
            }
            Conn::MySql(c) => {
                c.execute("SET time_zone = '+08:00'").await?;
                c.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .await?;
                c.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .await?;
            }
        }
        Ok(())
    }

    async fn end(self) {
        let _ = match self {
            Conn::Postgres(mut c) => c.execute("ROLLBACK").await.map(drop),
            Conn::MySql(mut c) => c.execute("ROLLBACK").await.map(drop),
        };
    }

    async fn describe(&mut self, sql: &str) -> sqlx::Result<Vec<SourceColumn>> {
        Ok(on_conn!(self, c => c
            .describe(sql)
            .await?
            .columns()
            .iter()
            .map(|col| SourceColumn {
                name: col.name().to_string(),
                type_name: col.type_info().name().to_string(),
            })
            .collect()))
    }

    /// Run a query whose columns are all text; NULL is `None`.
    async fn texts(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> sqlx::Result<Vec<Vec<Option<String>>>> {
        on_conn!(self, c => {
            let mut q = sqlx::query(sql);
            for p in params {
                q = q.bind(p);
            }
            q.fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| (0..r.len()).map(|i| r.try_get(i)).collect())
                .collect()
        })
    }

    /// Stream a query of text columns, calling `each` per row (bounded memory).
    async fn each_row(
        &mut self,
        sql: &str,
        mut each: impl FnMut(Vec<Option<String>>),
    ) -> sqlx::Result<()> {
        on_conn!(self, c => {
            let mut rows = sqlx::query(sql).fetch(&mut *c);
            while let Some(r) = rows.try_next().await? {
                each((0..r.len()).map(|i| r.try_get(i)).collect::<sqlx::Result<_>>()?);
            }
        });
        Ok(())
    }
}

/// The password in a connection URL, to keep it out of every message.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

/// A database error as a message that names neither the URL nor its password.
fn clean(message: String, url: &str) -> String {
    let mut m = message.replace(url, "<connection>");
    if let Some(p) = password_of(url) {
        m = m.replace(p, "***");
    }
    m
}

/// The positions of the columns a pull needs in the source's header.
struct Layout {
    key: Vec<usize>,
    cursor: Option<usize>,
    deleted: Option<usize>,
}

fn layout(db: &DatabaseSource, columns: &[SourceColumn]) -> std::result::Result<Layout, String> {
    let at = |name: &str, role: &str| {
        columns.iter().position(|c| c.name == name).ok_or_else(|| {
            format!(
                "源表没有{role}列 {name} (the source has no {role} column `{name}`); it has: {}",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    Ok(Layout {
        key: db
            .key
            .iter()
            .map(|k| at(k, "主键 key"))
            .collect::<std::result::Result<_, _>>()?,
        cursor: db
            .cursor
            .as_deref()
            .map(|c| at(c, "游标 cursor"))
            .transpose()?,
        deleted: db
            .deleted
            .as_ref()
            .map(|d| at(&d.column, "删除标记 delete-marker"))
            .transpose()?,
    })
}

/// The source columns the mapping depends on: its key, cursor, delete marker and every column
/// a target column reads.
fn used_columns(mapping: &Mapping, db: &DatabaseSource, columns: &[SourceColumn]) -> Vec<String> {
    let mut used: Vec<String> = db.key.clone();
    used.extend(db.cursor.clone());
    used.extend(db.deleted.as_ref().map(|d| d.column.clone()));
    for c in columns {
        let normalised = hedui_model::value::text::normalise_header(&c.name);
        let mapped = mapping.targets[0]
            .columns
            .iter()
            .any(|m| m.sources.contains(&normalised));
        if mapped && !used.contains(&c.name) {
            used.push(c.name.clone());
        }
    }
    used
}

pub(crate) async fn pull(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    db: &DatabaseSource,
    opts: &PullOptions,
    report: &mut PullReport,
) -> Result<()> {
    let failed = |message: String| Error::Pull {
        source_id: mapping.id.clone(),
        message,
    };
    let url = db.url.read().map_err(failed)?;
    let (dialect, url) = Dialect::of(&url).ok_or_else(|| {
        failed(format!(
            "{} 中的连接串不是 postgres:// 或 mysql:// 地址 (the connection URL is not postgres:// or mysql://)",
            db.url.describe()
        ))
    })?;
    let sql_failed = |e: sqlx::Error| failed(clean(e.to_string(), &url));
    let mut conn = Conn::connect(dialect, &url)
        .await
        .map_err(|m| failed(clean(m, &url)))?;
    conn.begin_snapshot().await.map_err(sql_failed)?;
    let result = pull_in_snapshot(&mut conn, dialect, lake, mapping, db, opts, report).await;
    conn.end().await;
    result.map_err(|e| match e {
        Error::Pull { source_id, message } => Error::Pull {
            source_id,
            message: clean(message, &url),
        },
        other => other,
    })
}

async fn pull_in_snapshot(
    conn: &mut Conn,
    dialect: Dialect,
    lake: &mut LakeWriter,
    mapping: &Mapping,
    db: &DatabaseSource,
    opts: &PullOptions,
    report: &mut PullReport,
) -> Result<()> {
    let failed = |message: String| Error::Pull {
        source_id: mapping.id.clone(),
        message,
    };
    let sql_failed = |e: sqlx::Error| failed(e.to_string());
    let from = format!("{} AS src", dialect.relation(&db.relation));
    let columns = conn
        .describe(&format!("SELECT * FROM {from}"))
        .await
        .map_err(sql_failed)?;
    let positions = layout(db, &columns).map_err(failed)?;
    let previous = lake
        .snapshot()
        .last_pull(&mapping.id)
        .and_then(|c| c.pull.clone())
        .unwrap_or_default();
    let used = used_columns(mapping, db, &columns);
    let used_before: Vec<String> = used
        .iter()
        .filter(|u| previous.columns.iter().any(|c| &c.name == *u))
        .cloned()
        .chain(
            previous
                .columns
                .iter()
                .filter(|c| !columns.iter().any(|n| n.name == c.name))
                .filter(|c| {
                    let n = hedui_model::value::text::normalise_header(&c.name);
                    mapping.targets[0]
                        .columns
                        .iter()
                        .any(|m| m.sources.contains(&n))
                })
                .map(|c| c.name.clone()),
        )
        .collect();
    report.columns_added = if opts.accept_schema {
        Vec::new()
    } else {
        drift(&previous.columns, &columns, &used_before).map_err(|message| Error::SchemaDrift {
            source_id: mapping.id.clone(),
            message,
        })?
    };
    if !report.columns_added.is_empty() {
        tracing::warn!(source = %mapping.id, columns = ?report.columns_added, "the source has new columns; they are not mapped");
    }
    let schema_changed = previous.columns != columns;

    let label = format!(
        "{}:{}",
        dialect.name(),
        match &db.relation {
            Relation::Table(parts) => parts.join("."),
            Relation::Query(_) => "query".to_string(),
        }
    );
    let header: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut pull = KeyedPull::new(lake, mapping, label, header.clone())?;
    report.keys_before = pull.index.len() as u64;

    let cursor_col = positions.cursor.map(|i| &columns[i]);
    let high_water = match cursor_col {
        Some(c) => {
            let sql = format!(
                "SELECT {} FROM {from}",
                dialect.as_text(&format!("max({})", dialect.column(&c.name)))
            );
            conn.texts(&sql, &[])
                .await
                .map_err(sql_failed)?
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next().flatten())
        }
        None => None,
    };
    // Order: the cursor, then the key (a total order, so a page boundary inside a run of
    // equal cursor values neither skips nor repeats a row).
    let order: Vec<usize> = positions
        .cursor
        .into_iter()
        .chain(positions.key.iter().copied())
        .collect();
    let select = header
        .iter()
        .map(|h| {
            format!(
                "{} AS {}",
                dialect.as_text(&dialect.column(h)),
                dialect.quote(h)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let order_by = order
        .iter()
        .map(|&i| dialect.column(&columns[i].name))
        .collect::<Vec<_>>()
        .join(", ");
    let start = previous.cursor.clone().filter(|_| cursor_col.is_some());
    let mut position: Option<Vec<String>> = None;
    let mut taken = 0u64;
    let mut cursor_taken = start.clone();
    let no_rows = cursor_col.is_some() && high_water.is_none();
    loop {
        if no_rows {
            break;
        }
        let mut filters = Vec::new();
        let mut params = Vec::new();
        let next_param = |params: &mut Vec<String>, value: String, ty: &str| {
            params.push(value);
            dialect.param(params.len(), ty)
        };
        if let (Some(c), Some(hw)) = (cursor_col, &high_water) {
            let p = next_param(&mut params, hw.clone(), &c.type_name);
            filters.push(format!("{} <= {p}", dialect.column(&c.name)));
        }
        match &position {
            Some(values) => {
                let ps: Vec<String> = order
                    .iter()
                    .zip(values)
                    .map(|(&i, v)| next_param(&mut params, v.clone(), &columns[i].type_name))
                    .collect();
                filters.push(format!("({order_by}) > ({})", ps.join(", ")));
            }
            None => {
                if let (Some(c), Some(s)) = (cursor_col, &start) {
                    let p = next_param(&mut params, s.clone(), &c.type_name);
                    filters.push(format!("{} >= {p}", dialect.column(&c.name)));
                }
            }
        }
        let sql = format!(
            "SELECT {select} FROM {from}{} ORDER BY {order_by} LIMIT {}",
            if filters.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", filters.join(" AND "))
            },
            db.page_rows
        );
        let rows = conn.texts(&sql, &params).await.map_err(sql_failed)?;
        let n = rows.len();
        if let Some(last) = rows.last() {
            let values: Option<Vec<String>> = order.iter().map(|&i| last[i].clone()).collect();
            match values {
                Some(v) => position = Some(v),
                None => {
                    return Err(failed(format!(
                        "主键或游标列含空值，无法分页 (a key or cursor value is NULL; such rows cannot be paged): {}",
                        order
                            .iter()
                            .map(|&i| columns[i].name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            if let Some(c) = positions.cursor {
                cursor_taken = last[c].clone();
            }
        }
        let mut page = Vec::with_capacity(n);
        for cells in rows {
            let key = positions
                .key
                .iter()
                .map(|&i| cells[i].clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(&KEY_SEPARATOR.to_string());
            let deleted = positions.deleted.is_some_and(|d| {
                cells[d].as_deref().is_some_and(|v| {
                    db.deleted
                        .as_ref()
                        .is_some_and(|m| m.values.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
                })
            });
            if deleted {
                pull.delete(&key);
            } else {
                page.push(PulledRow { key, cells });
            }
        }
        pull.take(lake, page)?;
        taken += n as u64;
        if pull.pending_rows() >= db.batch_rows {
            // Commit what this pull has so far: a crash from here on resumes at this cursor.
            let state = PullState {
                complete: false,
                cursor: cursor_taken.clone(),
                compared_at: previous.compared_at,
                columns: columns.clone(),
                ..Default::default()
            };
            pull.commit(lake, state, false)?;
        }
        if n < db.page_rows {
            break;
        }
    }
    report.rows_taken = taken;

    // Keys deleted at the source, found by comparing every key: at every pull of a source
    // read whole (no cursor), otherwise as often as the mapping says.
    let due = previous.compared_at.is_none_or(|t| {
        Utc::now() - t >= chrono::Duration::from_std(db.compare_keys_every).unwrap_or_default()
    });
    let compared = if cursor_col.is_none() {
        let seen = std::mem::take(&mut pull.seen);
        pull.delete_missing(&seen);
        true
    } else if due || opts.compare_keys {
        let keys = positions
            .key
            .iter()
            .map(|&i| dialect.as_text(&dialect.column(&columns[i].name)))
            .chain(
                positions
                    .deleted
                    .map(|d| dialect.as_text(&dialect.column(&columns[d].name))),
            )
            .collect::<Vec<_>>()
            .join(", ");
        let mut source_keys = HashSet::new();
        let nkey = positions.key.len();
        let marker = db.deleted.as_ref();
        conn.each_row(&format!("SELECT {keys} FROM {from}"), |cells| {
            let deleted = marker.is_some_and(|m| {
                cells[nkey]
                    .as_deref()
                    .is_some_and(|v| m.values.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
            });
            if !deleted {
                let key = cells[..nkey]
                    .iter()
                    .map(|c| c.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(&KEY_SEPARATOR.to_string());
                source_keys.insert(key_hash(&key));
            }
        })
        .await
        .map_err(sql_failed)?;
        // Keys this pull read are the source's even if the scan (same snapshot) says otherwise.
        source_keys.extend(pull.seen.iter().copied());
        pull.delete_missing(&source_keys);
        true
    } else {
        false
    };
    report.keys_compared = compared;
    let state = PullState {
        complete: true,
        cursor: high_water.or(cursor_taken),
        compared_at: if compared {
            Some(Utc::now())
        } else {
            previous.compared_at
        },
        columns,
        ..Default::default()
    };
    // Nothing new: the attempt is recorded in the pull status, not as an empty batch. A key
    // comparison of an incremental source is committed (its time decides the next one).
    let moved = state.cursor != previous.cursor
        || (compared && positions.cursor.is_some())
        || schema_changed
        || !previous.complete
        || pull.committed;
    pull.commit(lake, state, moved)?;
    report.rows_updated = pull.updated_total;
    report.rows_deleted = pull.deleted_total;
    report.batches = std::mem::take(&mut pull.reports);
    Ok(())
}
