mod access;
mod audit;
mod check;
mod demo;
mod generate;
mod ingest;
mod publish;
mod pull;
mod rules;
mod serve;
mod sql;
mod token;

use std::process::ExitCode;

use crate::cli::Command;
use crate::error::Result;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/connectors.rs"));
}

pub async fn run(command: Command, config: Option<std::path::PathBuf>) -> Result<ExitCode> {
    // Only the commands that work on a city's lake read its settings.
    let settings = || crate::config::Config::load(config.as_deref());
    match command {
        Command::Generate { persons, seed, out } => generate::run(persons, seed, &out),
        Command::Ingest {
            connectors,
            data,
            lake,
            report,
            threads,
        } => {
            let lake = lake.unwrap_or(settings()?.lake.path);
            ingest::run(&connectors, &data, &lake, report.as_deref(), threads)
        }
        Command::Pull {
            source,
            connectors,
            lake,
            report,
            accept_schema,
            compare_keys,
        } => {
            let lake = lake.unwrap_or(settings()?.lake.path);
            let opts = hedui_ingest::PullOptions {
                accept_schema,
                compare_keys,
            };
            pull::run(&source, &connectors, &lake, &opts, report.as_deref())
        }
        Command::Sql {
            query,
            lake,
            format,
            token,
            purpose,
        } => {
            let cfg = settings()?;
            let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
            sql::run(
                &sql::SqlArgs {
                    query: &query,
                    lake: &lake,
                    format,
                    token: token.as_deref().filter(|t| !t.is_empty()),
                    purpose: purpose.as_deref(),
                },
                &cfg,
                config.as_deref(),
            )
            .await
        }
        Command::Publish { lake, to } => {
            let lake = lake.unwrap_or(settings()?.lake.path);
            publish::run(&lake, &to).await
        }
        Command::Serve {
            lake,
            http,
            pg,
            connectors,
        } => {
            let mut cfg = settings()?;
            if connectors.is_some() {
                cfg.sources.connectors = connectors;
            }
            let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
            serve::run(&cfg, config.as_deref(), &lake, http, pg).await
        }
        Command::Token {
            roles,
            region,
            ttl,
            subject,
            department,
            lake,
        } => {
            let cfg = settings()?;
            let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
            token::run(
                token::TokenArgs {
                    roles,
                    region,
                    ttl,
                    subject,
                    department,
                },
                &cfg,
                &lake,
            )
        }
        Command::Audit { action } => {
            let cfg = settings()?;
            match action {
                crate::cli::AuditAction::Verify {
                    log,
                    lake,
                    public_key,
                } => {
                    let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
                    let log = log.unwrap_or_else(|| cfg.audit_path(&lake));
                    audit::verify(&cfg, &log, public_key.as_deref())
                }
                crate::cli::AuditAction::Export { out, log, lake } => {
                    let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
                    let log = log.unwrap_or_else(|| cfg.audit_path(&lake));
                    audit::export(&cfg, &lake, &log, &out)
                }
            }
        }
        Command::Check {
            rules,
            lake,
            format,
            out,
            rules_dir,
            params,
            cases,
            rerun,
            changed,
        } => {
            let cfg = settings()?;
            // The file's parameters, then the command line's.
            let mut values = cfg.rules.parameters.clone();
            values.extend(params);
            let lake = lake.unwrap_or_else(|| cfg.lake.path.clone());
            let cases = cases
                .or_else(|| Some(cfg.cases.url.clone()).filter(|u| !u.is_empty()))
                .unwrap_or_else(|| check::default_cases_url(&lake));
            check::run(&check::CheckArgs {
                rules,
                lake,
                cases,
                rerun,
                changed,
                format,
                out,
                rules_dir: rules_dir.or_else(|| cfg.rules.dir.clone()),
                params: values,
                engine: cfg.engine_options(config.as_deref())?,
                workflow: cfg.cases.workflow.clone(),
            })
            .await
        }
        Command::Rules { action } => {
            let cfg = settings()?;
            rules::run(action, &cfg)
        }
        Command::Demo {
            dir,
            persons,
            seed,
            no_serve,
            http,
            pg,
        } => {
            let serve = demo::Serve {
                enabled: !no_serve,
                http,
                pg,
            };
            demo::run(&dir, persons, seed, serve).await
        }
    }
}
