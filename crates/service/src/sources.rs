//! The live sources `hedui serve` pulls on their schedules. Each source has a task of its own:
//! one source that fails or hangs never holds up another's schedule (pulls take turns only at
//! the lake's single writer). A failed pull is logged at ERROR by the pull, counted in its
//! status (which `/metrics` and the data page show) and tried again with a doubling wait, up to
//! the next scheduled time. A source that has never been pulled, whose last pull was
//! interrupted (the server was killed) or whose scheduled time passed while the server was down
//! is pulled at once when the server starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hedui_ingest::{Mapping, PullOptions};

/// The first wait after a failed pull; doubled each time, never beyond the next scheduled run.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(15 * 60);
/// How long to wait when another process holds the lake's lock.
const LOCKED_RETRY: Duration = Duration::from_secs(2);

pub struct Sources {
    lake: PathBuf,
    mappings: Vec<Mapping>,
    /// One pull writes to the lake at a time.
    writer: tokio::sync::Mutex<()>,
}

impl Sources {
    /// The mappings of `connectors` (a directory or one file); only live sources with a
    /// schedule are pulled.
    pub fn load(connectors: &Path, lake: &Path) -> hedui_ingest::Result<Sources> {
        Ok(Sources {
            lake: lake.to_path_buf(),
            mappings: hedui_ingest::load_mappings(connectors)?,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn scheduled(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings
            .iter()
            .filter(|m| m.is_live() && m.schedule.is_some())
    }

    /// Start one task per scheduled source.
    pub fn spawn(self: &Arc<Self>) {
        for mapping in self.scheduled() {
            tracing::info!(source = %mapping.id, schedule = %mapping.schedule.as_ref().map_or("", |s| s.0.as_str()), "pulling on schedule");
            let sources = self.clone();
            let id = mapping.id.clone();
            tokio::spawn(async move { sources.run_schedule(&id).await });
        }
    }

    fn mapping(&self, id: &str) -> &Mapping {
        self.mappings
            .iter()
            .find(|m| m.id == id)
            .expect("a loaded mapping")
    }

    /// Whether the source should be pulled now, at the server's start.
    fn due_at_start(&self, mapping: &Mapping) -> bool {
        let status = hedui_lake::pulls::read_status(&self.lake, &mapping.id);
        let interrupted = status.running_since.is_some()
            || hedui_lake::Snapshot::load(&self.lake)
                .ok()
                .and_then(|s| s.last_pull(&mapping.id).and_then(|c| c.pull.clone()))
                .is_some_and(|p| !p.complete);
        let missed = match (&mapping.schedule, status.last_success_at) {
            (_, None) => true,
            (Some((_, schedule)), Some(last)) => schedule
                .after(&last)
                .next()
                .is_some_and(|t| t <= Utc::now()),
            (None, Some(_)) => false,
        };
        interrupted || missed || status.failures > 0
    }

    async fn run_schedule(self: Arc<Self>, id: &str) {
        let mapping = self.mapping(id);
        let Some((_, schedule)) = &mapping.schedule else {
            return;
        };
        let mut retry: Option<Duration> = self.due_at_start(mapping).then_some(Duration::ZERO);
        loop {
            let until_next = schedule
                .upcoming(Utc)
                .next()
                .and_then(|t| (t - Utc::now()).to_std().ok())
                .unwrap_or(MAX_RETRY);
            let wait = retry.map_or(until_next, |r| r.min(until_next));
            tokio::time::sleep(wait).await;
            retry = match self.pull(id).await {
                Outcome::Done => None,
                Outcome::Locked => Some(LOCKED_RETRY),
                Outcome::Failed => Some(
                    retry
                        .filter(|r| !r.is_zero() && *r != LOCKED_RETRY)
                        .map_or(FIRST_RETRY, |r| (r * 2).min(MAX_RETRY)),
                ),
            };
        }
    }

    /// Pull one source now (on a blocking thread: the pull runs its own drivers).
    async fn pull(self: &Arc<Self>, id: &str) -> Outcome {
        let _turn = self.writer.lock().await;
        let sources = self.clone();
        let id = id.to_string();
        let done = tokio::task::spawn_blocking(move || {
            hedui_ingest::pull(sources.mapping(&id), &sources.lake, &PullOptions::default())
        })
        .await;
        match done {
            Ok(Ok(_)) => Outcome::Done,
            Ok(Err(hedui_ingest::Error::Lake(hedui_lake::Error::Locked(_)))) => Outcome::Locked,
            // The pull logged and recorded its error.
            Ok(Err(_)) => Outcome::Failed,
            Err(e) => {
                tracing::error!(error = %e, "a pull stopped unexpectedly");
                Outcome::Failed
            }
        }
    }
}

enum Outcome {
    Done,
    Locked,
    Failed,
}
