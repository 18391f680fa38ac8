//! Rule suites on a Ballista cluster: the same rules, planned here and run by the cluster's
//! executors over the lake's files (on object storage, so that every executor reads them).
//!
//! Only whole rule runs go to the cluster: they scan whole datasets, which is what a cluster
//! spreads. Evidence lookups, cut-down runs for a few subjects and analysts' queries (with their
//! policies' functions, which executors do not have) stay on this machine's engine.

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use tokio::sync::OnceCell;

use crate::Result;

/// Where whole rule runs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    /// A scheduler and an executor started inside this process, once, for all its engines:
    /// for trying a cluster out and for tests.
    Standalone,
    /// A running Ballista scheduler, `df://host:50050`.
    Scheduler(String),
}

impl Cluster {
    /// `standalone` or a scheduler address (`df://host:port`).
    pub fn parse(text: &str) -> Option<Cluster> {
        match text.trim() {
            "standalone" => Some(Cluster::Standalone),
            url if url.starts_with("df://") && url.len() > "df://".len() => {
                Some(Cluster::Scheduler(url.to_string()))
            }
            _ => None,
        }
    }
}

/// The in-process scheduler's address once started. Its executor reads with the runtime (object
/// stores) of the first engine that asked: every engine of one process reads the same lake.
static STANDALONE: OnceCell<String> = OnceCell::const_new();

/// A session whose queries run on the cluster, with `state`'s settings and object stores.
pub(crate) async fn session(cluster: &Cluster, mut state: SessionState) -> Result<SessionContext> {
    // Ballista's scheduler re-selects join sides when it resolves a stage, after this planner
    // has built dynamic filters into the joins, and fails the stage if any exist (then waits on
    // it forever). A cluster run scans whole datasets: the filters would save little.
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    let scheduler = match cluster {
        Cluster::Scheduler(url) => url.clone(),
        Cluster::Standalone => STANDALONE
            .get_or_try_init(|| start_standalone(&state))
            .await?
            .clone(),
    };
    Ok(SessionContext::remote_with_state(&scheduler, state).await?)
}

/// Start a scheduler and one executor in this process, as Ballista's own standalone mode does,
/// and give the scheduler's address.
async fn start_standalone(state: &SessionState) -> Result<String, DataFusionError> {
    let config = |e: Box<dyn std::fmt::Display>| DataFusionError::Configuration(e.to_string());
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_from_state(state)
        .await
        .map_err(|e| config(Box::new(e)))?;
    let url = format!("http://localhost:{}", addr.port());
    let mut attempts = 0;
    let scheduler = loop {
        match SchedulerGrpcClient::connect(url.clone()).await {
            Ok(client) => break client,
            Err(e) if attempts == 100 => return Err(config(Box::new(e))),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
        }
    };
    let vcores = state.config().ballista_standalone_parallelism();
    ballista_executor::new_standalone_executor_from_state(scheduler, vcores, state)
        .await
        .map_err(|e| config(Box::new(e)))?;
    tracing::info!(scheduler = %url, vcores, "in-process Ballista cluster started");
    Ok(url)
}
