//! Household verification: `POST /api/v1/households/verify` and the kept reports,
//! `GET /api/v1/households/verifications/{id}`.
//!
//! Only with the applicant's signed authorisation: its reference is required, recorded as the
//! audit entry's purpose, and printed on the report. For dibao reviewers and administrators; a
//! reviewer with a region verifies applicants registered in that region.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedui_audit::Outcome;
use hedui_auth::Role;
use hedui_cases::{Scope, Verification};
use hedui_model::ResidentId;
use serde::Deserialize;

use super::caller::{failed, record};
use super::{ApiError, Caller};
use crate::AppState;

/// More members than any household; a larger list is a bulk lookup, not a verification.
const MAX_MEMBERS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The members' resident ID numbers, the applicant first.
    members: Vec<String>,
    /// The reference of the applicant's signed authorisation (授权书编号).
    #[serde(default)]
    authorisation: String,
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "refused", message)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn may_verify(caller: &Caller) -> bool {
    caller.identity.has(Role::DibaoReviewer) || caller.identity.has(Role::Admin)
}

/// An authorisation reference as printed on the signed form: visible characters, bounded.
fn valid_reference(r: &str) -> bool {
    let r = r.trim();
    !r.is_empty() && r.chars().count() <= 64 && r.chars().all(|c| !c.is_control())
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Json<VerifyBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut event = caller.event("POST /api/v1/households/verify");
    let fail = |event, outcome, err| failed(&state, event, started, outcome, err);
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(fail(event, Outcome::Error, bad(e.body_text())).await),
    };
    event.statement = Some(format!(
        "household verification of {} members",
        body.members.len()
    ));
    // A token without the claims its policies need (a region) is granted nothing.
    if !may_verify(&caller) || state.policy.grants(&caller.identity).is_empty() {
        let err = refused(format!(
            "household verification is for dibao reviewers, not {}",
            caller.identity.roles_text()
        ));
        return Err(fail(event, Outcome::Refused, err).await);
    }
    if !valid_reference(&body.authorisation) {
        let err = refused(
            "a household verification needs the reference of the applicant's signed authorisation (授权书编号)",
        );
        return Err(fail(event, Outcome::Refused, err).await);
    }
    let authorisation = body.authorisation.trim().to_string();
    event.purpose = Some(format!("授权书 {authorisation}"));
    let mut members: Vec<ResidentId> = Vec::new();
    for raw in &body.members {
        match ResidentId::parse(raw) {
            Ok(id) if !members.contains(&id) => members.push(id),
            Ok(_) => {}
            Err(e) => {
                let err = bad(format!("`{raw}` is not a resident ID: {e}"));
                return Err(fail(event, Outcome::Error, err).await);
            }
        }
    }
    if members.is_empty() || members.len() > MAX_MEMBERS {
        let err = bad(format!("a household has 1 to {MAX_MEMBERS} members"));
        return Err(fail(event, Outcome::Error, err).await);
    }
    let ids: Vec<String> = members.iter().map(|m| m.as_str().to_string()).collect();
    event.statement = Some(format!("household verification: {}", ids.join(" ")));
    let engine = state.policy.engine();
    let report = match engine
        .verify_household(&members, &state.household_tests)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "household verification failed");
            let err = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the verification failed; the server log has details",
            );
            return Err(fail(event, Outcome::Error, err).await);
        }
    };
    // A reviewer of a region verifies households registered there: every member, not only the
    // applicant (a member registered elsewhere would show another region's incomes and assets).
    // A member the registry does not know is noted as such, under the applicant's authorisation.
    if let Some(region) = &caller.identity.region {
        let outside: Vec<&str> = report
            .members
            .iter()
            .filter(|m| {
                m.region_code
                    .as_deref()
                    .is_some_and(|r| !r.starts_with(region.as_str()))
                    || (m.registered && m.region_code.is_none())
            })
            .map(|m| m.person_id.as_str())
            .collect();
        if !outside.is_empty() {
            let err = refused(format!(
                "{} of the members are not registered in your region {region}; the reviewer of their region verifies them",
                outside.len()
            ));
            return Err(fail(event, Outcome::Refused, err).await);
        }
    }
    let at = hedui_cases::timestamp(chrono::Utc::now());
    let id = format!(
        "HV-{}-{}",
        &at[..10].replace('-', ""),
        &hedui_cases::sha256_hex(
            format!(
                "{at}\0{authorisation}\0{}\0{}",
                ids.join(","),
                caller.request_id
            )
            .as_bytes()
        )[..8]
    );
    let mut report_json = serde_json::to_value(&report).expect("report serialises");
    report_json["id"] = id.clone().into();
    report_json["authorisation"] = authorisation.clone().into();
    report_json["reviewer"] = caller.identity.subject.clone().into();
    report_json["at"] = at.clone().into();
    let kept = Verification {
        id: id.clone(),
        at,
        reviewer: caller.identity.subject.clone(),
        authorisation,
        region: caller.identity.region.clone(),
        members: ids,
        verdict: report.verdict.to_string(),
        report: report_json.clone(),
    };
    if let Err(e) = state.cases.save_verification(&kept).await {
        return Err(fail(event, Outcome::Error, e.into()).await);
    }
    event.datasets = report.sources.iter().map(|s| s.dataset.clone()).collect();
    event.policies = vec![format!("household verification {id}: {}", report.verdict)];
    event.rows = Some(
        report
            .members
            .iter()
            .map(|m| (m.income.len() + m.assets.len()) as u64)
            .sum(),
    );
    event.duration_ms = started.elapsed().as_millis() as u64;
    record(&state, event).await;
    Ok(Json(report_json).into_response())
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
    if !(may_verify(&caller) || caller.identity.has(Role::Auditor)) {
        let err = refused("household verification reports are for dibao reviewers and auditors");
        return Err(failed(&state, event, started, Outcome::Refused, err).await);
    }
    let scope = Scope {
        rules: None,
        region: caller.identity.region.clone(),
    };
    match state.cases.verification(&scope, &id).await {
        Ok(v) => {
            event.purpose = Some(format!("授权书 {}", v.authorisation));
            event.rows = Some(1);
            event.duration_ms = started.elapsed().as_millis() as u64;
            record(&state, event).await;
            Ok(Json(v.report).into_response())
        }
        Err(e) => Err(failed(&state, event, started, Outcome::Error, e.into()).await),
    }
}
