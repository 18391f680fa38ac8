//! `GET /api/v1/persons/{id}/check`: every person rule for one person, at application time
//! (the service reads through the caller's policy session).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
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
    let checked = state
        .service
        .check_person(&caller.identity, &id, purpose.as_deref())
        .await;
    let check = match checked {
        Ok(c) => c,
        Err(e) => {
            let err = ApiError::from(e);
            let outcome = err.outcome();
            return Err(failed(&state, event, started, outcome, err).await);
        }
    };
    let mut hits = 0u64;
    let results: Vec<serde_json::Value> = check
        .rules
        .iter()
        .map(|r| {
            hits += r.hits.len() as u64;
            let hit = r.hits.first();
            serde_json::json!({
                "rule": r.rule.id,
                "version": r.rule.version,
                "title_zh": r.rule.title_zh,
                "title_en": r.rule.title_en,
                "hit": hit.is_some(),
                "months": hit.map(|h| h.months_text()).unwrap_or_default(),
                "amount": hit.and_then(|h| h.amount_text()),
                "details": hit.map(|h| h.details.clone()).unwrap_or_default(),
                "evidence": hit.map(|h| serde_json::to_value(&h.evidence).unwrap_or_default()),
            })
        })
        .collect();
    event.statement = Some(format!("person check {}", check.person.as_str()));
    event.datasets = vec!["persons".into()];
    event.policies = vec![format!("person check: {} rules", results.len())];
    event.rows = Some(hits);
    event.duration_ms = started.elapsed().as_millis() as u64;
    record(&state, event).await?;
    Ok(axum::Json(serde_json::json!({
        "person_id": check.person.as_str(),
        "lake_version": check.lake_version,
        "purpose": check.purpose,
        "hits": hits,
        "precomputed": check.precomputed,
        "rules": results,
        "ms": started.elapsed().as_millis() as u64,
    }))
    .into_response())
}
