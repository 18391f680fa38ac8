mod check;
mod demo;
mod generate;
mod ingest;
mod sql;

use std::process::ExitCode;

use crate::cli::Command;
use crate::error::Result;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/connectors.rs"));
}

pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Generate { persons, seed, out } => generate::run(persons, seed, &out),
        Command::Ingest {
            connectors,
            data,
            lake,
            report,
        } => ingest::run(&connectors, &data, &lake, report.as_deref()),
        Command::Sql {
            query,
            lake,
            format,
        } => sql::run(&query, &lake, format).await,
        Command::Check {
            rules,
            lake,
            format,
            out,
            rules_dir,
            params,
        } => {
            check::run(&check::CheckArgs {
                rules,
                lake,
                format,
                out,
                rules_dir,
                params: params.into_iter().collect(),
            })
            .await
        }
        Command::Demo { dir, persons, seed } => demo::run(&dir, persons, seed).await,
    }
}
