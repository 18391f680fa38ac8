//! Where callers' SQL is parsed, planned and optimised: on a pool of threads of their own with a
//! stack deep enough for the deepest statement accepted, never on the async workers that answer
//! other callers, under the query's time limit, with a panic ending that request only. Before
//! any of it the statement's size and expression depth are bounded, so no statement can
//! overflow a stack (which would abort the process, not fail the request). The threads are
//! started once: a thread with a 64 MiB stack started per request was a fifth of a point
//! query's time.

use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Query, Visit, Visitor};
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// Stack of a planning thread: the planner and optimiser recurse over the statement's tree.
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// Planning threads at once; more callers wait (within their time limit) for one.
const THREADS: usize = 8;

type Work = Box<dyn FnOnce() + Send>;

/// The planning threads of one server: [`THREADS`] of them, each running one statement at a
/// time; a permit is held from admission until the statement's work is done, so an admitted
/// statement always finds a thread free.
#[derive(Clone)]
pub struct Planner {
    permits: Arc<Semaphore>,
    jobs: Arc<Mutex<Option<mpsc::Sender<Work>>>>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner {
            permits: Arc::new(Semaphore::new(THREADS)),
            jobs: Arc::new(Mutex::new(None)),
        }
    }
}

impl Planner {
    /// Hand `work` to a planning thread, starting the threads on first use.
    fn submit(&self, work: Work) -> Result<()> {
        let mut jobs = self.jobs.lock().expect("planner lock");
        if jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Work>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..THREADS {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name("hedui-planner".into())
                    .stack_size(STACK_BYTES)
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next statement.
                            let next = rx.lock().expect("planner queue").recv();
                            match next {
                                Ok(work) => work(),
                                Err(_) => break,
                            }
                        }
                    })
                    .map_err(|e| Error::Internal(format!("cannot start a planning thread: {e}")))?;
            }
            *jobs = Some(tx);
        }
        jobs.as_ref()
            .expect("started above")
            .send(work)
            .map_err(|_| Error::Internal("the planning threads have ended".into()))
    }
}

impl Planner {
    /// Run `work` on a planning thread, within `timeout`. Work that outlives the limit is left
    /// to finish on its thread (planning cannot be interrupted), holding its permit until then,
    /// so at most [`THREADS`] statements are ever being planned.
    pub async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let limit = || {
            Error::Limit(format!(
                "the query took longer than the limit of {}s to plan and was stopped",
                timeout.as_secs()
            ))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| limit())?
            .map_err(|_| Error::Internal("the planner is closed".into()))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(work));
            drop(permit);
            let _ = tx.send(result);
        }))?;
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => Err(limit()),
            Ok(Err(_)) => Err(Error::Internal("the planning thread went away".into())),
            Ok(Ok(Ok(result))) => result,
            Ok(Ok(Err(panic))) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "planning a query panicked");
                Err(Error::Query(
                    "E_INTERNAL: the query could not be planned (the server log has details)"
                        .into(),
                ))
            }
        }
    }
}

/// Refuse a statement longer than `max_bytes`, before it is parsed.
pub fn check_size(sql: &str, max_bytes: usize) -> Result<()> {
    if sql.len() > max_bytes {
        return Err(Error::Query(format!(
            "E_TOO_LARGE: the statement is {} bytes; at most {max_bytes} are accepted ([access.limits] max_sql_bytes)",
            sql.len()
        )));
    }
    Ok(())
}

/// Counts how deep expressions and subqueries nest, stopping at the limit.
struct Depth {
    now: usize,
    max: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &SqlExpr) -> ControlFlow<()> {
        self.now += 1;
        if self.now > self.max {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &SqlExpr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.pre_visit_expr(&SqlExpr::Value(
            datafusion::sql::sqlparser::ast::Value::Null.into(),
        ))
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuse a statement whose expressions nest deeper than `max` (`1+1+…+1` of 2,000 terms is
/// 2,000 deep). Run on a planning thread: the walk itself recurses, but stops at the limit.
pub fn check_depth(statement: &Statement, max: usize) -> Result<()> {
    let mut depth = Depth { now: 0, max };
    let too_deep = match statement {
        Statement::Statement(s) => s.visit(&mut depth).is_break(),
        Statement::Explain(e) => match e.statement.as_ref() {
            Statement::Statement(s) => s.visit(&mut depth).is_break(),
            _ => false,
        },
        _ => false,
    };
    if too_deep {
        return Err(Error::Query(format!(
            "E_TOO_DEEP: the statement nests expressions more than {max} deep ([access.limits] max_expression_depth)"
        )));
    }
    Ok(())
}
