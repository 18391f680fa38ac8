//! `hedui serve`: the HTTP API and the Postgres wire protocol over a lake.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use hedui_server::{AppState, Listen, Metrics};

use crate::config::Config;
use crate::error::{Error, Result};

fn addr(s: &str, what: &str) -> Result<SocketAddr> {
    s.parse().map_err(|_| {
        Error::Usage(format!(
            "{what} `{s}` is not an address like 127.0.0.1:8080"
        ))
    })
}

pub async fn run(
    cfg: &Config,
    config_file: Option<&Path>,
    lake: &Path,
    http: Option<String>,
    pg: Option<String>,
) -> Result<ExitCode> {
    serve_with(cfg, config_file, lake, http, pg, |_| {}).await
}

/// Serve, and once listening call `then` with the HTTP address (the demo prints sign-in links).
pub async fn serve_with(
    cfg: &Config,
    config_file: Option<&Path>,
    lake: &Path,
    http: Option<String>,
    pg: Option<String>,
    then: impl FnOnce(SocketAddr),
) -> Result<ExitCode> {
    let http = addr(&http.unwrap_or_else(|| cfg.server.http.clone()), "--http")?;
    let pg = match pg.unwrap_or_else(|| cfg.server.pg.clone()).trim() {
        "" | "off" => None,
        s => Some(addr(s, "--pg")?),
    };
    let sources = match &cfg.sources.connectors {
        Some(connectors) => Some(Arc::new(hedui_service::sources::Sources::load(
            connectors, lake,
        )?)),
        None => None,
    };
    if let Some(s) = &sources
        && s.scheduled().next().is_some()
        && !lake.join(hedui_lake::LOG_DIR).is_dir()
    {
        // A city whose sources are all pulled starts with an empty lake.
        drop(hedui_lake::LakeWriter::open(lake)?);
    }
    let access = super::access::open(cfg, config_file, lake).await?;
    let rules = super::check::rule_set(cfg.rules.dir.as_deref(), &cfg.rules.parameters)?;
    let cases_url = Some(cfg.cases.url.clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| super::check::default_cases_url(lake));
    let cases = hedui_cases::CaseStore::open(&cases_url)
        .await?
        .with_workflow(cfg.cases.workflow.clone())?;
    let service = hedui_service::Service::new(
        access.policy,
        Arc::new(rules),
        cfg.rules.parameters.clone(),
        Arc::new(cases),
        hedui_engine::household::HouseholdTests::from_params(&cfg.rules.parameters),
        hedui_service::precomputed::PersonChecks::new(cfg.server.precompute_person_checks),
        cfg.access.effective_case_access(),
    );
    if let Some(s) = &sources {
        s.spawn();
    }
    let state = Arc::new(AppState {
        service: Arc::new(service),
        auth: access.auth,
        audit: access.audit,
        metrics: Arc::new(Metrics::default()),
    });
    let audit_path = cfg.audit_path(lake);
    let header_timeout = hedui_auth::parse_duration(&cfg.server.header_timeout)
        .map_err(|m| Error::Usage(format!("[server] header_timeout: {m}")))?;
    let listen = Listen {
        http,
        pg,
        header_timeout,
        max_connections: cfg.server.max_connections,
    };
    hedui_server::serve(state, listen, |http, pg| {
        // Printed (not logged) so scripts and tests can read the bound ports.
        println!("hedui 服务已启动 serving lake {}", lake.display());
        println!("  HTTP      http://{http}/api/v1  (OpenAPI: /api/v1/openapi.json)");
        println!("  网页 UI   http://{http}/ui/");
        if let Some(pg) = pg {
            println!(
                "  Postgres  psql \"host={} port={} user=analyst dbname=hedui\" (password: a token from `hedui token`)",
                pg.ip(),
                pg.port()
            );
        }
        println!("  审计 audit log {}", audit_path.display());
        then(http);
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
