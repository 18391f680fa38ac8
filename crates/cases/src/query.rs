//! Reading cases: the worklist's filters, one case with its evidence and history, and the
//! dashboard's figures, always within the caller's scope (rules and region).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Case, CaseStore, Error, Result, State, timestamp};

/// What a caller may see of the store: rules of their queue, and their region.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: every rule.
    pub rules: Option<Vec<String>>,
    /// A region code prefix; `None`: every region (and cases with no known region).
    pub region: Option<String>,
}

impl Scope {
    pub fn all() -> Scope {
        Scope::default()
    }
}

/// The worklist's filters. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub rule: Option<String>,
    /// A region code prefix, within the scope's.
    pub region: Option<String>,
    pub states: Vec<State>,
    pub assignee: Option<String>,
    pub min_amount_cents: Option<i64>,
    pub max_amount_cents: Option<i64>,
    /// Raised at least this many days ago.
    pub min_age_days: Option<i64>,
    /// Open and past the deadline.
    pub overdue: bool,
    /// Escalated at least this many levels (the sub-district's, district's or city's view).
    pub min_level: Option<i64>,
    pub subject: Option<String>,
    pub limit: Option<i64>,
    pub offset: i64,
}

impl CaseFilter {
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CasePage {
    /// How many cases match, over all pages.
    pub total: i64,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseEvent {
    pub at: String,
    pub actor: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
    /// What else the step recorded (assignee, reason, amounts), as JSON.
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: Case,
    /// The rows that prove the hit, each with its source and as-of date.
    pub evidence: serde_json::Value,
    pub history: Vec<CaseEvent>,
}

/// How far one subject may move the figures (for figures released with noise).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub cases_per_person: u32,
    pub amount_cents: i64,
}

/// The dashboard's figures within a scope.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Per rule and region: cases, amount found, amount confirmed, amount recovered (cents).
    pub by_rule_region: Vec<RuleRegion>,
    pub by_state: Vec<(String, i64)>,
    /// Per month raised and rule: cases and amount found.
    pub by_month: Vec<MonthRule>,
    /// Per month recovered: amount recovered.
    pub recovered_by_month: Vec<(String, i64)>,
    pub overdue: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRegion {
    pub rule: String,
    pub region: Option<String>,
    pub cases: i64,
    pub amount_cents: i64,
    pub confirmed_cents: i64,
    pub recovered_cents: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthRule {
    pub month: String,
    pub rule: String,
    pub cases: i64,
    pub amount_cents: i64,
}

/// A stored household verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub id: String,
    pub at: String,
    pub reviewer: String,
    pub authorisation: String,
    pub region: Option<String>,
    pub members: Vec<String>,
    pub verdict: String,
    pub report: serde_json::Value,
}

const OPEN_STATES: &str = "('new', 'assigned', 'verifying', 'confirmed')";

const CASE_COLUMNS: &str = "id, rule_id, subject, state, months, amount_cents, evidence_fingerprint, first_run, last_run, created_at, updated_at, region, assignee, level, due_at, reject_reason, confirmed_cents, recovered_cents, recovered_on, gone_run";

/// A WHERE clause with numbered parameters, the same text on SQLite and PostgreSQL.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Where {
    fn push(&mut self, clause: impl FnOnce(usize) -> String, arg: Arg) {
        self.args.push(arg);
        self.clauses.push(clause(self.args.len()));
    }

    fn scope(scope: &Scope) -> Where {
        let mut w = Where::default();
        if let Some(rules) = &scope.rules {
            if rules.is_empty() {
                w.clauses.push("1 = 0".into());
            } else {
                let mut marks = Vec::new();
                for r in rules {
                    w.args.push(Arg::Text(r.clone()));
                    marks.push(format!("${}", w.args.len()));
                }
                w.clauses.push(format!("rule_id IN ({})", marks.join(", ")));
            }
        }
        if let Some(region) = &scope.region {
            w.push(
                |n| format!("region LIKE ${n}"),
                Arg::Text(format!("{}%", like_safe(region))),
            );
        }
        w
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// Region codes are digits; anything else cannot widen a LIKE.
fn like_safe(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

pub(crate) fn case_from_row(r: &AnyRow, now: &str) -> Result<Case> {
    let state: State = r
        .try_get::<String, _>("state")?
        .parse()
        .unwrap_or(State::New);
    let due_at: Option<String> = r.try_get("due_at")?;
    Ok(Case {
        id: r.try_get("id")?,
        rule_id: r.try_get("rule_id")?,
        subject: r.try_get("subject")?,
        state,
        months: serde_json::from_str(&r.try_get::<String, _>("months")?).unwrap_or_default(),
        amount_cents: r.try_get("amount_cents")?,
        evidence_fingerprint: r.try_get("evidence_fingerprint")?,
        first_run: r.try_get("first_run")?,
        last_run: r.try_get("last_run")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        region: r.try_get("region")?,
        assignee: r.try_get("assignee")?,
        level: r.try_get("level")?,
        overdue: state.is_open() && due_at.as_deref().is_some_and(|d| d < now),
        due_at,
        reject_reason: r.try_get("reject_reason")?,
        confirmed_cents: r.try_get("confirmed_cents")?,
        recovered_cents: r.try_get("recovered_cents")?,
        recovered_on: r.try_get("recovered_on")?,
        gone_run: r.try_get("gone_run")?,
    })
}

impl CaseStore {
    /// One page of the worklist: most overdue first, then the largest amounts.
    pub async fn list(&self, scope: &Scope, filter: &CaseFilter) -> Result<CasePage> {
        let now = timestamp(chrono::Utc::now());
        let mut w = Where::scope(scope);
        if let Some(rule) = &filter.rule {
            w.push(|n| format!("rule_id = ${n}"), Arg::Text(rule.clone()));
        }
        if let Some(region) = &filter.region {
            w.push(
                |n| format!("region LIKE ${n}"),
                Arg::Text(format!("{}%", like_safe(region))),
            );
        }
        if !filter.states.is_empty() {
            let mut marks = Vec::new();
            for s in &filter.states {
                w.args.push(Arg::Text(s.as_str().into()));
                marks.push(format!("${}", w.args.len()));
            }
            w.clauses.push(format!("state IN ({})", marks.join(", ")));
        }
        if let Some(a) = &filter.assignee {
            w.push(|n| format!("assignee = ${n}"), Arg::Text(a.clone()));
        }
        if let Some(s) = &filter.subject {
            w.push(|n| format!("subject = ${n}"), Arg::Text(s.clone()));
        }
        if let Some(c) = filter.min_amount_cents {
            w.push(|n| format!("amount_cents >= ${n}"), Arg::Int(c));
        }
        if let Some(c) = filter.max_amount_cents {
            w.push(|n| format!("amount_cents <= ${n}"), Arg::Int(c));
        }
        if let Some(days) = filter.min_age_days {
            let cutoff = timestamp(chrono::Utc::now() - chrono::Duration::days(days));
            w.push(|n| format!("created_at <= ${n}"), Arg::Text(cutoff));
        }
        if let Some(level) = filter.min_level {
            w.push(|n| format!("level >= ${n}"), Arg::Int(level));
        }
        if filter.overdue {
            w.push(
                |n| format!("state IN {OPEN_STATES} AND due_at < ${n}"),
                Arg::Text(now.clone()),
            );
        }
        let where_sql = w.sql();
        let total: i64 = w
            .bind(sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM cases{where_sql}"
            )))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let limit = filter.limit.unwrap_or(100).clamp(0, i64::MAX);
        let offset = filter.offset.max(0);
        // Overdue open cases first (earliest deadline first), then by amount.
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases{where_sql} \
             ORDER BY CASE WHEN state IN {OPEN_STATES} THEN 0 ELSE 1 END, \
             due_at, COALESCE(amount_cents, 0) DESC, rule_id, subject, created_at, id \
             LIMIT {limit} OFFSET {offset}"
        );
        let rows = w.bind(sqlx::query(&sql)).fetch_all(self.pool()).await?;
        let cases = rows
            .iter()
            .map(|r| case_from_row(r, &now))
            .collect::<Result<Vec<_>>>()?;
        Ok(CasePage { total, cases })
    }

    /// One case within the scope, with its evidence and history; outside it, "no case".
    pub async fn get(&self, scope: &Scope, id: &str) -> Result<CaseDetail> {
        let now = timestamp(chrono::Utc::now());
        let mut w = Where::scope(scope);
        w.push(|n| format!("id = ${n}"), Arg::Text(id.into()));
        let sql = format!("SELECT {CASE_COLUMNS}, evidence FROM cases{}", w.sql());
        let row = w
            .bind(sqlx::query(&sql))
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Error::NoCase(id.into()))?;
        let case = case_from_row(&row, &now)?;
        let evidence = serde_json::from_str(&row.try_get::<String, _>("evidence")?)
            .unwrap_or(serde_json::Value::Null);
        let history = sqlx::query(
            "SELECT at, actor, from_state, to_state, note, detail FROM case_events WHERE case_id = $1 ORDER BY seq, at",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(CaseEvent {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                from_state: r.try_get("from_state")?,
                to_state: r.try_get("to_state")?,
                note: r.try_get("note")?,
                detail: r
                    .try_get::<Option<String>, _>("detail")?
                    .and_then(|d| serde_json::from_str(&d).ok()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(CaseDetail {
            case,
            evidence,
            history,
        })
    }

    /// The dashboard's figures within a scope. With `bounds` (for figures released with noise), each
    /// subject's cases count at most `cases_per_person` times (the rest left out at random)
    /// and each case's amounts at most `amount_cents`.
    pub async fn stats(&self, scope: &Scope, bounds: Option<Bounds>) -> Result<Stats> {
        let w = Where::scope(scope);
        let cases = match bounds {
            None => "cases".to_string(),
            Some(b) => format!(
                "(SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY subject ORDER BY random()) AS hedui_rank FROM cases) WHERE hedui_rank <= {}) AS cases",
                b.cases_per_person
            ),
        };
        let amount = |column: &str| match bounds {
            None => column.to_string(),
            Some(b) => format!("MAX(MIN({column}, {}), 0)", b.amount_cents),
        };
        let (amount_cents, confirmed_cents, recovered_cents) = (
            amount("amount_cents"),
            amount("confirmed_cents"),
            amount("recovered_cents"),
        );
        let where_sql = w.sql();
        let and = if where_sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        };
        let mut stats = Stats::default();
        for r in w
            .bind(sqlx::query(&format!(
                "SELECT rule_id, region, COUNT(*) AS n, \
                 CAST(COALESCE(SUM({amount_cents}), 0) AS BIGINT) AS amount, \
                 CAST(COALESCE(SUM({confirmed_cents}), 0) AS BIGINT) AS confirmed, \
                 CAST(COALESCE(SUM({recovered_cents}), 0) AS BIGINT) AS recovered \
                 FROM {cases}{where_sql} GROUP BY rule_id, region ORDER BY rule_id, region"
            )))
            .fetch_all(self.pool())
            .await?
        {
            stats.by_rule_region.push(RuleRegion {
                rule: r.try_get("rule_id")?,
                region: r.try_get("region")?,
                cases: r.try_get("n")?,
                amount_cents: r.try_get("amount")?,
                confirmed_cents: r.try_get("confirmed")?,
                recovered_cents: r.try_get("recovered")?,
            });
        }
        for r in w
            .bind(sqlx::query(&format!(
                "SELECT state, COUNT(*) AS n FROM {cases}{where_sql} GROUP BY state ORDER BY state"
            )))
            .fetch_all(self.pool())
            .await?
        {
            stats.by_state.push((r.try_get("state")?, r.try_get("n")?));
        }
        for r in w
            .bind(sqlx::query(&format!(
                "SELECT SUBSTR(created_at, 1, 7) AS month, rule_id, COUNT(*) AS n, \
                 CAST(COALESCE(SUM({amount_cents}), 0) AS BIGINT) AS amount \
                 FROM {cases}{where_sql} GROUP BY SUBSTR(created_at, 1, 7), rule_id ORDER BY month, rule_id"
            )))
            .fetch_all(self.pool())
            .await?
        {
            stats.by_month.push(MonthRule {
                month: r.try_get("month")?,
                rule: r.try_get("rule_id")?,
                cases: r.try_get("n")?,
                amount_cents: r.try_get("amount")?,
            });
        }
        for r in w
            .bind(sqlx::query(&format!(
                "SELECT SUBSTR(recovered_on, 1, 7) AS month, \
                 CAST(COALESCE(SUM({recovered_cents}), 0) AS BIGINT) AS amount \
                 FROM {cases}{where_sql}{and}recovered_on IS NOT NULL \
                 GROUP BY SUBSTR(recovered_on, 1, 7) ORDER BY month"
            )))
            .fetch_all(self.pool())
            .await?
        {
            stats
                .recovered_by_month
                .push((r.try_get("month")?, r.try_get("amount")?));
        }
        let mut w = Where::scope(scope);
        w.push(
            |n| format!("state IN {OPEN_STATES} AND due_at < ${n}"),
            Arg::Text(timestamp(chrono::Utc::now())),
        );
        stats.overdue = w
            .bind(sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM {cases}{}",
                w.sql()
            )))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(stats)
    }
}
