//! Tables this process holds in memory (the `batches` list, datasets with no rows yet), in the
//! form the session that reads them can use.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan, LogicalPlanBuilder, col, lit};

use crate::Result;

/// How a table held in this process's memory is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InMemory {
    /// A memory table, which policies wrap like any other table.
    Table,
    /// A view over its rows written out as literals, planned into each query: a cluster's
    /// executors cannot read a table in this process's memory, but they run a plan's values.
    Inline,
}

/// `batches` (rows of `schema`) as a table of the form `how`.
pub(crate) fn table(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    how: InMemory,
) -> Result<Arc<dyn TableProvider>> {
    if how == InMemory::Table {
        return Ok(Arc::new(MemTable::try_new(schema, vec![batches])?));
    }
    let df_schema = Arc::new(DFSchema::try_from(schema.as_ref().clone())?);
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row).map(lit))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            rows.push(values);
        }
    }
    let plan = if rows.is_empty() {
        LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: df_schema,
        })
    } else {
        // VALUES names its columns column1, column2, …: give them the table's names.
        let named = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| col(format!("column{}", i + 1)).alias(field.name()));
        LogicalPlanBuilder::values_with_schema(rows, &df_schema)?
            .project(named)?
            .build()?
    };
    Ok(Arc::new(ViewTable::new(plan, None)))
}
