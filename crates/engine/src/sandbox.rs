//! A sandbox for trying rules on small hand-written tables: every canonical dataset as an empty,
//! writable table (all columns nullable, lineage included), the system tables and views, and each
//! rule as a view named after its id (`r1` ... `r7`) with the given parameter values. The rule
//! semantics tests (`rules/tests/*.slt`) run in it. Never used over a real lake.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use hedui_lake::Snapshot;
use hedui_model::Catalog;

use crate::rules::RuleSet;
use crate::{Result, system};

pub async fn sandbox(rules: &RuleSet, values: &BTreeMap<String, String>) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for def in Catalog::builtin().iter() {
        let fields: Vec<Field> = def
            .arrow_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        ctx.register_table(
            def.name.as_str(),
            Arc::new(MemTable::try_new(schema, vec![vec![]])?),
        )?;
    }
    system::register(&ctx, &Snapshot::default(), crate::memory::InMemory::Table).await?;
    for rule in rules.iter() {
        let sql = rule.render(values)?;
        ctx.sql(&format!("CREATE VIEW {} AS {sql}", rule.id.to_lowercase()))
            .await?
            .collect()
            .await?;
    }
    Ok(ctx)
}
