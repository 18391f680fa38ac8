//! Evidence: the lake rows a hit's references point at, each with where it came from (file,
//! sheet, row), its batch and how fresh its source was (the batch's as-of date).

use std::collections::{BTreeMap, HashMap, HashSet};

use datafusion::arrow::json::ArrayWriter;
use serde::Serialize;

use crate::check::{EvidenceRef, Hit};
use crate::{Engine, Result};

/// Rows fetched per query: keeps `IN` lists short.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub dataset: String,
    pub batch: String,
    /// The workbook sheet, if the file was a workbook.
    pub sheet: Option<String>,
    pub row: i64,
    /// The delivered file (and `#sheet`).
    pub source: String,
    /// The department source (mapping id) of the batch.
    pub source_id: String,
    pub as_of: Option<chrono::NaiveDate>,
    /// Set when the row's source is later than the cadence its mapping expects: the hit relies
    /// on data that may be out of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    /// The row's values as stored in the lake.
    pub values: serde_json::Map<String, serde_json::Value>,
}

impl Engine {
    /// Fetch the rows behind every reference of `hits`, keyed by reference.
    pub async fn load_evidence(&self, hits: &[Hit]) -> Result<HashMap<EvidenceRef, EvidenceRow>> {
        let commits: HashMap<&str, &hedui_lake::Commit> = self
            .snapshot()
            .commits()
            .iter()
            .map(|c| (c.batch.as_str(), c))
            .collect();
        let mut wanted: BTreeMap<&str, HashSet<&EvidenceRef>> = BTreeMap::new();
        for r in hits.iter().flat_map(|h| &h.evidence) {
            wanted.entry(&r.dataset).or_default().insert(r);
        }
        let mut out = HashMap::new();
        for (dataset, refs) in wanted {
            let refs: Vec<&EvidenceRef> = refs.into_iter().collect();
            for chunk in refs.chunks(CHUNK) {
                let batches: HashSet<&str> = chunk.iter().map(|r| r.batch.as_str()).collect();
                let rows: HashSet<i64> = chunk.iter().map(|r| r.row).collect();
                let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
                let sql = format!(
                    "SELECT * FROM {dataset} WHERE _batch IN ({}) AND _row IN ({})",
                    batches
                        .iter()
                        .map(|b| quote(b))
                        .collect::<Vec<_>>()
                        .join(", "),
                    rows.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let parsed = json_rows(self, &sql).await?;
                let wanted_refs: HashSet<&EvidenceRef> = chunk.iter().copied().collect();
                for values in parsed {
                    let r = evidence_row(dataset, values, &commits);
                    let key = EvidenceRef {
                        dataset: dataset.to_string(),
                        batch: r.batch.clone(),
                        sheet: r.sheet.clone(),
                        row: r.row,
                    };
                    // Batch and row alone match the same row number on every sheet.
                    if wanted_refs.contains(&key) {
                        out.insert(key, r);
                    }
                }
            }
        }
        let warnings: HashMap<String, String> =
            hedui_lake::freshness(self.snapshot(), chrono::Utc::now())
                .into_iter()
                .filter_map(|f| f.warning().map(|w| (f.source, w)))
                .collect();
        if !warnings.is_empty() {
            for r in out.values_mut() {
                r.stale = warnings.get(&r.source_id).cloned();
            }
        }
        Ok(out)
    }
}

/// A query's rows as JSON objects (column -> value), as reviewers are shown them.
pub(crate) async fn json_rows(
    source: &dyn crate::RowSource,
    sql: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let result = source.rows(sql).await?;
    let mut buf = Vec::new();
    {
        let mut w = ArrayWriter::new(&mut buf);
        for b in &result {
            w.write(b)?;
        }
        w.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| crate::Error::Query(e.to_string()))
}

/// A lake row with where it came from: its batch's source and as-of date.
pub(crate) fn evidence_row(
    dataset: &str,
    values: serde_json::Map<String, serde_json::Value>,
    commits: &HashMap<&str, &hedui_lake::Commit>,
) -> EvidenceRow {
    let batch = values
        .get("_batch")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let commit = commits.get(batch.as_str());
    EvidenceRow {
        dataset: dataset.to_string(),
        row: values
            .get("_row")
            .and_then(|v| v.as_i64())
            .unwrap_or_default(),
        source: values
            .get("_source")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        sheet: values
            .get("_sheet")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        source_id: commit.map(|c| c.source.clone()).unwrap_or_default(),
        as_of: commit.and_then(|c| c.as_of),
        stale: None,
        batch,
        values,
    }
}
