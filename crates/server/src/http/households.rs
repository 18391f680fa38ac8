//! Household verification: `POST /api/v1/households/verify` and the kept reports,
//! `GET /api/v1/households/verifications/{id}`.
//!
//! Only with the applicant's signed authorisation: its reference is required, stated as the
//! purpose of every read, recorded as the audit entry's purpose, and printed on the report. Who
//! may verify, and whose households, is what the caller's policy grants (the service reads
//! through the caller's session).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedui_audit::Outcome;
use hedui_service::households::VerifyRequest;
use serde::Deserialize;

use super::caller::{failed, record};
use super::{ApiError, Caller};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The members' resident ID numbers, the applicant first.
    members: Vec<String>,
    /// The reference of the applicant's signed authorisation (授权书编号).
    #[serde(default)]
    authorisation: String,
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Json<VerifyBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut event = caller.event("POST /api/v1/households/verify");
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            let err = ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text());
            return Err(failed(&state, event, started, Outcome::Error, err).await);
        }
    };
    event.statement = Some(format!(
        "household verification of {} members",
        body.members.len()
    ));
    if !body.authorisation.trim().is_empty() {
        event.purpose = Some(format!("授权书 {}", body.authorisation.trim()));
    }
    // The verification is kept (a change): its entry goes first, as intent.
    let mut intent = event.clone();
    intent.outcome = Outcome::Started;
    if let Err(e) = record(&state, intent).await {
        return Err(failed(&state, event, started, Outcome::Error, e).await);
    }
    let verified = state
        .service
        .verify_household(
            &caller.identity,
            VerifyRequest {
                members: &body.members,
                authorisation: &body.authorisation,
                request_id: &caller.request_id,
            },
        )
        .await;
    let v = match verified {
        Ok(v) => v,
        Err(e) => {
            let err = ApiError::from(e);
            let outcome = err.outcome();
            return Err(failed(&state, event, started, outcome, err).await);
        }
    };
    event.statement = Some(format!("household verification: {}", v.members.join(" ")));
    event.datasets = v.datasets;
    event.policies = vec![format!("household verification {}: {}", v.id, v.verdict)];
    event.rows = Some(v.rows);
    event.duration_ms = started.elapsed().as_millis() as u64;
    record(&state, event).await?;
    Ok(Json(v.report).into_response())
}

/// A kept report, to print again. Reading it is audited like making it.
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut event = caller.event("GET /api/v1/households/verifications/{id}");
    event.statement = Some(format!("household verification report {id}"));
    match state.service.verification(&caller.identity, &id).await {
        Ok(v) => {
            event.purpose = Some(format!("授权书 {}", v.authorisation));
            event.rows = Some(1);
            event.duration_ms = started.elapsed().as_millis() as u64;
            record(&state, event).await?;
            Ok(Json(v.report).into_response())
        }
        Err(e) => {
            let err = ApiError::from(e);
            let outcome = err.outcome();
            Err(failed(&state, event, started, outcome, err).await)
        }
    }
}
