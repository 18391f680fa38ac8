use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    Http,
    Pgwire,
    Cli,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted and about to be answered: written (and on disk) before the first byte of the
    /// answer leaves; the request's final entry (same request id) follows when it is done.
    Started,
    /// Done and answered.
    Ok,
    /// Not allowed: authentication, policy, purpose or a read-only violation.
    Refused,
    /// Allowed but failed (a wrong query, a time or memory limit).
    Error,
}

/// What happened, as the caller of [`crate::AuditLog::record`] knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The token's subject, or `anonymous` when no valid token was given.
    pub actor: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// The client's address (or `local` for the command line).
    pub client: String,
    pub interface: Interface,
    /// `sql`, `auth`, or the API call (`POST /api/v1/sql`).
    pub action: String,
    /// The SQL text, when there was one.
    #[serde(default)]
    pub statement: Option<String>,
    /// Datasets and columns the query read (after policies: what was actually touched).
    #[serde(default)]
    pub datasets: Vec<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    /// The policies applied (row filters, masks, suppression).
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    pub outcome: Outcome,
    /// Why it was refused or failed.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub rows: Option<u64>,
    pub duration_ms: u64,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl AuditEvent {
    /// An event with only who and how filled in; the rest is added as the request proceeds.
    pub fn new(interface: Interface, client: impl Into<String>, action: impl Into<String>) -> Self {
        AuditEvent {
            actor: "anonymous".into(),
            roles: Vec::new(),
            region: None,
            client: client.into(),
            interface,
            action: action.into(),
            statement: None,
            datasets: Vec::new(),
            columns: Vec::new(),
            policies: Vec::new(),
            purpose: None,
            outcome: Outcome::Ok,
            reason: None,
            rows: None,
            duration_ms: 0,
            request_id: None,
        }
    }
}

/// An entry as stored: the event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub ts: chrono::DateTime<chrono::Utc>,
    pub prev: String,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Absent while the line is being hashed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Entry {
    /// The line for this entry: its JSON without the hash, hashed with the previous hash, and
    /// the hash appended as the last field.
    pub(crate) fn seal(mut self) -> (Entry, String) {
        self.hash.clear();
        let body = serde_json::to_string(&self).expect("an entry serialises");
        let hash = crate::chain_hash(&self.prev, body.as_bytes());
        let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        self.hash = hash;
        (self, line)
    }
}
