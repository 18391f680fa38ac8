//! Writing to the lake: one writer at a time (a lock), batches written beside the live data and
//! made visible by a single atomic commit-log entry.

use std::collections::BTreeMap;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use hedui_model::{Catalog, Value};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::append::DatasetAppender;
use crate::error::IoContext;
use crate::keys::{KEYS_DATASET, KeyWriter};
use crate::log::{Commit, CommitMeta, DataFile, Rewrite, commit_path, log_dir};
use crate::snapshot::Snapshot;
use crate::{Error, LOCK_FILE, Result, dataset_dir};

/// Rows buffered per dataset before they are written as a Parquet row group.
const ROWS_PER_FLUSH: usize = 64 * 1024;

/// The lake's single writer. Holding it holds the lake's lock; dropping it releases the lock
/// (so does the kernel when the process dies).
pub struct LakeWriter {
    root: PathBuf,
    _lock: File,
    snapshot: Snapshot,
}

impl LakeWriter {
    /// Open (creating if needed) the lake at `root`, take its lock, and remove what an earlier
    /// interrupted writer left behind: data files no commit lists and unfinished log entries.
    pub fn open(root: &Path) -> Result<LakeWriter> {
        if let Some(url) = crate::object_store_url(root) {
            return Err(Error::RemoteWrite(url.to_string()));
        }
        fs::create_dir_all(log_dir(root)).at(root)?;
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked(root.to_path_buf())),
            Err(TryLockError::Error(e)) => {
                return Err(Error::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let snapshot = Snapshot::load(root)?;
        let writer = LakeWriter {
            root: root.to_path_buf(),
            _lock: lock,
            snapshot,
        };
        writer.vacuum()?;
        Ok(writer)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Delete files that no commit references: the remains of a batch that was interrupted.
    fn vacuum(&self) -> Result<()> {
        let referenced = self.snapshot.referenced_files();
        let mut removed = 0usize;
        for entry in fs::read_dir(&self.root).at(&self.root)? {
            let dir = entry.at(&self.root)?.path();
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !dir.is_dir() || (name.starts_with('_') && name != KEYS_DATASET) {
                continue;
            }
            for file in fs::read_dir(&dir).at(&dir)? {
                let path = file.at(&dir)?.path();
                let is_data = path
                    .extension()
                    .is_some_and(|x| x == "parquet" || x == "tmp");
                if is_data && !referenced.contains(&path) {
                    fs::remove_file(&path).at(&path)?;
                    removed += 1;
                }
            }
        }
        for entry in fs::read_dir(log_dir(&self.root)).at(&self.root)? {
            let path = entry.at(&self.root)?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
            {
                fs::remove_file(&path).at(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(removed, lake = %self.root.display(), "removed files of an interrupted batch");
        }
        Ok(())
    }

    /// Start a batch for one delivered file. Nothing of it is visible until
    /// [`LakeWriter::commit`]; its fingerprint is known only once the file has been read.
    pub fn begin(&self, source: &str, file: &str) -> BatchWriter {
        self.starter().begin(source, file)
    }

    /// What starts batches without holding the writer: files read on other threads while this
    /// one commits. Their batches are committed here, in whatever order the caller decides.
    pub fn starter(&self) -> BatchStarter {
        BatchStarter {
            root: self.root.clone(),
            seq: self.snapshot.version() + 1,
        }
    }

    /// Write out the batch, make it durable, then publish it with one log entry; the writer's
    /// view of the lake then includes it.
    pub fn commit(&mut self, batch: BatchWriter, meta: CommitMeta) -> Result<Commit> {
        // Sequence numbers are taken at commit: several batches of one delivery are written
        // before any of them is committed.
        let seq = self.snapshot.version() + 1;
        let mut rewrites = Vec::new();
        for (earlier, rows) in &meta.remove {
            let drop: std::collections::HashSet<i64> = rows.iter().copied().collect();
            let mut files = Vec::new();
            for file in self.snapshot.batch_files(earlier) {
                if let Some(f) = crate::rewrite::without_rows(&self.root, file, &drop, seq)? {
                    files.push(f);
                }
            }
            rewrites.push(Rewrite {
                batch: earlier.clone(),
                files,
            });
        }
        for dir in rewrites
            .iter()
            .flat_map(|r| &r.files)
            .filter_map(|f| self.root.join(&f.path).parent().map(Path::to_path_buf))
            .collect::<std::collections::BTreeSet<_>>()
        {
            sync_dir(&dir)?;
        }
        let commit = batch.finish(seq, meta, rewrites)?;
        let mut commits = self.snapshot.commits().to_vec();
        commits.push(commit.clone());
        self.snapshot = Snapshot::load_from(self.root.clone(), commits);
        Ok(commit)
    }
}

/// Starts batches of one lake for readers on any thread (see [`LakeWriter::starter`]).
#[derive(Debug, Clone)]
pub struct BatchStarter {
    root: PathBuf,
    /// The next commit's sequence number when the starter was made: batch names begin with it.
    seq: u64,
}

impl BatchStarter {
    /// Start a batch for one delivered file (see [`LakeWriter::begin`]).
    pub fn begin(&self, source: &str, file: &str) -> BatchWriter {
        let mut fp = crate::Fingerprinter::default();
        fp.update(
            format!(
                "{source}\0{file}\0{}",
                Utc::now().timestamp_nanos_opt().unwrap_or(0)
            )
            .as_bytes(),
        );
        let batch = format!("{:08}-{}", self.seq, &fp.finish()[..8]);
        BatchWriter {
            root: self.root.clone(),
            batch,
            source: source.to_string(),
            file: file.to_string(),
            ingested_at_us: Utc::now().timestamp_micros(),
            datasets: BTreeMap::new(),
            keys: None,
        }
    }
}

struct OpenDataset {
    appender: DatasetAppender,
    writer: Option<ArrowWriter<File>>,
    path: PathBuf,
    rows: u64,
}

/// A batch being written: Parquet files per dataset, invisible until committed.
pub struct BatchWriter {
    root: PathBuf,
    batch: String,
    source: String,
    file: String,
    ingested_at_us: i64,
    datasets: BTreeMap<String, OpenDataset>,
    keys: Option<KeyWriter>,
}

impl BatchWriter {
    /// Record the source key of row `row` (a keyed source: a database table, an API's records)
    /// and the hash of its values, for the pulls that come after.
    pub fn append_key(&mut self, key: &str, row: i64, hash: u64) -> Result<()> {
        let root = &self.root;
        let batch = &self.batch;
        self.keys
            .get_or_insert_with(|| {
                KeyWriter::new(dataset_dir(root, KEYS_DATASET).join(format!("{batch}.parquet")))
            })
            .append(key, row, hash)
    }

    pub fn batch_id(&self) -> &str {
        &self.batch
    }

    /// Append a parsed row to `dataset`. `raws` carries the as-delivered text of each column (kept
    /// beside resident IDs); `sheet` is the workbook sheet the row is on, if any.
    pub fn append(
        &mut self,
        dataset: &str,
        values: &[Value],
        raws: &[&str],
        sheet: Option<&str>,
        row: i64,
    ) -> Result<()> {
        if !self.datasets.contains_key(dataset) {
            let def = Arc::clone(Catalog::builtin().get(dataset)?);
            let appender = DatasetAppender::new(def, &self.file, &self.batch, self.ingested_at_us);
            let path = dataset_dir(&self.root, dataset).join(format!("{}.parquet", self.batch));
            self.datasets.insert(
                dataset.to_string(),
                OpenDataset {
                    appender,
                    writer: None,
                    path,
                    rows: 0,
                },
            );
        }
        let open = self.datasets.get_mut(dataset).expect("inserted above");
        open.appender.append(values, raws, sheet, row);
        open.rows += 1;
        if open.appender.len() >= ROWS_PER_FLUSH {
            flush(open)?;
        }
        Ok(())
    }

    /// Give the batch up (its file turned out unchanged, or unreadable): remove what was written.
    pub fn abandon(mut self) -> Result<()> {
        for open in self.datasets.values_mut() {
            drop(open.writer.take());
            if open.path.exists() {
                fs::remove_file(&open.path).at(&open.path)?;
            }
        }
        if let Some(keys) = self.keys.take() {
            let path = keys.path().to_path_buf();
            drop(keys);
            if path.exists() {
                fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(())
    }

    fn finish(mut self, seq: u64, meta: CommitMeta, rewrites: Vec<Rewrite>) -> Result<Commit> {
        let mut files = Vec::new();
        if let Some(keys) = self.keys.take() {
            let path = keys.path().to_path_buf();
            let rows = keys.count;
            if let Some(file) = keys.finish()? {
                file.sync_all().at(&path)?;
                sync_dir(path.parent().expect("keys dir"))?;
                let rel = path.strip_prefix(&self.root).expect("inside lake");
                files.push(DataFile {
                    dataset: KEYS_DATASET.to_string(),
                    path: rel.to_string_lossy().replace('\\', "/"),
                    rows,
                });
            }
        }
        for (name, open) in &mut self.datasets {
            flush(open)?;
            if let Some(writer) = open.writer.take() {
                let file = writer.into_inner().map_err(|source| Error::Parquet {
                    path: open.path.clone(),
                    source,
                })?;
                file.sync_all().at(&open.path)?;
            }
            sync_dir(open.path.parent().expect("dataset dir"))?;
            let rel = open.path.strip_prefix(&self.root).expect("inside lake");
            files.push(DataFile {
                dataset: name.clone(),
                path: rel.to_string_lossy().replace('\\', "/"),
                rows: open.rows,
            });
        }
        let commit = Commit {
            seq,
            batch: self.batch.clone(),
            source: self.source.clone(),
            file: self.file.clone(),
            fingerprint: meta.fingerprint,
            bytes: meta.bytes,
            committed_at: Utc::now(),
            as_of: meta.as_of,
            as_of_basis: meta.as_of_basis,
            modified_ns: meta.modified_ns,
            delivery: meta.delivery,
            supersedes: meta.supersedes,
            files,
            counts: meta.counts,
            pull: meta.pull,
            cadence_secs: meta.cadence_secs,
            rewrites,
        };
        publish(&self.root, &commit)?;
        tracing::info!(batch = %commit.batch, file = %commit.file, rows = commit.counts.rows_loaded, "batch committed");
        Ok(commit)
    }
}

/// Rows per row group: small enough that a point lookup skips most of a large file.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows per data page: with the rows of a row group sorted by person, a point lookup decodes
/// one page of each column it reads, so pages are kept small.
const PAGE_ROWS: usize = 4 * 1024;

/// The largest dictionary page a column keeps before its pages fall back to plain encoding.
/// A point lookup decodes the dictionary page of every column chunk it reads, however few rows
/// it wants: a code's dictionary is a few bytes, but a near-unique column's dictionary is the
/// whole column chunk again (1 MB of resident IDs for one row was measured to be most of a point
/// query's time).
const DICTIONARY_PAGE_BYTES: usize = 64 * 1024;

/// Snappy, and bloom filters on the columns person and household lookups filter on (resident
/// IDs in both forms, household numbers), so such a lookup reads one row group, not the file;
/// within it, page statistics (written by default) narrow it to a page. Dictionary encoding
/// for the columns whose values repeat (codes, months, amounts, names of employers), not for
/// identifiers, personal names and row numbers, which are near-unique: there a dictionary is
/// as large as the data and only costs a lookup its decoding.
pub(crate) fn writer_properties(
    schema: &arrow_schema::SchemaRef,
    dataset: Option<&hedui_model::DatasetDef>,
) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES);
    for f in schema.fields() {
        let name = f.name();
        let path = || parquet::schema::types::ColumnPath::from(name.as_str());
        let is_id_key = name.ends_with("_key");
        let is_id = schema.field_with_name(&format!("{name}_key")).is_ok();
        if is_id_key || is_id || name == "household_no" {
            b = b.set_column_bloom_filter_enabled(path(), true);
        }
        if near_unique(name, dataset) {
            b = b.set_column_dictionary_enabled(path(), false);
        }
    }
    b.build()
}

/// Whether a stored field's values are (nearly) all different within a file: resident IDs in
/// every form, personal names, household numbers and the row number.
fn near_unique(field: &str, dataset: Option<&hedui_model::DatasetDef>) -> bool {
    use hedui_model::ColumnType;
    if field == "_row" || field == "household_no" {
        return true;
    }
    dataset
        .and_then(|d| d.column_of_field(field))
        .is_some_and(|c| matches!(c.ty, ColumnType::ResidentId | ColumnType::Name))
}

fn flush(open: &mut OpenDataset) -> Result<()> {
    if open.appender.is_empty() {
        return Ok(());
    }
    let batch = open.appender.take_batch()?;
    if open.writer.is_none() {
        let dir = open.path.parent().expect("dataset dir");
        fs::create_dir_all(dir).at(dir)?;
        let file = File::create(&open.path).at(&open.path)?;
        let props = writer_properties(open.appender.schema(), Some(open.appender.def()));
        let writer = ArrowWriter::try_new(file, open.appender.schema().clone(), Some(props))
            .map_err(|source| Error::Parquet {
                path: open.path.clone(),
                source,
            })?;
        open.writer = Some(writer);
    }
    open.writer
        .as_mut()
        .expect("created above")
        .write(&batch)
        .map_err(|source| Error::Parquet {
            path: open.path.clone(),
            source,
        })
}

/// Write the log entry to a temporary file, make it durable, then link it under its sequence
/// number: the link either exists whole or not at all, and never replaces another commit.
fn publish(root: &Path, commit: &Commit) -> Result<()> {
    let dir = log_dir(root);
    let tmp = dir.join(format!(".tmp-{}.json", commit.batch));
    let body = serde_json::to_vec_pretty(commit).expect("commit serialises");
    fs::write(&tmp, body).at(&tmp)?;
    File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
    let target = commit_path(root, commit.seq);
    match fs::hard_link(&tmp, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            return Err(Error::CommitConflict(target));
        }
        Err(e) => {
            return Err(Error::Io {
                path: target,
                source: e,
            });
        }
    }
    fs::remove_file(&tmp).at(&tmp)?;
    sync_dir(&dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use hedui_model::value::text::normalise_text;

    use super::*;
    use crate::Counts;
    use hedui_model::ResidentId;

    fn row(text: &str) -> Vec<Value> {
        vec![
            Value::Text("unemployment_benefits".into()),
            Value::Text("f.csv".into()),
            Value::Null,
            Value::Int(2),
            Value::Text(normalise_text(text)),
            Value::Text("{}".into()),
            Value::Text("why".into()),
            Value::Text("code".into()),
        ]
    }

    fn meta(fingerprint: &str, counts: Counts, supersedes: Vec<String>) -> crate::CommitMeta {
        crate::CommitMeta {
            fingerprint: fingerprint.into(),
            bytes: 10,
            counts,
            supersedes,
            ..Default::default()
        }
    }

    #[test]
    fn a_delivery_becomes_live_only_when_its_last_batch_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeWriter::open(dir.path()).unwrap();
        let counts = Counts {
            rows_read: 1,
            rows_quarantined: 1,
            ..Default::default()
        };
        let commit = |lake: &mut LakeWriter, file: &str, supersedes: Vec<String>| {
            let mut batch = lake.begin("src", file);
            batch
                .append("quarantine", &row("{}"), &[""; 8], None, 2)
                .unwrap();
            let id = batch.batch_id().to_string();
            let mut m = meta(file, counts, supersedes);
            m.delivery = Some(crate::Delivery {
                id: "d1".into(),
                batches: 2,
            });
            lake.commit(batch, m).unwrap();
            id
        };
        let first = commit(&mut lake, "城区.csv", vec![]);
        let snap = Snapshot::load(dir.path()).unwrap();
        assert!(!snap.is_live(&first), "half a delivery is not the source");
        assert!(snap.files("quarantine").is_empty());
        assert!(snap.find_seen("src", "城区.csv").is_none());
        commit(&mut lake, "县市.csv", vec![]);
        let snap = Snapshot::load(dir.path()).unwrap();
        assert!(snap.is_live(&first));
        assert_eq!(
            snap.files("quarantine").len(),
            2,
            "both files of the delivery"
        );
    }

    #[test]
    fn large_files_have_small_row_groups_with_bloom_filters_on_lookup_columns() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeWriter::open(dir.path()).unwrap();
        let mut batch = lake.begin("src", "p.csv");
        let month = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        for i in 0..(ROW_GROUP_ROWS as i64 + 10) {
            let values = [
                Value::Text(format!("DB{i:07}")),
                Value::Date(month),
                Value::Decimal(80_000),
                Value::Int(2),
            ];
            batch
                .append("dibao_payments", &values, &[""; 4], None, i + 2)
                .unwrap();
        }
        let counts = Counts {
            rows_read: ROW_GROUP_ROWS as u64 + 10,
            rows_loaded: ROW_GROUP_ROWS as u64 + 10,
            ..Default::default()
        };
        lake.commit(batch, meta("cccccccccccc", counts, vec![]))
            .unwrap();
        let snap = Snapshot::load(dir.path()).unwrap();
        let file = File::open(&snap.files("dibao_payments")[0]).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let meta = reader.metadata();
        assert_eq!(
            meta.num_row_groups(),
            2,
            "a point lookup can skip row groups"
        );
        let rg = meta.row_group(0);
        let has_bloom = |name: &str| {
            rg.columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap()
                .bloom_filter_offset()
                .is_some()
        };
        assert!(has_bloom("household_no"));
        assert!(!has_bloom("amount"));
    }

    #[test]
    fn row_groups_are_sorted_by_person_in_small_pages() {
        use arrow_array::{Array, Int64Array};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeWriter::open(dir.path()).unwrap();
        let mut batch = lake.begin("src", "cremations.csv");
        let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 8).unwrap();
        let rows = ROW_GROUP_ROWS as i64 + 10;
        let born = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        // Persons in an order that is not theirs: a multiplicative walk over the rows.
        for i in 0..rows {
            let n = (i * 7919) % rows;
            let birth = born + chrono::Days::new((n / 1000) as u64);
            let digits = format!("420502{}{:03}", birth.format("%Y%m%d"), n % 1000);
            let person = ResidentId::from_key(digits.parse().unwrap()).unwrap();
            let values = [
                Value::Id(person),
                Value::Text("张三".into()),
                Value::Text("M".into()),
                Value::Date(day),
                Value::Date(day),
                Value::Text("殡仪馆".into()),
            ];
            batch
                .append("cremations", &values, &[""; 6], None, i + 2)
                .unwrap();
        }
        let counts = Counts {
            rows_read: rows as u64,
            rows_loaded: rows as u64,
            ..Default::default()
        };
        lake.commit(batch, meta("dddddddddddd", counts, vec![]))
            .unwrap();
        let path = Snapshot::load(dir.path()).unwrap().files("cremations")[0].clone();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .with_batch_size(ROW_GROUP_ROWS)
            .build()
            .unwrap();
        let mut seen = 0;
        for group in reader {
            let group = group.unwrap();
            let keys = group
                .column_by_name("person_id_key")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            assert!(
                keys.values().windows(2).all(|w| w[0] <= w[1]),
                "a row group is in person order"
            );
            seen += keys.len() as i64;
        }
        assert_eq!(seen, rows, "every row is there");
        let file = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let pages = file
            .get_row_group(0)
            .unwrap()
            .get_column_page_reader(0)
            .unwrap()
            .filter(|p| {
                p.as_ref()
                    .is_ok_and(|p| p.page_type() == parquet::basic::PageType::DATA_PAGE)
            })
            .count();
        assert!(
            pages >= ROW_GROUP_ROWS / PAGE_ROWS,
            "a lookup decodes one of many pages ({pages})"
        );
        // Nor a dictionary as large as the column: near-unique columns are stored plain,
        // repeating ones with a dictionary.
        let meta = file.metadata().row_group(0).clone();
        let dictionary = |name: &str| {
            meta.columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"))
                .dictionary_page_offset()
                .is_some()
        };
        for near_unique in [
            "person_id",
            "person_id_key",
            "person_id_raw",
            "name",
            "_row",
        ] {
            assert!(!dictionary(near_unique), "{near_unique} has no dictionary");
        }
        for repeating in ["sex", "funeral_home", "_batch", "_source"] {
            assert!(dictionary(repeating), "{repeating} has a dictionary");
        }
    }

    #[test]
    fn a_batch_is_invisible_until_committed_and_superseding_hides_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeWriter::open(dir.path()).unwrap();
        let mut batch = lake.begin("src", "f.csv");
        batch
            .append("quarantine", &row("{}"), &[""; 8], None, 2)
            .unwrap();
        let first = batch.batch_id().to_string();
        assert_eq!(
            Snapshot::load(dir.path())
                .unwrap()
                .files("quarantine")
                .len(),
            0,
            "not committed yet"
        );
        let counts = Counts {
            rows_read: 1,
            rows_quarantined: 1,
            ..Default::default()
        };
        lake.commit(batch, meta("aaaaaaaaaaaa", counts, vec![]))
            .unwrap();
        let snap = Snapshot::load(dir.path()).unwrap();
        assert_eq!(snap.files("quarantine").len(), 1);
        assert_eq!(
            snap.find_identical("src", "aaaaaaaaaaaa").unwrap().batch,
            first
        );

        let mut batch = lake.begin("src", "f.csv");
        batch
            .append("quarantine", &row("{}"), &[""; 8], None, 2)
            .unwrap();
        lake.commit(batch, meta("bbbbbbbbbbbb", counts, vec![first.clone()]))
            .unwrap();
        let snap = Snapshot::load(dir.path()).unwrap();
        assert!(!snap.is_live(&first));
        assert_eq!(
            snap.files("quarantine").len(),
            1,
            "only the replacement is read"
        );
        assert_eq!(snap.version(), 2);
        assert!(
            snap.find_identical("src", "aaaaaaaaaaaa").is_none(),
            "a superseded delivery may come again"
        );
    }

    #[test]
    fn reopening_removes_what_an_interrupted_batch_left_and_one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        {
            let lake = LakeWriter::open(dir.path()).unwrap();
            assert!(matches!(
                LakeWriter::open(dir.path()),
                Err(Error::Locked(_))
            ));
            let mut batch = lake.begin("src", "f.csv");
            for _ in 0..(ROWS_PER_FLUSH + 1) {
                batch
                    .append("quarantine", &row("{}"), &[""; 8], None, 2)
                    .unwrap();
            }
            // Dropped without commit, as if the process died: a Parquet file is on disk.
            assert!(dir.path().join("quarantine").read_dir().unwrap().count() > 0);
        }
        let lake = LakeWriter::open(dir.path()).unwrap();
        assert_eq!(dir.path().join("quarantine").read_dir().unwrap().count(), 0);
        assert_eq!(lake.snapshot().version(), 0);
    }
}
