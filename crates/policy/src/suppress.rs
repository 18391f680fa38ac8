//! Aggregate-only roles: the query must end in an aggregation, and a cell describing fewer than
//! the threshold of people is not shown. The plan is rewritten to count the distinct persons (or
//! households) behind each result row — not its rows: one person's twelve tax months are one
//! person — by their pseudonymous key, added to the aggregation and carried up to the result; a
//! count of such a cell is shown as `<N`, and any other aggregate of it is left empty, because
//! the sum of one person's income is that person's income.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringBuilder};
use arrow::compute::kernels::cmp::lt;
use arrow::compute::{cast, nullif};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Column;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::functions_aggregate::expr_fn::count_distinct;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection};

use crate::lineage::{self, Reveals};

const CELL_N: &str = "__hedui_cell_n";
/// Aggregates that do not reveal one person's value on their own.
const SAFE_AGGREGATES: &[&str] = &["count", "sum", "avg", "mean"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Count,
    Aggregate,
}

/// How to suppress a rewritten query's result.
#[derive(Debug, Clone)]
pub struct Suppression {
    threshold: i64,
    kinds: Vec<Kind>,
    schema: SchemaRef,
}

fn refuse(why: &str) -> String {
    format!("your role sees aggregates only (GROUP BY with count, sum or avg): {why}")
}

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ))
    })
    .unwrap_or(true)
}

fn add_cell_count(plan: &LogicalPlan) -> Result<LogicalPlan, String> {
    if plan.expressions().iter().any(has_subquery) {
        return Err(refuse(
            "a subquery above the aggregation could show single rows",
        ));
    }
    let rebuild = |input: LogicalPlan| {
        plan.with_new_exprs(plan.expressions(), vec![input])
            .map_err(|e| e.to_string())
    };
    match plan {
        LogicalPlan::Aggregate(a) => {
            let unit = counted_unit(&a.input).ok_or_else(|| {
                refuse(
                    "the rows aggregated must carry the person or household they are about (a `_key` or household number column), so that small cells can be counted in persons",
                )
            })?;
            for e in &a.aggr_expr {
                let mut name = None;
                let _ = e.apply(|e| {
                    if let Expr::AggregateFunction(f) = e {
                        name = Some(f.func.name().to_lowercase());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
                match name {
                    Some(n) if SAFE_AGGREGATES.contains(&n.as_str()) => {}
                    Some(n) => {
                        return Err(refuse(&format!("`{n}` can show a single person's value")));
                    }
                    None => return Err(refuse("an aggregate expression was not understood")),
                }
            }
            let mut aggr = a.aggr_expr.clone();
            aggr.push(count_distinct(unit).alias(CELL_N));
            Aggregate::try_new(a.input.clone(), a.group_expr.clone(), aggr)
                .map(LogicalPlan::Aggregate)
                .map_err(|e| e.to_string())
        }
        LogicalPlan::Projection(p) => {
            let input = add_cell_count(&p.input)?;
            let mut exprs = p.expr.clone();
            exprs.push(Expr::Column(Column::from_name(CELL_N)));
            Projection::try_new(exprs, Arc::new(input))
                .map(LogicalPlan::Projection)
                .map_err(|e| e.to_string())
        }
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_) => {
            let input = add_cell_count(plan.inputs()[0])?;
            rebuild(input)
        }
        _ => Err(refuse("the result is not an aggregation")),
    }
}

/// The column of an aggregation's input that says whom a row is about: the first pseudonymous
/// ID key, else the first other identifying column (a household number).
fn counted_unit(input: &LogicalPlan) -> Option<Expr> {
    let (classes, _) = lineage::analyse(input);
    let schema = input.schema();
    let identifying: Vec<usize> = classes
        .all()
        .iter()
        .enumerate()
        .filter(|(_, r)| **r == Reveals::Identifier)
        .map(|(i, _)| i)
        .collect();
    let key = identifying
        .iter()
        .find(|i| schema.field(**i).name().ends_with("_key"))
        .or(identifying.first())?;
    Some(Expr::Column(Column::from(schema.qualified_field(*key))))
}

/// An expression without its aliases (the SQL planner can stack two: `count(*) AS n`).
fn strip(mut e: &Expr) -> &Expr {
    while let Expr::Alias(a) = e {
        e = &a.expr;
    }
    e
}

fn kinds(plan: &LogicalPlan) -> Vec<Kind> {
    match plan {
        LogicalPlan::Aggregate(a) => {
            let mut k = vec![Kind::Key; a.group_expr.len()];
            for e in &a.aggr_expr {
                let is_count = matches!(strip(e), Expr::AggregateFunction(f) if f.func.name().eq_ignore_ascii_case("count"));
                k.push(if is_count {
                    Kind::Count
                } else {
                    Kind::Aggregate
                });
            }
            // Grouping sets add an internal id column.
            k.resize(plan.schema().fields().len(), Kind::Aggregate);
            k
        }
        LogicalPlan::Projection(p) => {
            let below = kinds(&p.input);
            p.expr
                .iter()
                .map(|e| {
                    let kind_of = |c: &Column| {
                        p.input
                            .schema()
                            .index_of_column(c)
                            .map(|i| below[i])
                            .unwrap_or(Kind::Aggregate)
                    };
                    match strip(e) {
                        Expr::Column(c) => kind_of(c),
                        other => {
                            let refs = other.column_refs();
                            if !refs.is_empty() && refs.iter().all(|c| kind_of(c) == Kind::Key) {
                                Kind::Key
                            } else {
                                Kind::Aggregate
                            }
                        }
                    }
                })
                .collect()
        }
        other => other.inputs().first().map(|i| kinds(i)).unwrap_or_default(),
    }
}

/// Rewrite `plan` so its result can be suppressed; refuse a plan that is not an aggregation.
pub fn rewrite(plan: &LogicalPlan, threshold: u64) -> Result<(LogicalPlan, Suppression), String> {
    let rewritten = add_cell_count(plan)?;
    let mut kinds = kinds(&rewritten);
    kinds.pop(); // the cell count itself
    let fields = rewritten.schema().fields();
    let out: Vec<Field> = fields
        .iter()
        .take(kinds.len())
        .zip(&kinds)
        .map(|(f, k)| match k {
            Kind::Count => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    Ok((
        rewritten,
        Suppression {
            threshold: threshold as i64,
            kinds,
            schema: Arc::new(Schema::new(out)),
        },
    ))
}

impl Suppression {
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// One batch of the rewritten plan's result, suppressed, without the cell count.
    pub fn apply(&self, batch: &RecordBatch) -> arrow::error::Result<RecordBatch> {
        let n = cast(batch.column(batch.num_columns() - 1), &DataType::Int64)?;
        let threshold = Int64Array::new_scalar(self.threshold);
        let small: BooleanArray = lt(&n, &threshold)?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.kinds.len());
        for (i, kind) in self.kinds.iter().enumerate() {
            let col = batch.column(i);
            columns.push(match kind {
                Kind::Key => col.clone(),
                Kind::Aggregate => nullif(col, &small)?,
                Kind::Count => {
                    let values = cast(col, &DataType::Int64)?;
                    let values = values
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .expect("cast to Int64");
                    let mut b = StringBuilder::new();
                    for row in 0..values.len() {
                        if values.is_null(row) {
                            b.append_null();
                        } else if small.value(row) || values.value(row) < self.threshold {
                            b.append_value(format!("<{}", self.threshold));
                        } else {
                            b.append_value(values.value(row).to_string());
                        }
                    }
                    Arc::new(b.finish())
                }
            });
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}
