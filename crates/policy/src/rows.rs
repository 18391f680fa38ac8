//! Policy sessions as row sources for checks made on a caller's behalf.

use arrow::array::RecordBatch;

use crate::session::Session;
use crate::{Error, Result};

/// Checks on behalf of a caller (a person check, a household verification) read their rows
/// through the caller's session: the same views, scopes, masks and limits as the caller's SQL.
#[async_trait::async_trait]
impl hedui_engine::RowSource for Session {
    async fn rows(&self, sql: &str) -> hedui_engine::Result<Vec<RecordBatch>> {
        check_rows(self.run(sql).await.map(|(_, b, _, cut)| (b, cut)))
    }
}

/// A rule run for one person on a caller's behalf: the rule's SQL over the caller's views.
pub struct RuleRows<'a>(pub &'a Session);

#[async_trait::async_trait]
impl hedui_engine::RowSource for RuleRows<'_> {
    async fn rows(&self, sql: &str) -> hedui_engine::Result<Vec<RecordBatch>> {
        check_rows(self.0.run_system(sql).await)
    }
}

fn check_rows(result: Result<(Vec<RecordBatch>, bool)>) -> hedui_engine::Result<Vec<RecordBatch>> {
    match result {
        Ok((_, true)) => Err(hedui_engine::Error::Denied(
            "the check read more rows than a query may return".into(),
        )),
        Ok((batches, false)) => Ok(batches),
        Err(Error::Refused(m) | Error::Query(m) | Error::Limit(m)) => {
            Err(hedui_engine::Error::Denied(m))
        }
        Err(e) => {
            tracing::error!(error = %e, "a check's read through the caller's session failed");
            Err(hedui_engine::Error::Query(
                "a check could not read its rows; the server log has details".into(),
            ))
        }
    }
}
