//! Evaluating a rule on new rows alone. A month's delivery of pensions changes every pensioner,
//! so running the rules again for the changed subjects costs a whole run; but most of a rule's
//! scans can only add result rows when rows are added to them, and those rows all involve one
//! of the new rows. For such a scan the new result rows are the rule's result with that scan
//! reading only the new rows (every other scan reading everything): added to the hits found
//! before, they give exactly the hits a full run gives.
//!
//! A scan qualifies when every node from it up to the result keeps the rows it had and adds
//! rows only for new input: projections, filters, aliases, unions, unnesting, distinct, either
//! side of an inner join, the preserved side of an outer, semi or anti join, and an aggregate
//! whose groups include the scan's `_batch` (a group of new rows then holds new rows only, all
//! of which the evaluation reads, so its aggregates are those of a full run). Anything else (the
//! `deaths` view's minimum over three sources, the other side of a left join, an aggregate over
//! a person's rows) can change or withdraw earlier results: its dataset's changes are evaluated
//! by running the rule again for the subjects they touch (see [`crate::changes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{Column, JoinType};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{
    Aggregate, Distinct, EmptyRelation, Expr, LogicalPlan, TableScanBuilder, TableSource,
};
use datafusion::prelude::{DataFrame, col, lit};
use hedui_model::Catalog;

use crate::check::{Hit, hits_of};
use crate::rules::RuleDef;
use crate::{Engine, Result};

/// The batch column every dataset's rows carry.
const BATCH: &str = "_batch";

/// A rule's plan as written (views inlined), with what its scans allow.
pub struct DeltaPlan {
    plan: LogicalPlan,
    /// Each scan of a dataset, in the order [`term`] meets them.
    scans: Vec<Scan>,
    /// Datasets read in a subquery expression (not analysed: never evaluated on new rows alone).
    in_subqueries: BTreeSet<String>,
}

struct Scan {
    dataset: String,
    /// Whether the rule's new results from new rows of this scan are those of the scan reading
    /// the new rows only.
    additive: bool,
}

impl DeltaPlan {
    /// The datasets whose added rows the rule can evaluate alone: every scan of them additive.
    pub fn additive_datasets(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.scans.iter().map(|s| s.dataset.clone()).collect();
        for s in &self.scans {
            if !s.additive {
                out.remove(&s.dataset);
            }
        }
        for d in &self.in_subqueries {
            out.remove(d);
        }
        out
    }
}

/// Scans below `plan`, as (index into `scans`, the column of this node's output carrying the
/// scan's batch, if it is still there), with whether each scan is still additive.
fn analyse(plan: &LogicalPlan, scans: &mut Vec<Scan>) -> Vec<(usize, Option<Column>)> {
    use LogicalPlan as P;
    if let P::TableScan(scan) = plan {
        if Catalog::builtin().get(scan.table_name.table()).is_err() {
            return Vec::new();
        }
        scans.push(Scan {
            dataset: scan.table_name.table().to_string(),
            additive: true,
        });
        let batch = Column::new(Some(scan.table_name.clone()), BATCH);
        let carried = scan.projected_schema.has_column(&batch).then_some(batch);
        return vec![(scans.len() - 1, carried)];
    }
    let inputs = plan.inputs();
    let mut below: Vec<Vec<(usize, Option<Column>)>> =
        inputs.iter().map(|i| analyse(i, scans)).collect();
    let spoil = |found: &[(usize, Option<Column>)], scans: &mut Vec<Scan>| {
        for (i, _) in found {
            scans[*i].additive = false;
        }
    };
    // The same column, if this node's output still has it.
    let kept = |c: Option<Column>| c.filter(|c| plan.schema().has_column(c));
    // The column at the same position of this node's output (a node renaming its input).
    let same_position = |input: &LogicalPlan, c: Option<Column>| {
        let i = input.schema().index_of_column(c.as_ref()?).ok()?;
        Some(Column::from(plan.schema().qualified_field(i)))
    };
    match plan {
        P::Projection(p) => below
            .remove(0)
            .into_iter()
            .map(|(i, c)| {
                let out = c.and_then(|c| {
                    let k = p.expr.iter().position(
                        |e| matches!(e.clone().unalias(), Expr::Column(ref x) if *x == c),
                    )?;
                    Some(Column::from(p.schema.qualified_field(k)))
                });
                (i, out)
            })
            .collect(),
        P::Filter(_) | P::Repartition(_) | P::Distinct(Distinct::All(_)) | P::Unnest(_) => below
            .remove(0)
            .into_iter()
            .map(|(i, c)| (i, kept(c)))
            .collect(),
        P::Sort(s) if s.fetch.is_none() => below
            .remove(0)
            .into_iter()
            .map(|(i, c)| (i, kept(c)))
            .collect(),
        P::SubqueryAlias(a) => below
            .remove(0)
            .into_iter()
            .map(|(i, c)| (i, same_position(&a.input, c)))
            .collect(),
        // Rows of different branches share the output columns: a batch column no longer says
        // which scan a row came from.
        P::Union(_) => below
            .into_iter()
            .flatten()
            .map(|(i, _)| (i, None))
            .collect(),
        P::Join(j) => {
            let right = below.pop().unwrap_or_default();
            let left = below.pop().unwrap_or_default();
            let (left_ok, right_ok) = match j.join_type {
                JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi => (true, true),
                JoinType::Left | JoinType::LeftAnti => (true, false),
                JoinType::Right | JoinType::RightAnti => (false, true),
                _ => (false, false),
            };
            if !left_ok {
                spoil(&left, scans);
            }
            if !right_ok {
                spoil(&right, scans);
            }
            left.into_iter()
                .chain(right)
                .map(|(i, c)| (i, kept(c)))
                .collect()
        }
        P::Aggregate(Aggregate { group_expr, .. }) => {
            let found = below.remove(0);
            found
                .into_iter()
                .map(|(i, c)| {
                    let grouped = c.as_ref().is_some_and(|c| {
                        group_expr
                            .iter()
                            .any(|g| matches!(g, Expr::Column(x) if x == c))
                    });
                    if !grouped {
                        scans[i].additive = false;
                    }
                    (i, kept(c))
                })
                .collect()
        }
        _ => {
            for found in &below {
                spoil(found, scans);
            }
            below
                .into_iter()
                .flatten()
                .map(|(i, _)| (i, None))
                .collect()
        }
    }
}

/// `plan` with scan `target` reading `rows` instead, and every union branch without that scan
/// empty (its rows involve none of the new rows). The second value: whether `plan` holds it.
fn term(
    plan: &LogicalPlan,
    target: usize,
    seen: &mut usize,
    rows: &Arc<dyn TableSource>,
) -> Result<(LogicalPlan, bool)> {
    if let LogicalPlan::TableScan(scan) = plan {
        if Catalog::builtin().get(scan.table_name.table()).is_err() {
            return Ok((plan.clone(), false));
        }
        let this = *seen;
        *seen += 1;
        if this != target {
            return Ok((plan.clone(), false));
        }
        let replaced = TableScanBuilder::new(scan.table_name.clone(), rows.clone())
            .with_projection(scan.projection.clone())
            .with_filters(scan.filters.clone())
            .with_fetch(scan.fetch)
            .build()?;
        return Ok((LogicalPlan::TableScan(replaced), true));
    }
    let mut inputs = Vec::new();
    let mut holds = Vec::new();
    for input in plan.inputs() {
        let (new, has) = term(input, target, seen, rows)?;
        inputs.push(new);
        holds.push(has);
    }
    let found = holds.iter().any(|h| *h);
    if !found {
        return Ok((plan.clone(), false));
    }
    if matches!(plan, LogicalPlan::Union(_)) {
        for (input, has) in inputs.iter_mut().zip(&holds) {
            if !has {
                *input = LogicalPlan::EmptyRelation(EmptyRelation {
                    produce_one_row: false,
                    schema: input.schema().clone(),
                });
            }
        }
    }
    Ok((plan.with_new_exprs(plan.expressions(), inputs)?, true))
}

/// The new rows of some datasets, read once for all the rules reading them.
#[derive(Default)]
pub struct NewRows {
    tables: BTreeMap<String, Arc<dyn TableSource>>,
}

impl Engine {
    /// A rule's plan, analysed for evaluation on new rows.
    pub async fn delta_plan(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
    ) -> Result<DeltaPlan> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        let plan = self
            .ctx
            .state()
            .create_logical_plan(&rule.render(values)?)
            .await?;
        let mut scans = Vec::new();
        analyse(&plan, &mut scans);
        // Scans inside subquery expressions are not on the paths analysed above: a dataset
        // scanned more often than the paths show is read in one.
        let mut on_paths: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &scans {
            *on_paths.entry(s.dataset.as_str()).or_default() += 1;
        }
        let mut everywhere: BTreeMap<String, usize> = BTreeMap::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(s) = node {
                *everywhere
                    .entry(s.table_name.table().to_string())
                    .or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let in_subqueries = everywhere
            .into_iter()
            .filter(|(d, n)| on_paths.get(d.as_str()).copied().unwrap_or(0) < *n)
            .map(|(d, _)| d)
            .collect();
        Ok(DeltaPlan {
            plan,
            scans,
            in_subqueries,
        })
    }

    /// The rows `batches` added to `dataset`, in memory (they are a delivery: a month's
    /// payments, a day's certificates), so the planner knows their size and builds its hash
    /// tables on them rather than on the whole dataset.
    pub async fn new_rows(
        &self,
        rows: &mut NewRows,
        dataset: &str,
        batches: &BTreeSet<String>,
    ) -> Result<Arc<dyn TableSource>> {
        if let Some(t) = rows.tables.get(dataset) {
            return Ok(t.clone());
        }
        let table = self.ctx.table_provider(dataset).await?;
        let wanted = batches.iter().map(|b| lit(b.as_str())).collect();
        let read = self
            .lookup
            .read_table(table.clone())?
            .filter(col(BATCH).in_list(wanted, false))?
            .collect()
            .await?;
        let memory: Arc<dyn TableProvider> =
            Arc::new(MemTable::try_new(table.schema(), vec![read])?);
        let source = provider_as_source(memory);
        rows.tables.insert(dataset.to_string(), source.clone());
        Ok(source)
    }

    /// The hits the rows `added` (dataset -> its new rows, see [`Engine::new_rows`]) give the
    /// rule, by subject: every result row involving one of them, one evaluation per scan of
    /// those datasets with that scan reading the new rows alone. Each dataset must be one of
    /// the plan's [`DeltaPlan::additive_datasets`]; merged into the hits found before the rows
    /// were added, they give the hits now.
    pub async fn run_rule_delta(
        &self,
        rule: &RuleDef,
        plan: &DeltaPlan,
        added: &BTreeMap<String, Arc<dyn TableSource>>,
    ) -> Result<Vec<Hit>> {
        let started = std::time::Instant::now();
        let additive = plan.additive_datasets();
        let mut batches = Vec::new();
        for (i, scan) in plan.scans.iter().enumerate() {
            let Some(rows) = added.get(&scan.dataset) else {
                continue;
            };
            if !additive.contains(&scan.dataset) {
                return Err(crate::Error::Query(format!(
                    "rule {}: the new rows of {} cannot be evaluated alone",
                    rule.id, scan.dataset
                )));
            }
            let (evaluation, _) = term(&plan.plan, i, &mut 0, rows)?;
            let df = DataFrame::new(self.ctx.state(), evaluation);
            let (found, _) = crate::spill::collect(df, &self.spill)
                .await
                .map_err(crate::user_error)?;
            batches.extend(found);
        }
        let hits = hits_of(rule, &batches)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        tracing::info!(rule = %rule.id, datasets = ?added.keys().collect::<Vec<_>>(), rows, hits = hits.len(), ms = started.elapsed().as_millis() as u64, "rule ran on new rows");
        Ok(hits)
    }
}
