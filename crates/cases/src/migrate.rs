//! Versioned migrations of the case store, applied under a lock so that any number of processes
//! opening a new or older store at once (eight `hedui check` started by a scheduler) leave it in
//! one state: PostgreSQL takes a transaction-scoped advisory lock, SQLite an immediate (write)
//! transaction; DDL is transactional on both, so a migration is applied whole or not at all.

use sqlx::{AnyConnection, AnyPool, Row};

use crate::Result;

/// Any fixed number: the advisory lock all hedui processes agree on.
const LOCK_KEY: i64 = 0x6865_6475_6901;

/// One step of the schema, applied once, in order.
enum Step {
    Sql(&'static [&'static str]),
    /// Columns added before migrations were versioned: stores of that time may have some.
    AddColumns(&'static [(&'static str, &'static str, &'static str)]),
}

const MIGRATIONS: &[(i64, Step)] = &[
    (
        1,
        Step::Sql(&[
            "CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY, started_at TEXT NOT NULL, lake_version BIGINT NOT NULL,
                rules TEXT NOT NULL, params TEXT NOT NULL, hits BIGINT NOT NULL,
                hits_fingerprint TEXT NOT NULL, new_cases BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cases (
                id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,
                months TEXT NOT NULL, amount_cents BIGINT, evidence TEXT NOT NULL,
                evidence_fingerprint TEXT NOT NULL, first_run TEXT NOT NULL, last_run TEXT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, assignee TEXT, reject_reason TEXT,
                recovered_cents BIGINT, recovered_on TEXT)",
            "CREATE INDEX IF NOT EXISTS cases_rule_subject ON cases (rule_id, subject)",
            "CREATE TABLE IF NOT EXISTS case_events (
                case_id TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, from_state TEXT,
                to_state TEXT NOT NULL, note TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id)",
            "CREATE TABLE IF NOT EXISTS verifications (
                id TEXT PRIMARY KEY, at TEXT NOT NULL, reviewer TEXT NOT NULL,
                authorisation TEXT NOT NULL, region TEXT, members TEXT NOT NULL, verdict TEXT NOT NULL,
                report TEXT NOT NULL)",
        ]),
    ),
    (
        2,
        Step::AddColumns(&[
            ("cases", "region", "TEXT"),
            ("cases", "due_at", "TEXT"),
            ("cases", "level", "BIGINT NOT NULL DEFAULT 0"),
            ("cases", "confirmed_cents", "BIGINT"),
            ("case_events", "detail", "TEXT"),
            // Events of one case in order, also within one second.
            ("case_events", "seq", "BIGINT"),
        ]),
    ),
    (
        3,
        // Partial recoveries, each with its amount and date (their sum is `recovered_cents`).
        Step::Sql(&["CREATE TABLE IF NOT EXISTS recoveries (
                case_id TEXT NOT NULL, seq BIGINT NOT NULL, cents BIGINT NOT NULL, on_date TEXT NOT NULL,
                actor TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (case_id, seq))"]),
    ),
    (
        4,
        // The run that no longer found an open case's hit (the source rows changed), if any.
        Step::AddColumns(&[("cases", "gone_run", "TEXT")]),
    ),
    (
        5,
        // An incremental run: the lake version it verified the changes from (NULL: every
        // subject was evaluated).
        Step::AddColumns(&[("runs", "changed_since", "BIGINT")]),
    ),
    (
        6,
        // The hits each rule last found, kept so that a run after a commit can add what the new
        // rows give (see `hit_state.rs`), and the subjects an incremental run evaluated.
        Step::Sql(&[
            "CREATE TABLE IF NOT EXISTS hit_state (
                rule_id TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,
                PRIMARY KEY (rule_id, subject))",
            "CREATE TABLE IF NOT EXISTS hit_state_rules (
                rule_id TEXT PRIMARY KEY, rule_version BIGINT NOT NULL, params TEXT NOT NULL,
                lake_version BIGINT NOT NULL)",
            "ALTER TABLE runs ADD COLUMN evaluated TEXT",
        ]),
    ),
];

/// Bring the store to the newest schema version.
pub(crate) async fn migrate(pool: &AnyPool, postgres: bool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    if postgres {
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({LOCK_KEY})"))
            .execute(&mut *conn)
            .await?;
    } else {
        // Takes the write lock at once (waiting out other writers) instead of on the first write.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    }
    let applied = apply(&mut conn, postgres).await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    sqlx::query(end).execute(&mut *conn).await?;
    applied
}

async fn apply(conn: &mut AnyConnection, postgres: bool) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS hedui_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM hedui_schema")
        .fetch_one(&mut *conn)
        .await?
        .try_get("v")?;
    for (version, step) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        match step {
            Step::Sql(stmts) => {
                for stmt in *stmts {
                    sqlx::query(stmt).execute(&mut *conn).await?;
                }
            }
            Step::AddColumns(columns) => {
                for (table, column, ty) in *columns {
                    if !has_column(conn, postgres, table, column).await? {
                        sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                            .execute(&mut *conn)
                            .await?;
                    }
                }
            }
        }
        sqlx::query("INSERT INTO hedui_schema (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::timestamp(chrono::Utc::now()))
            .execute(&mut *conn)
            .await?;
        tracing::info!(version, "case store migrated");
    }
    Ok(())
}

/// Asked of the catalog: a failing probe query would abort a PostgreSQL transaction.
async fn has_column(
    conn: &mut AnyConnection,
    postgres: bool,
    table: &str,
    column: &str,
) -> Result<bool> {
    let sql = if postgres {
        "SELECT count(*) AS n FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
    } else {
        "SELECT count(*) AS n FROM pragma_table_info($1) WHERE name = $2"
    };
    let n: i64 = sqlx::query(sql)
        .bind(table)
        .bind(column)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    Ok(n > 0)
}
