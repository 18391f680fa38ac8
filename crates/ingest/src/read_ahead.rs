//! Files read ahead on worker threads and handed to the one committing thread in the order a
//! file-at-a-time ingest reads them: every core parses a file, while the lake's commit order and
//! every report stay exactly what they were.
//!
//! A worker takes the next job only while it is fewer than `window` jobs ahead of the committer,
//! so finished but uncommitted batches (each holding at most one row group in memory) stay few
//! whatever the number of files.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Condvar, Mutex};

/// Hands out job indexes in order, no further than `window` past what was consumed.
struct Gate {
    state: Mutex<GateState>,
    moved: Condvar,
    jobs: usize,
    window: usize,
}

struct GateState {
    next: usize,
    consumed: usize,
    closed: bool,
}

impl Gate {
    /// The next job to read, waiting while the readers are `window` jobs ahead; `None` once every
    /// job is taken or the ingest stopped.
    fn take(&self) -> Option<usize> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if s.closed || s.next >= self.jobs {
                return None;
            }
            if s.next < s.consumed + self.window {
                s.next += 1;
                return Some(s.next - 1);
            }
            s = self.moved.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn consumed(&self, n: usize) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .consumed = n;
        self.moved.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.moved.notify_all();
    }
}

/// Closes the gate if its worker unwinds, so the others stop instead of waiting for a committer
/// that waits for the lost job.
struct CloseOnPanic<'g>(&'g Gate);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close();
        }
    }
}

/// The results of `read` over `jobs`, computed by `threads` workers and taken in job order.
pub(crate) struct ReadAhead<'g, T> {
    gate: &'g Gate,
    results: Receiver<(usize, T)>,
    arrived: BTreeMap<usize, T>,
    next: usize,
}

/// Run `body` with a [`ReadAhead`] of `read` over `jobs`; what `body` leaves unconsumed is given
/// to `discard` once the workers have stopped.
pub(crate) fn with_read_ahead<J, T, R>(
    jobs: &[J],
    threads: usize,
    read: impl Fn(&J) -> T + Sync,
    discard: impl FnMut(T),
    body: impl FnOnce(&mut ReadAhead<'_, T>) -> R,
) -> R
where
    J: Sync,
    T: Send,
{
    let threads = threads.clamp(1, jobs.len().max(1));
    let gate = Gate {
        state: Mutex::new(GateState {
            next: 0,
            consumed: 0,
            closed: false,
        }),
        moved: Condvar::new(),
        jobs: jobs.len(),
        // One job waiting per worker beyond the one it reads keeps every core busy while the
        // committer writes out a batch.
        window: 2 * threads,
    };
    std::thread::scope(|scope| {
        let (tx, rx) = channel();
        let (gate, read) = (&gate, &read);
        for _ in 0..threads {
            let tx = tx.clone();
            scope.spawn(move || {
                let _guard = CloseOnPanic(gate);
                while let Some(i) = gate.take() {
                    if tx.send((i, read(&jobs[i]))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut ahead = ReadAhead {
            gate,
            results: rx,
            arrived: BTreeMap::new(),
            next: 0,
        };
        let out = body(&mut ahead);
        ahead.stop(discard);
        out
    })
}

impl<T> ReadAhead<'_, T> {
    /// The result of the next job in order, waiting for it to be read.
    pub(crate) fn next(&mut self) -> T {
        let i = self.next;
        let result = loop {
            if let Some(r) = self.arrived.remove(&i) {
                break r;
            }
            match self.results.recv() {
                Ok((j, r)) => {
                    self.arrived.insert(j, r);
                }
                // Every worker has stopped without reading job `i`: one of them panicked, and
                // the scope passes its panic on.
                Err(_) => panic!("an ingest reader stopped before reading file {i}"),
            }
        };
        self.next += 1;
        self.gate.consumed(self.next);
        result
    }

    /// Stop taking jobs and hand what was read but not consumed to `discard`.
    fn stop(self, mut discard: impl FnMut(T)) {
        self.gate.close();
        for r in self.arrived.into_values() {
            discard(r);
        }
        // The workers finish the file in hand, then stop; their senders close the channel.
        for (_, r) in self.results.iter() {
            discard(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_in_job_order_whatever_order_they_finish_in() {
        let jobs: Vec<u64> = (0..40).collect();
        // Early jobs take longest, so later ones finish first.
        let read = |j: &u64| {
            std::thread::sleep(std::time::Duration::from_millis(40 - j));
            *j * 10
        };
        let got = with_read_ahead(
            &jobs,
            4,
            read,
            |_| {},
            |ahead| (0..jobs.len()).map(|_| ahead.next()).collect::<Vec<_>>(),
        );
        assert_eq!(got, jobs.iter().map(|j| j * 10).collect::<Vec<_>>());
    }

    #[test]
    fn readers_stay_within_the_window_and_leftovers_are_discarded() {
        let jobs: Vec<usize> = (0..100).collect();
        let started = AtomicUsize::new(0);
        let mut discarded = Vec::new();
        let consumed = with_read_ahead(
            &jobs,
            2,
            |j: &usize| {
                started.fetch_add(1, Ordering::SeqCst);
                *j
            },
            |r| discarded.push(r),
            |ahead| {
                let first = ahead.next();
                // Give the workers time to run as far ahead as they may.
                std::thread::sleep(std::time::Duration::from_millis(100));
                first
            },
        );
        assert_eq!(consumed, 0);
        let started = started.load(Ordering::SeqCst);
        // One consumed plus at most a window (2 × 2 threads) ahead of it.
        assert!(started <= 5, "{started} files read for one consumed");
        discarded.sort();
        assert_eq!(discarded, (1..started).collect::<Vec<_>>());
    }
}
