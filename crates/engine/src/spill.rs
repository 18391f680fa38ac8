//! Rule runs inside a memory limit: what they spilled, counted, and a second plan that can
//! spill where the first could not.
//!
//! Sorts and aggregations spill to disk when the memory pool is exhausted, but DataFusion's hash
//! join holds its whole build side in memory: on a city too large for the pool a rule with a
//! large join fails with `ResourcesExhausted`. Such a run is planned again with sort-merge joins,
//! which stream both sides in key order and spill their sorts, and run once more. Rules that fit
//! keep the faster hash joins; the ones that do not still complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;

/// What the queries of one engine spilled to disk, added up over its life.
#[derive(Debug, Default)]
pub struct SpillTotals {
    bytes: AtomicU64,
    files: AtomicU64,
    /// Runs planned again with sort-merge joins after the pool ran out.
    replanned: AtomicU64,
}

/// A reading of [`SpillTotals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spilled {
    pub bytes: u64,
    pub files: u64,
    pub replanned: u64,
}

impl Spilled {
    /// `spilled 1070.0 MiB to disk in 304 files (2 runs planned again with sort-merge joins)`, or `None` when
    /// nothing spilled.
    pub fn describe(&self) -> Option<String> {
        if self.bytes == 0 && self.replanned == 0 {
            return None;
        }
        let mut text = format!(
            "spilled {:.1} MiB to disk in {} files",
            self.bytes as f64 / (1024.0 * 1024.0),
            self.files
        );
        if self.replanned > 0 {
            text.push_str(&format!(
                " ({} runs planned again with sort-merge joins)",
                self.replanned
            ));
        }
        Some(text)
    }
}

impl SpillTotals {
    pub fn read(&self) -> Spilled {
        Spilled {
            bytes: self.bytes.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            replanned: self.replanned.load(Ordering::Relaxed),
        }
    }

    fn add(&self, plan: &Arc<dyn ExecutionPlan>) -> Spilled {
        let spilled = plan_spills(plan);
        self.bytes.fetch_add(spilled.bytes, Ordering::Relaxed);
        self.files.fetch_add(spilled.files, Ordering::Relaxed);
        spilled
    }
}

/// Execute `df` and collect its rows, adding what its operators spilled to `totals`; if the
/// memory pool runs out, plan it again with sort-merge joins and run that instead. Returns the
/// rows and what this query spilled.
pub(crate) async fn collect(
    df: DataFrame,
    totals: &SpillTotals,
) -> Result<(Vec<RecordBatch>, Spilled)> {
    let first = run(&df, totals).await;
    match first {
        Err(e) if exhausted(&e) => {
            tracing::warn!(error = %e, "the memory pool ran out; planning the query again with sort-merge joins, which spill");
            totals.replanned.fetch_add(1, Ordering::Relaxed);
            let (state, plan) = df.into_parts();
            // The catalog list is shared with the engine's context: the new session must not
            // put a fresh (empty) default catalog in it. Smaller batches: merging what the
            // sorts spilled holds a batch per spilled run in memory.
            let batch_size = (state.config().batch_size() / 4).max(1024);
            let config = state
                .config()
                .clone()
                .with_create_default_catalog_and_schema(false)
                .with_batch_size(batch_size)
                .set_bool("datafusion.optimizer.prefer_hash_join", false);
            let state = SessionStateBuilder::new_from_existing(state)
                .with_config(config)
                .build();
            let (rows, mut spilled) = run(&DataFrame::new(state, plan), totals).await?;
            spilled.replanned = 1;
            Ok((rows, spilled))
        }
        other => other,
    }
}

async fn run(df: &DataFrame, totals: &SpillTotals) -> Result<(Vec<RecordBatch>, Spilled)> {
    let plan = df.create_physical_plan().await?;
    let task = Arc::new(df.task_ctx());
    let result = datafusion::physical_plan::collect(plan.clone(), task).await;
    // Counted whether or not the run succeeded: a failed attempt's files were written too.
    let spilled = totals.add(&plan);
    Ok((result?, spilled))
}

fn exhausted(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// What the operators of `plan` spilled (their `spilled_bytes` and `spill_count` metrics),
/// over the whole tree.
fn plan_spills(plan: &Arc<dyn ExecutionPlan>) -> Spilled {
    let mut total = plan
        .metrics()
        .map(|m| Spilled {
            bytes: m.spilled_bytes().unwrap_or(0) as u64,
            files: m.spill_count().unwrap_or(0) as u64,
            replanned: 0,
        })
        .unwrap_or_default();
    for child in plan.children() {
        let s = plan_spills(child);
        total.bytes += s.bytes;
        total.files += s.files;
    }
    total
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A join of two 4-million-row inputs on their key: its hash table does not fit in a
    /// 64 MiB pool, its sorts do.
    const JOIN: &str = "SELECT count(*), sum(a.v) FROM \
        (SELECT value AS k, value * 2 AS v FROM range(4000000)) a \
        JOIN (SELECT value AS k FROM range(4000000)) b ON a.k = b.k";

    fn context(pool: Option<usize>) -> SessionContext {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = pool {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
        }
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new().with_target_partitions(2),
            runtime.build_arc().unwrap(),
        );
        let kept = datafusion::datasource::empty::EmptyTable::new(Arc::new(
            datafusion::arrow::datatypes::Schema::empty(),
        ));
        ctx.register_table("kept", Arc::new(kept)).unwrap();
        ctx
    }

    fn answer(rows: &[RecordBatch]) -> (i64, i64) {
        let b = &rows[0];
        (
            b.column(0).as_primitive::<Int64Type>().value(0),
            b.column(1).as_primitive::<Int64Type>().value(0),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_join_too_large_for_the_pool_runs_again_with_sort_merge_joins_that_spill() {
        let pool = 64 * 1024 * 1024;
        let limited = context(Some(pool));
        // As DataFusion plans it by default, the join cannot run in the pool at all.
        let plain = limited.sql(JOIN).await.unwrap().collect().await;
        let err = plain.expect_err("the hash join fits in the pool: the test proves nothing");
        assert!(exhausted(&err), "{err}");

        let totals = SpillTotals::default();
        let df = limited.sql(JOIN).await.unwrap();
        let (rows, spilled) = collect(df, &totals).await.unwrap();
        let free = context(None)
            .sql(JOIN)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        // The second plan's session shares the context's catalogs: its tables are all still
        // there for the queries that come after.
        let after = limited.sql("SELECT count(*) FROM kept").await;
        assert!(after.is_ok(), "the context lost its tables: {after:?}");
        assert_eq!(answer(&rows), answer(&free));
        assert_eq!(answer(&rows).0, 4_000_000);
        assert_eq!(spilled.replanned, 1, "{spilled:?}");
        assert!(spilled.bytes > 0 && spilled.files > 0, "{spilled:?}");
        assert_eq!(totals.read().replanned, 1);
        assert!(totals.read().bytes >= spilled.bytes);
        assert!(totals.read().describe().unwrap().contains("sort-merge"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_that_fits_is_neither_replanned_nor_said_to_spill() {
        let totals = SpillTotals::default();
        let df = context(None).sql(JOIN).await.unwrap();
        let (rows, spilled) = collect(df, &totals).await.unwrap();
        assert_eq!(answer(&rows).0, 4_000_000);
        assert_eq!(spilled, Spilled::default());
        assert_eq!(totals.read().describe(), None);
    }
}
