mod accounting;
mod bad_files;
mod crash;
mod deliveries;
mod formats;
mod redelivery;

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

/// A file's entry in an ingest report.
pub fn file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}
