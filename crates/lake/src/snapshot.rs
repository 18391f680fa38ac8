//! What a reader sees: the commits present when it looked, and of those the batches still live.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::Result;
use crate::keys::KEYS_DATASET;
use crate::log::{Commit, DataFile, read_log};
use crate::remote::RemoteLake;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    root: PathBuf,
    commits: Vec<Commit>,
    superseded: HashSet<String>,
    /// Batches of deliveries not yet complete (an ingest stopped half-way through one).
    pending: HashSet<String>,
    /// Batches whose files a later commit rewrote (rows updated or deleted at the source taken
    /// out): their current files.
    rewritten: HashMap<String, Vec<DataFile>>,
    /// Where the files are when the lake is on object storage (`root` is then its URL).
    remote: Option<RemoteLake>,
}

impl Snapshot {
    /// Read the lake's commit log. A lake that does not exist yet is an empty snapshot.
    pub fn load(lake: &Path) -> Result<Snapshot> {
        Ok(Snapshot::load_from(lake.to_path_buf(), read_log(lake)?))
    }

    /// The lake as it was at `version`: the commits up to it. The log only grows, so this is
    /// exactly what a reader saw then (batches committed later are not there, and later
    /// supersessions do not apply).
    pub fn at(lake: &Path, version: u64) -> Result<Snapshot> {
        let commits: Vec<Commit> = read_log(lake)?
            .into_iter()
            .filter(|c| c.seq <= version)
            .collect();
        Ok(Snapshot::load_from(lake.to_path_buf(), commits))
    }

    /// The lake directory (for a lake on object storage, its URL as a path).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The object store holding the lake, when it is not on local disk.
    pub fn remote(&self) -> Option<&RemoteLake> {
        self.remote.as_ref()
    }

    /// A file the log names relative to the lake, as a path or URL a query engine reads.
    pub fn url_of(&self, relative: &str) -> String {
        match &self.remote {
            Some(remote) => remote.url_of(relative),
            None => self.root.join(relative).to_string_lossy().into_owned(),
        }
    }

    /// The live Parquet files of a dataset as paths or URLs a query engine reads.
    pub fn file_urls(&self, dataset: &str) -> Vec<String> {
        self.live_commits()
            .flat_map(|c| self.files_of(c).iter())
            .filter(|f| f.dataset == dataset && f.rows > 0)
            .map(|f| self.url_of(&f.path))
            .collect()
    }

    /// The sequence number of the newest commit (0 for an empty lake): the snapshot's version.
    pub fn version(&self) -> u64 {
        self.commits.last().map_or(0, |c| c.seq)
    }

    pub fn commits(&self) -> &[Commit] {
        &self.commits
    }

    /// Neither replaced by a later delivery nor part of an unfinished one.
    pub fn is_live(&self, batch: &str) -> bool {
        !self.superseded.contains(batch) && !self.pending.contains(batch)
    }

    /// Commits whose batches are still live (not replaced by a later delivery).
    pub fn live_commits(&self) -> impl Iterator<Item = &Commit> {
        self.commits.iter().filter(|c| self.is_live(&c.batch))
    }

    /// A batch's data files as they are now: as committed, or as a later commit rewrote them.
    pub fn batch_files(&self, batch: &str) -> &[DataFile] {
        if let Some(files) = self.rewritten.get(batch) {
            return files;
        }
        self.commits
            .iter()
            .find(|c| c.batch == batch)
            .map_or(&[], |c| c.files.as_slice())
    }

    /// The current data files of a commit's batch.
    pub fn files_of<'s>(&'s self, commit: &'s Commit) -> &'s [DataFile] {
        self.rewritten
            .get(&commit.batch)
            .map_or(commit.files.as_slice(), Vec::as_slice)
    }

    /// Absolute paths of the live Parquet files of a dataset.
    pub fn files(&self, dataset: &str) -> Vec<PathBuf> {
        self.live_commits()
            .flat_map(|c| self.files_of(c).iter())
            .filter(|f| f.dataset == dataset && f.rows > 0)
            .map(|f| self.root.join(&f.path))
            .collect()
    }

    /// Live rows per dataset (key indexes are not a dataset).
    pub fn row_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for f in self.live_commits().flat_map(|c| self.files_of(c).iter()) {
            if f.dataset != KEYS_DATASET {
                *counts.entry(f.dataset.clone()).or_insert(0) += f.rows;
            }
        }
        counts
    }

    /// The key index files of a keyed source's live batches, with their batch.
    pub fn key_files(&self, source: &str) -> Vec<(String, PathBuf)> {
        self.live_commits()
            .filter(|c| c.source == source)
            .flat_map(|c| {
                self.files_of(c)
                    .iter()
                    .filter(|f| f.dataset == KEYS_DATASET && f.rows > 0)
                    .map(|f| (c.batch.clone(), self.root.join(&f.path)))
            })
            .collect()
    }

    /// The newest commit of a live source that recorded where its pull stands.
    pub fn last_pull(&self, source: &str) -> Option<&Commit> {
        self.commits
            .iter()
            .rev()
            .find(|c| c.source == source && c.pull.is_some())
    }

    /// A live batch of `source` with exactly these bytes: an identical re-delivery.
    pub fn find_identical(&self, source: &str, fingerprint: &str) -> Option<&Commit> {
        self.live_commits()
            .find(|c| c.source == source && c.fingerprint == fingerprint)
    }

    /// A batch of `source` with exactly these bytes that was ever live (possibly replaced since):
    /// a full extract seen before, which must not come back to replace a newer one.
    pub fn find_seen(&self, source: &str, fingerprint: &str) -> Option<&Commit> {
        self.commits.iter().rev().find(|c| {
            c.source == source && c.fingerprint == fingerprint && !self.pending.contains(&c.batch)
        })
    }

    /// Live batches of `source` delivered under the same file name (a re-export replaces them).
    pub fn live_batches_of_file(&self, source: &str, file: &str) -> Vec<String> {
        self.live_commits()
            .filter(|c| c.source == source && c.file == file)
            .map(|c| c.batch.clone())
            .collect()
    }

    /// Every live batch of `source` (a new full snapshot of the source replaces them).
    pub fn live_batches_of_source(&self, source: &str) -> Vec<String> {
        self.live_commits()
            .filter(|c| c.source == source)
            .map(|c| c.batch.clone())
            .collect()
    }

    /// Every data file any commit lists, live or not (they are history, never orphans).
    pub(crate) fn referenced_files(&self) -> HashSet<PathBuf> {
        self.commits
            .iter()
            .flat_map(|c| {
                c.files
                    .iter()
                    .chain(c.rewrites.iter().flat_map(|r| &r.files))
            })
            .map(|f| self.root.join(&f.path))
            .collect()
    }
}

impl Snapshot {
    pub(crate) fn load_from(root: PathBuf, commits: Vec<Commit>) -> Snapshot {
        let superseded = commits
            .iter()
            .flat_map(|c| c.supersedes.iter().cloned())
            .collect();
        let mut committed: HashMap<&str, u32> = HashMap::new();
        for d in commits.iter().filter_map(|c| c.delivery.as_ref()) {
            *committed.entry(d.id.as_str()).or_default() += 1;
        }
        let pending = commits
            .iter()
            .filter(|c| {
                c.delivery
                    .as_ref()
                    .is_some_and(|d| committed.get(d.id.as_str()).copied().unwrap_or(0) < d.batches)
            })
            .map(|c| c.batch.clone())
            .collect();
        let mut rewritten = HashMap::new();
        for r in commits.iter().flat_map(|c| &c.rewrites) {
            rewritten.insert(r.batch.clone(), r.files.clone());
        }
        Snapshot {
            root,
            commits,
            superseded,
            pending,
            rewritten,
            remote: None,
        }
    }

    /// The same snapshot, its files on `remote`.
    pub(crate) fn on(mut self, remote: RemoteLake) -> Snapshot {
        self.remote = Some(remote);
        self
    }
}
