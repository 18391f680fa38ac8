//! What changed in the lake between two snapshots, in the terms rules are evaluated in: the
//! datasets touched and the subjects (persons, dibao households) whose rows were added or taken
//! out. A rule's result for a subject depends only on the rows of that subject (and, for a
//! household, of its members), so evaluating the rules again for these subjects alone gives
//! exactly what a full run would give for them, and the same as before for everyone else.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext, col};
use hedui_lake::{DataFile, KEYS_DATASET, Snapshot};
use hedui_model::{Catalog, ColumnType};

use crate::{Engine, Result};

#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub datasets: BTreeSet<String>,
    /// Resident IDs (18 characters) in rows added or taken out.
    pub persons: BTreeSet<String>,
    /// Dibao household numbers in rows added or taken out, and the households (then or now)
    /// of every changed person.
    pub households: BTreeSet<String>,
    /// Rows added and taken out, over all datasets.
    pub rows: u64,
    /// The same, dataset by dataset, with how its rows changed.
    pub by_dataset: BTreeMap<String, DatasetChange>,
}

/// How one dataset's rows changed.
#[derive(Debug, Clone, Default)]
pub struct DatasetChange {
    /// The batches that brought its new rows.
    pub new_batches: BTreeSet<String>,
    /// Rows added by those batches.
    pub new_rows: u64,
    /// Some of its rows were taken out (a batch replaced by a later delivery, or rewritten).
    pub removed: bool,
    /// Resident IDs in its rows added or taken out.
    pub persons: BTreeSet<String>,
    /// Household numbers in its rows added or taken out, and the households of its persons.
    pub households: BTreeSet<String>,
}

impl DatasetChange {
    /// Only rows added: what a rule can evaluate on the new rows alone.
    pub fn only_added(&self) -> bool {
        !self.removed && !self.new_batches.is_empty()
    }
}

/// Rows of a file, or only those not in another file (a batch rewritten without some rows).
struct Piece {
    dataset: String,
    path: PathBuf,
    minus: Option<PathBuf>,
    /// The batch that added these rows; `None` for rows taken out.
    added_by: Option<String>,
    rows: u64,
}

fn pieces(before: &Snapshot, after: &Snapshot) -> Vec<Piece> {
    let data = |f: &&DataFile| f.dataset != KEYS_DATASET && f.rows > 0;
    let mut out = Vec::new();
    let was_live: HashSet<&str> = before.live_commits().map(|c| c.batch.as_str()).collect();
    let is_live: HashSet<&str> = after.live_commits().map(|c| c.batch.as_str()).collect();
    // Added: batches live now that were not live before.
    for c in after
        .live_commits()
        .filter(|c| !was_live.contains(c.batch.as_str()))
    {
        for f in after.files_of(c).iter().filter(data) {
            out.push(Piece {
                dataset: f.dataset.clone(),
                path: after.root().join(&f.path),
                minus: None,
                added_by: Some(c.batch.clone()),
                rows: f.rows,
            });
        }
    }
    for c in before.live_commits() {
        let old = before.files_of(c);
        if !is_live.contains(c.batch.as_str()) {
            // Taken out whole: a later delivery replaced it.
            for f in old.iter().filter(data) {
                out.push(Piece {
                    dataset: f.dataset.clone(),
                    path: before.root().join(&f.path),
                    minus: None,
                    added_by: None,
                    rows: f.rows,
                });
            }
            continue;
        }
        let new = after.batch_files(&c.batch);
        if new == old {
            continue;
        }
        // Rewritten: the rows taken out are the old files' rows missing from the new ones.
        for f in old.iter().filter(data) {
            let now = new.iter().find(|n| n.dataset == f.dataset);
            if now.is_some_and(|n| n.path == f.path) {
                continue;
            }
            out.push(Piece {
                dataset: f.dataset.clone(),
                path: before.root().join(&f.path),
                minus: now.map(|n| after.root().join(&n.path)),
                added_by: None,
                rows: f.rows,
            });
        }
    }
    out
}

impl Engine {
    /// What changed from `before` (an earlier snapshot of this engine's lake) to now.
    pub async fn changes_since(&self, before: &Snapshot) -> Result<Changes> {
        let mut changes = Changes::default();
        let ctx = SessionContext::new();
        let catalog = Catalog::builtin();
        for piece in pieces(before, self.snapshot()) {
            changes.datasets.insert(piece.dataset.clone());
            let change = changes.by_dataset.entry(piece.dataset.clone()).or_default();
            match &piece.added_by {
                Some(batch) => {
                    change.new_batches.insert(batch.clone());
                    change.new_rows += piece.rows;
                }
                None => change.removed = true,
            }
            let Ok(def) = catalog.get(&piece.dataset) else {
                continue;
            };
            let mut columns: Vec<&str> = def
                .columns
                .iter()
                .filter(|c| c.ty == ColumnType::ResidentId)
                .map(|c| c.name.as_str())
                .collect();
            let households = def.column("household_no").is_some();
            if households {
                columns.push("household_no");
            }
            let path = piece.path.to_string_lossy().to_string();
            let mut df = ctx
                .read_parquet(path, ParquetReadOptions::default())
                .await?;
            if let Some(minus) = &piece.minus {
                let kept = ctx
                    .read_parquet(
                        minus.to_string_lossy().to_string(),
                        ParquetReadOptions::default(),
                    )
                    .await?
                    .select(vec![col("_row").alias("kept_row")])?;
                df = df.join(
                    kept,
                    datafusion::common::JoinType::LeftAnti,
                    &["_row"],
                    &["kept_row"],
                    None,
                )?;
            }
            let projected: Vec<_> = columns.iter().map(|c| col(*c)).collect();
            let batches = if projected.is_empty() {
                df.select(vec![col("_row")])?.collect().await?
            } else {
                df.select(projected)?.collect().await?
            };
            for b in &batches {
                changes.rows += b.num_rows() as u64;
                for (i, name) in columns.iter().enumerate() {
                    // Parquet text may come back as string views.
                    let text = cast(b.column(i), &DataType::Utf8)?;
                    let values = text.as_string::<i32>();
                    let change = changes
                        .by_dataset
                        .get_mut(&piece.dataset)
                        .expect("entered above");
                    let (into, each) = if *name == "household_no" {
                        (&mut changes.households, &mut change.households)
                    } else {
                        (&mut changes.persons, &mut change.persons)
                    };
                    for v in values.iter().flatten() {
                        if !each.contains(v) {
                            each.insert(v.to_string());
                            into.insert(v.to_string());
                        }
                    }
                }
            }
        }
        // The households changed persons belong to, as the roster says now and said before.
        // The roster is small beside the persons a month changes: read it whole.
        if !changes.persons.is_empty() {
            let earlier = Engine::with_snapshot(before.clone(), self.options()).await?;
            for engine in [self, &earlier] {
                let (_, batches) = engine
                    .lookup("SELECT person_id, household_no FROM dibao_members")
                    .await?;
                for b in &batches {
                    let persons = cast(b.column(0), &DataType::Utf8)?;
                    let households = cast(b.column(1), &DataType::Utf8)?;
                    let (persons, households) =
                        (persons.as_string::<i32>(), households.as_string::<i32>());
                    for (p, h) in persons.iter().zip(households.iter()) {
                        if let (Some(p), Some(h)) = (p, h)
                            && changes.persons.contains(p)
                        {
                            changes.households.insert(h.to_string());
                            for change in changes.by_dataset.values_mut() {
                                if change.persons.contains(p) {
                                    change.households.insert(h.to_string());
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(changes)
    }
}
