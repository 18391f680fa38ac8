//! The ingest of a data directory: every file a mapping takes becomes one batch in the lake,
//! each row loaded or quarantined with its reasons, and the counts always add up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use hedui_lake::{BatchStarter, BatchWriter, CommitMeta, Delivery, LakeWriter};

use crate::connector::delivered::{self, Delivered};
use crate::connector::{self, Body, encoding};
use crate::files::list_files;
pub use crate::files::printable;
use crate::mapping::{AsOf, Mapping, Replaces};
use crate::read_ahead::{ReadAhead, with_read_ahead};
use crate::report::{FileReport, FileStatus, IngestReport};
use crate::table::read_table;
use crate::{Error, Result, as_of};

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Mapping file patterns are relative to this directory.
    pub data_dir: PathBuf,
    pub lake_dir: PathBuf,
    /// Files read at the same time (0: one per core). Batches are committed in the same order
    /// whatever the number.
    pub threads: usize,
}

/// Files as listed: the path relative to the data directory, and where it is.
type Files = Vec<(String, PathBuf)>;
/// A full extract's files by the as-of date their names state.
type Deliveries = Vec<(Option<NaiveDate>, Files)>;

/// What one mapping takes in an ingest, in the order it is read and committed.
enum Work {
    /// Single-file deliveries: each replaces its own earlier version.
    Files(Vec<(String, PathBuf)>),
    /// Full extracts: the files of each as-of date are one delivery.
    Deliveries(Deliveries),
}

impl Work {
    fn of(mapping: &Mapping, files: Vec<(String, PathBuf)>) -> Work {
        match mapping.replaces {
            Replaces::File => Work::Files(files),
            Replaces::Source => {
                let mut deliveries: BTreeMap<Option<NaiveDate>, Vec<(String, PathBuf)>> =
                    BTreeMap::new();
                for (rel, path) in files {
                    let key = as_of::before_read(&rel, &mapping.as_of).map(|(d, _)| d);
                    deliveries.entry(key).or_default().push((rel, path));
                }
                Work::Deliveries(deliveries.into_iter().collect())
            }
        }
    }

    fn files(&self) -> Vec<&(String, PathBuf)> {
        match self {
            Work::Files(files) => files.iter().collect(),
            Work::Deliveries(d) => d.iter().flat_map(|(_, files)| files).collect(),
        }
    }
}

/// One file to read, in commit order.
struct Job<'a> {
    mapping: &'a Mapping,
    rel: &'a str,
    path: &'a Path,
}

/// Files read on worker threads, taken in commit order.
type Reads<'g> = ReadAhead<'g, Result<(Read, f64)>>;

/// Ingest every file under `data_dir` that a mapping takes.
///
/// Each file belongs to one source (a file two mappings take is a mapping error, reported before
/// anything is read). A source whose every delivery is a full extract (`replaces = "source"`)
/// takes the files of one ingest with the same as-of date as one delivery: they become live
/// together and replace the earlier delivery together. Files are read on several threads and
/// committed one at a time in the order of the mappings and their files, as if read one by one.
/// Errors of the lake itself (a full disk) stop the ingest; the report then says so and lists
/// what was done.
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
    let work: Vec<(&Mapping, Work)> = mappings
        .iter()
        .zip(taken)
        .filter(|(_, files)| !files.is_empty())
        .map(|(m, files)| (m, Work::of(m, files)))
        .collect();
    let mut lake = LakeWriter::open(&opts.lake_dir)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let aborted = run(&mut lake, &work, threads, &mut reports);
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

/// Read and commit `work` in order; the lake's error that stopped it, if one did.
fn run(
    lake: &mut LakeWriter,
    work: &[(&Mapping, Work)],
    threads: usize,
    reports: &mut Vec<FileReport>,
) -> Option<String> {
    let jobs: Vec<Job> = work
        .iter()
        .flat_map(|(mapping, w)| {
            w.files()
                .into_iter()
                .map(|(rel, path)| Job { mapping, rel, path })
        })
        .collect();
    let starter = lake.starter();
    let before = lake.snapshot().clone();
    let read = |job: &Job| {
        let started = std::time::Instant::now();
        read_file(&starter, &before, job.mapping, job.rel, job.path, true)
            .map(|r| (r, started.elapsed().as_secs_f64()))
    };
    let discard = |r: Result<(Read, f64)>| {
        if let Ok((Read::Full(r), _)) = r
            && let Err(e) = r.batch.abandon()
        {
            tracing::warn!(error = %e, "a batch read ahead could not be removed; the next writer removes it");
        }
    };
    with_read_ahead(&jobs, threads, read, discard, |reads| {
        for (mapping, w) in work {
            let done = match w {
                Work::Files(files) => ingest_each(lake, mapping, files, reports, reads),
                Work::Deliveries(d) => ingest_deliveries(lake, mapping, d, reports, reads),
            };
            if let Err(e) = done {
                tracing::error!(source = %mapping.id, error = %e, "ingest stopped: the lake cannot be written");
                return Some(e.to_string());
            }
        }
        None
    })
}

/// Files of a source whose deliveries are single files: each replaces its own earlier version.
fn ingest_each(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    files: &[(String, PathBuf)],
    reports: &mut Vec<FileReport>,
    reads: &mut Reads<'_>,
) -> Result<()> {
    let mut this_run = HashMap::new();
    for (rel, path) in files {
        let report = match settle(lake, mapping, rel, path, reads.next(), &this_run)? {
            Outcome::Read(read) => {
                let committing = std::time::Instant::now();
                this_run.insert(read.meta.fingerprint.clone(), rel.clone());
                let mut read = *read;
                read.meta.supersedes = lake.snapshot().live_batches_of_file(&mapping.id, rel);
                read.report.supersedes = read.meta.supersedes.clone();
                lake.commit(read.batch, read.meta)?;
                read.report.seconds += committing.elapsed().as_secs_f64();
                read.report
            }
            Outcome::Skipped(report) => *report,
        };
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
    deliveries: &[(Option<NaiveDate>, Files)],
    reports: &mut Vec<FileReport>,
    reads: &mut Reads<'_>,
) -> Result<()> {
    let mut this_run = HashMap::new();
    for (as_of, files) in deliveries {
        let mut read = Vec::new();
        let mut done = Vec::new();
        let mut kept = Vec::new();
        let mut failed = Vec::new();
        for (rel, path) in files {
            match settle(lake, mapping, rel, path, reads.next(), &this_run) {
                Ok(Outcome::Read(r)) => {
                    this_run.insert(r.meta.fingerprint.clone(), rel.clone());
                    read.push(*r);
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
                    for r in read {
                        r.batch.abandon()?;
                    }
                    reports.extend(done);
                    return Err(e);
                }
            }
        }
        if !failed.is_empty() {
            for r in read {
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
        for (i, mut r) in read.into_iter().enumerate() {
            let committing = std::time::Instant::now();
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
            r.report.seconds += committing.elapsed().as_secs_f64();
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

/// What a reader found, judged against the lake as it was when the ingest began.
enum Read {
    /// Not read: nothing to commit.
    Failed(Box<FileReport>),
    /// The file has the name, size and modification time of a committed batch of its own, and
    /// its fingerprint (computed without parsing) is that of a batch known then.
    Fingerprinted(String),
    /// Read in full into an uncommitted batch.
    Full(Box<ReadFile>),
}

enum Outcome {
    Read(Box<ReadFile>),
    /// Unchanged, a copy, or failed: nothing to commit.
    Skipped(Box<FileReport>),
}

/// Judge what a reader found against the lake as it is now, after the batches this ingest
/// committed before it: an earlier file of this run may have replaced the batch it matched, or
/// be its twin.
fn settle(
    lake: &LakeWriter,
    mapping: &Mapping,
    rel: &str,
    path: &Path,
    read: Result<(Read, f64)>,
    this_run: &HashMap<String, String>,
) -> Result<Outcome> {
    let (read, seconds) = read?;
    let known = |fingerprint: &str| known_batch(lake.snapshot(), mapping, fingerprint);
    let unchanged = |prior: &hedui_lake::Commit| {
        let mut report = unchanged_report(mapping, rel, prior);
        report.seconds = seconds;
        Outcome::Skipped(Box::new(report))
    };
    match read {
        Read::Failed(mut report) => {
            report.seconds = seconds;
            Ok(Outcome::Skipped(report))
        }
        Read::Fingerprinted(fingerprint) => match known(&fingerprint) {
            Some(prior) => Ok(unchanged(prior)),
            None => {
                // The batch it matched was replaced by this very ingest: read the file in full.
                let started = std::time::Instant::now();
                let read = read_file(&lake.starter(), lake.snapshot(), mapping, rel, path, false)?;
                let seconds = seconds + started.elapsed().as_secs_f64();
                settle(lake, mapping, rel, path, Ok((read, seconds)), this_run)
            }
        },
        Read::Full(mut read) => {
            if let Some(prior) = known(&read.meta.fingerprint) {
                read.batch.abandon()?;
                return Ok(unchanged(prior));
            }
            if let Some(original) = this_run.get(&read.meta.fingerprint) {
                read.batch.abandon()?;
                let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Unchanged);
                report.same_as = Some(original.clone());
                report.seconds = seconds;
                tracing::warn!(file = %printable(rel), original = %printable(original), "identical copy of another file skipped");
                return Ok(Outcome::Skipped(Box::new(report)));
            }
            read.report.seconds = seconds;
            Ok(Outcome::Read(read))
        }
    }
}

/// A batch of the source with these bytes: live (a file source) or ever live (a full extract).
fn known_batch<'s>(
    snapshot: &'s hedui_lake::Snapshot,
    mapping: &Mapping,
    fingerprint: &str,
) -> Option<&'s hedui_lake::Commit> {
    match mapping.replaces {
        Replaces::File => snapshot.find_identical(&mapping.id, fingerprint),
        Replaces::Source => snapshot.find_seen(&mapping.id, fingerprint),
    }
}

fn unchanged_report(mapping: &Mapping, rel: &str, prior: &hedui_lake::Commit) -> FileReport {
    let mut report = FileReport::new(rel, Some(&mapping.id), FileStatus::Unchanged);
    report.batch = Some(prior.batch.clone());
    report.as_of = prior.as_of;
    if prior.file != rel {
        report.same_as = Some(prior.file.clone());
    }
    tracing::info!(file = %printable(rel), batch = %prior.batch, "identical re-delivery skipped");
    report
}

/// Read one file through its mapping into a batch, once: the fingerprint is of the bytes parsed.
/// `snapshot` is the lake the reader judges the file against; with `quick`, a file that looks
/// like one of its own committed batches is only fingerprinted. A file that cannot be read (gone,
/// unreadable, changed while read) is a failed report; only the lake's own errors are `Err`.
fn read_file(
    starter: &BatchStarter,
    snapshot: &hedui_lake::Snapshot,
    mapping: &Mapping,
    rel: &str,
    path: &Path,
    quick: bool,
) -> Result<Read> {
    let failed = |message: String| {
        tracing::error!(file = %printable(rel), error = %message, "file not ingested");
        let mut r = FileReport::new(rel, Some(&mapping.id), FileStatus::Failed);
        r.error = Some(message);
        Ok(Read::Failed(Box::new(r)))
    };

    let delivered = match Delivered::open(path, rel) {
        Ok(d) => d,
        Err(e) => return failed(unreadable_message(e)?),
    };
    let stamp = delivered.stamp();
    // Same name, size and modification time as a committed batch: confirm by fingerprint alone.
    let looks_unchanged = quick
        && snapshot.commits().iter().rev().any(|c| {
            c.source == mapping.id
                && c.file == rel
                && c.bytes == stamp.bytes
                && c.modified_ns.is_some()
                && c.modified_ns == stamp.modified_ns().map(|n| n as i64)
        });
    let mut delivered = delivered;
    if looks_unchanged {
        let read = match delivered.fingerprint_only() {
            Ok(r) => r,
            Err(e) => return failed(unreadable_message(e)?),
        };
        if known_batch(snapshot, mapping, &read.fingerprint).is_some() {
            return Ok(Read::Fingerprinted(read.fingerprint));
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
    let mut batch = starter.begin(&mapping.id, rel);
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
    Ok(Read::Full(Box::new(ReadFile {
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
        let work = vec![(&mapping, Work::Files(files))];
        assert_eq!(run(&mut lake, &work, 2, &mut reports), None);
        assert_eq!(reports[0].status, FileStatus::Failed);
        assert!(reports[0].error.as_deref().unwrap().contains("cannot open"));
        assert_eq!(reports[1].status, FileStatus::Loaded);
        assert_eq!(lake.snapshot().version(), 1);
    }
}
