mod accounting;
pub(crate) mod api;
mod bad_files;
mod crash;
pub(crate) mod databases;
mod deliveries;
mod formats;
mod redelivery;
mod threads;

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Write a delivered file at `rel` under the data directory.
pub fn write(dir: &Path, rel: &str, bytes: &(impl AsRef<[u8]> + ?Sized)) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes.as_ref()).unwrap();
}

/// Run `hedui ingest` with these mappings; its output and its JSON report (`Null` when none
/// was written).
pub fn ingest_report(connectors: &Path, data: &Path, lake: &Path) -> (std::process::Output, Value) {
    let report = lake.with_extension("json");
    let _ = std::fs::remove_file(&report);
    let out = run(hedui()
        .arg("ingest")
        .arg("--connectors")
        .arg(connectors)
        .arg("--data")
        .arg(data)
        .arg("--lake")
        .arg(lake)
        .arg("--report")
        .arg(&report));
    let report = std::fs::read(&report)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (out, report)
}

/// The lake's commit log entries, in order.
pub fn commit_log_entries(lake: &Path) -> Vec<Value> {
    let mut entries: Vec<_> = std::fs::read_dir(lake.join("_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    entries
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// A file's entry in an ingest report.
pub fn file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

/// A cremation register as civil affairs sends it (sheet 上半年), one row per (ID, death date);
/// `stray` puts one more cell at (row, column), as a careless edit leaves behind.
pub fn cremation_workbook(rows: &[(&str, &str)], stray: Option<(u32, u16)>) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("上半年").unwrap();
    for (c, h) in ["序号", "逝者姓名", "身份证号码", "死亡日期", "火化日期"]
        .iter()
        .enumerate()
    {
        ws.write(0, c as u16, *h).unwrap();
    }
    for (r, (id, d)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write(r, 0, r).unwrap();
        ws.write(r, 1, "张三").unwrap();
        ws.write(r, 2, *id).unwrap();
        ws.write(r, 3, *d).unwrap();
        ws.write(r, 4, *d).unwrap();
    }
    if let Some((r, c)) = stray {
        ws.write(r, c, "x").unwrap();
    }
    book.save_to_buffer().unwrap()
}
