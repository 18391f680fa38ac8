//! `POST /api/v1/sql`: a read-only query through the caller's policies, streamed back.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hedui_audit::Outcome;
use serde::Deserialize;

use super::caller::failed;
use super::encode::{Encoder, Format};
use super::{ApiError, Caller};
use crate::AppState;
use crate::audited::AuditOnEnd;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    /// A case number or authorisation reference; needed for person-level queries.
    #[serde(default)]
    purpose: Option<String>,
    /// json, csv, arrow or parquet; otherwise the `Accept` header decides.
    #[serde(default)]
    format: Option<String>,
}

const ACTION: &str = "POST /api/v1/sql";

pub async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut event = caller.event(ACTION);
    let refuse = |event, outcome, err: ApiError| {
        state.metrics.inc(
            "hedui_queries_total",
            format!("interface=\"http\",outcome=\"{}\"", err.code),
        );
        failed(&state, event, started, outcome, err)
    };
    // A body over the limit (or cut short) is refused, and on the record.
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let err = ApiError::new(e.status(), "bad_body", e.body_text());
            return Err(refuse(event, Outcome::Refused, err).await);
        }
    };
    let req: SqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let err = ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "the body must be JSON {{\"sql\": \"…\", \"purpose\": \"…\", \"format\": \"json\"}}: {e}"
                ),
            );
            return Err(refuse(event, Outcome::Error, err).await);
        }
    };
    event.statement = Some(req.sql.clone());
    let purpose = req.purpose.clone().or(caller.purpose.clone());
    event.purpose = purpose.clone();
    let format = match &req.format {
        Some(f) => Format::from_name(f),
        None => Format::from_accept(
            headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("*/*"),
        ),
    };
    let Some(format) = format else {
        let err = ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "format",
            "results come as json, csv, arrow (application/vnd.apache.arrow.stream) or parquet",
        );
        return Err(refuse(event, Outcome::Error, err).await);
    };
    let outcome_of = |e: &hedui_policy::Error| match e {
        hedui_policy::Error::Refused(_) => Outcome::Refused,
        _ => Outcome::Error,
    };
    let session = match state
        .policy()
        .session(&caller.identity, purpose.as_deref())
        .await
    {
        Ok(s) => s,
        Err(e) => return Err(refuse(event, outcome_of(&e), e.into()).await),
    };
    let query = match session.plan(&req.sql).await {
        Ok(q) => q,
        Err(e) => return Err(refuse(event, outcome_of(&e), e.into()).await),
    };
    event.datasets = query.info.datasets.clone();
    event.columns = query.info.columns.clone();
    event.policies = query.info.policies.clone();
    let stream = match session.execute(query).await {
        Ok(s) => s,
        Err(e) => return Err(refuse(event, outcome_of(&e), e.into()).await),
    };
    // With what running it cost (a privacy budget spent).
    event.policies = stream.info.policies.clone();
    let schema = stream.schema();
    let (encoder, head) = match Encoder::begin(format, &schema) {
        Ok(x) => x,
        Err(m) => {
            let err = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m);
            return Err(refuse(event, Outcome::Error, err).await);
        }
    };
    // The entry is on disk before the first byte of the answer leaves; its outcome (rows,
    // duration, a failure) follows when the answer is done.
    let mut intent = event.clone();
    intent.outcome = Outcome::Started;
    intent.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = super::caller::record(&state, intent).await {
        return Err(refuse(event, Outcome::Error, e).await);
    }
    state.metrics.inc(
        "hedui_queries_total",
        "interface=\"http\",outcome=\"ok\"".to_string(),
    );
    let (rows, truncated) = stream.counters();
    let failed = Arc::new(std::sync::Mutex::new(None));
    let guard = AuditOnEnd {
        audit: state.audit.clone(),
        event: Some(event),
        started,
        rows: rows.clone(),
        truncated: truncated.clone(),
        failed: failed.clone(),
    };
    let max_rows = session.max_rows();
    // The body: the head, each batch as it comes, the tail; the audit entry is written when
    // the body is done (or the client goes away).
    enum Phase {
        Head(Vec<u8>),
        Rows,
        Done,
    }
    let body = futures::stream::unfold(
        (Phase::Head(head), stream, encoder, guard),
        move |(phase, mut stream, mut enc, guard)| {
            let failed = failed.clone();
            async move {
                match phase {
                    Phase::Head(bytes) => {
                        Some((Ok(Bytes::from(bytes)), (Phase::Rows, stream, enc, guard)))
                    }
                    Phase::Rows => match stream.next().await {
                        Some(Ok(batch)) => {
                            let out = enc.batch(&batch).map_err(std::io::Error::other);
                            Some((out.map(Bytes::from), (Phase::Rows, stream, enc, guard)))
                        }
                        Some(Err(e)) => {
                            let msg = e.to_string();
                            *failed.lock().expect("lock") = Some(msg.clone());
                            let tail = enc.end(stream.rows(), stream.truncated(), Some(&msg));
                            let item = match (tail, matches!(enc, Encoder::Json { .. })) {
                                (Ok(t), true) => Ok(Bytes::from(t)),
                                // Other formats cannot say so in-band: break the body.
                                _ => Err(std::io::Error::other(msg)),
                            };
                            Some((item, (Phase::Done, stream, enc, guard)))
                        }
                        None => {
                            let tail = enc
                                .end(stream.rows(), stream.truncated(), None)
                                .map_err(std::io::Error::other);
                            Some((tail.map(Bytes::from), (Phase::Done, stream, enc, guard)))
                        }
                    },
                    Phase::Done => {
                        drop(guard);
                        None
                    }
                }
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = header::HeaderValue::from_str(&max_rows.to_string()) {
        h.insert("x-hedui-row-limit", v);
    }
    Ok(response)
}
