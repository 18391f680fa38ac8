//! One table of a delivered file into a batch: the header found among title rows, every row
//! after it loaded or quarantined with its reasons, layout rows (blank, 合计, footers, repeated
//! headers) counted apart, and verbatim repeats counted as duplicates.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::NaiveDate;
use hedui_lake::BatchWriter;
use hedui_model::value::text::normalise_header;
use hedui_model::value::{Cell, Parser};
use hedui_model::{DatasetDef, Value};

use crate::connector::{RawRow, Table};
use crate::mapping::{AsOf, ColumnMap, Mapping, Target};
use crate::report::FileReport;
use crate::{Error, Result};

/// How many rows above the data a header may hide behind title rows and unit lines.
const HEADER_SEARCH_ROWS: usize = 50;
/// First cells of rows that sum a table up instead of holding data.
const SUMMARY_WORDS: &[&str] = &["合计", "总计", "小计", "累计", "共计"];
/// First cells of footer lines under a table (who made it, remarks).
const FOOTER_WORDS: &[&str] = &["制表", "审核", "填报", "负责人", "备注", "注:", "说明"];

/// The longest text a cell may hold (Excel's own limit): longer is not a value but a mistake.
const MAX_CELL_CHARS: usize = 32_767;

/// Where each mapped column is in a table's header.
struct Resolved<'m> {
    columns: Vec<(&'m ColumnMap, Option<usize>)>,
    header: Vec<String>,
    header_row: Option<u64>,
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

pub(crate) fn read_table(
    batch: &mut BatchWriter,
    mapping: &Mapping,
    target: &Target,
    rel: &str,
    mut table: Table<'_>,
    report: &mut FileReport,
    latest: &mut Option<NaiveDate>,
) -> Result<()> {
    let dataset = target.dataset.name.clone();
    let resolved = locate_header(target, &mut table, rel, &mut report.layout_rows)?;
    // The column whose latest date is the file's as-of date, if the mapping says so.
    let as_of_at = match &mapping.as_of {
        AsOf::Column(c) => resolved.columns.iter().position(|(m, _)| m.column == *c),
        _ => None,
    };
    let mut seen_rows: HashSet<u64> = HashSet::new();
    let mut values: Vec<Value> = Vec::with_capacity(resolved.columns.len());
    let mut raws: Vec<String> = Vec::with_capacity(resolved.columns.len());
    let mut reasons: Vec<(String, &'static str)> = Vec::new();
    for row in table.rows {
        let row = row?;
        if table.layout && (is_blank(&row.cells) || is_summary_or_footer(&row.cells)) {
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
            let too_long = matches!(cell, Cell::Text(t) if t.len() > MAX_CELL_CHARS && t.chars().count() > MAX_CELL_CHARS);
            let value = if too_long {
                reasons.push((
                    format!("{label}: 内容超过 {MAX_CELL_CHARS} 个字符 (text longer than {MAX_CELL_CHARS} characters)"),
                    "value.too_long",
                ));
                Value::Null
            } else if undecodable {
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
            if let Some(Value::Date(d)) = as_of_at.and_then(|i| values.get(i)) {
                *latest = Some(latest.map_or(*d, |l| l.max(*d)));
            }
            let raw_refs: Vec<&str> = raws.iter().map(String::as_str).collect();
            batch.append(
                &dataset,
                &values,
                &raw_refs,
                table.sheet.as_deref(),
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
    batch.append("quarantine", &values, &[""; 8], sheet, row.number as i64)?;
    Ok(())
}
