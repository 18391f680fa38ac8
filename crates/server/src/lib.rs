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
    /// HTTP: the time a client has to send a request's headers (idle keep-alive included).
    pub header_timeout: std::time::Duration,
    /// Connections held at once per listener; more wait in the backlog.
    pub max_connections: usize,
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
            // Hits follow the lake: what the new batches change is verified at once.
            match reloading.service.verify_changes().await {
                Ok(Some(summary)) => tracing::info!(%summary, "new batches verified"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not verify the new batches"),
            }
            let refreshing = reloading.clone();
            tokio::spawn(async move { refreshing.service.refresh_person_checks().await });
        }
    });
    // Late cases climb a level (跟踪督办) without anyone having to ask.
    let escalating = state.clone();
    tokio::spawn(async move {
        // The first sweep a minute after start, not at once: what is late at start is shown as
        // late (and can be escalated by hand) before the sweep moves it on.
        let minute = std::time::Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + minute, minute);
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
    let http_task = serve_http(app, http, listen.header_timeout, listen.max_connections);
    match pg {
        Some(listener) => {
            let pg_task = pg::serve(state, listener, listen.max_connections);
            tokio::select! {
                r = http_task => r,
                r = pg_task => r,
            }
        }
        None => http_task.await,
    }
}

/// A listener that holds at most so many connections: the next one is accepted only when a
/// slot is free (the rest wait in the backlog), and an accept error (out of file descriptors, a
/// reset during the handshake) is logged and waited out, never the end of the server.
pub(crate) struct Gate {
    listener: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
    what: &'static str,
}

impl Gate {
    pub(crate) fn new(listener: tokio::net::TcpListener, max: usize, what: &'static str) -> Gate {
        Gate {
            listener,
            slots: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
            what,
        }
    }

    /// The next connection, with the slot it holds until dropped.
    pub(crate) async fn next(
        &self,
    ) -> Result<(
        tokio::sync::OwnedSemaphorePermit,
        tokio::net::TcpStream,
        SocketAddr,
    )> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))?;
        loop {
            match self.listener.accept().await {
                Ok((tcp, addr)) => return Ok((slot, tcp, addr)),
                Err(e) => {
                    tracing::warn!(listener = self.what, error = %e, "accept failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// HTTP/1 by hand rather than `axum::serve`, for what a public listener needs: a header timeout
/// (a connection that sends nothing is closed), a limit on connections held (more wait in the
/// backlog until one is free), accept errors survived.
async fn serve_http(
    app: axum::Router,
    listener: tokio::net::TcpListener,
    header_timeout: std::time::Duration,
    max_connections: usize,
) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let gate = Gate::new(listener, max_connections, "http");
    loop {
        let (slot, tcp, addr) = gate.next().await?;
        // Results go out in several writes (head, batches, tail): without TCP_NODELAY a small
        // response waits ~40 ms for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
        let svc = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(addr)));
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc))
                .await;
            if let Err(e) = served {
                tracing::debug!(client = %addr, error = %e, "http connection ended");
            }
            drop(slot);
        });
    }
}
