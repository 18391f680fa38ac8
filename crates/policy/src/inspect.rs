//! Reading a caller's plan before it runs: what it touches, whether it looks up a person, and
//! whether it only aggregates.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Operator};
use hedui_model::{Catalog, ColumnType};

/// Table names the plan reads (the caller's view of them), subqueries included.
pub fn tables(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            out.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// `dataset.column` for every column the (optimised) plan reads from storage.
pub fn columns(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            for f in scan.projected_schema.fields() {
                out.insert(format!("{}.{}", scan.table_name.table(), f.name()));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// Columns that single out a person or household: resident IDs (all three forms), names, and
/// the departments' own person and household numbers.
pub fn identifying_columns() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set: HashSet<String> = ["household_no", "person_no", "plate"]
            .into_iter()
            .map(String::from)
            .collect();
        for def in Catalog::builtin().iter() {
            for c in &def.columns {
                match c.ty {
                    ColumnType::ResidentId => {
                        set.insert(c.name.clone());
                        set.insert(format!("{}_key", c.name));
                        set.insert(format!("{}_raw", c.name));
                    }
                    ColumnType::Name => {
                        set.insert(c.name.clone());
                    }
                    _ => {}
                }
            }
        }
        set
    })
}

fn mentions_identifying(e: &Expr) -> Option<String> {
    let ids = identifying_columns();
    e.column_refs()
        .into_iter()
        .find(|c| ids.contains(&c.name))
        .map(|c| c.name.clone())
}

fn constant(e: &Expr) -> bool {
    e.column_refs().is_empty()
        && !e
            .exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ))
            })
            .unwrap_or(true)
}

/// A condition comparing an identifying column with a constant (`person_id = '…'`,
/// `name LIKE '张%'`, `household_no IN (…)`): the query is about a particular person. Returns
/// the column found.
fn lookup_in(predicate: &Expr) -> Option<String> {
    let mut found = None;
    let _ = predicate.apply(|e| {
        let hit = match e {
            Expr::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Eq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::LikeMatch
                        | Operator::ILikeMatch
                        | Operator::RegexMatch
                        | Operator::RegexIMatch
                ) =>
            {
                match (constant(&b.left), constant(&b.right)) {
                    (false, true) => mentions_identifying(&b.left),
                    (true, false) => mentions_identifying(&b.right),
                    _ => None,
                }
            }
            Expr::InList(l) if l.list.iter().all(constant) && !l.negated => {
                mentions_identifying(&l.expr)
            }
            Expr::Like(l) if constant(&l.pattern) && !l.negated => mentions_identifying(&l.expr),
            Expr::SimilarTo(l) if constant(&l.pattern) && !l.negated => {
                mentions_identifying(&l.expr)
            }
            Expr::Between(b) if constant(&b.low) && constant(&b.high) && !b.negated => {
                mentions_identifying(&b.expr)
            }
            Expr::ScalarFunction(f)
                if f.args.len() >= 2
                    && f.args[1..].iter().all(constant)
                    && matches!(
                        f.name(),
                        "starts_with" | "ends_with" | "strpos" | "contains" | "regexp_like"
                    ) =>
            {
                mentions_identifying(&f.args[0])
            }
            _ => None,
        };
        if hit.is_some() {
            found = hit;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The identifying column a query filters on, if it is a person-level query.
pub fn person_lookup(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        let hit = match node {
            LogicalPlan::Filter(f) => lookup_in(&f.predicate),
            LogicalPlan::Join(j) => j.filter.as_ref().and_then(lookup_in),
            _ => None,
        };
        if hit.is_some() {
            found = hit;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Statements that show the physical plan (with storage paths) rather than data.
pub fn is_explain(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) | LogicalPlan::DescribeTable(_)
    )
}
