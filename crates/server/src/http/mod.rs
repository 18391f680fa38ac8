//! The HTTP API under `/api/v1`, with `/healthz`, `/metrics` and the OpenAPI document.

mod caller;
mod cases;
mod encode;
mod error;
mod households;
mod lake;
mod persons;
mod sql;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hedui_model_names::dataset_titles;

pub use caller::Caller;
pub use error::ApiError;

use crate::AppState;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route, for the router and for the test that the OpenAPI document lists them all.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/whoami"),
    ("GET", "/api/v1/datasets"),
    ("POST", "/api/v1/sql"),
    ("GET", "/api/v1/persons/{id}/check"),
    ("GET", "/api/v1/workflow"),
    ("GET", "/api/v1/cases"),
    ("GET", "/api/v1/cases/stats"),
    ("POST", "/api/v1/cases/dispatch"),
    ("POST", "/api/v1/cases/escalate"),
    ("GET", "/api/v1/cases/{id}"),
    ("POST", "/api/v1/cases/{id}/assign"),
    ("POST", "/api/v1/cases/{id}/transition"),
    ("POST", "/api/v1/households/verify"),
    ("GET", "/api/v1/households/verifications/{id}"),
    ("GET", "/api/v1/lake"),
];

/// The route template a path belongs to (`{…}` matches one segment), for metrics labels.
fn route_of(method: &str, path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(m, template)| {
            *m == method && {
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (template.split('/').collect(), path.split('/').collect());
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
            }
        })
        .map_or("other", |(_, p)| p)
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/datasets", get(datasets))
        .route("/api/v1/sql", post(sql::run))
        .route("/api/v1/persons/{id}/check", get(persons::check))
        .route("/api/v1/workflow", get(cases::workflow))
        .route("/api/v1/cases", get(cases::list))
        .route("/api/v1/cases/stats", get(cases::stats))
        .route("/api/v1/cases/dispatch", post(cases::dispatch))
        .route("/api/v1/cases/escalate", post(cases::escalate))
        .route("/api/v1/cases/{id}", get(cases::get))
        .route("/api/v1/cases/{id}/assign", post(cases::assign))
        .route("/api/v1/cases/{id}/transition", post(cases::transition))
        .route("/api/v1/households/verify", post(households::verify))
        .route(
            "/api/v1/households/verifications/{id}",
            get(households::report),
        )
        .route("/api/v1/lake", get(lake::overview))
        .merge(ui::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The request's id: the client's `x-request-id` when it is sane, else a new one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    });
    format!("{prefix}-{:08}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Request id, a log event per request, and metrics.
async fn observe(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(String::from)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let route = route_of(method.as_str(), req.uri().path());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.inc(
        "hedui_http_requests_total",
        format!("route=\"{route}\",status=\"{status}\""),
    );
    state.metrics.observe(route, seconds);
    // No query text, token or personal data here: the audit log has what was asked.
    tracing::info!(
        request_id = %id,
        method = %method,
        route,
        status,
        client = %client,
        ms = (seconds * 1000.0) as u64,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "lake_version": state.policy().engine().snapshot().version(),
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let engine = state.policy().engine();
    let now = chrono::Utc::now();
    let sources = hedui_lake::freshness(engine.snapshot(), now);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render() + &crate::metrics::render_sources(&sources, now),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    )
}

/// Who the token says the caller is, and what each dataset shows them.
async fn whoami(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let grants = state.policy().grants(&caller.identity);
    if let Err(e) = caller.audit_ok(&state, "GET /api/v1/whoami").await {
        return e.into_response();
    }
    axum::Json(serde_json::json!({
        "subject": caller.identity.subject,
        "roles": caller.identity.roles,
        "region": caller.identity.region,
        "department": caller.identity.department,
        "datasets": grants.keys().collect::<Vec<_>>(),
    }))
    .into_response()
}

/// The datasets the caller may query, with how each is shown to them.
async fn datasets(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let grants = state.policy().grants(&caller.identity);
    if let Err(e) = caller.audit_ok(&state, "GET /api/v1/datasets").await {
        return e.into_response();
    }
    let list: Vec<serde_json::Value> = grants
        .values()
        .map(|g| {
            let (zh, en) = dataset_titles(&g.dataset);
            serde_json::json!({
                "name": g.dataset,
                "title_zh": zh,
                "title_en": en,
                "rows": g.region.as_deref().map_or("all".to_string(), |r| format!("region {r}")),
                "personal_columns": match g.unmask {
                    hedui_policy::Unmask::Never => "masked",
                    hedui_policy::Unmask::WithPurpose => "masked unless a purpose is stated",
                    hedui_policy::Unmask::Always => "in clear",
                },
                "hidden": g.hide,
                "aggregate_only": g.aggregate_only,
                "policy": g.policy,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "datasets": list })).into_response()
}

mod hedui_model_names {
    pub fn dataset_titles(name: &str) -> (String, String) {
        match hedui_model::Catalog::builtin().get(name) {
            Ok(d) => (d.title_zh.clone(), d.title_en.clone()),
            Err(_) if name == hedui_policy::AUDIT_TABLE => ("审计日志".into(), "Audit log".into()),
            Err(_) => (String::new(), String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method.to_ascii_lowercase()].is_object(),
                "OpenAPI lacks {method} {path}"
            );
        }
    }

    #[test]
    fn routes_name_their_metrics_label() {
        assert_eq!(
            route_of("GET", "/api/v1/cases/R1-abc"),
            "/api/v1/cases/{id}"
        );
        assert_eq!(
            route_of("GET", "/api/v1/cases/stats"),
            "/api/v1/cases/stats"
        );
        assert_eq!(route_of("GET", "/nope"), "other");
    }
}
