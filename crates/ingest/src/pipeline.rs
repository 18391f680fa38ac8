//! The ingest of a data directory: every file a mapping takes becomes one batch in the lake,
//! each row loaded or quarantined with its reasons, and the counts always add up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use hedui_lake::{BatchWriter, CommitMeta, Delivery, LakeWriter};

use crate::connector::delivered::{self, Delivered};
use crate::connector::{self, Body, encoding};
use crate::files::list_files;
pub use crate::files::printable;
use crate::mapping::{AsOf, Mapping, Replaces};
use crate::report::{FileReport, FileStatus, IngestReport};
use crate::table::read_table;
use crate::{Error, Result, as_of};

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
        pull: None,
        cadence_secs: mapping.cadence.map(|d| d.as_secs()),
        remove: Default::default(),
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
}
