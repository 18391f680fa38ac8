//! The verified caller of a request. A request without an acceptable token is refused here,
//! with 401 and an audit entry, before any handler runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use hedui_audit::{AuditEvent, Interface, Outcome};
use hedui_auth::Identity;

use super::{ApiError, RequestId};
use crate::AppState;

pub struct Caller {
    pub identity: Identity,
    pub client: String,
    pub request_id: String,
    /// The purpose stated in the `x-hedui-purpose` header, if any.
    pub purpose: Option<String>,
}

impl Caller {
    /// An audit event about this caller, to be completed by the handler.
    pub fn event(&self, action: &str) -> AuditEvent {
        let mut e = AuditEvent::new(Interface::Http, self.client.clone(), action);
        e.actor = self.identity.subject.clone();
        e.roles = self.identity.roles.iter().map(|r| r.to_string()).collect();
        e.region = self.identity.region.clone();
        e.request_id = Some(self.request_id.clone());
        e.purpose = self.purpose.clone();
        e
    }

    pub async fn audit_ok(&self, state: &AppState, action: &str) -> Result<(), ApiError> {
        record(state, self.event(action)).await
    }
}

/// Complete the audit entry of a request that failed or was refused, write it, and hand back
/// the error for the response.
pub async fn failed(
    state: &AppState,
    mut event: AuditEvent,
    started: std::time::Instant,
    outcome: Outcome,
    err: ApiError,
) -> ApiError {
    event.outcome = outcome;
    event.reason = Some(err.message.clone());
    event.duration_ms = started.elapsed().as_millis() as u64;
    // Refused either way; a refusal the log cannot take is in the server log.
    let _ = record(state, event).await;
    err
}

/// Write an entry, on disk when this returns. If the log cannot take it, the request gets no
/// answer: nothing is given that the audit trail does not show.
pub async fn record(state: &AppState, event: AuditEvent) -> Result<(), ApiError> {
    state.audit.record(event).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "audit entry not written: answer withheld");
        ApiError::audit_unavailable()
    })
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        let purpose = match parts.headers.get("x-hedui-purpose") {
            None => None,
            Some(v) => match v.to_str() {
                Ok(p) => Some(p.to_string()),
                Err(_) => {
                    // Refused before anyone is known: on the record all the same.
                    let mut e = AuditEvent::new(
                        Interface::Http,
                        client,
                        format!("{} {}", parts.method, parts.uri.path()),
                    );
                    e.outcome = Outcome::Refused;
                    e.reason = Some("a bad x-hedui-purpose header".into());
                    e.request_id = Some(request_id);
                    let _ = record(state, e).await;
                    return Err(ApiError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "bad_purpose",
                        "x-hedui-purpose must be visible ASCII; state non-ASCII purposes in the request body",
                    ));
                }
            },
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .unwrap_or("");
        match state.auth.verify(token) {
            Ok(identity) => Ok(Caller {
                identity,
                client,
                request_id,
                purpose,
            }),
            Err(why) => {
                let mut e = AuditEvent::new(
                    Interface::Http,
                    client,
                    format!("{} {}", parts.method, parts.uri.path()),
                );
                e.outcome = Outcome::Refused;
                e.reason = Some(format!("authentication: {why}"));
                e.request_id = Some(request_id);
                let _ = record(state, e).await;
                state.metrics.inc(
                    "hedui_auth_failures_total",
                    format!("reason=\"{}\"", why.code()),
                );
                Err(ApiError::unauthenticated(&why))
            }
        }
    }
}
