//! Reading a caller's plan before it runs: what it touches and whether it only explains. What it
//! does with identifying values is `lineage`'s.

use std::collections::BTreeSet;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

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

/// Statements that show the physical plan (with storage paths) rather than data.
pub fn is_explain(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) | LogicalPlan::DescribeTable(_)
    )
}
