//! The ingest of a data directory: every file a mapping takes becomes one batch in the lake,
//! each row loaded or quarantined with its reasons, and the counts always add up.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hedui_lake::{BatchWriter, LakeWriter};
use hedui_model::value::Cell;
use hedui_model::value::Parser;
use hedui_model::value::text::normalise_header;
use hedui_model::{DatasetDef, Value};

use crate::connector::{self, RawRow, Table, encoding};
use crate::mapping::{ColumnMap, Format, Mapping, Replaces, Target};
use crate::report::{FileReport, FileStatus, IngestReport};
use crate::{Error, Result, as_of};

/// How many rows above the data a header may hide behind title rows and unit lines.
const HEADER_SEARCH_ROWS: usize = 50;
/// First cells of rows that sum a table up instead of holding data.
const SUMMARY_WORDS: &[&str] = &["合计", "总计", "小计", "累计", "共计"];
/// First cells of footer lines under a table (who made it, remarks).
const FOOTER_WORDS: &[&str] = &["制表", "审核", "填报", "负责人", "备注", "注:", "说明"];

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Mapping file patterns are relative to this directory.
    pub data_dir: PathBuf,
    pub lake_dir: PathBuf,
}

/// Ingest every file under `data_dir` that a mapping takes.
pub fn ingest(mappings: &[Mapping], opts: &IngestOptions) -> Result<IngestReport> {
    let started_at = Utc::now();
    if !opts.data_dir.is_dir() {
        return Err(Error::Io {
            path: opts.data_dir.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "data directory not found"),
        });
    }
    let mut lake = LakeWriter::open(&opts.lake_dir)?;
    let mut files: Vec<(String, PathBuf)> = walkdir::WalkDir::new(&opts.data_dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(['.', '~']))
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(&opts.data_dir)
                .expect("under data dir");
            (
                rel.to_string_lossy().replace('\\', "/"),
                e.path().to_path_buf(),
            )
        })
        .collect();
    files.sort();

    let mut reports = Vec::new();
    for (rel, path) in &files {
        let takers: Vec<&Mapping> = mappings.iter().filter(|m| m.matches(rel)).collect();
        if takers.is_empty() {
            reports.push(FileReport::new(rel, None, FileStatus::Unmapped));
            continue;
        }
        for mapping in takers {
            let started = std::time::Instant::now();
            let mut report = ingest_file(&mut lake, mapping, rel, path)?;
            report.seconds = started.elapsed().as_secs_f64();
            reports.push(report);
        }
    }
    let mut totals = hedui_lake::Counts::default();
    for r in &reports {
        totals.add(&r.counts());
    }
    Ok(IngestReport {
        lake: opts.lake_dir.display().to_string(),
        data: opts.data_dir.display().to_string(),
        started_at,
        finished_at: Utc::now(),
        lake_version: lake.snapshot().version(),
        files: reports,
        totals,
    })
}

/// Ingest one file through one mapping. A file that cannot be read is reported as failed (and
/// logged as an error: an operator must act); lake I/O errors abort the whole ingest.
fn ingest_file(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    rel: &str,
    path: &Path,
) -> Result<FileReport> {
    let scan = encoding::scan(path, mapping.encoding)?;
    if let Some(prior) = lake
        .snapshot()
        .find_identical(&mapping.id, &scan.fingerprint)
    {
        let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Unchanged);
        report.batch = Some(prior.batch.clone());
        report.as_of = prior.as_of;
        tracing::info!(file = rel, batch = %prior.batch, "identical re-delivery skipped");
        return Ok(report);
    }
    let mut batch = lake.begin(&mapping.id, rel, &scan.fingerprint, scan.bytes);
    let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Loaded);
    if mapping.format_of(rel) == Format::Csv {
        report.encoding = Some(encoding::name(scan.encoding).to_string());
    }
    for target in &mapping.targets {
        match read_target(&mut batch, mapping, target, rel, path, &scan, &mut report) {
            Ok(()) => {}
            Err(Error::Unreadable { file, message }) => {
                tracing::error!(file = %file, error = %message, "file not ingested");
                let mut failed = FileReport::new(rel, Some(&mapping.id), FileStatus::Failed);
                failed.error = Some(message);
                return Ok(failed);
            }
            Err(other) => return Err(other),
        }
    }
    debug_assert!(report.counts().balanced());
    report.as_of = as_of::for_file(rel, delivery_date(path));
    report.supersedes = match mapping.replaces {
        Replaces::File => lake.snapshot().live_batches_of_file(&mapping.id, rel),
        Replaces::Source => lake.snapshot().live_batches_of_source(&mapping.id),
    };
    report.batch = Some(batch.batch_id().to_string());
    lake.commit(
        batch,
        report.counts(),
        report.as_of,
        report.supersedes.clone(),
    )?;
    if report.rows_quarantined > 0 {
        tracing::info!(
            file = rel,
            quarantined = report.rows_quarantined,
            "rows quarantined"
        );
    }
    Ok(report)
}

fn delivery_date(path: &Path) -> Option<chrono::NaiveDate> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(DateTime::<Utc>::from(modified).date_naive())
}

/// Where each mapped column is in a table's header.
struct Resolved<'m> {
    columns: Vec<(&'m ColumnMap, Option<usize>)>,
    header: Vec<String>,
    header_row: Option<u64>,
}

fn read_target(
    batch: &mut BatchWriter,
    mapping: &Mapping,
    target: &Target,
    rel: &str,
    path: &Path,
    scan: &encoding::Scan,
    report: &mut FileReport,
) -> Result<()> {
    for table in connector::open_tables(path, rel, mapping, target, scan)? {
        read_table(batch, target, rel, table, report)?;
    }
    Ok(())
}

fn unreadable(rel: &str, sheet: Option<&str>, message: String) -> Error {
    let file = match sheet {
        Some(s) => format!("{rel} (sheet {s})"),
        None => rel.to_string(),
    };
    Error::Unreadable { file, message }
}

fn text_of(cell: &Cell) -> String {
    cell.to_text()
}

fn is_blank(cells: &[Cell]) -> bool {
    cells.iter().all(Cell::is_empty)
}

/// Whether a cell's text, normalised like a header, starts with one of `words`. Most cells start
/// with none of the words' first characters and are rejected without allocating.
fn starts_with_any(cell: &Cell, words: &[&str]) -> bool {
    let Cell::Text(s) = cell else { return false };
    let Some(first) = s.trim_start().chars().next() else {
        return false;
    };
    if !words.iter().any(|w| w.starts_with(first)) {
        return false;
    }
    let t = normalise_header(s);
    words.iter().any(|w| t.starts_with(w))
}

fn is_summary_or_footer(cells: &[Cell]) -> bool {
    let mut filled = cells.iter().filter(|c| !c.is_empty());
    let first3: Vec<&Cell> = filled.by_ref().take(3).collect();
    let summary = first3.iter().any(|c| starts_with_any(c, SUMMARY_WORDS));
    let footer = first3.len() + filled.count() <= 2
        && first3
            .first()
            .is_some_and(|c| starts_with_any(c, FOOTER_WORDS));
    summary || footer
}

/// Whether a cell repeats a header name (a page break in a printed export).
fn is_header_cell(cell: &Cell, header: &str) -> bool {
    match cell {
        Cell::Text(s) if s.trim() == header => true,
        Cell::Text(s) => {
            let needs_folding = s.chars().any(|c| {
                c.is_whitespace()
                    || c == '*'
                    || c == '\u{feff}'
                    || ('\u{FF01}'..='\u{FF5E}').contains(&c)
            });
            needs_folding && normalise_header(s) == header
        }
        _ => false,
    }
}

/// Hash a row's cells as delivered, without copying them.
fn row_hash(cells: &[Cell]) -> u64 {
    let mut h = DefaultHasher::new();
    for c in cells {
        match c {
            Cell::Empty => 0u8.hash(&mut h),
            Cell::Text(s) => {
                1u8.hash(&mut h);
                s.hash(&mut h);
            }
            Cell::Number(n) => {
                2u8.hash(&mut h);
                n.to_bits().hash(&mut h);
            }
            Cell::Date(d) => {
                3u8.hash(&mut h);
                d.hash(&mut h);
            }
        }
    }
    h.finish()
}

/// Find the header: given (JSON), at the mapping's row, or the first row that names every
/// mapped required column (title rows and unit lines above it are layout).
fn locate_header<'m>(
    target: &'m Target,
    table: &mut Table<'_>,
    rel: &str,
    layout_rows: &mut u64,
) -> Result<Resolved<'m>> {
    let sheet = table.sheet.clone();
    let (header, header_row) = if let Some(h) = table.header.take() {
        (h, None)
    } else {
        let mut seen = Vec::new();
        let mut found = None;
        for row in table.rows.by_ref() {
            let row = row?;
            let normalised: Vec<String> = row
                .cells
                .iter()
                .map(|c| normalise_header(&text_of(c)))
                .collect();
            let is_header = match target.header_row {
                Some(n) => row.number == n as u64,
                None => target
                    .columns
                    .iter()
                    .filter(|c| c.required && !c.sources.is_empty())
                    .all(|c| c.sources.iter().any(|s| normalised.contains(s))),
            };
            if is_header {
                found = Some((normalised, row.number));
                break;
            }
            seen.push(row);
            if seen.len() >= HEADER_SEARCH_ROWS && target.header_row.is_none() {
                break;
            }
        }
        match found {
            Some((h, n)) => {
                *layout_rows += seen.len() as u64;
                (h, Some(n))
            }
            None => {
                let wanted: Vec<String> = target
                    .columns
                    .iter()
                    .filter(|c| c.required)
                    .map(|c| c.sources.join("/"))
                    .collect();
                return Err(unreadable(
                    rel,
                    sheet.as_deref(),
                    match target.header_row {
                        Some(n) => format!("header row {n} not found"),
                        None => format!(
                            "no header row naming all required columns ({}) in the first {HEADER_SEARCH_ROWS} rows",
                            wanted.join(", ")
                        ),
                    },
                ));
            }
        }
    };
    let header: Vec<String> = header.iter().map(|h| normalise_header(h)).collect();
    let mut columns = Vec::new();
    for c in &target.columns {
        let idx = c
            .sources
            .iter()
            .find_map(|s| header.iter().position(|h| h == s));
        if idx.is_none() && c.required {
            return Err(unreadable(
                rel,
                sheet.as_deref(),
                format!(
                    "the header{} has no column {} (required for `{}`); it has: {}",
                    header_row
                        .map(|n| format!(" (row {n})"))
                        .unwrap_or_default(),
                    c.sources.join(" or "),
                    c.column,
                    header.join(", ")
                ),
            ));
        }
        columns.push((c, idx));
    }
    Ok(Resolved {
        columns,
        header,
        header_row,
    })
}

fn read_table(
    batch: &mut BatchWriter,
    target: &Target,
    rel: &str,
    mut table: Table<'_>,
    report: &mut FileReport,
) -> Result<()> {
    let dataset = target.dataset.name.clone();
    let resolved = locate_header(target, &mut table, rel, &mut report.layout_rows)?;
    let location = table.sheet.as_ref().map(|s| format!("{rel}#{s}"));
    let mut seen_rows: HashSet<u64> = HashSet::new();
    let mut values: Vec<Value> = Vec::with_capacity(resolved.columns.len());
    let mut raws: Vec<String> = Vec::with_capacity(resolved.columns.len());
    let mut reasons: Vec<(String, &'static str)> = Vec::new();
    for row in table.rows {
        let row = row?;
        if is_blank(&row.cells) || is_summary_or_footer(&row.cells) {
            report.layout_rows += 1;
            continue;
        }
        let normalised_equals_header = row.cells.len() == resolved.header.len()
            && row
                .cells
                .iter()
                .zip(&resolved.header)
                .all(|(c, h)| is_header_cell(c, h));
        if normalised_equals_header && resolved.header_row.is_some() {
            // Page breaks in printed exports repeat the header.
            report.layout_rows += 1;
            continue;
        }
        report.rows_read += 1;
        if !seen_rows.insert(row_hash(&row.cells)) {
            report.rows_duplicate += 1;
            continue;
        }

        values.clear();
        raws.clear();
        reasons.clear();
        if let Some((reason, code)) = &row.defect {
            // The connector already knows the row is unusable; its cells mean nothing.
            reasons.push((reason.clone(), code));
        } else if table.fixed_width && row.cells.len() != resolved.header.len() {
            reasons.push((
                format!(
                    "该行有 {} 个字段，表头有 {} 个，列已错位 (row has {} fields, the header {})",
                    row.cells.len(),
                    resolved.header.len(),
                    row.cells.len(),
                    resolved.header.len()
                ),
                "row.misaligned",
            ));
        }
        for (col, idx) in resolved.columns.iter().filter(|_| row.defect.is_none()) {
            let cell = idx.and_then(|i| row.cells.get(i)).unwrap_or(&Cell::Empty);
            let label = idx.map_or(col.column.as_str(), |i| resolved.header[i].as_str());
            let undecodable = matches!(cell, Cell::Text(t) if t.contains('\u{FFFD}'));
            let value = if undecodable {
                reasons.push((
                    format!("{label}: 含无法解码的字符，文件编码有误 (undecodable bytes)"),
                    "encoding.invalid",
                ));
                Value::Null
            } else {
                match col.parser.parse(cell) {
                    Ok(Value::Null) if col.required => {
                        reasons.push((
                            format!("{label}: 必填项为空 (required value missing)"),
                            "value.missing",
                        ));
                        Value::Null
                    }
                    Ok(v) => v,
                    Err(e) => {
                        reasons.push((format!("{label}: {}", e.message), e.code));
                        Value::Null
                    }
                }
            };
            values.push(value);
            // The as-delivered text is kept only beside resident IDs.
            raws.push(if matches!(col.parser, Parser::ResidentId) {
                text_of(cell)
            } else {
                String::new()
            });
        }
        if reasons.is_empty() {
            let raw_refs: Vec<&str> = raws.iter().map(String::as_str).collect();
            batch.append(
                &dataset,
                &values,
                &raw_refs,
                location.as_deref(),
                row.number as i64,
            )?;
            report.rows_loaded += 1;
            *report.datasets.entry(dataset.clone()).or_insert(0) += 1;
        } else {
            quarantine(
                batch,
                &dataset,
                rel,
                table.sheet.as_deref(),
                &row,
                &resolved,
                &target.dataset,
                &reasons,
                location.as_deref(),
            )?;
            report.rows_quarantined += 1;
            for (_, code) in &reasons {
                *report
                    .quarantine_reasons
                    .entry((*code).to_string())
                    .or_insert(0) += 1;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn quarantine(
    batch: &mut BatchWriter,
    dataset: &str,
    rel: &str,
    sheet: Option<&str>,
    row: &RawRow,
    resolved: &Resolved,
    def: &DatasetDef,
    reasons: &[(String, &'static str)],
    location: Option<&str>,
) -> Result<()> {
    let header = &resolved.header;
    let mut raw = serde_json::Map::new();
    let mut masked = serde_json::Map::new();
    for (i, cell) in row.cells.iter().enumerate() {
        let key = match header.get(i) {
            Some(h) if !h.is_empty() && !raw.contains_key(h) => h.clone(),
            _ => format!("_column_{}", i + 1),
        };
        let text = text_of(cell);
        // A cell no column takes is not known to be harmless: null.
        let shown = resolved
            .columns
            .iter()
            .find(|(_, at)| *at == Some(i))
            .and_then(|(c, _)| def.column(&c.column))
            .and_then(|c| c.mask_raw(&text));
        masked.insert(
            key.clone(),
            shown.map_or(serde_json::Value::Null, serde_json::Value::String),
        );
        raw.insert(key, serde_json::Value::String(text));
    }
    let raw = serde_json::Value::Object(raw).to_string();
    let masked = serde_json::Value::Object(masked).to_string();
    let reasons_text = reasons
        .iter()
        .map(|(r, _)| r.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    let values = [
        Value::Text(dataset.to_string()),
        Value::Text(rel.to_string()),
        sheet.map_or(Value::Null, |s| Value::Text(s.to_string())),
        Value::Int(row.number as i64),
        Value::Text(raw),
        Value::Text(masked),
        Value::Text(reasons_text),
        Value::Text(
            reasons
                .iter()
                .map(|(_, c)| *c)
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    batch.append("quarantine", &values, &[""; 8], location, row.number as i64)?;
    Ok(())
}

/// Keep the number of distinct reasons per dataset readable in logs.
pub fn summarise_reasons(report: &IngestReport) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for f in &report.files {
        for (k, v) in &f.quarantine_reasons {
            *all.entry(k.clone()).or_insert(0) += v;
        }
    }
    all
}
