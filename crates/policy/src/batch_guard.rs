//! Every batch a projection of a caller's query produces is bounded by the query's memory
//! limit. DataFusion's memory pool counts what operators hold (sorts, joins, aggregations),
//! not the batches scalar functions make; `concat(x, x)` stacked in a chain of CTEs doubles a
//! value at every step. A guard after each projection stops the query once one batch outgrows
//! the limit, so such a chain allocates at most about twice the limit before it fails.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// Wraps every projection in a [`BatchGuardExec`].
#[derive(Debug)]
pub struct GuardProjections {
    pub max_batch_bytes: usize,
}

impl PhysicalOptimizerRule for GuardProjections {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.downcast_ref::<ProjectionExec>().is_some() {
                Ok(Transformed::yes(Arc::new(BatchGuardExec {
                    input: node,
                    max_batch_bytes: self.max_batch_bytes,
                })
                    as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hedui_guard_projections"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Passes its input's batches on, failing the query at the first one larger than the limit.
#[derive(Debug)]
pub struct BatchGuardExec {
    input: Arc<dyn ExecutionPlan>,
    max_batch_bytes: usize,
}

impl DisplayAs for BatchGuardExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "BatchGuardExec: max_batch_bytes={}",
            self.max_batch_bytes
        )
    }
}

impl ExecutionPlan for BatchGuardExec {
    fn name(&self) -> &str {
        "BatchGuardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(BatchGuardExec {
            input: children.swap_remove(0),
            max_batch_bytes: self.max_batch_bytes,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let limit = self.max_batch_bytes;
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let guarded = input.map(move |batch| {
            let batch = batch?;
            let bytes = batch.get_array_memory_size();
            if bytes > limit {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "a batch of {bytes} bytes is larger than the query's memory limit of {limit}"
                )));
            }
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, guarded)))
    }
}
