//! JSON files and NDJSON: exports of HTTP APIs, usually one file per page
//! (`{"code":0,"data":{"total":..,"list":[..]}}`).

use std::io::BufRead;
use std::path::Path;

use hedui_model::value::Cell;
use serde_json::Value;

use super::{RawRow, Table};
use crate::error::io_at;
use crate::mapping::Target;
use crate::{Error, Result};

fn cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        // Keep numbers exactly as written: an ID sent as a JSON number must not pass through f64.
        Value::Number(n) => Cell::Text(n.to_string()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        other => Cell::Text(other.to_string()),
    }
}

/// The records of a JSON document (at the target's pointer) or of an NDJSON file, as one table
/// whose header is every key seen, in first-seen order.
pub fn table<'a>(path: &'a Path, rel: &str, target: &Target, ndjson: bool) -> Result<Table<'a>> {
    let unreadable = |message: String| Error::Unreadable {
        file: rel.to_string(),
        message,
    };
    let mut records: Vec<(u64, serde_json::Map<String, Value>)> = Vec::new();
    let mut broken: Vec<(u64, String)> = Vec::new();
    if ndjson {
        let f = std::io::BufReader::new(std::fs::File::open(path).map_err(io_at(path))?);
        for (i, line) in f.lines().enumerate() {
            let line = line.map_err(io_at(path))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(m)) => records.push((i as u64 + 1, m)),
                _ => broken.push((i as u64 + 1, line)),
            }
        }
    } else {
        let bytes = std::fs::read(path).map_err(io_at(path))?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let doc: Value = serde_json::from_slice(bytes)
            .map_err(|e| unreadable(format!("not valid JSON: {e}")))?;
        let pointer = target.records.as_deref().unwrap_or("");
        let list = doc
            .pointer(pointer)
            .ok_or_else(|| unreadable(format!("no records at `{pointer}`")))?
            .as_array()
            .ok_or_else(|| unreadable(format!("`{pointer}` is not an array of records")))?;
        for (i, v) in list.iter().enumerate() {
            match v {
                Value::Object(m) => records.push((i as u64 + 1, m.clone())),
                other => broken.push((i as u64 + 1, other.to_string())),
            }
        }
    }
    let mut header: Vec<String> = Vec::new();
    for (_, m) in &records {
        for k in m.keys() {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    let mut rows: Vec<RawRow> = records
        .iter()
        .map(|(n, m)| RawRow {
            number: *n,
            cells: header
                .iter()
                .map(|k| m.get(k).map_or(Cell::Empty, cell))
                .collect(),
            defect: None,
        })
        .collect();
    // A record that is not an object keeps its place, so it is quarantined rather than lost.
    for (n, text) in broken {
        let mut cells = vec![Cell::Empty; header.len()];
        cells.push(Cell::Text(text));
        let defect = (
            "记录不是 JSON 对象 (the record is not a JSON object)".to_string(),
            "json.not_an_object",
        );
        rows.push(RawRow {
            number: n,
            cells,
            defect: Some(defect),
        });
    }
    rows.sort_by_key(|r| r.number);
    Ok(Table {
        sheet: None,
        header: Some(header),
        rows: Box::new(rows.into_iter().map(Ok)),
        fixed_width: false,
    })
}
