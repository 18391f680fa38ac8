//! The policy of a grant as a view: the dataset's columns shown as their sensitivity class
//! allows, over a scan that yields only the caller's rows. The caller's session knows the
//! dataset only as this view; DataFusion inlines it into every query's plan, where the masks
//! are plan nodes whatever the SQL says.
//!
//! What a masked view shows of each class (README, "What a masked view shows"):
//! - identifier: a resident ID only its six-digit region prefix, a name only its surname, an ID
//!   key or an identifying number (household, personal, plate) only a keyed pseudonym, which
//!   still joins; the raw ID nothing;
//! - quasi-identifier: a date only its year; a sex, code or region code as it is; text nothing;
//! - personal: nothing;
//! - public and lineage columns: as they are.
//!
//! Together that is at most region, birth year and sex, from which no ID can be rebuilt: the
//! month and day of birth and the three-digit sequence number are never shown.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableSource};
use hedui_model::{ColumnType, DatasetDef, Sensitivity};

use crate::grant::Grant;
use crate::masks::Masks;

/// How one stored column appears in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Clear,
    Hidden,
    IdPrefix,
    Surname,
    Year,
    PseudonymKey,
    PseudonymText,
}

fn shown(def: &DatasetDef, field: &str, grant: &Grant, masked: bool) -> Shown {
    let column = def.column_of_field(field);
    if grant.hide.contains(field) || column.is_some_and(|c| grant.hide.contains(&c.name)) {
        return Shown::Hidden;
    }
    // Lineage columns (`_source`, `_sheet`, `_batch`, `_row`, `_ingested_at`) say where a row came from.
    let Some(c) = column else {
        return Shown::Clear;
    };
    if !masked {
        return Shown::Clear;
    }
    match (c.class, c.ty) {
        (Sensitivity::Identifier, ColumnType::ResidentId) if field == c.name => Shown::IdPrefix,
        (Sensitivity::Identifier, ColumnType::ResidentId) if field.ends_with("_key") => {
            Shown::PseudonymKey
        }
        (Sensitivity::Identifier, ColumnType::ResidentId) => Shown::Hidden,
        (Sensitivity::Identifier, ColumnType::Name) => Shown::Surname,
        (Sensitivity::Identifier, _) => Shown::PseudonymText,
        (Sensitivity::QuasiIdentifier, ColumnType::Date | ColumnType::Month) => Shown::Year,
        (
            Sensitivity::QuasiIdentifier,
            ColumnType::Sex | ColumnType::Code | ColumnType::RegionCode | ColumnType::Int,
        ) => Shown::Clear,
        (Sensitivity::QuasiIdentifier, _) | (Sensitivity::Personal, _) => Shown::Hidden,
        (Sensitivity::Public, _) => Shown::Clear,
    }
}

/// The view of `def` for `grant`, over `source` (the dataset's scan, already scoped to the
/// caller's rows).
pub fn view_plan(
    def: &DatasetDef,
    grant: &Grant,
    masked: bool,
    source: Arc<dyn TableSource>,
    masks: &Masks,
) -> DfResult<LogicalPlan> {
    let schema = def.arrow_schema();
    let mut select = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        let column = Expr::Column(Column::new(Some(def.name.as_str()), name));
        let expr = match shown(def, name, grant, masked) {
            Shown::Clear => column,
            Shown::Hidden => typed_null(field.data_type())?,
            Shown::IdPrefix => masks.id_prefix(column),
            Shown::Surname => masks.surname(column),
            Shown::Year => masks.year(column),
            Shown::PseudonymKey => masks.pseudonym_key(column),
            Shown::PseudonymText => masks.pseudonym_text(column),
        };
        select.push(expr.alias(name));
    }
    LogicalPlanBuilder::scan(def.name.as_str(), source, None)?
        .project(select)?
        .build()
}

fn typed_null(ty: &DataType) -> DfResult<Expr> {
    Ok(Expr::Literal(ScalarValue::try_from(ty)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Unmask;
    use hedui_model::Catalog;

    fn grant(dataset: &str) -> Grant {
        Grant {
            dataset: dataset.into(),
            region: None,
            unmask: Unmask::Never,
            hide: Default::default(),
            aggregate_only: false,
            policy: "test".into(),
        }
    }

    /// The rule of the module, column by column, for every shipped dataset: nothing that
    /// identifies is shown in clear, and of quasi-identifying dates only the year.
    #[test]
    fn masked_views_show_each_class_as_documented() {
        for def in Catalog::builtin().iter() {
            let g = grant(&def.name);
            for field in def.arrow_schema().fields() {
                let name = field.name().as_str();
                let how = shown(def, name, &g, true);
                let Some(c) = def.column_of_field(name) else {
                    assert_eq!(how, Shown::Clear, "{}.{name}", def.name);
                    continue;
                };
                let ok = match c.class {
                    Sensitivity::Identifier => how != Shown::Clear && how != Shown::Year,
                    Sensitivity::QuasiIdentifier => match c.ty {
                        ColumnType::Date | ColumnType::Month => how == Shown::Year,
                        ColumnType::Text | ColumnType::Name => how == Shown::Hidden,
                        _ => how == Shown::Clear,
                    },
                    Sensitivity::Personal => how == Shown::Hidden,
                    Sensitivity::Public => how == Shown::Clear,
                };
                assert!(ok, "{}.{name} ({:?}) shown as {how:?}", def.name, c.class);
                assert_eq!(shown(def, name, &g, false), Shown::Clear);
            }
        }
    }
}
