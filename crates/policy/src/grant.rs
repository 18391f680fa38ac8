//! From a caller's roles and region to what each dataset shows them.

use std::collections::{BTreeMap, BTreeSet};

use hedui_auth::Identity;
use hedui_model::Catalog;

use crate::config::{PolicyRule, RowScope, Unmask};

/// The audit log's table, readable by auditors only (through a policy naming it).
pub const AUDIT_TABLE: &str = "audit_log";

/// What one dataset shows one caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    pub dataset: String,
    /// Only rows of this administrative-code prefix.
    pub region: Option<String>,
    pub unmask: Unmask,
    pub hide: BTreeSet<String>,
    pub aggregate_only: bool,
    /// The policy this grant comes from, for the audit log.
    pub policy: String,
}

impl Grant {
    /// Whether personal columns are masked for a caller with (or without) a stated purpose.
    pub fn masked(&self, purpose: bool) -> bool {
        match self.unmask {
            Unmask::Never => true,
            Unmask::WithPurpose => !purpose,
            Unmask::Always => false,
        }
    }

    /// How permissive the grant is, to choose among several roles' policies.
    fn rank(&self) -> (Unmask, bool, bool, usize) {
        (
            self.unmask,
            !self.aggregate_only,
            self.region.is_none(),
            usize::MAX - self.hide.len(),
        )
    }
}

fn matches(rule: &PolicyRule, dataset: &str, system: bool) -> bool {
    rule.datasets
        .iter()
        .any(|d| d == dataset || (d == "*" && !system && dataset != AUDIT_TABLE))
}

/// Every dataset the identity may read, with how. A dataset not in the answer is denied.
pub fn resolve(identity: &Identity, policies: &[PolicyRule]) -> BTreeMap<String, Grant> {
    let catalog = Catalog::builtin();
    let mut names: Vec<(String, bool, bool)> = catalog
        .iter()
        .map(|d| (d.name.clone(), d.system, d.region.is_some()))
        .collect();
    names.push((AUDIT_TABLE.to_string(), true, false));
    let mut grants = BTreeMap::new();
    for (dataset, system, has_region) in names {
        let mut best: Option<Grant> = None;
        for rule in policies
            .iter()
            .filter(|r| r.roles.iter().any(|role| identity.has(*role)))
            .filter(|r| matches(r, &dataset, system))
        {
            let region = match (rule.rows, &identity.region) {
                // A region policy needs a region claim: without one, nothing.
                (RowScope::Region, None) => continue,
                (_, Some(r)) => Some(r.clone()),
                (RowScope::All, None) => None,
            };
            // A region limit on a dataset that cannot say whose region a row is: nothing.
            if region.is_some() && !has_region {
                continue;
            }
            let grant = Grant {
                dataset: dataset.clone(),
                region,
                unmask: rule.unmask,
                hide: rule.hide.iter().cloned().collect(),
                aggregate_only: rule.aggregate_only,
                policy: rule.label(),
            };
            if best.as_ref().is_none_or(|b| grant.rank() > b.rank()) {
                best = Some(grant);
            }
        }
        if let Some(g) = best {
            grants.insert(dataset, g);
        }
    }
    grants
}
