//! The audit log as a table, for auditors: read from the log file when their session starts.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use hedui_audit::Entry;

use crate::{Error, Result};

const TEXT: &[&str] = &[
    "ts",
    "actor",
    "roles",
    "region",
    "client",
    "interface",
    "action",
    "statement",
    "datasets",
    "columns",
    "policies",
    "purpose",
    "outcome",
    "reason",
    "request_id",
    "prev",
    "hash",
];

pub fn batch(path: Option<&Path>) -> Result<RecordBatch> {
    let mut fields = vec![Field::new("seq", DataType::Int64, false)];
    fields.extend(TEXT.iter().map(|n| Field::new(*n, DataType::Utf8, true)));
    fields.push(Field::new("rows", DataType::Int64, true));
    fields.push(Field::new("duration_ms", DataType::Int64, false));
    let schema = Arc::new(Schema::new(fields));
    let mut seq = Int64Builder::new();
    let mut rows = Int64Builder::new();
    let mut duration = Int64Builder::new();
    let mut text: Vec<StringBuilder> = TEXT.iter().map(|_| StringBuilder::new()).collect();
    let file = match path.map(std::fs::File::open) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Some(Err(e)) => return Err(Error::Internal(format!("reading the audit log: {e}"))),
        None => None,
    };
    if let Some(file) = file {
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::Internal(format!("reading the audit log: {e}")))?;
            let Ok(e) = serde_json::from_str::<Entry>(&line) else {
                // `hedui audit verify` says where and why; the table shows what it can read.
                continue;
            };
            let ev = &e.event;
            let join = |v: &[String]| v.join(",");
            let values: [Option<String>; 17] = [
                Some(e.ts.to_rfc3339()),
                Some(ev.actor.clone()),
                Some(join(&ev.roles)),
                ev.region.clone(),
                Some(ev.client.clone()),
                Some(
                    serde_json::to_value(ev.interface)
                        .unwrap()
                        .as_str()
                        .unwrap_or("")
                        .into(),
                ),
                Some(ev.action.clone()),
                ev.statement.clone(),
                Some(join(&ev.datasets)),
                Some(join(&ev.columns)),
                Some(join(&ev.policies)),
                ev.purpose.clone(),
                Some(
                    serde_json::to_value(ev.outcome)
                        .unwrap()
                        .as_str()
                        .unwrap_or("")
                        .into(),
                ),
                ev.reason.clone(),
                ev.request_id.clone(),
                Some(e.prev.clone()),
                Some(e.hash.clone()),
            ];
            for (b, v) in text.iter_mut().zip(values) {
                b.append_option(v);
            }
            seq.append_value(e.seq as i64);
            rows.append_option(ev.rows.map(|r| r as i64));
            duration.append_value(ev.duration_ms as i64);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(seq.finish())];
    columns.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(rows.finish()));
    columns.push(Arc::new(duration.finish()));
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Internal(e.to_string()))
}
