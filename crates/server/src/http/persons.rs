//! `GET /api/v1/persons/{id}/check`: every person rule for one person, at application time.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedui_audit::Outcome;
use hedui_engine::rules::SubjectKind;
use hedui_model::ResidentId;
use serde::Deserialize;

use super::caller::{failed, record};
use super::{ApiError, Caller};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct CheckParams {
    /// The purpose, when not given in the `x-hedui-purpose` header.
    #[serde(default)]
    purpose: Option<String>,
}

const ACTION: &str = "GET /api/v1/persons/{id}/check";

pub async fn check(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<CheckParams>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut event = caller.event(ACTION);
    let purpose = params.purpose.or(caller.purpose.clone());
    event.purpose = purpose.clone();
    event.statement = Some(format!("person check {id}"));
    let fail = |event, outcome, err| failed(&state, event, started, outcome, err);
    let person = match ResidentId::parse(&id) {
        Ok(p) => p,
        Err(e) => {
            let err = ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_id",
                format!("`{id}` is not a resident ID: {e}"),
            );
            return Err(fail(event, Outcome::Error, err).await);
        }
    };
    event.statement = Some(format!("person check {}", person.as_str()));
    let Some(purpose) = purpose.filter(|p| !p.trim().is_empty()) else {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            "a person check needs a stated purpose: a case number or authorisation reference (x-hedui-purpose or ?purpose=)",
        );
        return Err(fail(event, Outcome::Refused, err).await);
    };
    // The person must be one the caller may see in clear: their grant on the registry, their
    // region.
    let session = match state.policy.session(&caller.identity, Some(&purpose)).await {
        Ok(s) => s,
        Err(e) => return Err(fail(event, Outcome::Refused, e.into()).await),
    };
    match session.grants().get("persons") {
        Some(g) if !g.masked(true) => {}
        _ => {
            let err = ApiError::new(
                StatusCode::FORBIDDEN,
                "refused",
                format!(
                    "a person check is for roles that may see the household registry in clear, not {}",
                    caller.identity.roles_text()
                ),
            );
            return Err(fail(event, Outcome::Refused, err).await);
        }
    }
    let engine = state.policy.engine();
    let index = state.person_checks.for_version(engine.snapshot().version());
    // Registered in a region the caller may see: from the index when ready, else by query.
    let grant_region = session
        .grants()
        .get("persons")
        .and_then(|g| g.region.clone());
    let visible = match &index {
        Some(index) => match index.registry(person.key()) {
            Some(region) => u64::from(
                grant_region
                    .as_deref()
                    .is_none_or(|mine| region.is_some_and(|r| r.starts_with(mine))),
            ),
            None => 0,
        },
        None => match session
            .run(&format!(
                "SELECT count(*) FROM persons WHERE person_id_key = {}",
                person.key()
            ))
            .await
        {
            Ok((_, batches, _, _)) => batches
                .first()
                .and_then(|b| {
                    arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).ok()
                })
                .map(|c| {
                    use arrow::array::AsArray;
                    c.as_primitive::<arrow::datatypes::Int64Type>().value(0) as u64
                })
                .unwrap_or(0),
            Err(e) => return Err(fail(event, Outcome::Error, e.into()).await),
        },
    };
    if visible == 0 {
        let err = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such person in the household registry of your region",
        );
        return Err(fail(event, Outcome::Refused, err).await);
    }
    // Only the rules whose every dataset the caller's policy grants: a reviewer of pensions
    // does not learn of a prison term from a rule that reads the prison register unless they may
    // read it.
    let reads = match state.rule_datasets().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "planning the rules failed");
            let err = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "a rule failed; the server log has details",
            );
            return Err(fail(event, Outcome::Error, err).await);
        }
    };
    let granted = |rule: &hedui_engine::rules::RuleDef| {
        reads
            .get(&rule.id)
            .is_some_and(|ds| ds.iter().all(|d| session.grants().contains_key(d)))
    };
    let mut results = Vec::new();
    let mut hits = 0u64;
    for rule in state
        .rules
        .iter()
        .filter(|r| r.subject == SubjectKind::Person && granted(r))
    {
        let found = match &index {
            Some(index) => index
                .hits(person.as_str())
                .iter()
                .filter(|h| h.rule == rule.id)
                .cloned()
                .collect(),
            None => match engine
                .run_rule_for(rule, &state.rule_params, person.as_str())
                .await
            {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(rule = %rule.id, error = %e, "person check failed");
                    let err = ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "a rule failed; the server log has details",
                    );
                    return Err(fail(event, Outcome::Error, err).await);
                }
            },
        };
        hits += found.len() as u64;
        let hit = found.first();
        results.push(serde_json::json!({
            "rule": rule.id,
            "version": rule.version,
            "title_zh": rule.title_zh,
            "title_en": rule.title_en,
            "hit": hit.is_some(),
            "months": hit.map(|h| h.months_text()).unwrap_or_default(),
            "amount": hit.and_then(|h| h.amount_text()),
            "details": hit.map(|h| h.details.clone()).unwrap_or_default(),
            "evidence": hit.map(|h| serde_json::to_value(&h.evidence).unwrap_or_default()),
        }));
    }
    event.datasets = vec!["persons".into()];
    event.policies = vec![format!("person check: {} rules", results.len())];
    event.rows = Some(hits);
    event.duration_ms = started.elapsed().as_millis() as u64;
    record(&state, event).await;
    Ok(axum::Json(serde_json::json!({
        "person_id": person.as_str(),
        "lake_version": engine.snapshot().version(),
        "purpose": purpose,
        "hits": hits,
        "precomputed": index.is_some(),
        "rules": results,
        "ms": started.elapsed().as_millis() as u64,
    }))
    .into_response())
}
