//! Recording a query in the audit log once its result has been delivered (or abandoned): the
//! row count is known only then.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use hedui_audit::{AuditEvent, AuditLog, Outcome};

/// Dropped when the response stream ends, however it ends; writes the entry then.
pub struct AuditOnEnd {
    pub audit: AuditLog,
    pub event: Option<AuditEvent>,
    pub started: Instant,
    pub rows: Arc<AtomicU64>,
    pub truncated: Arc<AtomicBool>,
    pub failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl Drop for AuditOnEnd {
    fn drop(&mut self) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        event.rows = Some(self.rows.load(Ordering::Relaxed));
        event.duration_ms = self.started.elapsed().as_millis() as u64;
        if let Some(why) = self.failed.lock().ok().and_then(|mut f| f.take()) {
            event.outcome = Outcome::Error;
            event.reason = Some(why);
        } else if self.truncated.load(Ordering::Relaxed) {
            event.reason = Some("result cut at the row limit".into());
        }
        let audit = self.audit.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = audit.record(event).await {
                        tracing::error!(error = %e, "audit entry lost");
                    }
                });
            }
            Err(_) => {
                if let Err(e) = audit.record_blocking(event) {
                    tracing::error!(error = %e, "audit entry lost");
                }
            }
        }
    }
}
