//! Evidence: the lake rows a hit's references point at, each with where it came from (file,
//! sheet, row), its batch and how fresh its source was (the batch's as-of date).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::json::ArrayWriter;
use datafusion::common::JoinType;
use hedui_model::Catalog;
use serde::{Deserialize, Serialize};

use crate::check::{EvidenceRef, Hit};
use crate::{Engine, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
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

impl EvidenceRow {
    /// The reference this row answers.
    pub fn reference(&self) -> EvidenceRef {
        EvidenceRef {
            dataset: self.dataset.clone(),
            batch: self.batch.clone(),
            sheet: self.sheet.clone(),
            row: self.row,
        }
    }
}

impl Engine {
    /// Fetch the rows behind every reference of `hits`, keyed by reference.
    pub async fn load_evidence(&self, hits: &[Hit]) -> Result<HashMap<EvidenceRef, EvidenceRow>> {
        self.load_evidence_reusing(hits, HashMap::new()).await
    }

    /// [`Engine::load_evidence`], taking from `known` (the rows an open case already shows) the
    /// rows it holds: a reference names one row of one delivered batch, whose values never
    /// change (a batch's rows are dropped, never edited), so only the references not known are
    /// read from the lake. How fresh each row's source is, is always judged anew.
    pub async fn load_evidence_reusing(
        &self,
        hits: &[Hit],
        mut known: HashMap<EvidenceRef, EvidenceRow>,
    ) -> Result<HashMap<EvidenceRef, EvidenceRow>> {
        let mut out = HashMap::new();
        let mut wanted: BTreeMap<&str, BTreeSet<&EvidenceRef>> = BTreeMap::new();
        for r in hits.iter().flat_map(|h| &h.evidence) {
            if out.contains_key(r) {
                continue;
            }
            match known.remove(r) {
                Some(row) => {
                    out.insert(r.clone(), row);
                }
                None => {
                    wanted.entry(&r.dataset).or_default().insert(r);
                }
            }
        }
        for (dataset, refs) in wanted {
            self.fetch_rows(dataset, &refs, &mut out).await?;
        }
        let warnings: HashMap<String, String> =
            hedui_lake::freshness(self.snapshot(), chrono::Utc::now())
                .into_iter()
                .filter_map(|f| f.warning().map(|w| (f.source, w)))
                .collect();
        for r in out.values_mut() {
            r.stale = warnings.get(&r.source_id).cloned();
        }
        Ok(out)
    }

    /// The rows of `dataset` behind `refs`, in one pass over the files of the batches they
    /// name (not the whole dataset): the references are a table the files are semi-joined
    /// with on batch and row, so their number costs no extra scans.
    async fn fetch_rows(
        &self,
        dataset: &str,
        refs: &BTreeSet<&EvidenceRef>,
        out: &mut HashMap<EvidenceRef, EvidenceRow>,
    ) -> Result<()> {
        let snapshot = self.snapshot();
        let batches: BTreeSet<&str> = refs.iter().map(|r| r.batch.as_str()).collect();
        let files: Vec<String> = batches
            .iter()
            .flat_map(|b| snapshot.batch_files(b))
            .filter(|f| f.dataset == dataset && f.rows > 0)
            .map(|f| snapshot.url_of(&f.path))
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        let schema = Catalog::builtin()
            .get(dataset)
            .map_err(|e| crate::Error::Query(e.to_string()))?
            .arrow_schema();
        let table = self
            .lookup
            .read_table(crate::parquet_table(&files, schema)?)?;
        let wanted = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("hedui_batch", DataType::Utf8, false),
                Field::new("hedui_row", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from_iter_values(
                    refs.iter().map(|r| r.batch.as_str()),
                )),
                Arc::new(Int64Array::from_iter_values(refs.iter().map(|r| r.row))),
            ],
        )?;
        // The small side (the references) is the one the join builds its table from.
        let rows = self
            .lookup
            .read_batch(wanted)?
            .join(
                table,
                JoinType::RightSemi,
                &["hedui_batch", "hedui_row"],
                &["_batch", "_row"],
                None,
            )?
            .collect()
            .await?;
        let commits: HashMap<&str, &hedui_lake::Commit> = snapshot
            .commits()
            .iter()
            .map(|c| (c.batch.as_str(), c))
            .collect();
        for values in json_of(&rows)? {
            let row = evidence_row(dataset, values, &commits);
            let key = row.reference();
            // Batch and row alone match the same row number on every sheet.
            if refs.contains(&key) {
                out.insert(key, row);
            }
        }
        Ok(())
    }
}

/// A query's rows as JSON objects (column -> value), as reviewers are shown them.
pub(crate) async fn json_rows(
    source: &dyn crate::RowSource,
    sql: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    json_of(&source.rows(sql).await?)
}

/// Record batches as JSON objects (column -> value).
fn json_of(batches: &[RecordBatch]) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut buf = Vec::new();
    {
        let mut w = ArrayWriter::new(&mut buf);
        for b in batches {
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
