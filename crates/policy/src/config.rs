//! `[access]` of `hedui.toml`: which role sees which dataset, how, and the limits of a query.
//! Deny by default: a dataset no policy grants to any of a caller's roles does not exist for
//! that caller.

use std::time::Duration;

use hedui_auth::Role;
use serde::Deserialize;

/// Which rows of a dataset a grant shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowScope {
    /// Only the rows of the caller's region; a token without a region claim gets nothing.
    Region,
    /// All rows, narrowed to the caller's region when the token names one.
    All,
}

/// When personal columns (IDs, names, addresses) are shown in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmask {
    /// Always masked: IDs as `420502********1234`, names as `张*`, other personal columns empty;
    /// ID keys are replaced by pseudonyms that still join across datasets.
    Never,
    /// In clear when the caller states a purpose (a case number or an authorisation reference).
    WithPurpose,
    Always,
}

/// One `[[access.policy]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// A name for the audit log (default: the roles and datasets).
    #[serde(default)]
    pub name: Option<String>,
    pub roles: Vec<Role>,
    /// Dataset names, or `"*"` for every canonical dataset except the quarantine.
    pub datasets: Vec<String>,
    pub rows: RowScope,
    pub unmask: Unmask,
    /// Columns never shown to these roles (returned empty).
    #[serde(default)]
    pub hide: Vec<String>,
    /// Only aggregated results, with small cells suppressed.
    #[serde(default)]
    pub aggregate_only: bool,
}

impl PolicyRule {
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{}:{}",
                self.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                self.datasets.join("+")
            )
        })
    }
}

/// The limits of one query, whoever runs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Wall time, e.g. `30s`.
    pub timeout: String,
    /// Rows returned; a result is cut there and says so.
    pub max_rows: u64,
    /// Memory one query may hold before it spills or fails, e.g. `1GiB`.
    pub memory: String,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: "60s".into(),
            max_rows: 100_000,
            memory: "1GiB".into(),
        }
    }
}

impl QueryLimits {
    pub fn timeout(&self) -> Result<Duration, String> {
        hedui_auth::parse_duration(&self.timeout)
            .map_err(|m| format!("[access.limits] timeout: {m}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Counts below this are shown as `<N` to aggregate-only roles.
    pub small_cell_threshold: u64,
    pub limits: QueryLimits,
    /// The policies. Empty means the built-in defaults ([`default_policies`]); a city that
    /// writes any policy writes them all.
    #[serde(rename = "policy")]
    pub policies: Vec<PolicyRule>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            small_cell_threshold: 5,
            limits: QueryLimits::default(),
            policies: Vec::new(),
        }
    }
}

impl AccessConfig {
    pub fn effective_policies(&self) -> Vec<PolicyRule> {
        if self.policies.is_empty() {
            default_policies()
        } else {
            self.policies.clone()
        }
    }
}

/// The datasets a social-security reviewer works with.
const SOCIAL_SECURITY: &[&str] = &[
    "persons",
    "pension_payments",
    "unemployment_benefits",
    "contributions",
    "medical_enrolments",
    "rural_coop_enrolments",
    "cremations",
    "death_certificates",
    "incarcerations",
];

/// What a dibao reviewer needs to verify a household's income and assets.
const DIBAO: &[&str] = &[
    "persons",
    "dibao_households",
    "dibao_members",
    "dibao_payments",
    "vehicles",
    "properties",
    "businesses",
    "tax_income",
    "provident_fund",
    "pension_payments",
    "unemployment_benefits",
    "cremations",
    "death_certificates",
];

/// The embedded defaults (README, "Policies"): admins see everything (in clear with a purpose),
/// analysts everything masked, reviewers their region's data of their field (in clear with a
/// purpose), statisticians aggregates only, auditors only the audit log, connectors nothing.
pub fn default_policies() -> Vec<PolicyRule> {
    let rule =
        |name: &str, roles: &[Role], datasets: &[&str], rows, unmask, aggregate_only| PolicyRule {
            name: Some(name.into()),
            roles: roles.to_vec(),
            datasets: datasets.iter().map(|s| s.to_string()).collect(),
            rows,
            unmask,
            hide: Vec::new(),
            aggregate_only,
        };
    vec![
        rule(
            "admin-all",
            &[Role::Admin],
            &["*", "quarantine"],
            RowScope::All,
            Unmask::WithPurpose,
            false,
        ),
        rule(
            "analyst-masked",
            &[Role::Analyst],
            &["*"],
            RowScope::All,
            Unmask::Never,
            false,
        ),
        rule(
            "reviewer-region",
            &[Role::Reviewer],
            SOCIAL_SECURITY,
            RowScope::Region,
            Unmask::WithPurpose,
            false,
        ),
        rule(
            "dibao-reviewer-region",
            &[Role::DibaoReviewer],
            DIBAO,
            RowScope::Region,
            Unmask::WithPurpose,
            false,
        ),
        rule(
            "statistician-aggregates",
            &[Role::Statistician],
            &["*"],
            RowScope::All,
            Unmask::Never,
            true,
        ),
        rule(
            "auditor-log",
            &[Role::Auditor],
            &["audit_log"],
            RowScope::All,
            Unmask::Always,
            false,
        ),
    ]
}
