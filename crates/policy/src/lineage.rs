//! Lineage of a caller's plan: for every column of every plan node, whether it can say who a row
//! is about, followed through every expression whatever its alias. On the optimised plan (after
//! simplification and decorrelation) it finds any expression that singles a person out — a
//! predicate, join or subquery restricting something identifying to constants, or one it cannot
//! classify (fail closed) — and, for aggregate-only roles, grouping keys derived from an
//! identifier.
//!
//! What is identifying comes from `schemas/` (class `identifier`), as the view shows it: the
//! policy's pseudonyms still single out, its generalisations (region prefix, surname, year) do
//! not.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, DFSchemaRef, JoinType};
use datafusion::logical_expr::{Expr, LogicalPlan, Operator, Subquery};
use hedui_model::{Catalog, Sensitivity};

use crate::masks::{self, Leaves};

/// What a value can say about who a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reveals {
    Nothing,
    /// Computed from an identifier: still singles out, but is not the stored column.
    Derived,
    /// An identifying column as stored, or its pseudonym: joins on it are joins, not lookups.
    Identifier,
}

impl Reveals {
    pub fn any(self) -> bool {
        self != Reveals::Nothing
    }
}

/// The classes of a plan node's output columns.
#[derive(Debug, Clone)]
pub struct Classes {
    schema: DFSchemaRef,
    of: Vec<Reveals>,
}

impl Classes {
    fn column(&self, c: &Column) -> Option<Reveals> {
        self.schema.index_of_column(c).ok().map(|i| self.of[i])
    }

    /// The class of each output column, in order.
    pub fn all(&self) -> &[Reveals] {
        &self.of
    }

    pub fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }
}

/// What the analysis found in a plan.
#[derive(Debug, Default)]
pub struct Findings {
    /// The first expression that singles out a person or household.
    pub singles_out: Option<String>,
    /// The outermost aggregation's first grouping key derived from an identifier.
    pub identifying_group: Option<String>,
}

/// The class of a stored column of a canonical dataset.
fn stored(dataset: &str, field: &str) -> Reveals {
    let Ok(def) = Catalog::builtin().get(dataset) else {
        return Reveals::Nothing;
    };
    match def.column_of_field(field) {
        Some(c) if c.class == Sensitivity::Identifier => Reveals::Identifier,
        _ => Reveals::Nothing,
    }
}

/// Functions that reshape a value without comparing it with anything: applied to an identifier
/// they give a derived identifier, not a lookup.
const RESHAPING: &[&str] = &[
    "concat",
    "concat_ws",
    "substr",
    "substring",
    "left",
    "right",
    "upper",
    "lower",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "lpad",
    "rpad",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "md5",
    "sha256",
    "to_hex",
    "coalesce",
    "arrow_cast",
    "named_struct",
    "struct",
    "make_array",
    "get_field",
];

/// Aggregates and window functions whose value says nothing of the values they count.
const COUNTING: &[&str] = &[
    "count",
    "approx_distinct",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
];

/// Operators that compute rather than compare.
fn computes(op: Operator) -> bool {
    matches!(
        op,
        Operator::Plus
            | Operator::Minus
            | Operator::Multiply
            | Operator::Divide
            | Operator::Modulo
            | Operator::And
            | Operator::Or
            | Operator::StringConcat
    )
}

/// A column as it is (or as the view masks it): comparing one with another is a join, and
/// asking whether it is null singles nobody out.
fn bare(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => bare(&a.expr),
        Expr::Column(_) | Expr::OuterReferenceColumn(..) => true,
        Expr::ScalarFunction(f) if masks::leaves(f.name()).is_some() => {
            f.args.len() == 1 && bare(&f.args[0])
        }
        _ => false,
    }
}

/// Analyse `plan`: its output classes and what it does with identifying values.
pub fn analyse(plan: &LogicalPlan) -> (Classes, Findings) {
    analyse_as(plan, false)
}

/// As [`analyse`]; with `see_through`, a generalised value (a masked ID, a surname, a year) is
/// taken for the identifier it came from. That is right for a caller who sees it masked only for
/// want of a purpose: their `person_id = '…'` is a lookup they mean, and the answer is "state a
/// purpose", not an empty result.
pub fn analyse_as(plan: &LogicalPlan, see_through: bool) -> (Classes, Findings) {
    let mut a = Analyser {
        see_through,
        ..Analyser::default()
    };
    let classes = a.plan(plan);
    (classes, a.findings)
}

#[derive(Default)]
struct Analyser {
    see_through: bool,
    findings: Findings,
    /// The inputs of the plans enclosing a subquery, innermost last.
    outer: Vec<Classes>,
}

/// Where an expression's columns come from.
struct Inputs<'a> {
    sides: Vec<&'a Classes>,
}

impl Analyser {
    fn resolve(&self, inputs: &Inputs, c: &Column, outer: bool) -> Reveals {
        let found = if outer {
            self.outer.iter().rev().find_map(|o| o.column(c))
        } else {
            inputs.sides.iter().find_map(|s| s.column(c))
        };
        // A column that cannot be placed is assumed to reveal (fail closed).
        found.unwrap_or(Reveals::Derived)
    }

    fn class(&mut self, e: &Expr, inputs: &Inputs) -> Reveals {
        match e {
            Expr::Column(c) => self.resolve(inputs, c, false),
            Expr::OuterReferenceColumn(_, c) => self.resolve(inputs, c, true),
            Expr::Alias(a) => self.class(&a.expr, inputs),
            Expr::Literal(..) | Expr::Placeholder(_) => Reveals::Nothing,
            Expr::ScalarFunction(f) => match masks::leaves(f.name()) {
                Some(Leaves::Generalised) if self.see_through => self.max_class(&f.args, inputs),
                Some(Leaves::Generalised) => Reveals::Nothing,
                Some(Leaves::Pseudonym) => self.max_class(&f.args, inputs),
                None => self.derived(e, inputs),
            },
            Expr::AggregateFunction(f) if COUNTING.contains(&f.func.name()) => Reveals::Nothing,
            Expr::WindowFunction(w) if COUNTING.contains(&w.fun.name()) => Reveals::Nothing,
            Expr::ScalarSubquery(s) => {
                let sub = self.subquery(s, inputs);
                match sub.of.first() {
                    Some(r) if r.any() => Reveals::Derived,
                    _ => Reveals::Nothing,
                }
            }
            _ => self.derived(e, inputs),
        }
    }

    fn max_class(&mut self, args: &[Expr], inputs: &Inputs) -> Reveals {
        args.iter()
            .map(|a| self.class(a, inputs))
            .max()
            .unwrap_or(Reveals::Nothing)
    }

    /// Anything computed from a revealing value reveals, as a derived value.
    fn derived(&mut self, e: &Expr, inputs: &Inputs) -> Reveals {
        let mut children = Vec::new();
        let _ = e.apply_children(|c| {
            children.push(c.clone());
            Ok(TreeNodeRecursion::Continue)
        });
        if self.max_class(&children, inputs).any() {
            Reveals::Derived
        } else {
            Reveals::Nothing
        }
    }

    fn subquery(&mut self, s: &Subquery, inputs: &Inputs) -> Classes {
        let pushed = inputs.sides.len();
        for side in &inputs.sides {
            self.outer.push((*side).clone());
        }
        let classes = self.plan(&s.subquery);
        self.outer.truncate(self.outer.len() - pushed);
        classes
    }

    fn single_out(&mut self, what: String) {
        if self.findings.singles_out.is_none() {
            self.findings.singles_out = Some(what);
        }
    }

    /// Look through `e` for anything that singles a person out.
    fn check(&mut self, e: &Expr, inputs: &Inputs) {
        let mut nodes = Vec::new();
        let _ = e.apply(|node| {
            nodes.push(node.clone());
            // The policy's functions are the view's, applied to the stored columns.
            if let Expr::ScalarFunction(f) = node
                && masks::leaves(f.name()).is_some()
            {
                return Ok(TreeNodeRecursion::Jump);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        for node in &nodes {
            if let Some(what) = self.singles_out(node, inputs) {
                self.single_out(what);
            }
        }
    }

    fn singles_out(&mut self, e: &Expr, inputs: &Inputs) -> Option<String> {
        let reveals = |a: &mut Analyser, x: &Expr| a.class(x, inputs).any();
        let hit = match e {
            Expr::BinaryExpr(b) if !computes(b.op) => {
                let (l, r) = (self.class(&b.left, inputs), self.class(&b.right, inputs));
                let join = matches!(b.op, Operator::Eq | Operator::IsNotDistinctFrom)
                    && bare(&b.left)
                    && bare(&b.right)
                    && l == Reveals::Identifier
                    && r == Reveals::Identifier;
                (l.any() || r.any()) && !join
            }
            Expr::Like(l) | Expr::SimilarTo(l) => {
                reveals(self, &l.expr) || reveals(self, &l.pattern)
            }
            Expr::InList(l) => reveals(self, &l.expr) || l.list.iter().any(|x| reveals(self, x)),
            Expr::Between(b) => {
                reveals(self, &b.expr) || reveals(self, &b.low) || reveals(self, &b.high)
            }
            Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNotFalse(x)
            | Expr::IsNotUnknown(x) => !bare(x) && reveals(self, x),
            Expr::Case(c) => c.expr.as_ref().is_some_and(|x| reveals(self, x)),
            Expr::InSubquery(s) => {
                self.subquery(&s.subquery, inputs);
                reveals(self, &s.expr)
            }
            Expr::SetComparison(s) => {
                self.subquery(&s.subquery, inputs);
                reveals(self, &s.expr)
            }
            Expr::Exists(s) => {
                self.subquery(&s.subquery, inputs);
                false
            }
            Expr::ScalarSubquery(s) => {
                self.subquery(s, inputs);
                false
            }
            Expr::ScalarFunction(f) if masks::leaves(f.name()).is_none() => {
                !RESHAPING.contains(&f.name()) && f.args.iter().any(|a| reveals(self, a))
            }
            Expr::Unnest(_) | Expr::HigherOrderFunction(_) | Expr::Lambda(_) => reveals(self, e),
            _ => false,
        };
        hit.then(|| e.schema_name().to_string().chars().take(200).collect())
    }

    fn plan(&mut self, plan: &LogicalPlan) -> Classes {
        let inputs: Vec<Classes> = plan.inputs().iter().map(|p| self.plan(p)).collect();
        let same_as_input = || inputs.first().map(|i| i.of.clone()).unwrap_or_default();
        let of = match plan {
            LogicalPlan::TableScan(scan) => {
                let dataset = scan.table_name.table();
                if let Ok(source) = DFSchema::try_from_qualified_schema(
                    scan.table_name.clone(),
                    &scan.source.schema(),
                ) {
                    let stored_classes = Classes {
                        of: source
                            .fields()
                            .iter()
                            .map(|f| stored(dataset, f.name()))
                            .collect(),
                        schema: source.into(),
                    };
                    let on = Inputs {
                        sides: vec![&stored_classes],
                    };
                    for f in &scan.filters {
                        self.check(f, &on);
                    }
                }
                scan.projected_schema
                    .fields()
                    .iter()
                    .map(|f| stored(dataset, f.name()))
                    .collect()
            }
            LogicalPlan::Projection(p) => {
                let on = Inputs {
                    sides: vec![&inputs[0]],
                };
                p.expr
                    .iter()
                    .map(|e| {
                        self.check(e, &on);
                        self.class(e, &on)
                    })
                    .collect()
            }
            LogicalPlan::Aggregate(a) => {
                let on = Inputs {
                    sides: vec![&inputs[0]],
                };
                let (groups, grouping_id): (Vec<Expr>, bool) = match a.group_expr.as_slice() {
                    [Expr::GroupingSet(gs)] => {
                        (gs.distinct_expr().into_iter().cloned().collect(), true)
                    }
                    other => (other.to_vec(), false),
                };
                let mut of = Vec::new();
                // The aggregation analysed last is the outermost: its groups are the answer's
                // rows. An inner one may group by person (per-person sums counted outside).
                let mut identifying = None;
                for g in &groups {
                    self.check(g, &on);
                    let class = self.class(g, &on);
                    if class.any() && identifying.is_none() {
                        identifying = Some(g.schema_name().to_string().chars().take(200).collect());
                    }
                    of.push(class);
                }
                self.findings.identifying_group = identifying;
                if grouping_id {
                    of.push(Reveals::Nothing);
                }
                for e in &a.aggr_expr {
                    self.check(e, &on);
                    of.push(self.class(e, &on));
                }
                of
            }
            LogicalPlan::Window(w) => {
                let on = Inputs {
                    sides: vec![&inputs[0]],
                };
                let mut of = same_as_input();
                for e in &w.window_expr {
                    self.check(e, &on);
                    of.push(self.class(e, &on));
                }
                of
            }
            LogicalPlan::Join(j) => {
                let (left, right) = (&inputs[0], &inputs[1]);
                for (l, r) in &j.on {
                    let lc = self.class(l, &Inputs { sides: vec![left] });
                    let rc = self.class(r, &Inputs { sides: vec![right] });
                    let join = bare(l)
                        && bare(r)
                        && lc == Reveals::Identifier
                        && rc == Reveals::Identifier;
                    if (lc.any() || rc.any()) && !join {
                        self.single_out(format!("{} = {}", l.schema_name(), r.schema_name()));
                    }
                }
                if let Some(f) = &j.filter {
                    self.check(
                        f,
                        &Inputs {
                            sides: vec![left, right],
                        },
                    );
                }
                let mark = [Reveals::Nothing];
                match j.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti => left.of.clone(),
                    JoinType::RightSemi | JoinType::RightAnti => right.of.clone(),
                    JoinType::LeftMark => [left.of.as_slice(), &mark].concat(),
                    JoinType::RightMark => [right.of.as_slice(), &mark].concat(),
                    _ => [left.of.as_slice(), right.of.as_slice()].concat(),
                }
            }
            LogicalPlan::Union(_) => {
                let width = plan.schema().fields().len();
                (0..width)
                    .map(|i| {
                        inputs
                            .iter()
                            .filter_map(|c| c.of.get(i).copied())
                            .max()
                            .unwrap_or(Reveals::Derived)
                    })
                    .collect()
            }
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                vec![Reveals::Nothing; plan.schema().fields().len()]
            }
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => {
                if let Some(input) = inputs.first() {
                    let on = Inputs { sides: vec![input] };
                    for e in plan.expressions() {
                        self.check(&e, &on);
                    }
                }
                same_as_input()
            }
            _ => {
                // Anything else (DISTINCT ON, UNNEST, recursive queries, EXPLAIN): its
                // expressions are checked, and its columns reveal if any input column does.
                let sides: Vec<&Classes> = inputs.iter().collect();
                let on = Inputs { sides };
                for e in plan.expressions() {
                    self.check(&e, &on);
                }
                let any = inputs
                    .iter()
                    .flat_map(|c| c.of.iter().copied())
                    .max()
                    .unwrap_or(Reveals::Nothing);
                vec![any; plan.schema().fields().len()]
            }
        };
        let width = plan.schema().fields().len();
        let of = if of.len() == width {
            of
        } else {
            // The node's shape was not understood: every column reveals (fail closed).
            vec![Reveals::Derived; width]
        };
        Classes {
            schema: plan.schema().clone(),
            of,
        }
    }
}
