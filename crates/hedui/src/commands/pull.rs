use std::path::Path;
use std::process::ExitCode;

use hedui_ingest::{PullOptions, load_mappings};

use crate::error::{Error, Result};

pub fn run(
    source: &str,
    connectors: &Path,
    lake: &Path,
    opts: &PullOptions,
    report_path: Option<&Path>,
) -> Result<ExitCode> {
    let mappings = load_mappings(connectors)?;
    let Some(mapping) = mappings.iter().find(|m| m.id == source) else {
        return Err(Error::Usage(format!(
            "no source `{source}` in {}; the live sources are: {}",
            connectors.display(),
            mappings
                .iter()
                .filter(|m| m.is_live())
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let report = hedui_ingest::pull(mapping, lake, opts)?;
    for b in &report.batches {
        println!(
            "{:<28} {:<10} read {:>9} loaded {:>9} quarantined {:>6} duplicate {:>9}",
            b.batch.as_deref().unwrap_or("-"),
            format!("{:?}", b.status).to_lowercase(),
            b.rows_read,
            b.rows_loaded,
            b.rows_quarantined,
            b.rows_duplicate
        );
    }
    let t = &report.totals;
    println!(
        "{} 拉取完成 pulled: read {} = loaded {} + quarantined {} + duplicate {}; updated {}, deleted {}{}; lake version {}",
        report.source,
        t.rows_read,
        t.rows_loaded,
        t.rows_quarantined,
        t.rows_duplicate,
        report.rows_updated,
        report.rows_deleted,
        if report.keys_compared {
            " (all keys compared)"
        } else {
            ""
        },
        report.lake_version
    );
    if !report.columns_added.is_empty() {
        println!(
            "注意：源表新增列 {}，映射未使用 (new source columns, not mapped)",
            report.columns_added.join(", ")
        );
    }
    if let Some(path) = report_path {
        let body = serde_json::to_vec_pretty(&report).expect("report serialises");
        std::fs::write(path, body).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(ExitCode::SUCCESS)
}
