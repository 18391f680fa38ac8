//! DataFusion over the lake: every canonical dataset registered under its `schemas/` name,
//! reading only the Parquet files of committed, live batches of one snapshot.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use hedui_lake::Snapshot;
use hedui_model::Catalog;

pub mod check;
pub mod evidence;
pub mod output;
pub mod rules;
pub mod sandbox;
mod system;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] hedui_lake::Error),
    /// The query itself is wrong or not allowed; the message is for the person who wrote it.
    #[error("{0}")]
    Query(String),
    #[error("internal query engine error: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    #[error("formatting results: {0}")]
    Output(#[from] datafusion::arrow::error::ArrowError),
    /// A rule is broken (metadata, parameters or SQL); nothing has run.
    #[error("rule {origin}: {message}")]
    Rule { origin: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A query session over one snapshot of the lake.
pub struct Engine {
    ctx: SessionContext,
    snapshot: Snapshot,
}

/// What analysts may run: queries only. No DDL (CREATE EXTERNAL TABLE reads files), no DML or
/// COPY (writes files), no SET or other statements (engine settings).
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl Engine {
    /// Open the lake at `lake` as of now.
    pub async fn open(lake: &Path) -> Result<Engine> {
        let snapshot = Snapshot::load(lake)?;
        Self::with_snapshot(snapshot).await
    }

    pub async fn with_snapshot(snapshot: Snapshot) -> Result<Engine> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config(config);
        for def in Catalog::builtin().iter() {
            let schema = def.arrow_schema();
            let files = snapshot.files(&def.name);
            if files.is_empty() {
                let empty = MemTable::try_new(schema.clone(), vec![vec![]])?;
                ctx.register_table(def.name.as_str(), Arc::new(empty))?;
                continue;
            }
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema);
            ctx.register_table(def.name.as_str(), Arc::new(ListingTable::try_new(config)?))?;
        }
        system::register(&ctx, &snapshot).await?;
        Ok(Engine { ctx, snapshot })
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Run one read-only query and collect its result.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self
            .ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(user_error)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(user_error)?;
        Ok((schema, batches))
    }
}

/// Planning errors are the user's to fix; say them plainly, on one line.
fn user_error(e: datafusion::error::DataFusionError) -> Error {
    use datafusion::error::DataFusionError as D;
    let root = e.find_root();
    match root {
        D::SQL(..)
        | D::Plan(..)
        | D::SchemaError(..)
        | D::NotImplemented(..)
        | D::Configuration(..) => {
            let message = root.to_string();
            Error::Query(message.lines().next().unwrap_or_default().to_string())
        }
        _ => Error::Engine(e),
    }
}
