//! DataFusion over the lake: every canonical dataset registered under its `schemas/` name,
//! reading only the Parquet files of committed, live batches of one snapshot.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use hedui_lake::Snapshot;
use hedui_model::Catalog;
use memory::InMemory;

pub use cluster::Cluster;

pub mod changes;
pub mod check;
pub mod cluster;
pub mod delta;
pub mod evidence;
pub mod household;
mod memory;
pub mod output;
mod regions;
pub mod requirements;
pub mod rules;
pub mod sandbox;
pub mod spill;
pub mod system;

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
    /// The row source (a caller's policy session) refused the read.
    #[error("{0}")]
    Denied(String),
}

/// Where a check reads its rows: the lake itself (the system's own runs over the whole city) or
/// a caller's policy session (checks on behalf of a caller see what the caller may see).
#[async_trait::async_trait]
pub trait RowSource: Send + Sync {
    async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>>;
}

#[async_trait::async_trait]
impl RowSource for Engine {
    async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.lookup(sql).await?.1)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How much the engine may use. Beyond the memory limit, sorts, joins and aggregations spill to
/// the spill directory instead of failing or taking the machine down.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Bytes for all queries of the session; `None` means no limit.
    pub memory_limit: Option<usize>,
    /// Where operators spill; `None` means the system's temporary directory.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Partitions a query is split into; 0 means one per core.
    pub target_partitions: usize,
    /// Where whole rule runs go: this process (`None`) or a Ballista cluster.
    pub cluster: Option<Cluster>,
}

/// Bytes from (for memory limits in settings) `4GiB`, `512MiB`, `64KiB`, `1GB` or a plain number.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        _ => return None,
    };
    Some((n * mult) as usize)
}

/// A query session over one snapshot of the lake.
pub struct Engine {
    ctx: SessionContext,
    /// The same tables, tuned for selective lookups (see `with_snapshot`).
    lookup: SessionContext,
    /// The same tables on a Ballista cluster, for whole rule runs, when one is configured.
    cluster: Option<SessionContext>,
    snapshot: Snapshot,
    options: EngineOptions,
    /// What this engine's rule runs spilled to disk (a memory limit makes them spill).
    spill: Arc<spill::SpillTotals>,
}

/// What analysts may run: queries only. No DDL (CREATE EXTERNAL TABLE reads files), no DML or
/// COPY (writes files), no SET or other statements (engine settings).
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl Engine {
    /// Open the lake at `lake` as of now, with default options.
    pub async fn open(lake: &Path) -> Result<Engine> {
        Self::open_with(lake, &EngineOptions::default()).await
    }

    /// Open the lake at `lake` (a directory, or `s3://bucket/prefix` for a lake on object
    /// storage) as of now.
    pub async fn open_with(lake: &Path, options: &EngineOptions) -> Result<Engine> {
        let snapshot = match hedui_lake::object_store_url(lake) {
            Some(url) => hedui_lake::RemoteLake::from_env(url)?.snapshot().await?,
            None => Snapshot::load(lake)?,
        };
        Self::with_snapshot(snapshot, options).await
    }

    pub async fn with_snapshot(snapshot: Snapshot, options: &EngineOptions) -> Result<Engine> {
        let partitions = match options.target_partitions {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        // Any DataFusion option can be tuned by the operator through its `DATAFUSION_*`
        // environment variable (as in datafusion-cli), e.g. to measure a setting; hedui's own
        // settings come after and win.
        let config = SessionConfig::from_env()?
            .with_information_schema(true)
            .with_target_partitions(partitions);
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = options.memory_limit {
            // An exhausted pool's error names its five largest consumers (for the server log).
            runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes),
                std::num::NonZeroUsize::new(5).expect("five"),
            )));
        }
        if let Some(dir) = &options.spill_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Query(format!("spill directory {}: {e}", dir.display())))?;
            runtime = runtime.with_disk_manager_builder(
                DiskManagerBuilder::default()
                    .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
            );
        }
        if matches!(options.cluster, Some(Cluster::Scheduler(_))) && snapshot.remote().is_none() {
            return Err(Error::Query(format!(
                "a Ballista cluster's executors cannot read the lake {} on this machine's disk: publish it to object storage (`hedui publish --to s3://bucket/prefix`) and run over that",
                snapshot.root().display()
            )));
        }
        let runtime = runtime.build_arc()?;
        if let Some(remote) = snapshot.remote() {
            runtime.register_object_store(remote.bucket_url(), remote.store());
        }
        let ctx = SessionContext::new_with_config_rt(config.clone(), runtime.clone());
        register_lake(&ctx, &snapshot, InMemory::Table).await?;
        let cluster = match &options.cluster {
            None => None,
            Some(cluster) => {
                let state = datafusion::execution::SessionStateBuilder::new()
                    .with_config(config)
                    .with_runtime_env(runtime)
                    .with_default_features()
                    .build();
                let ctx = cluster::session(cluster, state).await?;
                register_lake(&ctx, &snapshot, InMemory::Inline).await?;
                Some(ctx)
            }
        };
        // Point lookups (a few persons' rows, evidence rows) filter while decoding: only the key
        // column is decoded for every row of a row group the bloom filter could not rule out,
        // the other columns for the matching rows. Whole-table rule queries keep the default.
        // The catalog list is shared: the copy must not make a fresh (empty) default catalog.
        let lookup_config = ctx
            .copied_config()
            .with_create_default_catalog_and_schema(false)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let lookup = SessionContext::new_with_state(
            datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
                .with_config(lookup_config)
                .build(),
        );
        Ok(Engine {
            ctx,
            lookup,
            cluster,
            snapshot,
            options: options.clone(),
            spill: Arc::default(),
        })
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// What this engine's rule runs have spilled to disk so far (runs on a cluster spill on
    /// its executors and are not counted here).
    pub fn spilled(&self) -> spill::Spilled {
        self.spill.read()
    }

    /// Whether whole rule runs go to a Ballista cluster.
    pub fn on_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// Run one read-only query and collect its result.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        collect(&self.ctx, sql).await
    }

    /// A query that selects a few rows by key (household verification, evidence, regions).
    pub async fn lookup(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        collect(&self.lookup, sql).await
    }
}

/// Every canonical dataset of `snapshot` under its name, and hedui's own tables and views;
/// tables held in memory in the form `memory`.
async fn register_lake(ctx: &SessionContext, snapshot: &Snapshot, memory: InMemory) -> Result<()> {
    for def in Catalog::builtin().iter() {
        let schema = def.arrow_schema();
        let files = snapshot.file_urls(&def.name);
        if files.is_empty() {
            let table = memory::table(schema.clone(), vec![], memory)?;
            ctx.register_table(def.name.as_str(), table)?;
            continue;
        }
        ctx.register_table(def.name.as_str(), parquet_table(&files, schema)?)?;
    }
    system::register(ctx, snapshot, memory).await
}

/// A table over these Parquet files (paths or object store URLs) of one dataset, read with the
/// dataset's schema.
pub(crate) fn parquet_table(files: &[String], schema: SchemaRef) -> Result<Arc<ListingTable>> {
    let urls = files
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = ctx
        .sql_with_options(sql, read_only())
        .await
        .map_err(user_error)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(user_error)?;
    Ok((schema, batches))
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
