//! Rows of a keyed source (a database table, an API's records) into batches: each row is new,
//! an update of a row the lake holds (its earlier version is taken out in the same commit),
//! unchanged (a duplicate), or a second row with a key already read in this pull (quarantined).
//! The lake then holds exactly one version of every key the source has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;

use chrono::{NaiveDate, Utc};
use hedui_lake::{BatchWriter, CommitMeta, LakeWriter, PullState, Snapshot, SourceColumn};
use hedui_model::value::Cell;
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use crate::Result;
use crate::as_of::Basis;
use crate::connector::{RawRow, Table};
use crate::mapping::{AsOf, Mapping};
use crate::report::{FileReport, FileStatus};
use crate::table::read_table;

/// A key as the index holds it in memory: 128 bits of SipHash (a collision among a province's
/// rows is far less likely than a disk error).
pub(crate) type KeyHash = u128;

pub(crate) fn key_hash(key: &str) -> KeyHash {
    let mut h = SipHasher13x128::new_with_keys(0, 0);
    h.write(key.as_bytes());
    h.finish128().as_u128()
}

/// A stable hash of a row's values as read (stored in the lake: it must not change between
/// versions of hedui, so not std's `DefaultHasher`).
pub(crate) fn row_hash(cells: &[Option<String>]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0, 0);
    for c in cells {
        match c {
            None => h.write_u8(0),
            Some(s) => {
                h.write_u8(1);
                h.write_usize(s.len());
                h.write(s.as_bytes());
            }
        }
    }
    h.finish()
}

#[derive(Clone, Copy)]
struct Located {
    batch: u32,
    row: i64,
    hash: u64,
}

/// Where the lake holds each key of a source now.
pub(crate) struct KeyIndex {
    batches: Vec<String>,
    entries: HashMap<KeyHash, Located>,
}

impl KeyIndex {
    pub(crate) fn load(snapshot: &Snapshot, source: &str) -> Result<KeyIndex> {
        let mut index = KeyIndex {
            batches: Vec::new(),
            entries: HashMap::new(),
        };
        for (batch, path) in snapshot.key_files(source) {
            let b = index.batches.len() as u32;
            index.batches.push(batch);
            hedui_lake::read_keys(&path, |key, row, hash| {
                index.entries.insert(
                    key_hash(key),
                    Located {
                        batch: b,
                        row,
                        hash,
                    },
                );
            })?;
        }
        Ok(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One row of a pull, its cells as text (NULL as `None`), in the header's order.
pub(crate) struct PulledRow {
    pub key: String,
    pub cells: Vec<Option<String>>,
}

/// The pull in progress: the batch being filled, what it takes out of earlier batches, and
/// what the pull has seen so far.
pub(crate) struct KeyedPull<'a> {
    mapping: &'a Mapping,
    label: String,
    header: Vec<String>,
    pub index: KeyIndex,
    /// Every key read in this pull (the source's keys, for the deletion check of a full read).
    pub seen: HashSet<KeyHash>,
    /// Keys an interrupted run of this pull committed: read again after a resume, they are
    /// duplicates, not a second row with the same key.
    resumed: HashSet<KeyHash>,
    batch: Option<BatchWriter>,
    report: FileReport,
    keys: Vec<(String, i64, u64)>,
    remove: BTreeMap<String, Vec<i64>>,
    next_row: i64,
    latest: Option<NaiveDate>,
    pub pull_id: String,
    pub reports: Vec<FileReport>,
    rows_updated: u64,
    rows_deleted: u64,
    /// Whether this pull has committed a batch already (its last commit must then say it is
    /// complete, even if it changes nothing).
    pub committed: bool,
    /// Over the whole pull.
    pub updated_total: u64,
    pub deleted_total: u64,
}

impl<'a> KeyedPull<'a> {
    pub(crate) fn new(
        lake: &LakeWriter,
        mapping: &'a Mapping,
        label: String,
        header: Vec<String>,
    ) -> Result<KeyedPull<'a>> {
        let index = KeyIndex::load(lake.snapshot(), &mapping.id)?;
        Ok(KeyedPull {
            mapping,
            report: FileReport::new(&label, Some(&mapping.id), FileStatus::Loaded),
            label,
            header,
            index,
            seen: HashSet::new(),
            resumed: HashSet::new(),
            batch: None,
            keys: Vec::new(),
            remove: BTreeMap::new(),
            next_row: 1,
            latest: None,
            pull_id: format!("{}-{}", mapping.id, Utc::now().format("%Y%m%dT%H%M%S%6f")),
            reports: Vec::new(),
            rows_updated: 0,
            rows_deleted: 0,
            committed: false,
            updated_total: 0,
            deleted_total: 0,
        })
    }

    /// Carry on the interrupted pull `pull_id`: the keys its committed batches hold count as
    /// read by this pull.
    pub(crate) fn resume(&mut self, snapshot: &Snapshot, pull_id: &str) -> Result<()> {
        self.pull_id = pull_id.to_string();
        for c in snapshot
            .live_commits()
            .filter(|c| c.source == self.mapping.id)
            .filter(|c| c.pull.as_ref().is_some_and(|p| p.pull == pull_id))
        {
            for f in snapshot
                .files_of(c)
                .iter()
                .filter(|f| f.dataset == hedui_lake::KEYS_DATASET && f.rows > 0)
            {
                hedui_lake::read_keys(&snapshot.root().join(&f.path), |key, _, _| {
                    let k = key_hash(key);
                    self.seen.insert(k);
                    self.resumed.insert(k);
                })?;
            }
        }
        Ok(())
    }

    /// Rows in the batch being filled (read, whatever became of them).
    pub(crate) fn pending_rows(&self) -> u64 {
        self.report.rows_read
    }

    /// Whether the batch being filled changes anything.
    pub(crate) fn has_changes(&self) -> bool {
        self.report.rows_loaded + self.report.rows_quarantined > 0 || !self.remove.is_empty()
    }

    /// The key was deleted at the source (a delete marker): take its row out, if the lake has it.
    pub(crate) fn delete(&mut self, key: &str) {
        let k = key_hash(key);
        self.seen.remove(&k);
        if let Some(at) = self.index.entries.remove(&k) {
            self.take_out(at);
            self.rows_deleted += 1;
        }
    }

    /// After the source's keys were read in full: every key the lake holds that the source no
    /// longer has is deleted.
    pub(crate) fn delete_missing(&mut self, source_keys: &HashSet<KeyHash>) {
        let gone: Vec<KeyHash> = self
            .index
            .entries
            .keys()
            .filter(|k| !source_keys.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(at) = self.index.entries.remove(&k) {
                self.take_out(at);
                self.rows_deleted += 1;
            }
        }
    }

    fn take_out(&mut self, at: Located) {
        let batch = self.index.batches[at.batch as usize].clone();
        self.remove.entry(batch).or_default().push(at.row);
    }

    /// Classify one page of rows and load the new and changed ones.
    pub(crate) fn take(&mut self, lake: &LakeWriter, rows: Vec<PulledRow>) -> Result<()> {
        let mut fed: Vec<RawRow> = Vec::with_capacity(rows.len());
        for row in rows {
            let k = key_hash(&row.key);
            let hash = row_hash(&row.cells);
            let repeated = if self.resumed.remove(&k) {
                false
            } else {
                !self.seen.insert(k)
            };
            let number = self.next_row;
            let defect = if repeated {
                Some((
                    format!(
                        "主键 {} 在本次拉取中重复出现，源表的主键不唯一 (the key appears twice in one consistent read: the source's key is not unique)",
                        row.key
                    ),
                    "key.duplicate",
                ))
            } else {
                match self.index.entries.get(&k).copied() {
                    Some(at) if at.hash == hash => {
                        self.report.rows_read += 1;
                        self.report.rows_duplicate += 1;
                        continue;
                    }
                    Some(at) => {
                        self.index.entries.remove(&k);
                        self.take_out(at);
                        self.rows_updated += 1;
                    }
                    None => {}
                }
                self.keys.push((row.key, number, hash));
                None
            };
            self.next_row += 1;
            fed.push(RawRow {
                number: number as u64,
                cells: row
                    .cells
                    .into_iter()
                    .map(|c| c.map_or(Cell::Empty, Cell::Text))
                    .collect(),
                defect,
            });
        }
        if fed.is_empty() {
            return Ok(());
        }
        let batch = self
            .batch
            .get_or_insert_with(|| lake.begin(&self.mapping.id, &self.label));
        let table = Table {
            sheet: None,
            header: Some(self.header.clone()),
            rows: Box::new(fed.into_iter().map(Ok)),
            fixed_width: false,
            text: None,
            layout: false,
        };
        read_table(
            batch,
            self.mapping,
            &self.mapping.targets[0],
            &self.label,
            table,
            &mut self.report,
            &mut self.latest,
        )?;
        for (key, row, hash) in self.keys.drain(..) {
            batch.append_key(&key, row, hash)?;
        }
        Ok(())
    }

    /// Commit what the batch holds with where the pull stands. Returns whether a commit was made.
    pub(crate) fn commit(
        &mut self,
        lake: &mut LakeWriter,
        mut state: PullState,
        force: bool,
    ) -> Result<bool> {
        let changed = self.has_changes();
        let mut report = std::mem::replace(
            &mut self.report,
            FileReport::new(&self.label, Some(&self.mapping.id), FileStatus::Loaded),
        );
        let batch = self.batch.take();
        if !changed && !force {
            if let Some(b) = batch {
                b.abandon()?;
            }
            report.status = FileStatus::Unchanged;
            self.reports.push(report);
            return Ok(false);
        }
        let batch = match batch {
            Some(b) => b,
            None => lake.begin(&self.mapping.id, &self.label),
        };
        let (as_of, basis) = match (&self.mapping.as_of, self.latest) {
            (AsOf::Column(_), Some(d)) => (d, Basis::Column),
            (AsOf::Fixed(d), _) => (*d, Basis::Stated),
            _ => (hedui_model::city_today(), Basis::Pulled),
        };
        state.pull = self.pull_id.clone();
        state.rows_updated = std::mem::take(&mut self.rows_updated);
        state.rows_deleted = std::mem::take(&mut self.rows_deleted);
        self.updated_total += state.rows_updated;
        self.deleted_total += state.rows_deleted;
        report.as_of = Some(as_of);
        report.as_of_basis = Some(basis);
        report.batch = Some(batch.batch_id().to_string());
        debug_assert!(report.counts().balanced());
        let meta = CommitMeta {
            fingerprint: format!("pull:{}", self.pull_id),
            bytes: 0,
            modified_ns: None,
            counts: report.counts(),
            as_of: Some(as_of),
            as_of_basis: Some(basis.as_str().to_string()),
            supersedes: Vec::new(),
            delivery: None,
            pull: Some(state),
            cadence_secs: self.mapping.cadence.map(|d| d.as_secs()),
            remove: std::mem::take(&mut self.remove),
        };
        lake.commit(batch, meta)?;
        self.committed = true;
        // The index keeps pointing at the earlier batches only: a key this pull has read cannot
        // come again in it (`seen`), and the deletion check spares every key the source has.
        self.next_row = 1;
        self.reports.push(report);
        Ok(true)
    }
}

/// The columns a pull reads, with the previous pull's, compared: a column the mapping uses that
/// is gone or has another type stops the pull; new columns are reported.
pub(crate) fn drift(
    previous: &[SourceColumn],
    now: &[SourceColumn],
    used: &[String],
) -> std::result::Result<Vec<String>, String> {
    if previous.is_empty() {
        return Ok(Vec::new());
    }
    let find = |cols: &[SourceColumn], name: &str| cols.iter().find(|c| c.name == name).cloned();
    let mut problems = Vec::new();
    for name in used {
        match (find(previous, name), find(now, name)) {
            (Some(_), None) => problems.push(format!(
                "映射使用的列 {name} 已从源表删除 (column `{name}` used by the mapping is gone)"
            )),
            (Some(before), Some(after)) if before.type_name != after.type_name => {
                problems.push(format!(
                    "列 {name} 的类型由 {} 变为 {} (column `{name}` changed type from {} to {})",
                    before.type_name, after.type_name, before.type_name, after.type_name
                ))
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "源表结构已变化，本次未导入任何数据；请核对映射后用 `hedui pull --accept-schema` 确认 (the source's columns changed; nothing was loaded): {}",
            problems.join("；")
        ));
    }
    Ok(now
        .iter()
        .filter(|c| find(previous, &c.name).is_none())
        .map(|c| c.name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            type_name: ty.into(),
        }
    }

    #[test]
    fn a_dropped_or_retyped_column_stops_and_a_new_one_is_reported() {
        let before = vec![col("id", "INT8"), col("name", "TEXT")];
        let used = vec!["id".to_string(), "name".to_string()];
        let added = drift(
            &before,
            &[col("id", "INT8"), col("name", "TEXT"), col("phone", "TEXT")],
            &used,
        )
        .unwrap();
        assert_eq!(added, vec!["phone"]);
        let err = drift(&before, &[col("id", "INT8")], &used).unwrap_err();
        assert!(err.contains("`name` used by the mapping is gone"), "{err}");
        let err = drift(&before, &[col("id", "TEXT"), col("name", "TEXT")], &used).unwrap_err();
        assert!(err.contains("from INT8 to TEXT"), "{err}");
        // A column the mapping does not use may go.
        assert!(
            drift(
                &before,
                &[col("id", "INT8"), col("name", "TEXT")],
                &used[..1]
            )
            .is_ok()
        );
    }

    #[test]
    fn row_hashes_tell_null_from_empty_and_do_not_run_cells_together() {
        assert_ne!(row_hash(&[None]), row_hash(&[Some(String::new())]));
        assert_ne!(
            row_hash(&[Some("ab".into()), Some("c".into())]),
            row_hash(&[Some("a".into()), Some("bc".into())])
        );
    }
}
