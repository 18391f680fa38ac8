//! JSON files and NDJSON: exports of HTTP APIs, usually one file per page
//! (`{"code":0,"data":{"total":..,"list":[..]}}`).

use std::io::BufRead;

use hedui_model::value::Cell;
use serde_json::Value;

use super::{RawRow, Table};
use crate::mapping::Target;
use crate::{Error, Result};

pub(crate) fn cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        // Keep numbers exactly as written: an ID sent as a JSON number must not pass through f64.
        Value::Number(n) => Cell::Text(n.to_string()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        other => Cell::Text(other.to_string()),
    }
}

/// Distinct keys a file's records may have together: an API's records share a handful; a file
/// whose every record brings keys of its own is not a table (and would need memory of records ×
/// keys to read as one).
pub const MAX_KEYS: usize = 256;

/// The records of a JSON document, at the target's pointer.
pub fn document<'a>(bytes: &[u8], rel: &str, target: &Target) -> Result<Table<'a>> {
    let unreadable = |message: String| Error::Unreadable {
        file: rel.to_string(),
        message,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut doc: Value =
        serde_json::from_slice(bytes).map_err(|e| unreadable(format!("not valid JSON: {e}")))?;
    let pointer = target.records.as_deref().unwrap_or("");
    let list = doc
        .pointer_mut(pointer)
        .ok_or_else(|| unreadable(format!("no records at `{pointer}`")))?
        .take();
    let Value::Array(list) = list else {
        return Err(unreadable(format!(
            "`{pointer}` is not an array of records"
        )));
    };
    let records = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Record::Object(i as u64 + 1, m),
            other => Record::Broken(i as u64 + 1, other.to_string()),
        })
        .collect();
    table_of(records, rel)
}

/// The records of an NDJSON file, one per line.
pub fn lines<'a>(reader: impl std::io::Read, rel: &str) -> Result<Table<'a>> {
    let mut records = Vec::new();
    let f = std::io::BufReader::new(reader);
    for (i, line) in f.lines().enumerate() {
        let line = line.map_err(|e| Error::Unreadable {
            file: rel.to_string(),
            message: format!("第 {} 行无法读取 (line {}): {e}", i + 1, i + 1),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => Record::Object(i as u64 + 1, m),
            _ => Record::Broken(i as u64 + 1, line),
        });
    }
    table_of(records, rel)
}

enum Record {
    Object(u64, serde_json::Map<String, Value>),
    /// Not an object: kept in its place, so it is quarantined rather than lost.
    Broken(u64, String),
}

/// One table whose header is every key seen, in first-seen order; each record's cells are made
/// when its row is read.
fn table_of<'a>(records: Vec<Record>, rel: &str) -> Result<Table<'a>> {
    let mut header: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for r in &records {
        if let Record::Object(_, m) = r {
            for k in m.keys() {
                if seen.insert(k.as_str()) {
                    header.push(k.clone());
                    if header.len() > MAX_KEYS {
                        return Err(Error::Unreadable {
                            file: rel.to_string(),
                            message: format!(
                                "记录的字段名超过 {MAX_KEYS} 个，不是一张表 (the records have more than {MAX_KEYS} distinct keys)"
                            ),
                        });
                    }
                }
            }
        }
    }
    drop(seen);
    let width = header.len();
    let keys = header.clone();
    let rows = records.into_iter().map(move |r| {
        Ok(match r {
            Record::Object(n, m) => RawRow {
                number: n,
                cells: keys
                    .iter()
                    .map(|k| m.get(k).map_or(Cell::Empty, cell))
                    .collect(),
                defect: None,
            },
            Record::Broken(n, text) => {
                let mut cells = vec![Cell::Empty; width];
                cells.push(Cell::Text(text));
                RawRow {
                    number: n,
                    cells,
                    defect: Some((
                        "记录不是 JSON 对象 (the record is not a JSON object)".to_string(),
                        "json.not_an_object",
                    )),
                }
            }
        })
    });
    Ok(Table {
        sheet: None,
        header: Some(header),
        rows: Box::new(rows),
        fixed_width: false,
        text: None,
        layout: true,
    })
}
