//! The policy of a grant as a view: the dataset's columns with masks applied and its rows
//! filtered to the caller's region. The caller's session knows the dataset only as this view,
//! so every query, whatever it says, reads through it; DataFusion inlines the view into the
//! query's plan, where the region filter and masks are ordinary plan nodes.

use arrow::datatypes::DataType;
use hedui_model::{ColumnType, DatasetDef, RegionScope};

use crate::grant::Grant;

pub const PSEUDONYM_FN: &str = "hedui_pseudonym";

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        _ => "VARCHAR".into(),
    }
}

/// `420502199001011234` -> `420502********1234`.
pub fn mask_id_sql(col: &str) -> String {
    let c = quote(col);
    format!(
        "CASE WHEN {c} IS NULL THEN NULL ELSE concat(substr({c}, 1, 6), '********', substr({c}, 15, 4)) END"
    )
}

/// `张三丰` -> `张*`.
pub fn mask_name_sql(col: &str) -> String {
    let c = quote(col);
    format!("CASE WHEN {c} IS NULL THEN NULL ELSE concat(substr({c}, 1, 1), '*') END")
}

/// The rows of a region: the predicate for a dataset's region scope. `region` is digits only
/// (checked when the token was verified), so it is safe as a literal.
fn region_predicate(scope: &RegionScope, region: &str) -> String {
    debug_assert!(hedui_auth::valid_region(region));
    let persons_in =
        format!("SELECT person_id_key FROM persons WHERE starts_with(region_code, '{region}')");
    match scope {
        RegionScope::Column(c) => format!("starts_with({}, '{region}')", quote(c)),
        RegionScope::Person(c) => format!("{} IN ({persons_in})", quote(&format!("{c}_key"))),
        RegionScope::Household(c) => format!(
            "{} IN (SELECT h.household_no FROM dibao_households h JOIN persons p \
             ON h.head_id_key = p.person_id_key WHERE starts_with(p.region_code, '{region}'))",
            quote(c)
        ),
    }
}

/// The view's SQL over the lake's own table of the dataset.
pub fn view_sql(def: &DatasetDef, grant: &Grant, masked: bool) -> String {
    let schema = def.arrow_schema();
    let mut select = Vec::new();
    for field in schema.fields() {
        let name = field.name();
        let column = def.columns.iter().find(|c| {
            c.name == *name
                || (c.ty == ColumnType::ResidentId
                    && (*name == format!("{}_key", c.name) || *name == format!("{}_raw", c.name)))
        });
        let null = format!(
            "CAST(NULL AS {}) AS {}",
            sql_type(field.data_type()),
            quote(name)
        );
        let expr = match column {
            _ if grant.hide.contains(name.as_str())
                || column.is_some_and(|c| grant.hide.contains(&c.name)) =>
            {
                null
            }
            Some(c) if masked && c.ty == ColumnType::ResidentId => {
                if *name == c.name {
                    format!("{} AS {}", mask_id_sql(name), quote(name))
                } else if name.ends_with("_key") {
                    // Still joins across datasets, but is not the ID.
                    format!("{PSEUDONYM_FN}({}) AS {}", quote(name), quote(name))
                } else {
                    null
                }
            }
            Some(c) if masked && c.ty == ColumnType::Name => {
                format!("{} AS {}", mask_name_sql(name), quote(name))
            }
            Some(c) if masked && c.personal => null,
            _ => quote(name),
        };
        select.push(expr);
    }
    let mut sql = format!("SELECT {} FROM {}", select.join(", "), quote(&def.name));
    if let (Some(region), Some(scope)) = (&grant.region, &def.region) {
        sql.push_str(" WHERE ");
        sql.push_str(&region_predicate(scope, region));
    }
    sql
}
