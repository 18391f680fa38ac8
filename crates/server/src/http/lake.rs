//! `GET /api/v1/lake`: what the lake holds, for the data page: each dataset's sources, rows, last
//! batch and as-of date, and each delivered file's counts (read = loaded + quarantined +
//! duplicate). Metadata only; the quarantined rows themselves are read through SQL, under policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedui_audit::Outcome;
use hedui_auth::Role;

use super::caller::failed;
use super::{ApiError, Caller};
use crate::AppState;

/// One dataset on the data page.
#[derive(Default, serde::Serialize)]
struct DatasetSummary {
    name: String,
    title_zh: Option<String>,
    title_en: Option<String>,
    department: Option<String>,
    rows: u64,
    batches: u64,
    sources: Vec<String>,
    last_batch: Option<String>,
    last_committed_at: Option<chrono::DateTime<chrono::Utc>>,
    as_of: Option<chrono::NaiveDate>,
}

pub async fn overview(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let allowed = [
        Role::Admin,
        Role::Connector,
        Role::Analyst,
        Role::Auditor,
        Role::Statistician,
    ];
    if !allowed.iter().any(|r| caller.identity.has(*r)) {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            format!(
                "the lake's sources are for administrators, connectors, analysts, auditors and statisticians, not {}",
                caller.identity.roles_text()
            ),
        );
        return Err(failed(
            &state,
            caller.event("GET /api/v1/lake"),
            started,
            Outcome::Refused,
            err,
        )
        .await);
    }
    let engine = state.policy().engine();
    let snapshot = engine.snapshot();
    let catalog = hedui_model::Catalog::builtin();
    let mut datasets: BTreeMap<&str, DatasetSummary> = BTreeMap::new();
    let mut batches = Vec::new();
    for c in snapshot.live_commits() {
        let files: Vec<_> = snapshot
            .files_of(c)
            .iter()
            .filter(|f| f.dataset != hedui_lake::KEYS_DATASET)
            .collect();
        for f in &files {
            let d = datasets.entry(&f.dataset).or_insert_with(|| {
                let def = catalog.get(&f.dataset).ok();
                DatasetSummary {
                    name: f.dataset.clone(),
                    title_zh: def.map(|d| d.title_zh.clone()),
                    title_en: def.map(|d| d.title_en.clone()),
                    department: def.map(|d| d.department.clone()),
                    ..Default::default()
                }
            });
            d.rows += f.rows;
            d.batches += 1;
            if !d.sources.contains(&c.source) {
                d.sources.push(c.source.clone());
            }
            if d.last_committed_at.is_none_or(|t| t < c.committed_at) {
                d.last_batch = Some(c.batch.clone());
                d.last_committed_at = Some(c.committed_at);
            }
            d.as_of = d.as_of.max(c.as_of);
        }
        batches.push(serde_json::json!({
            "batch": c.batch,
            "source": c.source,
            "file": c.file,
            "datasets": files.iter().map(|f| f.dataset.clone()).collect::<Vec<_>>(),
            "committed_at": c.committed_at.to_rfc3339(),
            "as_of": c.as_of,
            // `modified`: the date is the file's modification time, a guess.
            "as_of_basis": c.as_of_basis,
            "rows_read": c.counts.rows_read,
            "rows_loaded": c.counts.rows_loaded,
            "rows_quarantined": c.counts.rows_quarantined,
            "rows_duplicate": c.counts.rows_duplicate,
        }));
    }
    caller.audit_ok(&state, "GET /api/v1/lake").await?;
    Ok(Json(serde_json::json!({
        "lake_version": snapshot.version(),
        "datasets": datasets.into_values().collect::<Vec<_>>(),
        "batches": batches,
        // Each source's last pull or delivery, as-of date, lag and cadence; `stale` when later
        // than its cadence.
        "sources": hedui_lake::freshness(snapshot, chrono::Utc::now()),
    }))
    .into_response())
}
