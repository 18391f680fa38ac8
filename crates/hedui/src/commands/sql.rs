//! `hedui sql`: one read-only query. With a token it runs through the token holder's policies
//! (the same answer as over HTTP or psql); without one, as the local operator. Either way it is
//! written to the audit log.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use hedui_audit::{AuditEvent, AuditLog, Interface, Outcome};
use hedui_auth::Identity;
use hedui_engine::Engine;
use hedui_engine::output::{self, Format};

use crate::cli::OutputFormat;
use crate::config::Config;
use crate::error::{Error, Result};

pub struct SqlArgs<'a> {
    pub query: &'a str,
    pub lake: &'a Path,
    pub format: OutputFormat,
    pub token: Option<&'a str>,
    pub purpose: Option<&'a str>,
}

pub async fn run(args: &SqlArgs<'_>, cfg: &Config, config_file: Option<&Path>) -> Result<ExitCode> {
    if !crate::config::lake_exists(args.lake) {
        return Err(Error::NoLake(args.lake.to_path_buf()));
    }
    let started = Instant::now();
    let format = match args.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
    };
    let mut event = AuditEvent::new(Interface::Cli, "local", "sql");
    event.statement = Some(args.query.to_string());
    event.purpose = args.purpose.map(String::from);
    let outcome = match args.token {
        Some(token) => {
            let access = super::access::open(cfg, config_file, args.lake).await?;
            let identity = match access.auth.verify(token) {
                Ok(id) => id,
                Err(why) => {
                    event.outcome = Outcome::Refused;
                    event.reason = Some(format!("authentication: {why}"));
                    record(&access.audit, event, started).await;
                    return Err(hedui_auth::Error::Unauthenticated(why).into());
                }
            };
            describe(&mut event, &identity);
            let result = async {
                let session = access.policy.session(&identity, args.purpose).await?;
                session.run(args.query).await
            }
            .await;
            match result {
                Ok((schema, batches, info, truncated)) => {
                    event.datasets = info.datasets;
                    event.columns = info.columns;
                    event.policies = info.policies;
                    event.rows = Some(batches.iter().map(|b| b.num_rows() as u64).sum());
                    if truncated {
                        event.reason = Some("result cut at the row limit".into());
                    }
                    record(&access.audit, event, started).await;
                    write(format, &schema, &batches)?;
                    if truncated {
                        eprintln!(
                            "note: the result was cut at the row limit ([access.limits] max_rows)"
                        );
                    }
                    Ok(())
                }
                Err(e) => {
                    event.outcome = match e {
                        hedui_policy::Error::Refused(_) => Outcome::Refused,
                        _ => Outcome::Error,
                    };
                    event.reason = Some(e.to_string());
                    record(&access.audit, event, started).await;
                    Err(Error::from(e))
                }
            }
        }
        None => {
            let audit = cfg.open_audit(args.lake)?;
            describe(&mut event, &Identity::local_operator());
            event.policies = vec!["local operator: reads the lake's files directly".into()];
            let engine = Engine::open_with(args.lake, &cfg.engine_options(config_file)?).await?;
            match engine.query(args.query).await {
                Ok((schema, batches)) => {
                    event.rows = Some(batches.iter().map(|b| b.num_rows() as u64).sum());
                    record(&audit, event, started).await;
                    write(format, &schema, &batches)
                }
                Err(e) => {
                    event.outcome = Outcome::Error;
                    event.reason = Some(e.to_string());
                    record(&audit, event, started).await;
                    Err(Error::from(e))
                }
            }
        }
    };
    outcome.map(|_| ExitCode::SUCCESS)
}

fn describe(event: &mut AuditEvent, id: &Identity) {
    event.actor = id.subject.clone();
    event.roles = id.roles.iter().map(|r| r.to_string()).collect();
    event.region = id.region.clone();
}

async fn record(audit: &AuditLog, mut event: AuditEvent, started: Instant) {
    event.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = audit.record(event).await {
        // The query's answer is not given without its audit entry.
        eprintln!("error: the audit log could not be written: {e}");
        std::process::exit(1);
    }
}

fn write(
    format: Format,
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    output::write(&mut lock, format, schema, batches)?;
    Ok(())
}
