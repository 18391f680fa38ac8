//! Running rules: one row per hit-month from each rule's SQL, grouped into hits per subject with
//! their months, amount and the references of the rows that prove them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Int64Type, Schema,
};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, JoinType};
use datafusion::logical_expr::utils::disjunction;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use hedui_model::{Catalog, ColumnType, ResidentId};
use serde::{Deserialize, Serialize};

use crate::rules::{RuleDef, SubjectKind};
use crate::{Engine, Error, Result};

/// A row of a dataset that proves a hit: its batch, its sheet (row numbers restart on each
/// sheet of a workbook) and its row number there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub dataset: String,
    pub batch: String,
    pub sheet: Option<String>,
    pub row: i64,
}

/// One lead for a reviewer: a rule, a subject, the months involved, the amount, the proof.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub rule: String,
    pub rule_version: u32,
    pub subject: String,
    pub months: Vec<NaiveDate>,
    /// Yuan in cents, where the rule computes an amount.
    pub amount_cents: Option<i128>,
    pub evidence: Vec<EvidenceRef>,
    pub details: Vec<String>,
    /// The amount of each primary row (the first evidence row of a result row), so that a row
    /// joined to several proofs counts once, also when hits found apart are merged.
    #[serde(skip)]
    pub amounts: BTreeMap<EvidenceRef, i128>,
}

/// A hit as the case store keeps it between runs (see [`Hit::state`]).
#[derive(Serialize, Deserialize)]
struct StoredHit {
    months: Vec<NaiveDate>,
    amounts: Vec<(EvidenceRef, i64)>,
    evidence: Vec<EvidenceRef>,
    details: Vec<String>,
}

impl Hit {
    /// What a later run needs to add new hit rows to this hit: everything it was built from.
    pub fn state(&self) -> String {
        serde_json::to_string(&StoredHit {
            months: self.months.clone(),
            amounts: self
                .amounts
                .iter()
                .map(|(r, c)| (r.clone(), *c as i64))
                .collect(),
            evidence: self.evidence.clone(),
            details: self.details.clone(),
        })
        .expect("json")
    }

    /// A hit kept with [`Hit::state`]; `None` if the text is not one.
    pub fn from_state(rule: &RuleDef, subject: &str, state: &str) -> Option<Hit> {
        let s: StoredHit = serde_json::from_str(state).ok()?;
        let amounts: BTreeMap<EvidenceRef, i128> = s
            .amounts
            .into_iter()
            .map(|(r, c)| (r, i128::from(c)))
            .collect();
        Some(Hit {
            rule: rule.id.clone(),
            rule_version: rule.version,
            subject: subject.to_string(),
            months: s.months,
            amount_cents: (!amounts.is_empty()).then(|| amounts.values().sum()),
            evidence: s.evidence,
            details: s.details,
            amounts,
        })
    }

    /// This hit with more result rows of the same rule and subject: exactly the hit all the rows
    /// together give (months, evidence and details are sets, amounts counted per primary row).
    pub fn merge(&mut self, more: Hit) {
        fn union<T: Ord>(a: &mut Vec<T>, b: Vec<T>) {
            let mut all: BTreeSet<T> = std::mem::take(a).into_iter().collect();
            all.extend(b);
            *a = all.into_iter().collect();
        }
        union(&mut self.months, more.months);
        union(&mut self.evidence, more.evidence);
        union(&mut self.details, more.details);
        self.amounts.extend(more.amounts);
        self.amount_cents = (!self.amounts.is_empty()).then(|| self.amounts.values().sum());
    }

    pub fn months_text(&self) -> Vec<String> {
        self.months
            .iter()
            .map(|m| m.format("%Y-%m").to_string())
            .collect()
    }

    pub fn amount_text(&self) -> Option<String> {
        self.amount_cents
            .map(|c| hedui_model::Money::from_cents(c as i64).to_string())
    }
}

#[derive(Default)]
struct Building {
    months: BTreeSet<NaiveDate>,
    /// Amount per primary evidence row, so a row joined to several proofs counts once.
    amounts: BTreeMap<EvidenceRef, i128>,
    evidence: BTreeSet<EvidenceRef>,
    details: BTreeSet<String>,
}

fn to_utf8(col: &dyn Array) -> Result<datafusion::arrow::array::StringArray> {
    Ok(cast(col, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// A mistake in a rule's query (not the engine's failure), reported with the rule's file.
fn in_rule(rule: &RuleDef, e: Error) -> Error {
    match e {
        Error::Query(message) => Error::Rule {
            origin: rule.origin.clone(),
            message,
        },
        other => other,
    }
}

/// A rule's query that does not plan: the root cause's first line, with the rule's file.
fn planning_error(rule: &RuleDef, e: datafusion::error::DataFusionError) -> Error {
    Error::Rule {
        origin: rule.origin.clone(),
        message: e
            .find_root()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

fn wrong_output(rule: &RuleDef, what: &str) -> Error {
    Error::Rule {
        origin: rule.origin.clone(),
        message: format!("the SQL must return subject, month, amount, evidence, detail: {what}"),
    }
}

impl Engine {
    /// Plan a rule without running it: bad SQL, unknown datasets or columns and a wrong output
    /// shape are reported with the rule's file.
    pub async fn plan_rule(&self, rule: &RuleDef, values: &BTreeMap<String, String>) -> Result<()> {
        let sql = rule.render(values)?;
        let df = self
            .ctx
            .sql_with_options(&sql, crate::read_only())
            .await
            .map_err(|e| planning_error(rule, e))?;
        for name in ["subject", "month", "amount", "evidence", "detail"] {
            if df.schema().field_with_unqualified_name(name).is_err() {
                return Err(wrong_output(rule, &format!("no column `{name}`")));
            }
        }
        Ok(())
    }

    /// Run one rule with the city's parameter values.
    pub async fn run_rule(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
    ) -> Result<Vec<Hit>> {
        let sql = rule.render(values)?;
        self.run_rule_sql(rule, sql).await
    }

    /// Run one rule for these subjects only (the subjects new rows can affect): exactly the
    /// hits a full run would give for them. A rule's result for a subject depends only on the
    /// subject's rows (see [`crate::changes`]), so every scan of the rule can be cut down to the
    /// rows of these subjects (their keys, their household numbers) before anything is joined
    /// or grouped: the rule then costs a filtered read of its datasets, and for a few subjects
    /// (a day's deaths) the files' bloom filters skip the row groups without them. Beyond
    /// [`PUSHED_SUBJECTS`] the whole rule runs and its result is semi-joined with the subjects.
    pub async fn run_rule_on(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
        subjects: &BTreeSet<String>,
    ) -> Result<Vec<Hit>> {
        let how = if subjects.len() <= PUSHED_SUBJECTS
            && 4 * subjects.len() < self.subjects_in_lake(rule.subject).await?
        {
            SubjectRun::CutDown
        } else {
            SubjectRun::WholeRule
        };
        self.run_rule_on_as(rule, values, subjects, how).await
    }

    /// Run one rule for these subjects, the way `how` says; both give exactly the subjects' hits
    /// of a full run.
    pub async fn run_rule_on_as(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
        subjects: &BTreeSet<String>,
        how: SubjectRun,
    ) -> Result<Vec<Hit>> {
        let started = std::time::Instant::now();
        let df = self
            .ctx
            .sql_with_options(&rule.render(values)?, crate::read_only())
            .await
            .map_err(|e| planning_error(rule, e))?;
        let result = if how == SubjectRun::CutDown {
            let rows = self.rows_of(rule.subject, subjects).await?;
            let plan = df
                .into_unoptimized_plan()
                .transform_up_with_subqueries(|node| rows.cut(node))?
                .data;
            let literals = subjects.iter().map(|s| lit(s.as_str())).collect();
            DataFrame::new(self.lookup.state(), plan)
                .filter(col("subject").in_list(literals, false))?
        } else {
            let wanted = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "hedui_subject",
                    DataType::Utf8,
                    false,
                )])),
                vec![Arc::new(StringArray::from_iter_values(subjects.iter()))],
            )?;
            df.join(
                self.ctx.read_batch(wanted)?,
                JoinType::LeftSemi,
                &["subject"],
                &["hedui_subject"],
                None,
            )?
        };
        let (batches, spilled) = crate::spill::collect(result, &self.spill)
            .await
            .map_err(|e| in_rule(rule, crate::user_error(e)))?;
        let hits = hits_of(rule, &batches)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        tracing::info!(rule = %rule.id, subjects = subjects.len(), ?how, rows, hits = hits.len(), spilled_bytes = spilled.bytes, ms = started.elapsed().as_millis() as u64, "rule ran");
        Ok(hits)
    }

    /// About how many subjects of `kind` the lake holds: rows of the registry, households on
    /// the roster.
    async fn subjects_in_lake(&self, kind: SubjectKind) -> Result<usize> {
        Ok(match kind {
            SubjectKind::Person => {
                let rows = self.snapshot().row_counts();
                rows.get("persons").copied().unwrap_or(0) as usize
            }
            SubjectKind::Household => {
                let roster = self.roster().await?;
                roster
                    .values()
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            }
        })
    }

    /// What makes a row one of `subjects`' rows: for persons, a resident ID column naming one
    /// (by its key); for households, its household number or a resident ID column naming one
    /// of their members (as the roster lists them).
    async fn rows_of(&self, kind: SubjectKind, subjects: &BTreeSet<String>) -> Result<SubjectRows> {
        let mut rows = SubjectRows::default();
        match kind {
            SubjectKind::Person => {
                rows.keys = subjects
                    .iter()
                    .filter_map(|s| ResidentId::parse(s).ok().map(|id| id.key()))
                    .collect();
            }
            SubjectKind::Household => {
                rows.households = subjects.clone();
                let members = self
                    .lookup
                    .table("dibao_members")
                    .await?
                    .filter(
                        col("household_no")
                            .in_list(subjects.iter().map(|s| lit(s.as_str())).collect(), false),
                    )?
                    .select_columns(&["person_id_key"])?
                    .collect()
                    .await?;
                for b in &members {
                    let keys = cast(b.column(0), &DataType::Int64)?;
                    rows.keys
                        .extend(keys.as_primitive::<Int64Type>().iter().flatten());
                }
            }
        }
        Ok(rows)
    }

    /// Run one rule for one subject only (a check at application time). `subject` must be a
    /// canonical resident ID or household number: it is checked to be letters and digits before
    /// it becomes a literal. The condition is pushed down into the rule's scans.
    ///
    /// The rows come from `source`: a caller's policy session, so the check sees only what the
    /// caller may see.
    pub async fn run_rule_for(
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
        subject: &str,
        source: &dyn crate::RowSource,
    ) -> Result<Vec<Hit>> {
        if subject.is_empty() || !subject.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Query(format!("`{subject}` is not a subject")));
        }
        let sql = format!(
            "SELECT * FROM ({}) AS hedui_rule WHERE hedui_rule.subject = '{subject}'",
            rule.render(values)?
        );
        let batches = source.rows(&sql).await?;
        hits_of(rule, &batches)
    }

    /// The canonical datasets a rule reads, through the views it uses (`deaths` reads the three
    /// death sources): a caller may see a rule's result only if they may read all of them.
    pub async fn rule_datasets(
        &self,
        rule: &RuleDef,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeSet<String>> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        let plan = self
            .context()
            .state()
            .create_logical_plan(&rule.render(values)?)
            .await?;
        let mut read = BTreeSet::new();
        plan.apply_with_subqueries(|node| {
            if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node {
                let table = scan.table_name.table();
                if hedui_model::Catalog::builtin().get(table).is_ok() {
                    read.insert(table.to_string());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(read)
    }

    async fn run_rule_sql(&self, rule: &RuleDef, sql: String) -> Result<Vec<Hit>> {
        let started = std::time::Instant::now();
        let ctx = self
            .rule_context(&sql)
            .await
            .map_err(|e| planning_error(rule, e))?;
        let on_cluster = !std::ptr::eq(ctx, self.context());
        let (batches, spilled) = if on_cluster {
            // The executors spill on their own disks; their logs say so.
            let (_, batches) = crate::collect(ctx, &sql)
                .await
                .map_err(|e| in_rule(rule, e))?;
            (batches, Default::default())
        } else {
            let df = ctx
                .sql_with_options(&sql, crate::read_only())
                .await
                .map_err(|e| in_rule(rule, crate::user_error(e)))?;
            crate::spill::collect(df, &self.spill)
                .await
                .map_err(|e| in_rule(rule, crate::user_error(e)))?
        };
        let hits = hits_of(rule, &batches)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        tracing::info!(rule = %rule.id, rows, hits = hits.len(), on_cluster, spilled_bytes = spilled.bytes, ms = started.elapsed().as_millis() as u64, "rule ran");
        Ok(hits)
    }

    /// Where a whole run of this rule goes: the cluster when there is one, unless the rule
    /// reads a table held in this process's memory, which executors cannot read (the cluster's
    /// session inlines hedui's own; this guards any other); else this process.
    async fn rule_context(&self, sql: &str) -> datafusion::error::Result<&SessionContext> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        use datafusion::datasource::{MemTable, source_as_provider};
        let Some(cluster) = &self.cluster else {
            return Ok(&self.ctx);
        };
        let state = cluster.state();
        let plan = state.optimize(&state.create_logical_plan(sql).await?)?;
        let mut in_memory = false;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let provider = source_as_provider(&scan.source)?;
                in_memory |= provider.downcast_ref::<MemTable>().is_some();
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(if in_memory { &self.ctx } else { cluster })
    }
}

/// How a rule runs for some subjects only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectRun {
    /// Every scan cut down to the subjects' rows before anything is joined or grouped: a
    /// filtered read, which bloom filters prune for a few subjects.
    CutDown,
    /// The whole rule, its result semi-joined with the subjects: cheaper once they are many, or
    /// a good part of all the lake's subjects of their kind (a month of dibao payments changes
    /// every household).
    WholeRule,
}

/// Up to this many subjects, a rule runs again with every scan cut down to their rows (a hash
/// set of their keys tested while decoding). More, and the lists would cost more to plan and
/// test than the whole rule costs to run.
pub(crate) const PUSHED_SUBJECTS: usize = 10_000;

/// The rows of some subjects: those whose resident ID columns hold one of `keys`, or whose
/// household number is one of `households`.
#[derive(Default)]
struct SubjectRows {
    keys: BTreeSet<i64>,
    households: BTreeSet<String>,
}

impl SubjectRows {
    /// A scan of a canonical dataset, filtered to these rows where its columns can say whose
    /// a row is; any other node (a scan of rows that are nobody's, a region table) as it is.
    fn cut(&self, node: LogicalPlan) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let Ok(def) = Catalog::builtin().get(scan.table_name.table()) else {
            return Ok(Transformed::no(node));
        };
        let column = |name: &str| {
            let c = Column::new(Some(scan.table_name.clone()), name);
            scan.projected_schema
                .has_column(&c)
                .then_some(Expr::Column(c))
        };
        let mut tests = Vec::new();
        if !self.keys.is_empty() {
            let keys: Vec<Expr> = self.keys.iter().map(|k| lit(*k)).collect();
            for c in def
                .columns
                .iter()
                .filter(|c| c.ty == ColumnType::ResidentId)
            {
                if let Some(key) = column(&format!("{}_key", c.name)) {
                    tests.push(key.in_list(keys.clone(), false));
                }
            }
        }
        if !self.households.is_empty()
            && def.column("household_no").is_some()
            && let Some(no) = column("household_no")
        {
            let numbers = self.households.iter().map(|h| lit(h.as_str())).collect();
            tests.push(no.in_list(numbers, false));
        }
        let Some(test) = disjunction(tests) else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            test,
            Arc::new(node),
        )?)))
    }
}

/// A rule's result rows as hits, one per subject.
pub(crate) fn hits_of(rule: &RuleDef, batches: &[RecordBatch]) -> Result<Vec<Hit>> {
    let mut by_subject: BTreeMap<String, Building> = BTreeMap::new();
    for batch in batches {
        collect(rule, batch, &mut by_subject)?;
    }
    let hits: Vec<Hit> = by_subject
        .into_iter()
        .map(|(subject, b)| Hit {
            rule: rule.id.clone(),
            rule_version: rule.version,
            subject,
            months: b.months.into_iter().collect(),
            amount_cents: (!b.amounts.is_empty()).then(|| b.amounts.values().sum()),
            evidence: b.evidence.into_iter().collect(),
            details: b.details.into_iter().collect(),
            amounts: b.amounts,
        })
        .collect();
    Ok(hits)
}

fn collect(
    rule: &RuleDef,
    batch: &RecordBatch,
    out: &mut BTreeMap<String, Building>,
) -> Result<()> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| wrong_output(rule, &format!("no column `{name}`")))
    };
    let subject = to_utf8(col("subject")?.as_ref())?;
    let month = cast(col("month")?, &DataType::Date32)?;
    let month = month.as_primitive::<Date32Type>();
    let amount = cast(col("amount")?, &DataType::Decimal128(38, 2))?;
    let amount = amount.as_primitive::<Decimal128Type>();
    let detail = to_utf8(col("detail")?.as_ref())?;
    let evidence = col("evidence")?;
    let list = evidence
        .as_list_opt::<i32>()
        .ok_or_else(|| wrong_output(rule, "`evidence` is not a list"))?;
    let items = list
        .values()
        .as_struct_opt()
        .ok_or_else(|| wrong_output(rule, "`evidence` items are not structs"))?;
    let field = |name: &str| {
        items
            .column_by_name(name)
            .ok_or_else(|| wrong_output(rule, &format!("evidence items lack `{name}`")))
    };
    let ev_dataset = to_utf8(field("dataset")?.as_ref())?;
    let ev_batch = to_utf8(field("batch")?.as_ref())?;
    // Required even where a dataset only ever comes from CSV: a reference without its sheet
    // would name a row of every sheet of a workbook.
    let ev_sheet = to_utf8(field("sheet")?.as_ref())?;
    let ev_row = cast(field("row_no")?, &DataType::Int64)?;
    let ev_row = ev_row.as_primitive::<Int64Type>();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");

    for i in 0..batch.num_rows() {
        if subject.is_null(i) || month.is_null(i) {
            continue;
        }
        let b = out.entry(subject.value(i).to_string()).or_default();
        b.months
            .insert(epoch + chrono::Duration::days(i64::from(month.value(i))));
        if !detail.is_null(i) {
            b.details.insert(detail.value(i).to_string());
        }
        let mut primary = None;
        if !list.is_null(i) {
            let offsets = list.value_offsets();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if ev_dataset.is_null(j) {
                    continue;
                }
                let r = EvidenceRef {
                    dataset: ev_dataset.value(j).to_string(),
                    batch: ev_batch.value(j).to_string(),
                    sheet: (!ev_sheet.is_null(j)).then(|| ev_sheet.value(j).to_string()),
                    row: ev_row.value(j),
                };
                if primary.is_none() {
                    primary = Some(r.clone());
                }
                b.evidence.insert(r);
            }
        }
        if !amount.is_null(i) {
            let key = primary.unwrap_or_else(|| EvidenceRef {
                dataset: String::new(),
                batch: String::new(),
                sheet: None,
                row: i as i64,
            });
            b.amounts.insert(key, amount.value(i));
        }
    }
    Ok(())
}
