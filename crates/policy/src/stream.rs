//! A running query's result: batches suppressed (aggregate-only roles), cut at the row limit and
//! stopped at the time limit; errors mapped to fixed messages.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};

use crate::session::QueryInfo;
use crate::suppress::Suppression;
use crate::{Error, Result, errors};

/// A running query's result batches, suppressed and limited.
pub struct QueryStream {
    pub(crate) inner: SendableRecordBatchStream,
    pub(crate) schema: SchemaRef,
    pub(crate) suppression: Option<Suppression>,
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) timeout: Duration,
    pub(crate) sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(crate) max_rows: u64,
    pub(crate) rows: Arc<AtomicU64>,
    pub(crate) truncated: Arc<AtomicBool>,
    pub(crate) done: bool,
    pub info: QueryInfo,
}

impl QueryStream {
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows delivered so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Whether the result was cut at the row limit.
    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }

    /// Shared counters, for whoever reports on the stream after handing it on.
    pub fn counters(&self) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
        (self.rows.clone(), self.truncated.clone())
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            let secs = self.timeout.as_secs();
            return Poll::Ready(Some(Err(Error::Limit(format!(
                "the query took longer than the limit of {secs}s and was stopped"
            )))));
        }
        let batch = match self.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                return Poll::Ready(Some(Err(errors::execution(e))));
            }
            Poll::Ready(Some(Ok(b))) => b,
        };
        let batch = match &self.suppression {
            Some(s) => match s.apply(&batch) {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::Internal(e.to_string()))));
                }
            },
            None => batch,
        };
        let so_far = self.rows.load(Ordering::Relaxed);
        let room = self.max_rows.saturating_sub(so_far);
        let batch = if batch.num_rows() as u64 > room {
            self.truncated.store(true, Ordering::Relaxed);
            self.done = true;
            batch.slice(0, room as usize)
        } else {
            batch
        };
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(batch)))
    }
}
