//! Row scopes inside the scan. A region-scoped caller's table yields only the rows of their
//! region, so no expression of theirs ever sees another region's row: not a filter the optimiser
//! pushed down, not a cast that fails and would quote its value, not a join key. Only filters
//! that compare a bare column with constants (which can neither fail nor say anything) go down
//! to the files, to prune row groups; the caller's other filters stay above the scope.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Scalar, StringArray};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

/// Which rows of a table a caller may see.
#[derive(Debug)]
pub enum Scope {
    /// Rows whose region code column starts with the caller's region.
    Prefix { column: String, prefix: String },
    /// Rows whose ID key column is the key of a person registered in the caller's region.
    Keys {
        column: String,
        keys: Arc<HashSet<i64>>,
    },
    /// Rows whose household number is that of a household headed in the caller's region.
    Values {
        column: String,
        values: Arc<HashSet<String>>,
    },
}

impl Scope {
    fn column(&self) -> &str {
        match self {
            Scope::Prefix { column, .. }
            | Scope::Keys { column, .. }
            | Scope::Values { column, .. } => column,
        }
    }

    /// Which rows of `array` (the scope column) are in scope; a null is never in scope.
    fn rows(&self, array: &ArrayRef) -> DfResult<BooleanArray> {
        Ok(match self {
            Scope::Prefix { prefix, .. } => {
                let strings = cast(array, &DataType::Utf8)?;
                let prefix = Scalar::new(StringArray::from(vec![prefix.as_str()]));
                // A null (no region) is not in scope: the filter takes nulls as false.
                arrow::compute::kernels::comparison::starts_with(&strings, &prefix)?
            }
            Scope::Keys { keys, .. } => {
                let ints = cast(array, &DataType::Int64)?;
                ints.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| Some(v.is_some_and(|k| keys.contains(&k))))
                    .collect()
            }
            Scope::Values { values, .. } => {
                let strings = cast(array, &DataType::Utf8)?;
                strings
                    .as_string::<i32>()
                    .iter()
                    .map(|v| Some(v.is_some_and(|s| values.contains(s))))
                    .collect()
            }
        })
    }
}

/// A lake table as a scoped caller sees it.
#[derive(Debug)]
pub struct ScopedTable {
    inner: Arc<dyn TableProvider>,
    scope: Arc<Scope>,
}

impl ScopedTable {
    pub fn new(inner: Arc<dyn TableProvider>, scope: Scope) -> ScopedTable {
        ScopedTable {
            inner,
            scope: Arc::new(scope),
        }
    }
}

/// A filter that can go down to the files: a bare column against constants. It cannot fail on
/// any value, so evaluating it on rows outside the scope tells nobody anything.
fn harmless(e: &Expr) -> bool {
    let bare = |e: &Expr| matches!(e, Expr::Column(_));
    let constant = |e: &Expr| matches!(e, Expr::Literal(..));
    match e {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And | Operator::Or => harmless(&b.left) && harmless(&b.right),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => {
                (bare(&b.left) && constant(&b.right)) || (constant(&b.left) && bare(&b.right))
            }
            _ => false,
        },
        Expr::InList(l) => bare(&l.expr) && l.list.iter().all(constant),
        Expr::IsNull(c) | Expr::IsNotNull(c) => bare(c),
        Expr::Between(b) => bare(&b.expr) && constant(&b.low) && constant(&b.high),
        _ => false,
    }
}

#[async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if harmless(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.inner.schema();
        let scope_index = schema.index_of(self.scope.column())?;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let mut read = wanted.clone();
        if !read.contains(&scope_index) {
            read.push(scope_index);
        }
        let scope_column = read
            .iter()
            .position(|i| *i == scope_index)
            .expect("scope column read");
        let harmless: Vec<Expr> = filters.iter().filter(|f| harmless(f)).cloned().collect();
        // No limit below the scope: the first rows read may all be out of it.
        let input = self.inner.scan(state, Some(&read), &harmless, None).await?;
        Ok(Arc::new(ScopeExec::new(
            input,
            self.scope.clone(),
            scope_column,
            (0..wanted.len()).collect(),
            limit,
        )?))
    }
}

/// Passes on only the rows in scope, then drops the scope column if the query did not ask for
/// it. It takes no filters from above: the physical optimiser cannot move one below it.
#[derive(Debug)]
struct ScopeExec {
    input: Arc<dyn ExecutionPlan>,
    scope: Arc<Scope>,
    scope_column: usize,
    output: Vec<usize>,
    fetch: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl ScopeExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        scope: Arc<Scope>,
        scope_column: usize,
        output: Vec<usize>,
        fetch: Option<usize>,
    ) -> DfResult<ScopeExec> {
        let schema = Arc::new(input.schema().project(&output)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(
                input.properties().output_partitioning().partition_count(),
            ),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(ScopeExec {
            input,
            scope,
            scope_column,
            output,
            fetch,
            schema,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for ScopeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ScopeExec: rows of the caller's region")
    }
}

impl ExecutionPlan for ScopeExec {
    fn name(&self) -> &str {
        "ScopeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal("ScopeExec has one input".into()));
        }
        Ok(Arc::new(ScopeExec::new(
            children.remove(0),
            self.scope.clone(),
            self.scope_column,
            self.output.clone(),
            self.fetch,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let scope = self.scope.clone();
        let column = self.scope_column;
        let output = self.output.clone();
        let fetch = self.fetch.unwrap_or(usize::MAX);
        // Stops reading once the limit's rows are out; an empty batch (no row in scope) is not
        // the end.
        let stream = input.scan(fetch, move |left, batch| {
            if *left == 0 {
                return futures::future::ready(None);
            }
            let kept = batch.and_then(|batch| {
                let keep = scope.rows(batch.column(column))?;
                let kept = filter_record_batch(&batch, &keep)?.project(&output)?;
                Ok(kept.slice(0, kept.num_rows().min(*left)))
            });
            if let Ok(k) = &kept {
                *left -= k.num_rows();
            }
            futures::future::ready(Some(kept))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
