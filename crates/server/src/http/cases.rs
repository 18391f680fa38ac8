//! The case workflow under `/api/v1/cases`: the worklist, one case with its evidence and
//! history, assignment (by hand or by region), steps with a required note, outcomes, escalation
//! and the dashboard's figures. Every call is audited, refused ones too.
//!
//! Who sees what is the service's answer from `[[access.cases]]` (by default: reviewers the
//! cases of the rules their role works, administrators every rule, auditors every rule
//! read-only, all only in the region of their token; analysts and statisticians the figures
//! only, with noise).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedui_audit::{AuditEvent, Outcome};
use hedui_cases::{CaseFilter, REJECT_REASONS, Scope, State as CaseState, Step};
use hedui_policy::CaseAccess as Access;
use serde::Deserialize;

use super::caller::{failed, record};
use super::{ApiError, Caller};
use crate::AppState;

impl From<hedui_cases::Error> for ApiError {
    fn from(e: hedui_cases::Error) -> Self {
        use hedui_cases::Error as E;
        match &e {
            E::NoCase(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::Transition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "transition", e.to_string())
            }
            E::Invalid(..) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
            }
            E::NoRun(_) | E::Open { .. } | E::Db(_) => {
                tracing::error!(error = %e, "case store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the case store could not answer; the server log has details",
                )
            }
        }
    }
}

/// One request's audit entry and its refusal or failure.
struct Audited<'a> {
    state: &'a AppState,
    event: AuditEvent,
    started: Instant,
    /// The cases the caller may see with the access asked for.
    scope: Scope,
}

impl<'a> Audited<'a> {
    fn new(state: &'a AppState, caller: &Caller, action: &str, statement: String) -> Self {
        let mut event = caller.event(action);
        event.statement = Some(statement);
        event.datasets = vec!["cases".into()];
        Audited {
            state,
            event,
            started: Instant::now(),
            scope: Scope {
                rules: Some(Vec::new()),
                region: caller.identity.region.clone(),
            },
        }
    }

    async fn refuse(self, err: ApiError) -> ApiError {
        let outcome = if matches!(err.status, StatusCode::FORBIDDEN) {
            Outcome::Refused
        } else {
            Outcome::Error
        };
        failed(self.state, self.event, self.started, outcome, err).await
    }

    /// Before a change: the entry, as intent, on disk first (the change follows only if it is),
    /// so a crash can leave an intent without its change but never a change without its entry.
    async fn intend(self) -> Result<Self, ApiError> {
        let mut intent = self.event.clone();
        intent.outcome = Outcome::Started;
        match record(self.state, intent).await {
            Ok(()) => Ok(self),
            Err(e) => Err(self.refuse(e).await),
        }
    }

    async fn ok(mut self, rows: u64) -> Result<(), ApiError> {
        self.event.rows = Some(rows);
        self.event.duration_ms = self.started.elapsed().as_millis() as u64;
        record(self.state, self.event).await
    }

    /// An audited request of a caller who has at least `need`, or its refusal.
    async fn open(
        state: &'a AppState,
        caller: &Caller,
        action: &str,
        statement: String,
        need: Access,
    ) -> Result<Self, ApiError> {
        Audited::new(state, caller, action, statement)
            .require(caller, need)
            .await
    }

    /// The response to a store call: its value as JSON, audited with how many rows it holds; or
    /// its error, audited.
    async fn answer<T: serde::Serialize>(
        self,
        result: hedui_cases::Result<T>,
        rows: impl FnOnce(&T) -> u64,
    ) -> Result<Response, ApiError> {
        match result {
            Ok(value) => {
                let n = rows(&value);
                self.ok(n).await?;
                Ok(Json(value).into_response())
            }
            Err(e) => Err(self.refuse(e.into()).await),
        }
    }

    /// The caller's access, at least `need`, or a refusal.
    async fn require(mut self, caller: &Caller, need: Access) -> Result<Self, ApiError> {
        if let Some(scope) = self.state.service.case_scope(&caller.identity, need) {
            self.scope = scope;
            Ok(self)
        } else {
            let what = match need {
                Access::Figures => "case figures",
                Access::Read => "cases",
                Access::Act => "changing cases",
            };
            let err = ApiError::new(
                StatusCode::FORBIDDEN,
                "refused",
                format!(
                    "{what} are not for the role {}",
                    caller.identity.roles_text()
                ),
            );
            Err(self.refuse(err).await)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    rule: Option<String>,
    region: Option<String>,
    /// Comma-separated states.
    state: Option<String>,
    assignee: Option<String>,
    subject: Option<String>,
    /// Yuan.
    min_amount: Option<String>,
    max_amount: Option<String>,
    /// Raised at least this many days ago.
    min_age_days: Option<i64>,
    overdue: Option<bool>,
    /// Escalated at least this many levels.
    min_level: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// "1234.5" yuan -> 123450 cents, by the one money grammar ([`hedui_model::Money`]).
pub fn yuan_to_cents(s: &str) -> Option<i64> {
    hedui_model::Money::parse(s)
        .ok()
        .map(hedui_model::Money::cents)
}

fn filter(p: ListParams) -> Result<CaseFilter, ApiError> {
    let amount = |v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| yuan_to_cents(s).ok_or_else(|| bad(format!("`{s}` is not an amount in yuan"))))
            .transpose()
    };
    let states = p
        .state
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<CaseState>().map_err(bad))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(r) = &p.region
        && !r.is_empty()
        && !r.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("region is a region code prefix (digits)"));
    }
    let text = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(CaseFilter {
        rule: text(p.rule),
        region: text(p.region),
        states,
        assignee: text(p.assignee),
        subject: text(p.subject),
        min_amount_cents: amount(&p.min_amount)?,
        max_amount_cents: amount(&p.max_amount)?,
        min_age_days: p.min_age_days,
        overdue: p.overdue.unwrap_or(false),
        min_level: p.min_level,
        limit: Some(p.limit.unwrap_or(50).clamp(1, 1000)),
        offset: p.offset.unwrap_or(0).max(0),
    })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let a = Audited::open(
        &state,
        &caller,
        "GET /api/v1/cases",
        "list cases".into(),
        Access::Read,
    )
    .await?;
    let f = match params
        .map_err(|e| bad(e.body_text()))
        .and_then(|Query(p)| filter(p))
    {
        Ok(f) => f,
        Err(e) => return Err(a.refuse(e).await),
    };
    let page = state.service.cases.list(&a.scope, &f).await;
    a.answer(page, |p| p.cases.len() as u64).await
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let a = Audited::open(
        &state,
        &caller,
        "GET /api/v1/cases/{id}",
        format!("case {id}"),
        Access::Read,
    )
    .await?;
    let detail = match state.service.cases.get(&a.scope, &id).await {
        Ok(d) => d,
        Err(e) => return Err(a.refuse(e.into()).await),
    };
    let rule = state
        .service
        .rules
        .iter()
        .find(|r| r.id == detail.case.rule_id);
    let mut body = serde_json::to_value(&detail).expect("case serialises");
    body["rule"] = serde_json::json!({
        "id": detail.case.rule_id,
        "title_zh": rule.map(|r| r.title_zh.as_str()),
        "title_en": rule.map(|r| r.title_en.as_str()),
        "description": rule.map(|r| r.description.as_str()),
        "legal_basis": rule.map(|r| r.legal_basis.as_str()),
    });
    body["level_name"] = hedui_cases::level_name(detail.case.level).into();
    body["may_change"] = state
        .service
        .case_scope(&caller.identity, Access::Act)
        .is_some_and(|s| s.rules.is_none_or(|ids| ids.contains(&detail.case.rule_id)))
        .into();
    a.ok(1).await?;
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// The target state.
    to: String,
    note: String,
    reason: Option<String>,
    /// Yuan: to recover (confirmed) or recovered (recovered).
    amount: Option<String>,
    /// YYYY-MM-DD: the day the money came back (recovered).
    on: Option<String>,
    assignee: Option<String>,
    /// Confirming more than the case found: why.
    excess_reason: Option<String>,
}

pub async fn transition(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Json<StepBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let mut a = Audited::open(
        &state,
        &caller,
        "POST /api/v1/cases/{id}/transition",
        format!("case {id}"),
        Access::Act,
    )
    .await?;
    let step = match body
        .map_err(|e| bad(e.body_text()))
        .and_then(|Json(b)| step(&caller, b))
    {
        Ok(s) => s,
        Err(e) => return Err(a.refuse(e).await),
    };
    a.event.statement = Some(format!("case {id} -> {}", step.to));
    let a = a.intend().await?;
    let scope = a.scope.clone();
    let changed = state.service.cases.transition(&scope, &id, &step).await;
    if let Ok(to) = &changed {
        tracing::info!(case = %id, to = %to, "case changed");
    }
    let detail = match changed {
        Ok(_) => state.service.cases.get(&scope, &id).await,
        Err(e) => Err(e),
    };
    a.answer(detail, |_| 1).await
}

fn step(caller: &Caller, b: StepBody) -> Result<Step, ApiError> {
    let to: CaseState = b.to.parse().map_err(bad)?;
    let mut step = Step::to(to).by(&caller.identity.subject).note(b.note);
    if let Some(r) = b.reason.filter(|r| !r.is_empty()) {
        step = step.reason(r);
    }
    if let Some(amount) = b.amount.filter(|a| !a.trim().is_empty()) {
        step = step.amount_cents(
            yuan_to_cents(&amount)
                .ok_or_else(|| bad(format!("`{amount}` is not an amount in yuan")))?,
        );
    }
    if let Some(on) = b.on.filter(|o| !o.is_empty()) {
        step = step.on(chrono::NaiveDate::parse_from_str(&on, "%Y-%m-%d")
            .map_err(|_| bad(format!("`{on}` is not a date (YYYY-MM-DD)")))?);
    }
    if let Some(who) = b.assignee.filter(|w| !w.trim().is_empty()) {
        step = step.assignee(who.trim());
    }
    if let Some(why) = b.excess_reason.filter(|w| !w.trim().is_empty()) {
        step = step.excess_reason(why.trim());
    }
    Ok(step)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// To whom; absent: the team responsible for the subject's region.
    assignee: Option<String>,
    note: Option<String>,
}

pub async fn assign(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Json<AssignBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let mut a = Audited::open(
        &state,
        &caller,
        "POST /api/v1/cases/{id}/assign",
        format!("assign case {id}"),
        Access::Act,
    )
    .await?;
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(a.refuse(bad(e.body_text())).await),
    };
    let scope = a.scope.clone();
    let (assignee, note) = match body.assignee.filter(|s| !s.trim().is_empty()) {
        Some(who) => (who.trim().to_string(), body.note.unwrap_or_default()),
        None => {
            let region = match state.service.cases.get(&scope, &id).await {
                Ok(d) => d.case.region,
                Err(e) => return Err(a.refuse(e.into()).await),
            };
            let who = state
                .service
                .cases
                .workflow()
                .assignee_for(region.as_deref());
            let note = body
                .note
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| {
                    format!(
                        "按属地分派 dispatched by region {}",
                        region.as_deref().unwrap_or("?")
                    )
                });
            (who, note)
        }
    };
    a.event.statement = Some(format!("assign case {id} to {assignee}"));
    let a = a.intend().await?;
    let step = Step::to(CaseState::Assigned)
        .by(&caller.identity.subject)
        .assignee(&assignee)
        .note(note);
    let detail = match state.service.cases.assign(&scope, &id, &step).await {
        Ok(_) => state.service.cases.get(&scope, &id).await,
        Err(e) => Err(e),
    };
    a.answer(detail, |_| 1).await
}

/// Assign every new case in the caller's scope by region.
pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let a = Audited::open(
        &state,
        &caller,
        "POST /api/v1/cases/dispatch",
        "dispatch new cases by region".into(),
        Access::Act,
    )
    .await?
    .intend()
    .await?;
    let assigned = state
        .service
        .cases
        .dispatch_new(&a.scope, &caller.identity.subject)
        .await
        .map(|n| serde_json::json!({ "assigned": n }));
    a.answer(assigned, |v| v["assigned"].as_u64().unwrap_or(0))
        .await
}

/// Run the overdue check now (it also runs every minute while serving). Administrators only.
pub async fn escalate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let a = Audited::new(
        &state,
        &caller,
        "POST /api/v1/cases/escalate",
        "escalate overdue cases".into(),
    );
    // Escalation touches every case of the city: for those who act on all of them.
    let city_wide = state
        .service
        .case_scope(&caller.identity, Access::Act)
        .is_some_and(|s| s.rules.is_none() && s.region.is_none());
    if !city_wide {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            "escalating is for those who act on every case of the city (administrators)",
        );
        return Err(a.refuse(err).await);
    }
    let a = a.intend().await?;
    let escalated = state
        .service
        .cases
        .escalate(chrono::Utc::now())
        .await
        .map(|done| serde_json::json!({ "escalated": done }));
    a.answer(escalated, |v| {
        v["escalated"].as_array().map_or(0, |d| d.len() as u64)
    })
    .await
}

pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let a = Audited::open(
        &state,
        &caller,
        "GET /api/v1/cases/stats",
        "case figures".into(),
        Access::Figures,
    )
    .await?;
    match state.service.case_figures(&caller.identity).await {
        Ok(figures) => {
            let mut a = a;
            if let Some(p) = &figures.privacy {
                a.event.policies.push(format!(
                    "figures with Laplace noise: ε={} spent ({:.2} of {} in the period)",
                    p.epsilon, p.spent, p.budget
                ));
            }
            a.ok(figures.stats.by_rule_region.len() as u64).await?;
            Ok(Json(figures).into_response())
        }
        Err(e) => Err(a.refuse(e.into()).await),
    }
}

/// What the UI needs to offer the right choices: states and their moves, reasons, levels, and
/// the rules the caller's cases come from.
pub async fn workflow(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Err(e) = caller.audit_ok(&state, "GET /api/v1/workflow").await {
        return e.into_response();
    }
    let access = state.service.case_access(&caller.identity);
    let scope = access
        .and_then(|need| state.service.case_scope(&caller.identity, need))
        .unwrap_or(Scope {
            rules: Some(Vec::new()),
            region: None,
        });
    let states = [
        CaseState::New,
        CaseState::Assigned,
        CaseState::Verifying,
        CaseState::Confirmed,
        CaseState::Rejected,
        CaseState::Recovered,
        CaseState::Closed,
    ];
    let moves: serde_json::Map<String, serde_json::Value> = states
        .iter()
        .map(|from| {
            let to: Vec<&str> = states
                .iter()
                .filter(|to| from.can_go_to(**to))
                .map(|to| to.as_str())
                .collect();
            (from.as_str().to_string(), to.into())
        })
        .collect();
    let rules: Vec<serde_json::Value> = state
        .service
        .rules
        .iter()
        .filter(|r| scope.rules.as_ref().is_none_or(|ids| ids.contains(&r.id)))
        .map(|r| {
            serde_json::json!({
                "id": r.id, "title_zh": r.title_zh, "title_en": r.title_en,
                "subject": r.subject, "reviewer_role": r.reviewer_role,
                "deadline_days": state.service.cases.workflow().deadline_days(&r.id),
            })
        })
        .collect();
    Json(serde_json::json!({
        "access": match access {
            Some(Access::Act) => "write",
            Some(Access::Read) => "read",
            Some(Access::Figures) => "aggregate",
            None => "none",
        },
        "states": states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "moves": moves,
        "reject_reasons": REJECT_REASONS.iter().map(|(code, text)| serde_json::json!({"code": code, "text": text})).collect::<Vec<_>>(),
        "levels": hedui_cases::LEVELS.iter().map(|(code, text)| serde_json::json!({"code": code, "text": text})).collect::<Vec<_>>(),
        "rules": rules,
        // Evidence names its dataset; the page shows the source's title.
        "dataset_titles": hedui_model::Catalog::builtin()
            .iter()
            .map(|d| (d.name.clone(), serde_json::Value::from(d.title_zh.clone())))
            .collect::<serde_json::Map<_, _>>(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::yuan_to_cents;

    #[test]
    fn amounts_in_yuan_become_exact_cents() {
        assert_eq!(yuan_to_cents("1234.5"), Some(123_450));
        assert_eq!(yuan_to_cents("¥0.07"), Some(7));
        assert_eq!(yuan_to_cents("12"), Some(1_200));
        assert_eq!(
            yuan_to_cents("1,000"),
            Some(100_000),
            "as departments write it"
        );
        assert_eq!(
            yuan_to_cents("-0.50"),
            Some(-50),
            "the sign is kept (steps refuse it)"
        );
        for bad in ["", "1.234", "1e3", "abc"] {
            assert_eq!(yuan_to_cents(bad), None, "{bad}");
        }
    }
}
