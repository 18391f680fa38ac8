//! Statement shapes: the same query asked again with other values (a point query for another
//! resident ID) is planned once. The string literals a statement compares columns with in its
//! `WHERE` clause are taken out as parameters (`person_id = '…'` becomes `person_id = $1`); the
//! rest of the statement is its shape. A session's context keeps, per shape, the plan as
//! optimised with the parameters unbound; a later statement of that shape binds its values into
//! that plan and is judged on it by exactly the checks a freshly planned statement gets (lineage,
//! purpose, the policies in force). Only the plan's construction is reused, never a verdict.
//!
//! Deliberately narrow: literals compared with a bare column (`=`, `<>`, `<`, `<=`, `>`, `>=`,
//! `IN (…)`) under `AND`s of the top-level `SELECT`'s `WHERE`. Anything else keeps its literals
//! in the shape, and a statement whose shape does not plan, or whose values do not convert to
//! the types the plan gives its parameters, is planned the ordinary way (with its own errors).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, SetExpr, Statement as SqlStatement, Value,
};

use crate::planner;
use crate::session::Session;
use crate::{Query, Result};

/// Shapes kept per context: beyond this, the least recently planned are dropped (a caller
/// sending endless different statements cannot grow the server's memory).
const SHAPES_PER_CONTEXT: usize = 512;

/// A shape's plan, optimised with its parameters unbound.
pub(crate) struct Template {
    pub plan: LogicalPlan,
    /// The type the plan gives each parameter, `$1` first.
    pub types: Vec<DataType>,
    /// The datasets the statement reads, as the unoptimised plan names them.
    pub tables: std::collections::BTreeSet<String>,
}

/// A shape's template (`None`: it cannot be planned this way) and when it was last used.
type Kept = (u64, Option<Arc<Template>>);

/// The templates of one context.
#[derive(Default)]
pub(crate) struct Templates {
    shapes: Mutex<HashMap<String, Kept>>,
    clock: std::sync::atomic::AtomicU64,
}

impl Templates {
    pub fn get(&self, shape: &str) -> Option<Option<Arc<Template>>> {
        let mut shapes = self.shapes.lock().expect("shapes lock");
        let tick = self.tick();
        shapes.get_mut(shape).map(|(used, t)| {
            *used = tick;
            t.clone()
        })
    }

    pub fn put(&self, shape: String, template: Option<Arc<Template>>) {
        let mut shapes = self.shapes.lock().expect("shapes lock");
        if shapes.len() >= SHAPES_PER_CONTEXT {
            // Drop the older half: one pass, then room for as many new shapes.
            let mut ages: Vec<u64> = shapes.values().map(|(used, _)| *used).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            shapes.retain(|_, (used, _)| *used > cut);
        }
        let tick = self.tick();
        shapes.insert(shape, (tick, template));
    }

    fn tick(&self) -> u64 {
        self.clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shapes.lock().expect("shapes lock").len()
    }
}

impl Session {
    /// Plan `sql` from the template of its shape (planning the template the first time), then
    /// judge the bound plan like any other. `None` when the statement has no shape, its shape
    /// does not plan with parameters, or its values do not bind: it is then planned the
    /// ordinary way, which reports its errors. Only on a planning thread.
    pub(crate) fn plan_by_shape(
        &self,
        handle: &tokio::runtime::Handle,
        sql: &str,
    ) -> Option<Result<Query>> {
        let templates = self.templates.as_ref()?;
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).ok()?;
        planner::check_depth(&statement, self.max_depth).ok()?;
        let (shaped, values) = parameterize(&statement)?;
        if values.is_empty() {
            return None;
        }
        let key = shaped.to_string();
        let template = match templates.get(&key) {
            Some(known) => known?,
            None => {
                let made = self.template(handle, &state, shaped, values.len());
                templates.put(key, made.clone());
                made?
            }
        };
        let params = bind(&template, &values)?;
        let plan = template.plan.clone().with_param_values(params).ok()?;
        Some(
            self.judge(None, plan, template.tables.clone())
                .map(|mut q| {
                    q.info.from_shape = true;
                    q
                }),
        )
    }

    /// A shape's plan, optimised with its parameters unbound: `None` if it is not a query
    /// this session may run as it stands or a parameter's type is not known.
    fn template(
        &self,
        handle: &tokio::runtime::Handle,
        state: &datafusion::execution::session_state::SessionState,
        shaped: datafusion::sql::parser::Statement,
        count: usize,
    ) -> Option<Arc<Template>> {
        let plan = handle.block_on(state.statement_to_plan(shaped)).ok()?;
        self.check_structure(&plan).ok()?;
        let types = parameter_types(&plan, count)?;
        let tables = crate::inspect::tables(&plan);
        let plan = state.optimize(&self.limited(plan).ok()?).ok()?;
        Some(Arc::new(Template {
            plan,
            types,
            tables,
        }))
    }
}

/// The statement with its comparable string literals replaced by `$1`, `$2`, … and those
/// literals in order; `None` for a statement that is not a plain `SELECT` or already has
/// parameters of its own.
pub(crate) fn parameterize(statement: &Statement) -> Option<(Statement, Vec<String>)> {
    let Statement::Statement(inner) = statement else {
        return None;
    };
    let SqlStatement::Query(query) = inner.as_ref() else {
        return None;
    };
    if statement.to_string().contains('$') {
        // Parameters of its own (or a `$` in a literal): leave it to the ordinary path.
        return None;
    }
    let mut query = query.clone();
    let mut values = Vec::new();
    if let SetExpr::Select(select) = query.body.as_mut()
        && let Some(selection) = select.selection.as_mut()
    {
        take_literals(selection, &mut values);
    }
    Some((
        Statement::Statement(Box::new(SqlStatement::Query(query))),
        values,
    ))
}

fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn placeholder(values: &mut Vec<String>, value: &str) -> Expr {
    values.push(value.to_string());
    Expr::Value(Value::Placeholder(format!("${}", values.len())).into())
}

fn take_literals(e: &mut Expr, values: &mut Vec<String>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            take_literals(left, values);
            take_literals(right, values);
        }
        Expr::Nested(inner) => take_literals(inner, values),
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
            right,
        } => {
            if is_column(left)
                && let Some(s) = string_literal(right)
            {
                **right = placeholder(values, s);
            } else if is_column(right)
                && let Some(s) = string_literal(left)
            {
                **left = placeholder(values, s);
            }
        }
        Expr::InList { expr, list, .. }
            if is_column(expr) && list.iter().all(|x| string_literal(x).is_some()) =>
        {
            for item in list.iter_mut() {
                let s = string_literal(item).expect("checked").to_string();
                *item = placeholder(values, &s);
            }
        }
        _ => {}
    }
}

/// The statement's values as the template's parameters: each converted to the type the plan
/// gives it (a date column compared with '2025-01-08' gets a date). `None` if one does not
/// convert: the ordinary path then plans it and reports the error.
pub(crate) fn bind(template: &Template, values: &[String]) -> Option<ParamValues> {
    if values.len() != template.types.len() {
        return None;
    }
    let bound: Option<Vec<ScalarValue>> = values
        .iter()
        .zip(&template.types)
        .map(|(v, ty)| ScalarValue::Utf8(Some(v.clone())).cast_to(ty).ok())
        .collect();
    Some(ParamValues::List(
        bound?.into_iter().map(Into::into).collect(),
    ))
}

/// The types of `$1`, `$2`, … in `plan`; `None` if one is unknown or they are not numbered
/// one after another.
pub(crate) fn parameter_types(plan: &LogicalPlan, count: usize) -> Option<Vec<DataType>> {
    let types = plan.get_parameter_types().ok()?;
    if types.len() != count {
        return None;
    }
    (1..=count)
        .map(|i| types.get(&format!("${i}")).cloned().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn shape(sql: &str) -> (String, Vec<String>) {
        let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        let (s, v) = parameterize(&statement).unwrap();
        (s.to_string(), v)
    }

    #[test]
    fn point_queries_for_different_persons_share_a_shape() {
        let (a, va) = shape("SELECT name FROM persons WHERE person_id = '420502195001010011'");
        let (b, vb) = shape("SELECT name FROM persons WHERE person_id = '110101198001010012'");
        assert_eq!(a, b);
        assert_eq!(a, "SELECT name FROM persons WHERE person_id = $1");
        assert_eq!(va, ["420502195001010011"]);
        assert_eq!(vb, ["110101198001010012"]);
    }

    #[test]
    fn only_literals_compared_with_a_column_become_parameters() {
        let (s, v) = shape(
            "SELECT count(*) FROM persons WHERE p.region_code IN ('420502', '420503') \
             AND ('1950-01-01' < birth_date) AND name LIKE '张%' AND status = upper('x') LIMIT 5",
        );
        assert_eq!(v, ["420502", "420503", "1950-01-01"]);
        assert!(s.contains("LIKE '张%'"), "{s}");
        assert!(s.contains("upper('x')"), "{s}");
        assert!(s.contains("$3 < birth_date"), "{s}");
    }

    #[test]
    fn statements_with_their_own_parameters_or_not_queries_have_no_shape() {
        for sql in [
            "SELECT name FROM persons WHERE person_id = $1",
            "SELECT '$x' FROM persons WHERE person_id = 'a'",
            "EXPLAIN SELECT 1",
        ] {
            let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
            assert!(parameterize(&statement).is_none(), "{sql}");
        }
    }

    #[test]
    fn a_context_keeps_a_bounded_number_of_shapes() {
        let t = Templates::default();
        for i in 0..(SHAPES_PER_CONTEXT * 3) {
            t.put(format!("shape {i}"), None);
        }
        assert!(t.len() <= SHAPES_PER_CONTEXT);
        assert!(
            t.get(&format!("shape {}", SHAPES_PER_CONTEXT * 3 - 1))
                .is_some()
        );
    }
}
