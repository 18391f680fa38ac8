//! What every hit of a rule requires of its subject, read off the rule's optimized plan: for each
//! clause, a row of the subject passing the filters of at least one of the clause's scans. An
//! inner join requires both sides, a left join its left side, a union one of its branches, a
//! grouped aggregate its input; an aggregate without groups, a full join or a node this does not
//! know requires nothing. A rule's result for a subject depends only on that subject's rows
//! (see [`crate::changes`]), so a subject without a row in some clause has no hit: of the
//! subjects a delivery changed, only those meeting every clause need the rule run again (a month
//! of pensions changes every pensioner, but only the dead among them can be paid after death).
//! Leaving a clause out only leaves more subjects to run: always safe.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Distinct, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan};
use hedui_model::{Catalog, ColumnType};

use crate::check::PUSHED_SUBJECTS;
use crate::rules::{RuleDef, SubjectKind};
use crate::{Engine, Result};

/// Once this few subjects are left, the rule runs for them (its scans pruned to them by the
/// files' bloom filters, see `Engine::run_rule_on`) rather than another clause being checked.
const FEW_ENOUGH: usize = 20;
/// Clauses kept from a union's product of its branches' clauses.
const MAX_CLAUSES: usize = 64;

type Clause = BTreeSet<usize>;

/// The clauses of `plan`; the scans they name are pushed to `scans`.
fn clauses(plan: &LogicalPlan, scans: &mut Vec<TableScan>) -> Vec<Clause> {
    use LogicalPlan as P;
    match plan {
        P::TableScan(scan) => {
            if Catalog::builtin().get(scan.table_name.table()).is_err() {
                return Vec::new();
            }
            scans.push(scan.clone());
            vec![Clause::from([scans.len() - 1])]
        }
        P::Projection(p) => clauses(&p.input, scans),
        P::Filter(f) => clauses(&f.input, scans),
        P::Sort(s) => clauses(&s.input, scans),
        P::SubqueryAlias(a) => clauses(&a.input, scans),
        P::Limit(l) => clauses(&l.input, scans),
        P::Window(w) => clauses(&w.input, scans),
        P::Repartition(r) => clauses(&r.input, scans),
        P::Distinct(Distinct::All(input)) => clauses(input, scans),
        P::Distinct(Distinct::On(d)) => clauses(&d.input, scans),
        // Without groups an aggregate gives a row from no rows at all.
        P::Aggregate(a) if !a.group_expr.is_empty() => clauses(&a.input, scans),
        P::Join(j) => {
            let (left, right) = (clauses(&j.left, scans), clauses(&j.right, scans));
            match j.join_type {
                JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi => {
                    left.into_iter().chain(right).collect()
                }
                JoinType::Left | JoinType::LeftAnti | JoinType::LeftMark => left,
                JoinType::Right | JoinType::RightAnti | JoinType::RightMark => right,
                JoinType::Full => Vec::new(),
            }
        }
        P::Union(u) => {
            let mut branches = u.inputs.iter().map(|i| clauses(i, scans));
            let Some(mut all) = branches.next() else {
                return Vec::new();
            };
            // (a1 ∧ a2) ∨ (b1 ∧ b2) = (a1 ∨ b1) ∧ (a1 ∨ b2) ∧ (a2 ∨ b1) ∧ (a2 ∨ b2)
            for branch in branches {
                all = all
                    .iter()
                    .flat_map(|a| branch.iter().map(move |b| a | b))
                    .take(MAX_CLAUSES)
                    .collect();
            }
            all
        }
        _ => Vec::new(),
    }
}

/// The subjects with a row in a scan, in the terms changes are counted in: a person by the
/// compact key of a resident ID column; a household by its number, or through the roster, by a
/// member's key.
#[derive(Default)]
struct Present {
    keys: HashSet<i64>,
    households: HashSet<String>,
}

fn id_key(id: &str) -> Option<i64> {
    id.get(..17)?.parse().ok()
}

impl Engine {
    /// Of `subjects` (persons or households whose rows changed), those that can have a hit of
    /// `rule`: every clause of its requirements met. The others have none, now as before the
    /// change if they had none then; the caller still counts them as evaluated.
    pub async fn could_hit(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
        subjects: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>> {
        let started = std::time::Instant::now();
        let state = self.context().state();
        let plan = state.optimize(&state.create_logical_plan(&rule.render(values)?).await?)?;
        let mut scans = Vec::new();
        let mut required = clauses(&plan, &mut scans);
        // The smallest clauses first: they are read fastest and narrow the most.
        let rows = self.snapshot().row_counts();
        let size = |c: &Clause| -> u64 {
            c.iter()
                .map(|i| rows.get(scans[*i].table_name.table()).copied().unwrap_or(0))
                .sum()
        };
        required.sort_by_key(size);
        let roster = match rule.subject {
            SubjectKind::Household => Some(self.roster().await?),
            SubjectKind::Person => None,
        };
        let mut left: BTreeSet<String> = subjects.clone();
        let mut checked = 0;
        // A scan's subjects, read once however many clauses name it (a union's product names
        // each branch's scans in many); `None`: its rows are nobody's in particular.
        let mut read: HashMap<String, Option<Present>> = HashMap::new();
        for clause in &required {
            // Once a clause has brought them within what a run cut down to their rows takes,
            // checking another costs about what it would save.
            if left.len() <= FEW_ENOUGH || (checked > 0 && left.len() <= PUSHED_SUBJECTS) {
                break;
            }
            let mut names = Vec::new();
            for i in clause {
                let scan = &scans[*i];
                let name = format!("{} {:?}", scan.table_name, scan.filters);
                if !read.contains_key(&name) {
                    let mut present = Present::default();
                    let known = self.present_in(scan, roster.as_ref(), &mut present).await?;
                    read.insert(name.clone(), known.then_some(present));
                }
                names.push(name);
            }
            let presents: Option<Vec<&Present>> = names.iter().map(|n| read[n].as_ref()).collect();
            // A scan whose rows are nobody's in particular: the clause says nothing.
            let Some(presents) = presents else {
                continue;
            };
            left.retain(|s| {
                presents.iter().any(|present| match rule.subject {
                    SubjectKind::Person => id_key(s).is_some_and(|k| present.keys.contains(&k)),
                    SubjectKind::Household => present.households.contains(s),
                })
            });
            checked += 1;
        }
        tracing::info!(rule = %rule.id, changed = subjects.len(), could_hit = left.len(), clauses = required.len(), checked, ms = started.elapsed().as_millis() as u64, "subjects narrowed");
        Ok(left)
    }

    /// Member key -> household number, as the roster says now.
    pub(crate) async fn roster(&self) -> Result<HashMap<i64, String>> {
        let (_, batches) = self
            .lookup("SELECT person_id_key, household_no FROM dibao_members")
            .await?;
        let mut out = HashMap::new();
        for b in &batches {
            let keys = cast(b.column(0), &DataType::Int64)?;
            let households = cast(b.column(1), &DataType::Utf8)?;
            let (keys, households) = (
                keys.as_primitive::<Int64Type>(),
                households.as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                if keys.is_valid(i) && households.is_valid(i) {
                    out.insert(keys.value(i), households.value(i).to_string());
                }
            }
        }
        Ok(out)
    }

    /// Add the subjects of the rows passing `scan`'s own filters to `present`; `false` when the
    /// scan's rows name no subject (no resident ID, no household number).
    async fn present_in(
        &self,
        scan: &TableScan,
        roster: Option<&HashMap<i64, String>>,
        present: &mut Present,
    ) -> Result<bool> {
        let Ok(def) = Catalog::builtin().get(scan.table_name.table()) else {
            return Ok(false);
        };
        let mut columns: Vec<String> = def
            .columns
            .iter()
            .filter(|c| c.ty == ColumnType::ResidentId)
            .map(|c| format!("{}_key", c.name))
            .filter(|k| scan.source.schema().index_of(k).is_ok())
            .collect();
        let households = roster.is_some() && def.column("household_no").is_some();
        if households {
            columns.push("household_no".into());
        }
        if columns.is_empty() {
            return Ok(false);
        }
        let mut builder =
            LogicalPlanBuilder::scan(scan.table_name.clone(), scan.source.clone(), None)?;
        if let Some(filter) = conjunction(scan.filters.clone()) {
            builder = builder.filter(filter)?;
        }
        let plan = builder
            .project(
                columns
                    .iter()
                    .map(|c| Expr::Column(Column::new(Some(scan.table_name.clone()), c))),
            )?
            .build()?;
        let batches = self
            .lookup
            .execute_logical_plan(plan)
            .await?
            .collect()
            .await?;
        for b in &batches {
            for (i, name) in columns.iter().enumerate() {
                if name == "household_no" {
                    let text = cast(b.column(i), &DataType::Utf8)?;
                    present
                        .households
                        .extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
                    continue;
                }
                let keys = cast(b.column(i), &DataType::Int64)?;
                let keys = keys.as_primitive::<Int64Type>();
                for k in keys.iter().flatten() {
                    match roster {
                        Some(roster) => {
                            if let Some(h) = roster.get(&k) {
                                present.households.insert(h.clone());
                            }
                        }
                        None => {
                            present.keys.insert(k);
                        }
                    }
                }
            }
        }
        Ok(true)
    }
}
