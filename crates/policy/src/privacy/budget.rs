//! Each identity's privacy budget: the ε its aggregate answers spent, kept in an append-only
//! ledger beside the audit log (one JSON line per answer, fsynced before the answer is given,
//! so a crash can only over-count). The ledger is read again at every spend, so a command-line
//! run and the server share one budget.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spend {
    at: DateTime<Utc>,
    subject: String,
    epsilon: f64,
}

/// What one answer cost and what is left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    pub epsilon: f64,
    /// Spent within the period, this answer included.
    pub total: f64,
    pub budget: f64,
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "differential privacy: ε={} spent ({:.2} of {} in the period)",
            self.epsilon, self.total, self.budget
        )
    }
}

pub struct Budget {
    /// `None`: kept in memory only (a lake without an audit log).
    path: Option<PathBuf>,
    limit: f64,
    period: Duration,
    /// The period as configured (`30d`), for messages.
    period_text: String,
    /// Serialises check-then-append within the process; the memory ledger when `path` is None.
    memory: Mutex<Vec<Spend>>,
}

impl Budget {
    pub fn new(path: Option<PathBuf>, limit: f64, period: Duration, period_text: &str) -> Budget {
        Budget {
            path,
            limit,
            period,
            period_text: period_text.to_string(),
            memory: Mutex::new(Vec::new()),
        }
    }

    fn read(&self) -> Result<Vec<Spend>> {
        let Some(path) = &self.path else {
            return Ok(Vec::new());
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ledger_error(e)),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(ledger_error)?;
            match serde_json::from_str::<Spend>(&line) {
                Ok(s) => out.push(s),
                // Only the last line can be torn (a crash while appending): its answer was
                // never given. Anything else means the ledger was edited: fail closed.
                Err(_) if line.trim().is_empty() => {}
                Err(e) => {
                    tracing::error!(error = %e, ledger = %path.display(), "privacy budget ledger unreadable");
                    return Err(Error::Refused(
                        "the privacy budget ledger cannot be read, so no aggregate answer can be given; the server log has details".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// ε spent by `subject` within the period.
    pub fn spent(&self, subject: &str) -> Result<f64> {
        let memory = self.memory.lock().expect("budget lock");
        Ok(self.total(&memory, subject)?.0)
    }

    fn total(&self, memory: &[Spend], subject: &str) -> Result<(f64, Vec<Spend>)> {
        let since = Utc::now() - chrono::Duration::from_std(self.period).unwrap_or_default();
        let ledger = self.read()?;
        let total = ledger
            .iter()
            .chain(memory)
            .filter(|s| s.subject == subject && s.at > since)
            .map(|s| s.epsilon)
            .sum();
        Ok((total, ledger))
    }

    /// Spend `epsilon` for `subject`, or refuse if the budget would be exceeded. The spend is
    /// on disk when this returns.
    pub fn spend(&self, subject: &str, epsilon: f64) -> Result<Spent> {
        let mut memory = self.memory.lock().expect("budget lock");
        let (before, _) = self.total(&memory, subject)?;
        if before + epsilon > self.limit + 1e-9 {
            return Err(Error::Refused(format!(
                "your privacy budget is spent: ε {before:.2} of {} used in the last {}; each aggregate answer costs {epsilon}",
                self.limit, self.period_text
            )));
        }
        let spend = Spend {
            at: Utc::now(),
            subject: subject.to_string(),
            epsilon,
        };
        match &self.path {
            Some(path) => {
                let mut line = serde_json::to_string(&spend).map_err(ledger_error)?;
                line.push('\n');
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(ledger_error)?;
                f.write_all(line.as_bytes()).map_err(ledger_error)?;
                f.sync_data().map_err(ledger_error)?;
            }
            None => memory.push(spend),
        }
        Ok(Spent {
            epsilon,
            total: before + epsilon,
            budget: self.limit,
        })
    }
}

/// The ledger cannot be written: no answer (the spend must be durable before it is given).
fn ledger_error(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "privacy budget ledger not written");
    Error::Refused(
        "the privacy budget could not be recorded, so no aggregate answer is given; the server log has details".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_per_subject_and_kept_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.jsonl");
        let budget = Budget::new(Some(path.clone()), 2.5, Duration::from_secs(86_400), "1d");
        assert_eq!(budget.spend("ana", 1.0).unwrap().total, 1.0);
        assert_eq!(budget.spend("ana", 1.0).unwrap().total, 2.0);
        let refused = budget.spend("ana", 1.0).unwrap_err();
        assert!(refused.to_string().contains("budget is spent"), "{refused}");
        // Another subject has its own budget; a new process reads the same ledger.
        assert_eq!(budget.spend("bo", 1.0).unwrap().total, 1.0);
        let again = Budget::new(Some(path.clone()), 2.5, Duration::from_secs(86_400), "1d");
        assert_eq!(again.spent("ana").unwrap(), 2.0);
        assert!(again.spend("ana", 1.0).is_err());
        // An edited ledger fails closed.
        std::fs::write(&path, "not json\n").unwrap();
        assert!(again.spend("bo", 0.1).is_err());
    }
}
