//! The person check at application time: every person rule the caller's policy lets them see
//! the result of, for one person of their region. Answered from the precomputed index of the
//! lake version served when it is ready; otherwise each rule runs for the one person through the
//! caller's own policy session.

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use hedui_auth::Identity;
use hedui_engine::check::Hit;
use hedui_engine::rules::{RuleDef, SubjectKind};
use hedui_engine::{Engine, RowSource};
use hedui_model::ResidentId;

use crate::{Error, Result, Service, check_error};

/// One rule's answer for the person.
pub struct RuleResult<'a> {
    pub rule: &'a RuleDef,
    pub hits: Vec<Hit>,
}

pub struct PersonCheck<'a> {
    pub person: ResidentId,
    pub purpose: String,
    pub lake_version: u64,
    pub precomputed: bool,
    pub rules: Vec<RuleResult<'a>>,
}

impl Service {
    pub async fn check_person(
        &self,
        identity: &Identity,
        id: &str,
        purpose: Option<&str>,
    ) -> Result<PersonCheck<'_>> {
        let person = ResidentId::parse(id)
            .map_err(|e| Error::Invalid(format!("`{id}` is not a resident ID: {e}")))?;
        let Some(purpose) = purpose.filter(|p| !p.trim().is_empty()) else {
            return Err(Error::Refused(
                "a person check needs a stated purpose: a case number or authorisation reference (x-hedui-purpose or ?purpose=)".into(),
            ));
        };
        let session = self.policy.session(identity, Some(purpose)).await?;
        // The person must be one the caller may see in clear: their grant on the registry,
        // their region.
        let registry = match session.grants().get("persons") {
            Some(g) if !g.masked(true) && !g.aggregate_only => g.clone(),
            _ => {
                return Err(Error::Refused(format!(
                    "a person check is for roles that may see the household registry in clear, not {}",
                    identity.roles_text()
                )));
            }
        };
        let engine: std::sync::Arc<Engine> = self.policy.engine();
        let index = self.person_checks.for_version(engine.snapshot().version());
        let visible = match &index {
            Some(index) => index.registry(person.key()).is_some_and(|region| {
                registry
                    .region
                    .as_deref()
                    .is_none_or(|mine| region.is_some_and(|r| r.starts_with(mine)))
            }),
            None => {
                let batches = session
                    .rows(&format!(
                        "SELECT count(*) FROM persons WHERE person_id_key = {}",
                        person.key()
                    ))
                    .await
                    .map_err(|e| check_error("the registry lookup", e))?;
                batches
                    .first()
                    .and_then(|b| arrow::compute::cast(b.column(0), &DataType::Int64).ok())
                    .is_some_and(|c| c.as_primitive::<Int64Type>().value(0) > 0)
            }
        };
        if !visible {
            return Err(Error::NotFound(
                "no such person in the household registry of your region".into(),
            ));
        }
        // Only the rules whose every dataset the caller's policy grants: a reviewer of pensions
        // does not learn of a prison term from a rule that reads the prison register unless
        // they may read it.
        let reads = self.rule_datasets().await?;
        let granted = |rule: &RuleDef| {
            reads
                .get(&rule.id)
                .is_some_and(|ds| ds.iter().all(|d| session.grants().contains_key(d)))
        };
        let mut rules = Vec::new();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.subject == SubjectKind::Person && granted(r))
        {
            let hits = match &index {
                Some(index) => index
                    .hits(person.as_str())
                    .iter()
                    .filter(|h| h.rule == rule.id)
                    .cloned()
                    .collect(),
                None => Engine::run_rule_for(
                    rule,
                    &self.rule_params,
                    person.as_str(),
                    &hedui_policy::RuleRows(&session),
                )
                .await
                .map_err(|e| check_error("a rule", e))?,
            };
            rules.push(RuleResult { rule, hits });
        }
        Ok(PersonCheck {
            person,
            purpose: session.purpose().unwrap_or(purpose).to_string(),
            lake_version: engine.snapshot().version(),
            precomputed: index.is_some(),
            rules,
        })
    }
}
