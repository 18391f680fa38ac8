//! The ingest of a data directory: every file a mapping takes becomes one batch in the lake,
//! each row loaded or quarantined with its reasons, and the counts always add up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use hedui_lake::{BatchWriter, CommitMeta, Delivery, LakeWriter};
use hedui_model::value::Cell;
use hedui_model::value::Parser;
use hedui_model::value::text::normalise_header;
use hedui_model::{DatasetDef, Value};

use crate::connector::delivered::{self, Delivered};
use crate::connector::{self, Body, RawRow, Table, encoding};
use crate::mapping::{AsOf, ColumnMap, Mapping, Replaces, Target};
use crate::report::{FileReport, FileStatus, IngestReport};
use crate::{Error, Result, as_of};

/// How many rows above the data a header may hide behind title rows and unit lines.
const HEADER_SEARCH_ROWS: usize = 50;
/// First cells of rows that sum a table up instead of holding data.
const SUMMARY_WORDS: &[&str] = &["合计", "总计", "小计", "累计", "共计"];
/// First cells of footer lines under a table (who made it, remarks).
const FOOTER_WORDS: &[&str] = &["制表", "审核", "填报", "负责人", "备注", "注:", "说明"];

/// The longest text a cell may hold (Excel's own limit): longer is not a value but a mistake.
const MAX_CELL_CHARS: usize = 32_767;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Mapping file patterns are relative to this directory.
    pub data_dir: PathBuf,
    pub lake_dir: PathBuf,
}

/// Ingest every file under `data_dir` that a mapping takes.
///
/// Each file belongs to one source (a file two mappings take is a mapping error, reported before
/// anything is read). A source whose every delivery is a full extract (`replaces = "source"`)
/// takes the files of one ingest with the same as-of date as one delivery: they become live
/// together and replace the earlier delivery together. Errors of the lake itself (a full disk)
/// stop the ingest; the report then says so and lists what was done.
pub fn ingest(mappings: &[Mapping], opts: &IngestOptions) -> Result<IngestReport> {
    let started_at = Utc::now();
    if !opts.data_dir.is_dir() {
        return Err(Error::Io {
            path: opts.data_dir.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "data directory not found"),
        });
    }
    let files = list_files(&opts.data_dir);
    let mut reports = Vec::new();
    let mut taken: Vec<Vec<(String, PathBuf)>> = vec![Vec::new(); mappings.len()];
    for (rel, path) in files {
        let takers: Vec<usize> = (0..mappings.len())
            .filter(|&i| mappings[i].matches(&rel))
            .collect();
        match takers.as_slice() {
            [] => reports.push(FileReport::new(&rel, None, FileStatus::Unmapped)),
            [one] => taken[*one].push((rel, path)),
            many => {
                return Err(Error::Overlap {
                    file: printable(&rel),
                    mappings: many
                        .iter()
                        .map(|&i| format!("{} ({})", mappings[i].id, mappings[i].path.display()))
                        .collect(),
                });
            }
        }
    }
    let mut lake = LakeWriter::open(&opts.lake_dir)?;
    let mut aborted = None;
    for (mapping, files) in mappings.iter().zip(taken) {
        if files.is_empty() {
            continue;
        }
        let done = match mapping.replaces {
            Replaces::File => ingest_each(&mut lake, mapping, files, &mut reports),
            Replaces::Source => ingest_deliveries(&mut lake, mapping, files, &mut reports),
        };
        if let Err(e) = done {
            tracing::error!(source = %mapping.id, error = %e, "ingest stopped: the lake cannot be written");
            aborted = Some(e.to_string());
            break;
        }
    }
    reports.sort_by(|a, b| a.file.cmp(&b.file));
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
        aborted,
    })
}

/// The files under the data directory (hidden and Office lock files left out), by name.
fn list_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(['.', '~']))
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("under data dir");
            (
                rel.to_string_lossy().replace('\\', "/"),
                e.path().to_path_buf(),
            )
        })
        .collect();
    files.sort_by_key(|f| copy_last(&f.0));
    files
}

/// Originals before their copies (`名册 - 副本.xlsx`, `名册(1).xlsx`, `copy of …`), so that an
/// identical copy is the one skipped; otherwise by name.
fn copy_last(rel: &str) -> (String, bool, usize, String) {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let stem = name
        .rsplit_once('.')
        .map_or(name, |(s, _)| s)
        .to_lowercase();
    let copy = ["副本", "复制", "copy", "拷贝"]
        .iter()
        .any(|w| stem.contains(w))
        || stem.ends_with(')')
            && stem
                .rsplit_once('(')
                .is_some_and(|(_, n)| n[..n.len() - 1].chars().all(|c| c.is_ascii_digit()))
        || stem.ends_with('）');
    (
        dir.to_string(),
        copy,
        name.chars().count(),
        name.to_string(),
    )
}

/// A file name as it may be printed: control characters (a newline, an escape sequence) shown
/// escaped, so a name cannot forge report lines or terminal output.
pub fn printable(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Files of a source whose deliveries are single files: each replaces its own earlier version.
fn ingest_each(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    files: Vec<(String, PathBuf)>,
    reports: &mut Vec<FileReport>,
) -> Result<()> {
    let mut this_run = HashMap::new();
    for (rel, path) in files {
        let started = std::time::Instant::now();
        let mut report = match read_file(lake, mapping, &rel, &path, &this_run)? {
            Outcome::Read(read) => {
                this_run.insert(read.meta.fingerprint.clone(), rel.clone());
                let mut read = *read;
                read.meta.supersedes = lake.snapshot().live_batches_of_file(&mapping.id, &rel);
                read.report.supersedes = read.meta.supersedes.clone();
                lake.commit(read.batch, read.meta)?;
                read.report
            }
            Outcome::Skipped(report) => *report,
        };
        report.seconds = started.elapsed().as_secs_f64();
        reports.push(report);
    }
    Ok(())
}

/// Files of a full-extract source: the files with one as-of date are one delivery, committed
/// together (live only once all are committed) and replacing every earlier batch of the source
/// except the delivery's own unchanged files. A delivery with a file that cannot be read is held
/// back whole: half an extract would look like a city with half its people.
fn ingest_deliveries(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    files: Vec<(String, PathBuf)>,
    reports: &mut Vec<FileReport>,
) -> Result<()> {
    let mut deliveries: BTreeMap<Option<NaiveDate>, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (rel, path) in files {
        let key = as_of::before_read(&rel, &mapping.as_of).map(|(d, _)| d);
        deliveries.entry(key).or_default().push((rel, path));
    }
    let mut this_run = HashMap::new();
    for (as_of, files) in deliveries {
        let mut read = Vec::new();
        let mut done = Vec::new();
        let mut kept = Vec::new();
        let mut failed = Vec::new();
        for (rel, path) in &files {
            let started = std::time::Instant::now();
            match read_file(lake, mapping, rel, path, &this_run) {
                Ok(Outcome::Read(r)) => {
                    this_run.insert(r.meta.fingerprint.clone(), rel.clone());
                    read.push((*r, started));
                }
                Ok(Outcome::Skipped(report)) => {
                    let report = *report;
                    if report.status == FileStatus::Failed {
                        failed.push(report.file.clone());
                    } else if let Some(b) = &report.batch {
                        kept.push(b.clone());
                    }
                    done.push(report);
                }
                Err(e) => {
                    for (r, _) in read {
                        r.batch.abandon()?;
                    }
                    reports.extend(done);
                    return Err(e);
                }
            }
        }
        if !failed.is_empty() {
            for (r, _) in read {
                let mut report = r.report;
                r.batch.abandon()?;
                report.status = FileStatus::Withheld;
                report.batch = None;
                report.error = Some(format!(
                    "同一次交付（数据截至 {}）中的文件 {} 无法读取，本次交付整体未生效，原有数据保持不变 (the delivery is held back whole because another file of it failed)",
                    as_of.map_or("未注明".to_string(), |d| d.to_string()),
                    failed
                        .iter()
                        .map(|f| printable(f))
                        .collect::<Vec<_>>()
                        .join("、")
                ));
                done.push(report);
            }
            reports.extend(done);
            continue;
        }
        let n = read.len();
        let delivery = (n > 1).then(|| Delivery {
            id: format!("{}-{}", mapping.id, Utc::now().format("%Y%m%dT%H%M%S%6f")),
            batches: n as u32,
        });
        for (i, (mut r, started)) in read.into_iter().enumerate() {
            if i + 1 == n {
                // The last batch completes the delivery: the earlier batches go in the same step.
                let ours: std::collections::HashSet<&str> =
                    kept.iter().map(String::as_str).collect();
                r.meta.supersedes = lake
                    .snapshot()
                    .live_batches_of_source(&mapping.id)
                    .into_iter()
                    .filter(|b| !ours.contains(b.as_str()))
                    .collect();
                r.report.supersedes = r.meta.supersedes.clone();
            }
            r.meta.delivery = delivery.clone();
            if let Err(e) = lake.commit(r.batch, r.meta) {
                reports.extend(done);
                return Err(e.into());
            }
            r.report.seconds = started.elapsed().as_secs_f64();
            done.push(r.report);
        }
        reports.extend(done);
    }
    Ok(())
}

/// A file read into an uncommitted batch.
struct ReadFile {
    batch: BatchWriter,
    meta: CommitMeta,
    report: FileReport,
}

enum Outcome {
    Read(Box<ReadFile>),
    /// Unchanged, a copy, or failed: nothing to commit.
    Skipped(Box<FileReport>),
}

/// Read one file through its mapping into a batch, once: the fingerprint is of the bytes parsed.
/// A file that cannot be read (gone, unreadable, changed while read) is a failed report; only
/// the lake's own errors are `Err`.
fn read_file(
    lake: &LakeWriter,
    mapping: &Mapping,
    rel: &str,
    path: &Path,
    this_run: &HashMap<String, String>,
) -> Result<Outcome> {
    let failed = |message: String| {
        tracing::error!(file = %printable(rel), error = %message, "file not ingested");
        let mut r = FileReport::new(rel, Some(&mapping.id), FileStatus::Failed);
        r.error = Some(message);
        Ok(Outcome::Skipped(Box::new(r)))
    };
    let known = |fingerprint: &str| match mapping.replaces {
        Replaces::File => lake.snapshot().find_identical(&mapping.id, fingerprint),
        Replaces::Source => lake.snapshot().find_seen(&mapping.id, fingerprint),
    };
    let unchanged = |prior: &hedui_lake::Commit| {
        let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Unchanged);
        report.batch = Some(prior.batch.clone());
        report.as_of = prior.as_of;
        if prior.file != rel {
            report.same_as = Some(prior.file.clone());
        }
        tracing::info!(file = %printable(rel), batch = %prior.batch, "identical re-delivery skipped");
        Ok(Outcome::Skipped(Box::new(report)))
    };

    let delivered = match Delivered::open(path, rel) {
        Ok(d) => d,
        Err(e) => return failed(unreadable_message(e)?),
    };
    let stamp = delivered.stamp();
    // Same name, size and modification time as a committed batch: confirm by fingerprint alone.
    let looks_unchanged = lake.snapshot().commits().iter().rev().find(|c| {
        c.source == mapping.id
            && c.file == rel
            && c.bytes == stamp.bytes
            && c.modified_ns.is_some()
            && c.modified_ns == stamp.modified_ns().map(|n| n as i64)
    });
    let mut delivered = delivered;
    if looks_unchanged.is_some() {
        let read = match delivered.fingerprint_only() {
            Ok(r) => r,
            Err(e) => return failed(unreadable_message(e)?),
        };
        if let Some(prior) = known(&read.fingerprint) {
            return unchanged(prior);
        }
        delivered = match Delivered::open(path, rel) {
            Ok(d) => d,
            Err(e) => return failed(unreadable_message(e)?),
        };
    }

    let stated = as_of::before_read(rel, &mapping.as_of);
    if matches!(mapping.as_of, AsOf::FileName { .. }) && stated.is_none() {
        return failed(
            "文件名中找不到映射 as_of.file_name 所指的日期 (the file name has no date matching the mapping's as_of.file_name)".to_string(),
        );
    }
    let mut batch = lake.begin(&mapping.id, rel);
    let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Loaded);
    let mut latest = None;
    let parsed = (|| -> Result<()> {
        let mut body = Body::of(&mut delivered, rel, mapping)?;
        for target in &mapping.targets {
            for table in connector::open_tables(&mut body, rel, mapping, target)? {
                let text = table.text.clone();
                read_table(
                    &mut batch,
                    mapping,
                    target,
                    rel,
                    table,
                    &mut report,
                    &mut latest,
                )?;
                if let Some(enc) = text.and_then(|t| t.borrow().encoding) {
                    report.encoding = Some(encoding::name(enc).to_string());
                }
            }
        }
        Ok(())
    })();
    let read = parsed.and_then(|()| delivered.finish());
    let read = match read {
        Ok(read) => read,
        Err(Error::Lake(e)) => {
            batch.abandon()?;
            return Err(Error::Lake(e));
        }
        Err(e) => {
            batch.abandon()?;
            return failed(unreadable_message(e)?);
        }
    };
    if let Some(prior) = known(&read.fingerprint) {
        batch.abandon()?;
        return unchanged(prior);
    }
    if let Some(original) = this_run.get(&read.fingerprint) {
        batch.abandon()?;
        let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Unchanged);
        report.same_as = Some(original.clone());
        tracing::warn!(file = %printable(rel), original = %printable(original), "identical copy of another file skipped");
        return Ok(Outcome::Skipped(Box::new(report)));
    }
    debug_assert!(report.counts().balanced());
    let (as_of, basis) = match (&mapping.as_of, stated) {
        (_, Some((d, basis))) => (Some(d), basis),
        (AsOf::Column(_), None) => match latest {
            Some(d) => (Some(d), as_of::Basis::Column),
            None => (modified_date(&stamp), as_of::Basis::Modified),
        },
        (_, None) => (modified_date(&stamp), as_of::Basis::Modified),
    };
    if basis == as_of::Basis::Modified {
        tracing::warn!(file = %printable(rel), "as-of date taken from the file's modification time; state it in the mapping (`as_of`)");
    }
    report.as_of = as_of;
    report.as_of_basis = Some(basis);
    report.batch = Some(batch.batch_id().to_string());
    if report.rows_quarantined > 0 {
        tracing::info!(
            file = %printable(rel),
            quarantined = report.rows_quarantined,
            "rows quarantined"
        );
    }
    let meta = CommitMeta {
        fingerprint: read.fingerprint,
        bytes: read.bytes,
        modified_ns: stamp.modified_ns().map(|n| n as i64),
        counts: report.counts(),
        as_of,
        as_of_basis: Some(basis.as_str().to_string()),
        supersedes: Vec::new(),
        delivery: None,
    };
    Ok(Outcome::Read(Box::new(ReadFile {
        batch,
        meta,
        report,
    })))
}

/// The message of a file's own failure; anything else is passed up.
fn unreadable_message(e: Error) -> Result<String> {
    match e {
        Error::Unreadable { message, .. } => Ok(message),
        Error::Io { source, .. } => Ok(format!("读取失败 (read failed): {source}")),
        other => Err(other),
    }
}

fn modified_date(stamp: &delivered::Stamp) -> Option<NaiveDate> {
    stamp
        .modified
        .map(|m| DateTime::<Utc>::from(m).date_naive())
}

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

fn read_table(
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

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
[source]
id = "pension"
files = ["*.csv"]
[[target]]
dataset = "pension_payments"
[target.columns]
person_id = "公民身份号码"
scheme = "险种"
month = "发放年月"
amount = "发放金额"
"#;

    #[test]
    fn a_file_that_vanishes_before_it_is_read_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mapping = Mapping::parse(Path::new("m.toml"), MAPPING).unwrap();
        let good = dir.path().join("b.csv");
        std::fs::write(
            &good,
            "公民身份号码,险种,发放年月,发放金额\n11010519491231002X,enterprise,202501,1.00\n",
        )
        .unwrap();
        let mut lake = LakeWriter::open(&dir.path().join("lake")).unwrap();
        let mut reports = Vec::new();
        let files = vec![
            ("a.csv".to_string(), dir.path().join("a.csv")),
            ("b.csv".to_string(), good),
        ];
        ingest_each(&mut lake, &mapping, files, &mut reports).unwrap();
        assert_eq!(reports[0].status, FileStatus::Failed);
        assert!(reports[0].error.as_deref().unwrap().contains("cannot open"));
        assert_eq!(reports[1].status, FileStatus::Loaded);
        assert_eq!(lake.snapshot().version(), 1);
    }

    #[test]
    fn copies_sort_after_their_originals() {
        let mut names = [
            "d/名册(1).xlsx",
            "d/名册 - 副本.xlsx",
            "d/名册.xlsx",
            "d/Copy of 名册.xlsx",
        ];
        names.sort_by_key(|n| copy_last(n));
        assert_eq!(names[0], "d/名册.xlsx");
    }
}
