use std::path::Path;
use std::process::ExitCode;

use hedui_ingest::pipeline::printable;
use hedui_ingest::{FileStatus, IngestOptions, IngestReport, ingest, load_mappings};

use crate::error::{Error, Result};

pub fn run(
    connectors: &Path,
    data: &Path,
    lake: &Path,
    report_path: Option<&Path>,
    threads: usize,
) -> Result<ExitCode> {
    let mappings = load_mappings(connectors)?;
    let report = ingest(
        &mappings,
        &IngestOptions {
            data_dir: data.to_path_buf(),
            lake_dir: lake.to_path_buf(),
            threads,
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
    if let Some(why) = &report.aborted {
        eprintln!(
            "error: the ingest stopped because the lake cannot be written: {why}; what is listed above was done, the rest was not read"
        );
        return Ok(ExitCode::from(1));
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
        FileStatus::Withheld => "暂缓 withheld",
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
            printable(&f.file),
            status_zh(f.status),
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.rows_duplicate
        );
        if let Some(e) = &f.error {
            println!("    error: {e}");
        }
        if let Some(original) = &f.same_as {
            println!(
                "    与 {} 内容相同，未重复导入 (identical to it: skipped)",
                printable(original)
            );
        }
        if f.as_of_basis == Some(hedui_ingest::as_of::Basis::Modified) {
            println!(
                "    注意：数据截至日期取自文件修改时间 {}（复制文件会改变它），请在映射中写明 as_of (as-of date guessed from the modification time; state it with `as_of`)",
                f.as_of.map(|d| d.to_string()).unwrap_or_default()
            );
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
