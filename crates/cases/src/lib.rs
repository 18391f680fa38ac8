//! The case store: every run of the rules (what it read and with which rule versions and
//! parameters) and the cases its hits became, with their workflow. SQLite by default, PostgreSQL
//! when the URL says so; the same portable SQL runs on both.
//!
//! A hit is raised as a case once: while a case for the same rule and subject is open it is not
//! raised again, and a closed case (rejected as a false positive, recovered, closed) comes back
//! only when its evidence changes (new or different source rows).

mod actions;
mod hit_state;
mod migrate;
mod query;
mod state;
mod workflow;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use hit_state::{HitsUpdate, KeptHits, RuleHits};
pub use query::{Bounds, CaseDetail, CaseEvent, CaseFilter, CasePage, Scope, Stats, Verification};
pub use state::State;
pub use workflow::{DispatchRule, LEVELS, REJECT_REASONS, Step, WorkflowConfig, level_name};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("case store {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("case store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no run `{0}` in the case store")]
    NoRun(String),
    #[error("no case `{0}`")]
    NoCase(String),
    #[error("case {case}: cannot go from {from} to {to}")]
    Transition {
        case: String,
        from: State,
        to: State,
    },
    #[error("case {0}: {1}")]
    Invalid(String, String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use hedui_model::CITY_UTC_OFFSET_HOURS;

/// What a run read and used: enough to run it again and get the same hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub started_at: String,
    /// The lake's commit-log version the run read.
    pub lake_version: u64,
    /// Rule id -> version.
    pub rules: BTreeMap<String, u32>,
    /// Rule id -> parameter -> value (defaults filled in).
    pub params: BTreeMap<String, BTreeMap<String, String>>,
    pub hits: u64,
    /// SHA-256 over the hits (rule, subject, months, amount, evidence), in order.
    pub hits_fingerprint: String,
    pub new_cases: u64,
    /// An incremental run verified the changes after this lake version, for the subjects whose
    /// rows changed; its `rules` are all it verified (those reading nothing that changed too).
    /// `None`: every subject was evaluated.
    pub changed_since: Option<u64>,
}

/// A hit as the store needs it.
#[derive(Debug, Clone)]
pub struct NewHit {
    pub rule: String,
    pub subject: String,
    pub months: Vec<String>,
    pub amount_cents: Option<i64>,
    /// The evidence as shown to reviewers (rows with source and as-of date).
    pub evidence: serde_json::Value,
    /// Fingerprint of the evidence rows' content (not of batch ids: a re-delivery of the same
    /// rows is the same evidence).
    pub evidence_fingerprint: String,
    /// The region code of the subject's registered address, for dispatch and row policies.
    pub region: Option<String>,
}

/// What raising a run's hits did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Raised {
    pub new: u64,
    pub already_open: u64,
    pub suppressed: u64,
    /// Open cases whose evidence the run brought up to date.
    pub updated: u64,
    /// Open cases whose hits the run no longer found.
    pub gone: u64,
}

/// Which (rule, subject) pairs a run evaluated, so that an open case it did not find again can
/// be marked: every subject of a rule (a full run) or the subjects the new rows can affect (a
/// run after a commit).
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Rule id, and its subjects (`None`: all of them).
    pub rules: Vec<(String, Option<std::collections::HashSet<String>>)>,
}

impl Coverage {
    /// Every subject of these rules.
    pub fn all(rules: impl IntoIterator<Item = String>) -> Coverage {
        Coverage {
            rules: rules.into_iter().map(|r| (r, None)).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub id: String,
    pub rule_id: String,
    pub subject: String,
    pub state: State,
    pub months: Vec<String>,
    pub amount_cents: Option<i64>,
    pub evidence_fingerprint: String,
    pub first_run: String,
    pub last_run: String,
    pub created_at: String,
    pub updated_at: String,
    pub region: Option<String>,
    pub assignee: Option<String>,
    /// 0 at the grid; one more at each escalation (see [`LEVELS`]).
    pub level: i64,
    pub due_at: Option<String>,
    /// Open and past its deadline.
    pub overdue: bool,
    pub reject_reason: Option<String>,
    pub confirmed_cents: Option<i64>,
    pub recovered_cents: Option<i64>,
    pub recovered_on: Option<String>,
    /// The run that no longer found this open case's hit (its source rows changed since).
    pub gone_run: Option<String>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub struct CaseStore {
    pool: AnyPool,
    workflow: WorkflowConfig,
}

/// Timestamps in one fixed format, so that they compare as text on both databases.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn now() -> String {
    timestamp(Utc::now())
}

impl CaseStore {
    /// Open (creating the schema if needed) `sqlite://path` or `postgres://...`.
    pub async fn open(url: &str) -> Result<CaseStore> {
        install_default_drivers();
        let url_full = if url.starts_with("sqlite:") && !url.contains('?') {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url_full)
            .await
            .map_err(|source| Error::Open {
                url: redact(url),
                source,
            })?;
        migrate::migrate(&pool, url.starts_with("postgres")).await?;
        Ok(CaseStore {
            pool,
            workflow: WorkflowConfig::default(),
        })
    }

    /// Deadlines and dispatch for the cases this store raises and escalates.
    pub fn with_workflow(mut self, workflow: WorkflowConfig) -> Result<CaseStore> {
        workflow
            .validate()
            .map_err(|m| Error::Invalid("workflow".into(), m))?;
        self.workflow = workflow;
        Ok(self)
    }

    pub fn workflow(&self) -> &WorkflowConfig {
        &self.workflow
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Record a run and raise its hits as cases in one transaction: a run is never recorded
    /// without its cases, nor cases without their run. `run.new_cases` is filled in.
    pub async fn record_run(
        &self,
        run: &mut RunRecord,
        hits: &[NewHit],
        covered: &Coverage,
    ) -> Result<Raised> {
        self.record_run_keeping(run, hits, covered, &HitsUpdate::default())
            .await
    }

    /// [`CaseStore::record_run`], and in the same transaction the update of the kept hits.
    pub async fn record_run_keeping(
        &self,
        run: &mut RunRecord,
        hits: &[NewHit],
        covered: &Coverage,
        kept: &HitsUpdate,
    ) -> Result<Raised> {
        let mut tx = self.pool.begin().await?;
        take_write_lock(&mut tx).await?;
        let mut raised = raise_in(&mut tx, &self.workflow, &run.id, hits).await?;
        raised.gone = mark_gone(&mut tx, &run.id, covered, hits).await?;
        run.new_cases = raised.new;
        sqlx::query(
            "INSERT INTO runs (id, started_at, lake_version, rules, params, hits, hits_fingerprint, new_cases, changed_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&run.id)
        .bind(&run.started_at)
        .bind(run.lake_version as i64)
        .bind(serde_json::to_string(&run.rules).expect("json"))
        .bind(serde_json::to_string(&run.params).expect("json"))
        .bind(run.hits as i64)
        .bind(&run.hits_fingerprint)
        .bind(run.new_cases as i64)
        .bind(run.changed_since.map(|v| v as i64))
        .execute(&mut *tx)
        .await?;
        hit_state::keep(&mut tx, &run.id, run.lake_version, kept).await?;
        tx.commit().await?;
        Ok(raised)
    }

    /// The evidence the cases of these (rule, subject) pairs show, as recorded (JSON arrays of
    /// rows): what a run may reuse instead of reading the same rows from the lake again.
    pub async fn held_evidence(&self, pairs: &[(&str, &str)]) -> Result<Vec<serde_json::Value>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for &(rule, subject) in pairs {
            let rows =
                sqlx::query("SELECT evidence FROM cases WHERE rule_id = $1 AND subject = $2")
                    .bind(rule)
                    .bind(subject)
                    .fetch_all(&mut *conn)
                    .await?;
            for row in rows {
                if let Ok(v) = serde_json::from_str(&row.try_get::<String, _>("evidence")?) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// The newest lake version a run verified every one of `rules` (id -> version) on: what the
    /// store agrees with the lake about for that rule set. A run of some rules only (`hedui
    /// check --rule`) or of an earlier version of one does not count.
    pub async fn verified_version(&self, rules: &BTreeMap<String, u32>) -> Result<Option<u64>> {
        let rows = sqlx::query("SELECT lake_version, rules FROM runs ORDER BY lake_version DESC")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let ran: BTreeMap<String, u32> =
                serde_json::from_str(&row.try_get::<String, _>("rules")?).unwrap_or_default();
            if rules.iter().all(|(id, v)| ran.get(id) == Some(v)) {
                return Ok(Some(row.try_get::<i64, _>("lake_version")? as u64));
            }
        }
        Ok(None)
    }

    pub async fn run(&self, id: &str) -> Result<RunRecord> {
        let row = sqlx::query("SELECT id, started_at, lake_version, rules, params, hits, hits_fingerprint, new_cases, changed_since FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NoRun(id.to_string()))?;
        Ok(RunRecord {
            id: row.try_get("id")?,
            started_at: row.try_get("started_at")?,
            lake_version: row.try_get::<i64, _>("lake_version")? as u64,
            rules: serde_json::from_str(&row.try_get::<String, _>("rules")?).unwrap_or_default(),
            params: serde_json::from_str(&row.try_get::<String, _>("params")?).unwrap_or_default(),
            hits: row.try_get::<i64, _>("hits")? as u64,
            hits_fingerprint: row.try_get("hits_fingerprint")?,
            new_cases: row.try_get::<i64, _>("new_cases")? as u64,
            changed_since: row
                .try_get::<Option<i64>, _>("changed_since")?
                .map(|v| v as u64),
        })
    }

    /// Turn hits into cases, once each (see the crate docs).
    pub async fn raise(&self, run_id: &str, hits: &[NewHit]) -> Result<Raised> {
        let mut tx = self.pool.begin().await?;
        take_write_lock(&mut tx).await?;
        let raised = raise_in(&mut tx, &self.workflow, run_id, hits).await?;
        tx.commit().await?;
        Ok(raised)
    }

    /// Every case, oldest first within rule and subject.
    pub async fn cases(&self) -> Result<Vec<Case>> {
        let page = self
            .list(&Scope::all(), &CaseFilter::default().limit(i64::MAX))
            .await?;
        Ok(page.cases)
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Make a transaction a writer from its first statement. SQLite would otherwise start it as a
/// reader and fail ("database is locked") when two such transactions both try to write; a write
/// statement, even one that changes nothing, waits for the lock instead.
async fn take_write_lock(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE hedui_schema SET applied_at = applied_at WHERE version < 0")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An event on a case that does not change its state (hedui's own note).
async fn add_event(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str, note: &str) -> Result<()> {
    let row = sqlx::query(
        "SELECT state, (SELECT COALESCE(MAX(seq), 0) FROM case_events WHERE case_id = $1) AS seq FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let state: String = row.try_get("state")?;
    let seq: i64 = row.try_get("seq")?;
    sqlx::query("INSERT INTO case_events (case_id, at, actor, from_state, to_state, note, seq) VALUES ($1, $2, $3, $4, $4, $5, $6)")
        .bind(id)
        .bind(now())
        .bind("hedui")
        .bind(&state)
        .bind(note)
        .bind(seq + 1)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Mark the open cases of `covered` whose hits the run did not find again (their source rows
/// changed): the case stays with its reviewer, marked.
async fn mark_gone(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    covered: &Coverage,
    hits: &[NewHit],
) -> Result<u64> {
    let found: std::collections::HashSet<(&str, &str)> = hits
        .iter()
        .map(|h| (h.rule.as_str(), h.subject.as_str()))
        .collect();
    let mut gone = 0;
    for (rule, subjects) in &covered.rules {
        let open = sqlx::query(
            "SELECT id, subject FROM cases WHERE rule_id = $1 AND gone_run IS NULL AND state IN ('new', 'assigned', 'verifying', 'confirmed')",
        )
        .bind(rule)
        .fetch_all(&mut **tx)
        .await?;
        for row in open {
            let subject: String = row.try_get("subject")?;
            let in_scope = subjects.as_ref().is_none_or(|s| s.contains(&subject));
            if !in_scope || found.contains(&(rule.as_str(), subject.as_str())) {
                continue;
            }
            let id: String = row.try_get("id")?;
            sqlx::query("UPDATE cases SET gone_run = $1, updated_at = $2 WHERE id = $3")
                .bind(run_id)
                .bind(now())
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            add_event(tx, &id, &format!("运行 {run_id} 未再发现此问题：源数据已变化，请核实 (the run no longer finds this hit: its source rows changed)")).await?;
            gone += 1;
        }
    }
    Ok(gone)
}

async fn raise_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workflow: &WorkflowConfig,
    run_id: &str,
    hits: &[NewHit],
) -> Result<Raised> {
    let mut raised = Raised::default();
    for h in hits {
        let existing = sqlx::query(
            "SELECT id, state, evidence_fingerprint FROM cases WHERE rule_id = $1 AND subject = $2",
        )
        .bind(&h.rule)
        .bind(&h.subject)
        .fetch_all(&mut **tx)
        .await?;
        let mut open = None;
        let mut same_evidence = false;
        for row in &existing {
            let state: State = row
                .try_get::<String, _>("state")?
                .parse()
                .unwrap_or(State::New);
            if state.is_open() {
                open = Some((
                    row.try_get::<String, _>("id")?,
                    row.try_get::<String, _>("evidence_fingerprint")?,
                ));
            }
            if row.try_get::<String, _>("evidence_fingerprint")? == h.evidence_fingerprint {
                same_evidence = true;
            }
        }
        if let Some((id, fingerprint)) = open {
            if fingerprint == h.evidence_fingerprint {
                sqlx::query(
                    "UPDATE cases SET last_run = $1, updated_at = $2, gone_run = NULL WHERE id = $3",
                )
                .bind(run_id)
                .bind(now())
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            } else {
                // The hit grew or changed (another month paid after the death): the open case
                // shows what is found now; what the reviewer decided stays.
                sqlx::query("UPDATE cases SET last_run = $1, updated_at = $2, gone_run = NULL, months = $3, amount_cents = $4, evidence = $5, evidence_fingerprint = $6 WHERE id = $7")
                    .bind(run_id)
                    .bind(now())
                    .bind(serde_json::to_string(&h.months).expect("json"))
                    .bind(h.amount_cents)
                    .bind(h.evidence.to_string())
                    .bind(&h.evidence_fingerprint)
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                add_event(
                    tx,
                    &id,
                    &format!("证据已由运行 {run_id} 更新 (evidence updated by run {run_id})"),
                )
                .await?;
                raised.updated += 1;
            }
            raised.already_open += 1;
            continue;
        }
        if same_evidence {
            raised.suppressed += 1;
            continue;
        }
        let id = format!(
            "{}-{}",
            h.rule,
            &sha256_hex(
                format!("{}\0{}\0{}", h.rule, h.subject, h.evidence_fingerprint).as_bytes()
            )[..12]
        );
        let now_utc = Utc::now();
        let at = timestamp(now_utc);
        let due = timestamp(workflow.due(&h.rule, now_utc));
        // Another run raising the same case at the same moment: it is raised once.
        let inserted = sqlx::query("INSERT INTO cases (id, rule_id, subject, state, months, amount_cents, evidence, evidence_fingerprint, first_run, last_run, created_at, updated_at, region, due_at, level) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0) ON CONFLICT (id) DO NOTHING")
            .bind(&id)
            .bind(&h.rule)
            .bind(&h.subject)
            .bind(State::New.as_str())
            .bind(serde_json::to_string(&h.months).expect("json"))
            .bind(h.amount_cents)
            .bind(h.evidence.to_string())
            .bind(&h.evidence_fingerprint)
            .bind(run_id)
            .bind(run_id)
            .bind(&at)
            .bind(&at)
            .bind(h.region.as_deref())
            .bind(&due)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            raised.already_open += 1;
            continue;
        }
        sqlx::query("INSERT INTO case_events (case_id, at, actor, from_state, to_state, note, seq) VALUES ($1, $2, $3, NULL, $4, $5, 1)")
            .bind(&id)
            .bind(&at)
            .bind("hedui")
            .bind(State::New.as_str())
            .bind(format!("raised by run {run_id}"))
            .execute(&mut **tx)
            .await?;
        raised.new += 1;
    }
    Ok(raised)
}
