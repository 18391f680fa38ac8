//! The application services: what a caller asks of the hub beyond SQL — a person check, a
//! household verification, the cases they may read or act on, the dashboard's figures — with
//! the rules of who may do it. Every read on a caller's behalf goes through that caller's
//! policy session (its views, region scopes, masks and limits), never the raw engine; the HTTP,
//! Postgres and command-line edges only translate requests and answers.

pub mod cases;
pub mod checks;
pub mod households;
pub mod persons;
pub mod precomputed;
pub mod sources;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hedui_engine::household::HouseholdTests;
use hedui_engine::rules::RuleSet;
use hedui_policy::{CaseAccessRule, PolicyEngine};

/// Why a service call gave no answer. The messages are for the caller and carry no data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not for this caller (their role, region, or a missing purpose or authorisation).
    #[error("{0}")]
    Refused(String),
    /// Nothing the caller may see answers the request.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Cases(#[from] hedui_cases::Error),
    /// A rule or the lake failed during the city's check (for the operator: in full).
    #[error(transparent)]
    Engine(#[from] hedui_engine::Error),
    #[error(transparent)]
    Lake(#[from] hedui_lake::Error),
    #[error("run {run} was not reproduced: {why}")]
    NotReproduced { run: String, why: String },
    /// Failed inside; the detail is in the server log.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A fixed message for the caller, after logging `e`.
    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Error {
        tracing::error!(error = %e, "{what} failed");
        Error::Internal(format!("{what} failed; the server log has details"))
    }
}

impl From<hedui_policy::Error> for Error {
    fn from(e: hedui_policy::Error) -> Self {
        match e {
            hedui_policy::Error::Refused(m) => Error::Refused(m),
            hedui_policy::Error::Query(m) | hedui_policy::Error::Limit(m) => Error::Invalid(m),
            other => Error::internal("the policy session", other),
        }
    }
}

/// A check's error: the caller's session refusing a read is a refusal, not a failure.
fn check_error(what: &str, e: hedui_engine::Error) -> Error {
    match e {
        hedui_engine::Error::Denied(m) => Error::Refused(m),
        other => Error::internal(what, other),
    }
}

/// Everything the services share.
pub struct Service {
    pub policy: Arc<PolicyEngine>,
    /// The city's rules and parameter values, for checks at application time.
    pub rules: Arc<RuleSet>,
    pub rule_params: BTreeMap<String, String>,
    /// Cases, their workflow, and kept household verifications.
    pub cases: Arc<hedui_cases::CaseStore>,
    /// The city's dibao tests for household verification (R5's parameters).
    pub household_tests: HouseholdTests,
    /// Person-rule hits and registry regions of the lake version served, once computed.
    pub person_checks: precomputed::PersonChecks,
    /// Who may read and act on cases (`[[access.cases]]`).
    pub case_access: Vec<CaseAccessRule>,
    /// The datasets each rule reads, once planned: a caller sees a rule's hits only if granted
    /// them all.
    rule_datasets: tokio::sync::OnceCell<BTreeMap<String, BTreeSet<String>>>,
    /// The lake version the case store is known to agree with (continuous verification); the
    /// lock also lets one verification run at a time.
    verified: tokio::sync::Mutex<Option<u64>>,
    /// Whether hits are verified again after every commit.
    pub continuous: bool,
}

impl Service {
    pub fn new(
        policy: Arc<PolicyEngine>,
        rules: Arc<RuleSet>,
        rule_params: BTreeMap<String, String>,
        cases: Arc<hedui_cases::CaseStore>,
        household_tests: HouseholdTests,
        person_checks: precomputed::PersonChecks,
        case_access: Vec<CaseAccessRule>,
    ) -> Service {
        Service {
            policy,
            rules,
            rule_params,
            cases,
            household_tests,
            person_checks,
            case_access,
            rule_datasets: tokio::sync::OnceCell::new(),
            verified: tokio::sync::Mutex::new(None),
            continuous: true,
        }
    }

    /// Continuous verification: if batches were committed since the case store last agreed with
    /// the lake, run the rules again for what they changed and record the run (new cases,
    /// updated ones, hits gone). A city whose rules have never run is left to its first
    /// `hedui check`, unless its lake was empty when serving began. The summary of the run, if
    /// one was made.
    pub async fn verify_changes(&self) -> Result<Option<String>> {
        if !self.continuous {
            return Ok(None);
        }
        let mut verified = self.verified.lock().await;
        let engine = self.policy.engine();
        let now = engine.snapshot().version();
        let recorded = self
            .cases
            .verified_version(&checks::rule_versions(&self.rules))
            .await?;
        let baseline = match (recorded, *verified) {
            (Some(r), Some(v)) => Some(r.max(v)),
            (Some(r), None) => Some(r),
            (None, Some(v)) => Some(v),
            // Never checked: only a lake that starts empty is verified from nothing.
            (None, None) if now == 0 => Some(0),
            (None, None) => None,
        };
        let Some(baseline) = baseline else {
            return Ok(None);
        };
        if baseline >= now {
            *verified = Some(baseline);
            return Ok(None);
        }
        let before = hedui_lake::Snapshot::at(engine.snapshot().root(), baseline)?;
        let done = checks::record_changes(
            &engine,
            &before,
            &self.rules,
            &self.rule_params,
            &self.cases,
        )
        .await?;
        *verified = Some(now);
        Ok(done.map(|d| d.summary))
    }

    /// The datasets each rule reads.
    pub async fn rule_datasets(&self) -> Result<&BTreeMap<String, BTreeSet<String>>> {
        self.rule_datasets
            .get_or_try_init(|| async {
                let engine = self.policy.engine();
                let mut out = BTreeMap::new();
                for rule in self.rules.iter() {
                    out.insert(
                        rule.id.clone(),
                        engine.rule_datasets(rule, &self.rule_params).await?,
                    );
                }
                Ok(out)
            })
            .await
            .map_err(|e: hedui_engine::Error| Error::internal("planning the rules", e))
    }

    /// Precompute the person checks of the version now served (no-op when done or underway).
    pub async fn refresh_person_checks(&self) {
        let engine = self.policy.engine();
        self.person_checks
            .refresh(&engine, &self.rules, &self.rule_params)
            .await;
    }
}
