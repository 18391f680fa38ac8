//! A lake on object storage (S3 protocol, `s3://bucket/prefix`): the same layout as a local lake,
//! read by the engine (queries, rule runs, checks) and filled by publishing a local lake to it.
//!
//! The single writer stays on local disk, where its lock and its atomic commits are cheap;
//! [`RemoteLake::publish`] copies what it committed. Data files go up before the commit log
//! entries that list them, entries in sequence order and each only if absent, so a reader of
//! the bucket sees a prefix of the log whose files are all there, exactly as on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::IoContext;
use crate::log::{commit_name, parse_commit, read_log};
use crate::{Error, LOG_DIR, Result, Snapshot};

/// URL schemes of lakes on object storage.
const SCHEMES: [&str; 2] = ["s3://", "s3a://"];

/// The object storage URL `lake` names, if it names one rather than a directory.
pub fn object_store_url(lake: &Path) -> Option<&str> {
    let text = lake.to_str()?;
    SCHEMES.iter().any(|s| text.starts_with(s)).then_some(text)
}

/// A lake in a bucket: where it is and the store that reaches it.
#[derive(Debug, Clone)]
pub struct RemoteLake {
    /// `s3://bucket/prefix`, without a trailing slash.
    url: String,
    /// `s3://bucket`: what the store is registered under for the engine.
    bucket: Url,
    prefix: ObjectPath,
    store: Arc<dyn ObjectStore>,
}

/// What [`RemoteLake::publish`] copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    pub files: usize,
    pub bytes: u64,
    pub commits: usize,
    /// Files and commits the bucket already held (an earlier publish).
    pub already_there: usize,
}

impl RemoteLake {
    /// The lake at `url` (`s3://bucket/prefix`), reached with the standard `AWS_*` settings of
    /// the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT` for a store other than Amazon's, `AWS_ALLOW_HTTP` for one on plain HTTP).
    /// Credentials never come from the URL or a mapping.
    pub fn from_env(url: &str) -> Result<RemoteLake> {
        let url = url.trim_end_matches('/').to_string();
        let parsed = Url::parse(&url).map_err(|e| Error::BadLakeUrl {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let bucket_name =
            parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::BadLakeUrl {
                    url: url.clone(),
                    message: "no bucket: write s3://bucket/prefix".into(),
                })?;
        let bucket = Url::parse(&format!("{}://{bucket_name}", parsed.scheme())).map_err(|e| {
            Error::BadLakeUrl {
                url: url.clone(),
                message: e.to_string(),
            }
        })?;
        let store = AmazonS3Builder::from_env()
            .with_url(url.as_str())
            .build()
            .map_err(|source| Error::ObjectStore {
                url: url.clone(),
                source,
            })?;
        let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
        Ok(RemoteLake {
            url,
            bucket,
            prefix,
            store: Arc::new(store),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `s3://bucket`: the URL the store serves, for registering it with a query engine.
    pub fn bucket_url(&self) -> &Url {
        &self.bucket
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The URL of a file the log names relative to the lake (`persons/0001-ab.parquet`).
    pub fn url_of(&self, relative: &str) -> String {
        format!("{}/{relative}", self.url)
    }

    fn object(&self, relative: &str) -> ObjectPath {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    fn failed(&self, source: object_store::Error) -> Error {
        Error::ObjectStore {
            url: self.url.clone(),
            source,
        }
    }

    /// The commits present when the log was listed, as a reader's snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let log = self.object(LOG_DIR);
        let mut names: Vec<(u64, ObjectPath)> = self
            .store
            .list(Some(&log))
            .map_err(|e| self.failed(e))
            .try_filter_map(|meta| async move {
                let name = meta.location.filename().unwrap_or_default();
                // Only whole entries; a writer's temporary files start with a dot.
                let seq = name
                    .strip_suffix(".json")
                    .filter(|_| !name.starts_with('.'))
                    .and_then(|s| s.parse::<u64>().ok());
                Ok(seq.map(|seq| (seq, meta.location)))
            })
            .try_collect()
            .await?;
        names.sort();
        let commits = futures::stream::iter(names)
            .map(|(seq, location)| async move {
                let bytes = self
                    .store
                    .get(&location)
                    .await
                    .map_err(|e| self.failed(e))?
                    .bytes()
                    .await
                    .map_err(|e| self.failed(e))?;
                let name = format!("{}/{location}", self.bucket);
                parse_commit(Path::new(&name), &bytes, Some(seq))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(Snapshot::load_from(PathBuf::from(&self.url), commits).on(self.clone()))
    }

    /// Copy the local lake at `local` here: every data file any commit lists that the bucket
    /// lacks, then every commit log entry it lacks, in sequence order. Safe to repeat, and to
    /// run while the local lake is written (what was committed when it started is copied). An
    /// entry the bucket holds with other contents means two lakes were published to one place:
    /// an error, nothing overwritten.
    pub async fn publish(&self, local: &Path) -> Result<Published> {
        let commits = read_log(local)?;
        let there = self.snapshot().await?;
        let mut done = Published::default();
        let files: Vec<&str> = commits
            .iter()
            .flat_map(|c| {
                c.files
                    .iter()
                    .chain(c.rewrites.iter().flat_map(|r| &r.files))
            })
            .map(|f| f.path.as_str())
            .collect();
        // Another lake's entries under the same numbers: refused before anything is copied.
        for commit in &commits {
            let held = there.commits().iter().find(|c| c.seq == commit.seq);
            if held.is_some_and(|held| held.batch != commit.batch) {
                return Err(Error::CommitConflict(PathBuf::from(
                    self.url_of(&commit_name(commit.seq)),
                )));
            }
        }
        for relative in files {
            let target = self.object(relative);
            match self.store.head(&target).await {
                Ok(_) => {
                    done.already_there += 1;
                    continue;
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed(e)),
            }
            done.bytes += self.upload(&local.join(relative), target).await?;
            done.files += 1;
        }
        for commit in &commits {
            if there.commits().iter().any(|c| c.seq == commit.seq) {
                done.already_there += 1;
                continue;
            }
            let path = crate::log::commit_path(local, commit.seq);
            let text = std::fs::read(&path).at(&path)?;
            let target = self.object(&commit_name(commit.seq));
            let create = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&target, PutPayload::from(text), create)
                .await
            {
                Ok(_) => done.commits += 1,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(Error::CommitConflict(PathBuf::from(
                        self.url_of(target.as_ref()),
                    )));
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(done)
    }

    /// Stream one file up in parts (bounded memory whatever its size); its size.
    async fn upload(&self, from: &Path, to: ObjectPath) -> Result<u64> {
        let mut file = tokio::fs::File::open(from).await.at(from)?;
        let mut writer = BufWriter::new(self.store.clone(), to);
        let bytes = tokio::io::copy(&mut file, &mut writer).await.at(from)?;
        writer.shutdown().await.at(from)?;
        Ok(bytes)
    }
}
