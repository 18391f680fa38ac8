//! Where a rule's subject lives: the region code of a person's registered address, or of a dibao
//! household's head. Cases are dispatched and scoped by it.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::JoinType;
use hedui_model::ResidentId;

use crate::rules::SubjectKind;
use crate::{Engine, Result};

/// Households per query: IN lists this long still prune row groups by bloom filter.
const CHUNK: usize = 500;

impl Engine {
    /// Subject -> region code, for the subjects found in the household registry.
    pub async fn subject_regions(
        &self,
        subjects: &[(SubjectKind, String)],
    ) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        let persons: Vec<(String, i64)> = subjects
            .iter()
            .filter(|(k, _)| *k == SubjectKind::Person)
            .filter_map(|(_, s)| ResidentId::parse(s).ok().map(|id| (s.clone(), id.key())))
            .collect();
        let by_key: HashMap<i64, &str> = persons.iter().map(|(s, k)| (*k, s.as_str())).collect();
        if !by_key.is_empty() {
            // One pass over the registry, semi-joined with the keys: any number of subjects.
            let keys = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "hedui_key",
                    DataType::Int64,
                    false,
                )])),
                vec![Arc::new(Int64Array::from_iter_values(
                    by_key.keys().copied(),
                ))],
            )?;
            let registry = self
                .lookup
                .table("persons")
                .await?
                .select_columns(&["person_id_key", "region_code"])?;
            let batches = self
                .lookup
                .read_batch(keys)?
                .join(
                    registry,
                    JoinType::RightSemi,
                    &["hedui_key"],
                    &["person_id_key"],
                    None,
                )?
                .collect()
                .await?;
            for (key, region) in pairs_of(&batches)? {
                if let Some(subject) = key.parse::<i64>().ok().and_then(|k| by_key.get(&k)) {
                    out.insert(subject.to_string(), region);
                }
            }
        }
        let households: Vec<String> = subjects
            .iter()
            .filter(|(k, _)| *k == SubjectKind::Household)
            .map(|(_, s)| format!("'{}'", s.replace('\'', "''")))
            .collect();
        for chunk in households.chunks(CHUNK) {
            let sql = format!(
                "SELECT h.household_no, p.region_code FROM dibao_households h \
                 JOIN persons p ON p.person_id_key = h.head_id_key \
                 WHERE h.household_no IN ({})",
                chunk.join(", ")
            );
            out.extend(self.pairs(&sql).await?);
        }
        Ok(out)
    }

    /// The non-null (first, second) text pairs a query returns.
    async fn pairs(&self, sql: &str) -> Result<Vec<(String, String)>> {
        pairs_of(&self.lookup(sql).await?.1)
    }
}

/// The non-null (first, second) values of rows, as text.
fn pairs_of(batches: &[RecordBatch]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in batches {
        let a = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let c = datafusion::arrow::compute::cast(b.column(1), &DataType::Utf8)?;
        let (a, c) = (a.as_string::<i32>(), c.as_string::<i32>());
        for i in 0..b.num_rows() {
            if a.is_valid(i) && c.is_valid(i) {
                out.push((a.value(i).to_string(), c.value(i).to_string()));
            }
        }
    }
    Ok(out)
}
