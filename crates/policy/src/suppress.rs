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
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions::math::expr_fn::random;
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::cast as cast_expr;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, Projection, lit, when,
};

use crate::lineage::{self, Reveals};
use crate::privacy::Privacy;

const CELL_N: &str = "__hedui_cell_n";

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
    /// Rows whose noisy person count is below this are left out (grouped answers).
    release_at: Option<f64>,
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

/// What the private aggregation found out about its cells.
#[derive(Debug, Clone, Copy)]
struct Cells {
    /// Grouped: which rows exist depends on the data.
    grouped: bool,
    /// The noise scale of the person count.
    count_scale: f64,
}

fn add_cell_count(plan: &LogicalPlan, privacy: &Privacy) -> Result<(LogicalPlan, Cells), String> {
    if plan.expressions().iter().any(has_subquery) {
        return Err(refuse(
            "a subquery above the aggregation could show single rows",
        ));
    }
    let rebuild = |(input, cells): (LogicalPlan, Cells)| {
        plan.with_new_exprs(plan.expressions(), vec![input])
            .map(|p| (p, cells))
            .map_err(|e| e.to_string())
    };
    match plan {
        LogicalPlan::Aggregate(a) => private_aggregate(a, privacy),
        LogicalPlan::Projection(p) => {
            let (input, cells) = add_cell_count(&p.input, privacy)?;
            let mut exprs = p.expr.clone();
            exprs.push(Expr::Column(Column::from_name(CELL_N)));
            Projection::try_new(exprs, Arc::new(input))
                .map(|p| (LogicalPlan::Projection(p), cells))
                .map_err(|e| e.to_string())
        }
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_) => {
            let input = add_cell_count(plan.inputs()[0], privacy)?;
            rebuild(input)
        }
        _ => Err(refuse("the result is not an aggregation")),
    }
}

/// One aggregate of the query, as the private aggregation computes it.
enum Figure {
    /// `count(x)`, or `count(DISTINCT unit)` (persons: at most one per person).
    Count {
        per_person: u32,
    },
    Sum,
    /// The mean of each person's mean: a noisy sum of the persons' means over a noisy count
    /// of the persons.
    Avg,
}

fn col_of(plan: &LogicalPlan, i: usize) -> Expr {
    Expr::Column(Column::from(plan.schema().qualified_field(i)))
}

fn internal(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The aggregation `a`, made differentially private:
///
/// 1. per cell and person (the counted unit): each aggregate's partial value (an average's is
///    the person's mean);
/// 2. each partial clamped (a count to `rows_per_person`, a sum to `±sum_bound`);
/// 3. each person kept in at most `groups_per_person` cells, chosen at random;
/// 4. per cell: the sums of the partials and the number of persons;
/// 5. Laplace noise on each of these, scaled to one person's largest effect on it and to an
///    equal share of the query's ε; an average is the noisy sum over the noisy count.
///
/// Whatever sits above (HAVING, ORDER BY, arithmetic) sees only the noisy figures.
fn private_aggregate(a: &Aggregate, privacy: &Privacy) -> Result<(LogicalPlan, Cells), String> {
    if a.group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err(refuse("ROLLUP, CUBE and GROUPING SETS are not available"));
    }
    let unit = counted_unit(&a.input).ok_or_else(|| {
        refuse(
            "the rows aggregated must carry the person or household they are about (a `_key` or household number column), so that each person's part can be bounded",
        )
    })?;
    let cfg = &privacy.config;
    let ng = a.group_expr.len();
    // Step 1: partials per cell and person.
    let mut figures = Vec::new();
    let mut partials = Vec::new();
    for (i, e) in a.aggr_expr.iter().enumerate() {
        let Expr::AggregateFunction(f) = strip(e) else {
            return Err(refuse("an aggregate expression was not understood"));
        };
        let name = f.func.name().to_lowercase();
        let p = &f.params;
        if !p.order_by.is_empty() {
            return Err(refuse("ordered aggregates are not available"));
        }
        let partial = |func: Arc<datafusion::logical_expr::AggregateUDF>, distinct: bool| {
            Expr::AggregateFunction(AggregateFunction::new_udf(
                func,
                p.args.clone(),
                distinct,
                p.filter.clone(),
                vec![],
                p.null_treatment,
            ))
        };
        match name.as_str() {
            "count" if p.distinct => {
                if p.args.len() != 1 || strip(&p.args[0]) != &unit {
                    return Err(refuse(
                        "count(DISTINCT …) counts persons: use it on the person key of the rows aggregated",
                    ));
                }
                figures.push(Figure::Count { per_person: 1 });
                partials.push(partial(count_udaf(), true).alias(format!("__hedui_p{i}")));
            }
            "count" => {
                figures.push(Figure::Count {
                    per_person: cfg.rows_per_person,
                });
                partials.push(partial(count_udaf(), false).alias(format!("__hedui_p{i}")));
            }
            "sum" if !p.distinct => {
                figures.push(Figure::Sum);
                partials.push(partial(sum_udaf(), false).alias(format!("__hedui_p{i}")));
            }
            "avg" | "mean" if !p.distinct => {
                figures.push(Figure::Avg);
                partials.push(partial(avg_udaf(), false).alias(format!("__hedui_p{i}")));
            }
            other => {
                return Err(refuse(&format!(
                    "`{other}`{} can show a single person's value; count, sum and avg can be used",
                    if p.distinct { " DISTINCT" } else { "" }
                )));
            }
        }
    }
    let mut group = a.group_expr.clone();
    group.push(unit.alias("__hedui_unit"));
    let per_person = LogicalPlanBuilder::from(a.input.as_ref().clone())
        .aggregate(group, partials)
        .and_then(|b| b.build())
        .map_err(internal)?;
    // Step 2: clamp.
    let mut clamped: Vec<Expr> = (0..=ng).map(|i| col_of(&per_person, i)).collect();
    let mut j = ng + 1;
    let clamp_count = |e: Expr, c: u32| {
        let c = i64::from(c);
        when(e.clone().gt(lit(c)), lit(c)).otherwise(e)
    };
    let b = cfg.sum_bound;
    let clamp_sum = |e: Expr| {
        let v = cast_expr(e, DataType::Float64);
        when(v.clone().gt(lit(b)), lit(b))
            .when(v.clone().lt(lit(-b)), lit(-b))
            .otherwise(v)
    };
    for (i, f) in figures.iter().enumerate() {
        let p = col_of(&per_person, j);
        match f {
            Figure::Count { per_person } => {
                clamped.push(
                    clamp_count(p, *per_person)
                        .map_err(internal)?
                        .alias(format!("__hedui_c{i}")),
                );
                j += 1;
            }
            Figure::Sum => {
                clamped.push(
                    clamp_sum(p)
                        .map_err(internal)?
                        .alias(format!("__hedui_c{i}")),
                );
                j += 1;
            }
            Figure::Avg => {
                clamped.push(
                    clamp_sum(p.clone())
                        .map_err(internal)?
                        .alias(format!("__hedui_c{i}")),
                );
                // Each person with a value counts once.
                clamped.push(
                    when(p.is_null(), lit(0i64))
                        .otherwise(lit(1i64))
                        .map_err(internal)?
                        .alias(format!("__hedui_d{i}")),
                );
                j += 1;
            }
        }
    }
    // Step 3: at most `groups_per_person` cells per person, chosen at random.
    let rank = row_number()
        .partition_by(vec![Expr::Column(Column::from_name("__hedui_unit"))])
        .order_by(vec![random().sort(true, false)])
        .build()
        .map_err(internal)?
        .alias("__hedui_rank");
    let bounded = LogicalPlanBuilder::from(per_person)
        .project(clamped)
        .and_then(|b| b.window(vec![rank]))
        .and_then(|b| {
            b.filter(
                Expr::Column(Column::from_name("__hedui_rank"))
                    .lt_eq(lit(u64::from(cfg.groups_per_person))),
            )
        })
        .and_then(|b| b.build())
        .map_err(internal)?;
    // Step 4: per cell.
    let by = |name: String| Expr::Column(Column::from_name(name));
    let cell_group: Vec<Expr> = (0..ng).map(|i| col_of(&bounded, i)).collect();
    let mut cell_aggr = Vec::new();
    for (i, f) in figures.iter().enumerate() {
        cell_aggr.push(sum(by(format!("__hedui_c{i}"))).alias(format!("__hedui_s{i}")));
        if matches!(f, Figure::Avg) {
            cell_aggr.push(sum(by(format!("__hedui_d{i}"))).alias(format!("__hedui_t{i}")));
        }
    }
    cell_aggr.push(count(lit(1)).alias(CELL_N));
    let cells = LogicalPlanBuilder::from(bounded)
        .aggregate(cell_group, cell_aggr)
        .and_then(|b| b.build())
        .map_err(internal)?;
    // Step 5: noise, each figure drawn once (an average's count is drawn in its own column, so
    // that no optimisation can copy the draw).
    let noised_figures: usize = figures
        .iter()
        .map(|f| if matches!(f, Figure::Avg) { 2 } else { 1 })
        .sum::<usize>()
        + 1;
    let noise = &privacy.noise;
    let mut noisy: Vec<Expr> = (0..ng).map(|i| col_of(&cells, i)).collect();
    // A sum over no rows is 0, not NULL: an empty cell must not read differently from a
    // noisy one.
    let zero_count = |e: Expr| coalesce(vec![cast_expr(e, DataType::Int64), lit(0i64)]);
    for (i, f) in figures.iter().enumerate() {
        let s = by(format!("__hedui_s{i}"));
        noisy.push(match f {
            Figure::Count { per_person } => noise
                .count(
                    zero_count(s),
                    privacy.count_scale(*per_person, noised_figures),
                )
                .alias(format!("__hedui_n{i}")),
            Figure::Sum | Figure::Avg => noise
                .sum(
                    coalesce(vec![cast_expr(s, DataType::Float64), lit(0.0f64)]),
                    privacy.sum_scale(noised_figures),
                )
                .alias(format!("__hedui_n{i}")),
        });
        if matches!(f, Figure::Avg) {
            noisy.push(
                noise
                    .count(
                        zero_count(by(format!("__hedui_t{i}"))),
                        privacy.count_scale(1, noised_figures),
                    )
                    .alias(format!("__hedui_m{i}")),
            );
        }
    }
    noisy.push(
        noise
            .count(by(CELL_N.into()), privacy.count_scale(1, noised_figures))
            .alias(CELL_N),
    );
    // The aggregation's own columns, as the plan above refers to them.
    let mut out: Vec<Expr> = (0..ng).map(|i| col_of(&cells, i)).collect();
    for (i, f) in figures.iter().enumerate() {
        let name = a.schema.field(ng + i).name().clone();
        let n = by(format!("__hedui_n{i}"));
        out.push(match f {
            Figure::Avg => {
                let m = by(format!("__hedui_m{i}"));
                let denominator = when(m.clone().lt(lit(1i64)), lit(1.0f64))
                    .otherwise(cast_expr(m, DataType::Float64))
                    .map_err(internal)?;
                (n / denominator).alias(name)
            }
            _ => n.alias(name),
        });
    }
    out.push(by(CELL_N.into()));
    let plan = LogicalPlanBuilder::from(cells)
        .project(noisy)
        .and_then(|b| b.project(out))
        .and_then(|b| b.build())
        .map_err(internal)?;
    Ok((
        plan,
        Cells {
            grouped: ng > 0,
            count_scale: privacy.count_scale(1, noised_figures),
        },
    ))
}

/// The topmost aggregation of a plan (the one the answer is made of).
fn top_aggregate(plan: &LogicalPlan) -> Option<&Aggregate> {
    match plan {
        LogicalPlan::Aggregate(a) => Some(a),
        other => other.inputs().into_iter().find_map(top_aggregate),
    }
}

/// An expression that is (a cast of) a column.
fn column_of(e: &Expr) -> Option<&Column> {
    match e {
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => column_of(&c.expr),
        Expr::TryCast(c) => column_of(&c.expr),
        Expr::Alias(a) => column_of(&a.expr),
        _ => None,
    }
}

fn is_identifier(plan: &LogicalPlan, e: &Expr) -> bool {
    let Some(c) = column_of(e) else {
        return false;
    };
    let (classes, _) = lineage::analyse(plan);
    classes
        .schema()
        .index_of_column(c)
        .is_ok_and(|i| classes.all()[i] == Reveals::Identifier)
}

/// Whether the rows an aggregate-only answer is made of each stay one person's: bounding each
/// person's part bounds what one person can change only if no row mixes persons. Checked on the
/// optimised plan (subqueries are joins there): below the answer's aggregation every join must
/// match an identifying column of one side with one of the other (a person with their own rows,
/// a household with its members), every inner aggregation must group by an identifying column,
/// and no window may look across rows. Otherwise one person's value could reach every row (a
/// join to "the largest income", a window over all rows), and the answer would tell it however
/// the parts are bounded.
pub fn check_private_input(optimized: &LogicalPlan) -> Result<(), String> {
    let Some(top) = top_aggregate(optimized) else {
        return Err(refuse("the result is not an aggregation"));
    };
    let mut problem = None;
    let _ = top.input.apply(|node| {
        if node.expressions().iter().any(has_subquery) {
            problem = Some("a subquery below the aggregation".to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        match node {
            LogicalPlan::Window(_) => {
                problem = Some("a window function looks across persons' rows".into());
            }
            LogicalPlan::Join(j) => {
                let on_person = j.on.iter().any(|(l, r)| {
                    is_identifier(&j.left, l) && is_identifier(&j.right, r)
                });
                if !on_person {
                    problem = Some(
                        "a join must match the persons (or households) of both sides on their identifying columns, so that no row mixes persons".into(),
                    );
                }
            }
            LogicalPlan::Aggregate(inner)
                if !inner.group_expr.iter().any(|g| is_identifier(&inner.input, g)) =>
            {
                problem = Some(
                    "an aggregation below the answer's must group by the person (or household)"
                        .into(),
                );
            }
            _ => {}
        }
        Ok(if problem.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    match problem {
        Some(p) => Err(refuse(&p)),
        None => Ok(()),
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
pub fn rewrite(
    plan: &LogicalPlan,
    threshold: u64,
    privacy: &Privacy,
) -> Result<(LogicalPlan, Suppression), String> {
    let (rewritten, cells) = add_cell_count(plan, privacy)?;
    // The columns are those of the query as written, with the cell count after them.
    let kinds = kinds(plan);
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
            // Which groups exist depends on the data: a group is shown only when its noisy
            // person count clears the threshold by the noise's (1 - δ) quantile, so that a group
            // of one person shows with probability under δ. The one row of an ungrouped
            // aggregation always exists.
            release_at: cells.grouped.then(|| {
                threshold as f64 + cells.count_scale * (1.0 / (2.0 * privacy.config.delta)).ln()
            }),
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
        let released;
        let batch = match self.release_at {
            Some(at) => {
                let n = cast(batch.column(batch.num_columns() - 1), &DataType::Float64)?;
                let keep = arrow::compute::kernels::cmp::gt_eq(
                    &n,
                    &arrow::array::Float64Array::new_scalar(at),
                )?;
                released = arrow::compute::filter_record_batch(batch, &keep)?;
                &released
            }
            None => batch,
        };
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
