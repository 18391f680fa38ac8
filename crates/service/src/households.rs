//! Household verification: with the applicant's signed authorisation, every member's registry
//! entry, incomes and assets, read through the reviewer's own policy session (its region scope,
//! its grants), judged by the city's dibao tests, and kept as a report that can be printed
//! again.

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use hedui_auth::Identity;
use hedui_cases::{Scope, Verification};
use hedui_engine::RowSource;
use hedui_model::ResidentId;

use crate::{Error, Result, Service, check_error};

/// More members than any household; a larger list is a bulk lookup, not a verification.
pub const MAX_MEMBERS: usize = 20;

/// A verification asked for.
pub struct VerifyRequest<'a> {
    /// The members' resident ID numbers, the applicant first.
    pub members: &'a [String],
    /// The reference of the applicant's signed authorisation (授权书编号).
    pub authorisation: &'a str,
    /// Ties the report's number to the request.
    pub request_id: &'a str,
}

/// A verification done and kept.
pub struct Verified {
    pub id: String,
    pub authorisation: String,
    pub members: Vec<String>,
    pub verdict: String,
    /// The datasets read.
    pub datasets: Vec<String>,
    /// Income and asset rows shown.
    pub rows: u64,
    pub report: serde_json::Value,
}

impl Service {
    /// Verify a household for `identity`.
    pub async fn verify_household(
        &self,
        identity: &Identity,
        req: VerifyRequest<'_>,
    ) -> Result<Verified> {
        let authorisation = req.authorisation.trim().to_string();
        if authorisation.is_empty() {
            return Err(Error::Refused(
                "a household verification needs the reference of the applicant's signed authorisation (授权书编号)".into(),
            ));
        }
        let mut members: Vec<ResidentId> = Vec::new();
        for raw in req.members {
            match ResidentId::parse(raw) {
                Ok(id) if !members.contains(&id) => members.push(id),
                Ok(_) => {}
                Err(e) => return Err(Error::Invalid(format!("`{raw}` is not a resident ID: {e}"))),
            }
        }
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(Error::Invalid(format!(
                "a household has 1 to {MAX_MEMBERS} members"
            )));
        }
        // The authorisation is the purpose every read states.
        let session = self
            .policy
            .session(identity, Some(&authorisation))
            .await
            .map_err(|e| match e {
                hedui_policy::Error::Refused(m) => Error::Refused(format!(
                    "the authorisation reference is not usable as a purpose: {m}"
                )),
                other => other.into(),
            })?;
        // Who may verify is what their policy grants: every source, in clear with the
        // applicant's authorisation.
        let grants = session.grants();
        let missing: Vec<&str> = hedui_engine::household::source_datasets()
            .filter(|d| {
                grants
                    .get(*d)
                    .is_none_or(|g| g.masked(true) || g.aggregate_only)
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Refused(format!(
                "household verification reads {} in clear, which the policy of {} does not grant",
                missing.join(", "),
                identity.roles_text()
            )));
        }
        // Every member must be in the caller's registry view (their region): a member registered
        // elsewhere would show another region's incomes and assets, and the caller's session
        // would not show them anyway. Callers without a region see the whole registry; a member
        // it does not know is noted as unregistered.
        if grants.get("persons").is_some_and(|g| g.region.is_some()) {
            let keys: Vec<String> = members.iter().map(|m| m.key().to_string()).collect();
            let batches = session
                .rows(&format!(
                    "SELECT DISTINCT person_id_key FROM persons WHERE person_id_key IN ({})",
                    keys.join(", ")
                ))
                .await
                .map_err(|e| check_error("the registry lookup", e))?;
            let mut seen = std::collections::HashSet::new();
            for b in &batches {
                let c = arrow::compute::cast(b.column(0), &DataType::Int64)
                    .map_err(|e| Error::internal("the registry lookup", e))?;
                seen.extend(c.as_primitive::<Int64Type>().iter().flatten());
            }
            let outside = members.iter().filter(|m| !seen.contains(&m.key())).count();
            if outside > 0 {
                return Err(Error::Refused(format!(
                    "{outside} of the members are not in the household registry of your region {}; the reviewer of their region verifies them",
                    identity.region.as_deref().unwrap_or_default()
                )));
            }
        }
        // What counts is R5's definition (the rule defining `member_income` and `member_assets`).
        let definition = self
            .rules
            .iter()
            .find(|r| {
                ["member_income", "member_assets"]
                    .iter()
                    .all(|v| r.views.iter().any(|x| x.name == *v))
            })
            .ok_or_else(|| {
                Error::Refused(
                    "the city's rules define no member_income and member_assets (R5): household verification has nothing to test against".into(),
                )
            })?;
        let engine = self.policy.engine();
        let report = engine
            .verify_household(
                &members,
                &self.household_tests,
                definition,
                &self.rule_params,
                &session,
                &hedui_policy::RuleRows(&session),
            )
            .await
            .map_err(|e| check_error("the verification", e))?;
        let ids: Vec<String> = members.iter().map(|m| m.as_str().to_string()).collect();
        let at = hedui_cases::timestamp(chrono::Utc::now());
        let id = format!(
            "HV-{}-{}",
            &at[..10].replace('-', ""),
            &hedui_cases::sha256_hex(
                format!(
                    "{at}\0{authorisation}\0{}\0{}",
                    ids.join(","),
                    req.request_id
                )
                .as_bytes()
            )[..8]
        );
        let mut report_json = serde_json::to_value(&report).expect("report serialises");
        report_json["id"] = id.clone().into();
        report_json["authorisation"] = authorisation.clone().into();
        report_json["reviewer"] = identity.subject.clone().into();
        report_json["at"] = at.clone().into();
        let kept = Verification {
            id: id.clone(),
            at,
            reviewer: identity.subject.clone(),
            authorisation: authorisation.clone(),
            region: identity.region.clone(),
            members: ids.clone(),
            verdict: report.verdict.to_string(),
            report: report_json.clone(),
        };
        self.cases.save_verification(&kept).await?;
        Ok(Verified {
            id,
            authorisation,
            members: ids,
            verdict: report.verdict.to_string(),
            datasets: report.sources.iter().map(|s| s.dataset.clone()).collect(),
            rows: report
                .members
                .iter()
                .map(|m| (m.income.len() + m.assets.len()) as u64)
                .sum(),
            report: report_json,
        })
    }

    /// A kept report, for whoever may verify households, and for those who read every case
    /// without acting on them (auditors), in their region.
    pub async fn verification(&self, identity: &Identity, id: &str) -> Result<Verification> {
        let may = self.may_verify(identity)
            || self.case_access(identity) == Some(hedui_policy::CaseAccess::Read);
        if !may {
            return Err(Error::Refused(
                "household verification reports are for dibao reviewers and auditors".into(),
            ));
        }
        let scope = Scope {
            rules: None,
            region: identity.region.clone(),
        };
        Ok(self.cases.verification(&scope, id).await?)
    }

    /// Whether the caller's policy grants every source of a verification in clear.
    pub fn may_verify(&self, identity: &Identity) -> bool {
        let grants = self.policy.grants(identity);
        hedui_engine::household::source_datasets().all(|d| {
            grants
                .get(d)
                .is_some_and(|g| !g.masked(true) && !g.aggregate_only)
        })
    }
}
