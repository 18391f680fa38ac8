use std::path::Path;
use std::process::ExitCode;

use hedui_ingest::{FileStatus, IngestOptions, IngestReport, ingest, load_mappings};

use crate::error::{Error, Result};

pub fn run(
    connectors: &Path,
    data: &Path,
    lake: &Path,
    report_path: Option<&Path>,
) -> Result<ExitCode> {
    let mappings = load_mappings(connectors)?;
    let report = ingest(
        &mappings,
        &IngestOptions {
            data_dir: data.to_path_buf(),
            lake_dir: lake.to_path_buf(),
        },
    )?;
    print_report(&report);
    if let Some(path) = report_path {
        let body = serde_json::to_vec_pretty(&report).expect("report serialises");
        std::fs::write(path, body).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        println!("report written to {}", path.display());
    }
    let failed = report.failed().count();
    if failed > 0 {
        eprintln!(
            "error: {failed} file(s) could not be read and were not ingested (see `failed` above); fix them or their mapping and run again"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn status_zh(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Loaded => "已入库 loaded",
        FileStatus::Unchanged => "未变化 unchanged",
        FileStatus::Failed => "失败 failed",
        FileStatus::Unmapped => "无映射 unmapped",
    }
}

pub fn print_report(report: &IngestReport) {
    println!(
        "{:<44} {:<18} {:>9} {:>9} {:>6} {:>6}",
        "文件 file", "状态 status", "读取 read", "入库 loaded", "隔离 q", "重复 dup"
    );
    for f in &report.files {
        println!(
            "{:<44} {:<18} {:>9} {:>9} {:>6} {:>6}",
            f.file,
            status_zh(f.status),
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.rows_duplicate
        );
        if let Some(e) = &f.error {
            println!("    error: {e}");
        }
    }
    let t = &report.totals;
    println!(
        "合计 total: read {} = loaded {} + quarantined {} + duplicate {}; lake version {}",
        t.rows_read, t.rows_loaded, t.rows_quarantined, t.rows_duplicate, report.lake_version
    );
    let reasons = hedui_ingest::pipeline::summarise_reasons(report);
    if !reasons.is_empty() {
        let list: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("隔离原因 quarantine reasons: {}", list.join(", "));
    }
}
