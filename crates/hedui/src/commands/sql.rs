use std::path::Path;
use std::process::ExitCode;

use hedui_engine::Engine;
use hedui_engine::output::{self, Format};

use crate::cli::OutputFormat;
use crate::error::{Error, Result};

pub async fn run(
    query: &str,
    lake: &Path,
    format: OutputFormat,
    options: &hedui_engine::EngineOptions,
) -> Result<ExitCode> {
    if !lake.join(hedui_lake::LOG_DIR).is_dir() {
        return Err(Error::NoLake(lake.to_path_buf()));
    }
    let engine = Engine::open_with(lake, options).await?;
    let (schema, batches) = engine.query(query).await?;
    let format = match format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    output::write(&mut lock, format, &schema, &batches)?;
    Ok(ExitCode::SUCCESS)
}
