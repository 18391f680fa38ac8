//! Tables and views hedui adds beside the canonical datasets: `batches` (what each batch is and
//! how fresh its source was) and the death views the rules share.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use hedui_lake::Snapshot;

use crate::Result;
use crate::memory::{self, InMemory};

/// Every death record of the three death sources, one row each, with its evidence reference.
const DEATH_RECORDS: &str = "
CREATE VIEW death_records AS
SELECT person_id_key, person_id, death_date, 'cremations' AS source,
       named_struct('dataset', 'cremations', 'batch', _batch, 'sheet', _sheet, 'row_no', _row) AS evidence
FROM cremations
UNION ALL
SELECT person_id_key, person_id, death_date, 'death_certificates',
       named_struct('dataset', 'death_certificates', 'batch', _batch, 'sheet', _sheet, 'row_no', _row)
FROM death_certificates
UNION ALL
SELECT person_id_key, person_id, cancel_date, 'persons',
       named_struct('dataset', 'persons', 'batch', _batch, 'sheet', _sheet, 'row_no', _row)
FROM persons WHERE status = 'deceased' AND cancel_date IS NOT NULL";

/// One row per deceased person: the death month counts from the earliest date any source gives.
const DEATHS: &str = "
CREATE VIEW deaths AS
SELECT person_id_key,
       min(person_id) AS person_id,
       CAST(date_trunc('month', min(death_date)) AS DATE) AS death_month,
       min(death_date) AS first_date,
       max(death_date) AS last_date,
       array_agg(evidence) AS evidence
FROM death_records GROUP BY person_id_key";

/// The views hedui defines over the datasets: name, the tables each reads, and its SQL. A
/// policy session defines them again over the caller's views of those tables.
pub const DERIVED_VIEWS: &[(&str, &[&str], &str)] = &[
    (
        "death_records",
        &["cremations", "death_certificates", "persons"],
        DEATH_RECORDS,
    ),
    ("deaths", &["death_records"], DEATHS),
];

pub(crate) async fn register(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    memory: InMemory,
) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("batch", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, true),
        Field::new("committed_at", DataType::Utf8, false),
        Field::new("live", DataType::Boolean, false),
    ]));
    let commits = snapshot.commits();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| c.batch.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            commits.iter().map(|c| c.seq as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| c.source.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| c.file.as_str()),
        )),
        Arc::new(Date32Array::from_iter(
            commits
                .iter()
                .map(|c| c.as_of.map(|d| (d - epoch).num_days() as i32)),
        )),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| c.committed_at.to_rfc3339()),
        )),
        Arc::new(BooleanArray::from_iter(
            commits.iter().map(|c| Some(snapshot.is_live(&c.batch))),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    ctx.register_table("batches", memory::table(schema, vec![batch], memory)?)?;
    for (_, _, view) in DERIVED_VIEWS {
        ctx.sql(view).await?.collect().await?;
    }
    Ok(())
}
