//! `hedui serve`: the HTTP API and the Postgres wire protocol. Both turn a bearer token into an
//! identity, run queries through the same policy sessions, and write every call, accepted or
//! refused, to the same audit log, so the same identity gets the same answer everywhere.

mod audited;
pub mod http;
mod metrics;
pub mod pg;

use std::net::SocketAddr;
use std::sync::Arc;

use hedui_audit::AuditLog;
use hedui_auth::Authenticator;
use hedui_policy::PolicyEngine;

pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every request handler shares: the application services, and the edge's own pieces
/// (who is calling, the audit log, metrics).
pub struct AppState {
    pub service: Arc<hedui_service::Service>,
    pub auth: Arc<Authenticator>,
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn policy(&self) -> &Arc<PolicyEngine> {
        &self.service.policy
    }
}

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Listen {
    pub http: SocketAddr,
    pub pg: Option<SocketAddr>,
}

/// Bind both listeners (so a wrong address fails before anything is served), then serve until
/// the process is stopped. Returns the bound addresses through `ready` (port 0 picks one).
pub async fn serve(
    state: Arc<AppState>,
    listen: Listen,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> Result<()> {
    let http = tokio::net::TcpListener::bind(listen.http)
        .await
        .map_err(|source| Error::Bind {
            addr: listen.http,
            source,
        })?;
    let pg = match listen.pg {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })?,
        ),
        None => None,
    };
    let http_addr = http.local_addr().map_err(Error::Serve)?;
    let pg_addr = pg.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(http = %http_addr, pg = ?pg_addr, "hedui serving");
    ready(http_addr, pg_addr);
    // New batches (an ingest while serving) are picked up without a restart.
    let reloading = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            // The first tick is at once: the served version's checks are computed at start.
            tick.tick().await;
            if let Err(e) = reloading.policy().reload().await {
                tracing::warn!(error = %e, "could not reload the lake");
            }
            let refreshing = reloading.clone();
            tokio::spawn(async move { refreshing.service.refresh_person_checks().await });
        }
    });
    // Late cases climb a level (跟踪督办) without anyone having to ask.
    let escalating = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match escalating.service.cases.escalate(chrono::Utc::now()).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(cases = done.len(), "overdue cases escalated")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not escalate overdue cases"),
            }
        }
    });
    let app = http::router(state.clone());
    // Results go out in several writes (head, batches, tail): without TCP_NODELAY a small
    // response waits ~40 ms for the client's delayed ACK.
    let http = axum::serve::ListenerExt::tap_io(http, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let http_task = async move {
        axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .map_err(Error::Serve)
    };
    match pg {
        Some(listener) => {
            let pg_task = pg::serve(state, listener);
            tokio::select! {
                r = http_task => r,
                r = pg_task => r,
            }
        }
        None => http_task.await,
    }
}
