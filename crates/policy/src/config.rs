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
    /// A longer statement is refused before it is parsed.
    pub max_sql_bytes: usize,
    /// Expressions nested deeper are refused (they would exhaust a stack while planning).
    pub max_expression_depth: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: "60s".into(),
            max_rows: 100_000,
            memory: "1GiB".into(),
            max_sql_bytes: 256 * 1024,
            max_expression_depth: 128,
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
    /// Noise and budget of aggregate-only answers.
    pub privacy: PrivacyConfig,
    /// Who may read and act on cases. Empty means the built-in defaults
    /// ([`default_case_access`]).
    #[serde(rename = "cases")]
    pub case_access: Vec<CaseAccessRule>,
}

/// `[access.privacy]`: differential privacy for aggregate-only roles. Every answer such a role
/// gets costs `epsilon_per_query` of its identity's budget; each figure in it carries Laplace
/// noise scaled to how much one person can change it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// The privacy loss (ε) of one answer, shared among the figures it holds.
    pub epsilon_per_query: f64,
    /// The ε one identity (token subject) may spend within `period`.
    pub budget: f64,
    /// The window the budget is counted over, e.g. `30d`.
    pub period: String,
    /// Rows of one person counted in one cell (a count counts a person at most this often).
    pub rows_per_person: u32,
    /// Cells one person counts in; a person's rows beyond are left out at random.
    pub groups_per_person: u32,
    /// What one person adds to a sum in one cell is clamped to `[-sum_bound, sum_bound]`.
    pub sum_bound: f64,
    /// The chance that a group of one person is shown at all: a grouped answer shows a group
    /// only if its noisy person count clears the threshold by the noise's `1 - delta` quantile.
    pub delta: f64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            epsilon_per_query: 1.0,
            budget: 20.0,
            period: "30d".into(),
            rows_per_person: 1,
            groups_per_person: 4,
            sum_bound: 10_000.0,
            delta: 1e-6,
        }
    }
}

impl PrivacyConfig {
    pub fn validate(&self) -> Result<Duration, String> {
        let positive = |v: f64, what: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("[access.privacy] {what} must be a positive number"))
            }
        };
        positive(self.epsilon_per_query, "epsilon_per_query")?;
        positive(self.budget, "budget")?;
        positive(self.sum_bound, "sum_bound")?;
        if !(self.delta > 0.0 && self.delta < 0.5) {
            return Err("[access.privacy] delta must be between 0 and 0.5".into());
        }
        if self.rows_per_person == 0 || self.groups_per_person == 0 {
            return Err(
                "[access.privacy] rows_per_person and groups_per_person must be at least 1".into(),
            );
        }
        hedui_auth::parse_duration(&self.period)
            .map_err(|m| format!("[access.privacy] period: {m}"))
    }
}

/// What a case rule lets its roles do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseAccess {
    /// The dashboard's figures only, with the same noise and budget as aggregate SQL.
    Figures,
    /// Cases with their evidence and history, read-only.
    Read,
    /// Read, assign, record steps and outcomes.
    Act,
}

/// Which cases a case rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseRules {
    /// Every rule's cases.
    All,
    /// The cases of the rules whose `reviewer_role` is one of the caller's roles.
    ReviewerRole,
}

/// One `[[access.cases]]` entry. Cases are always narrowed to the token's region when it names
/// one; and a token whose policies grant no dataset (a reviewer's token without its region) gets
/// no case whatever this says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseAccessRule {
    pub roles: Vec<Role>,
    pub access: CaseAccess,
    pub rules: CaseRules,
}

/// The embedded defaults: administrators and reviewers act (reviewers on their rules' cases),
/// auditors read every case, analysts and statisticians see the figures.
pub fn default_case_access() -> Vec<CaseAccessRule> {
    let rule = |roles: &[Role], access, rules| CaseAccessRule {
        roles: roles.to_vec(),
        access,
        rules,
    };
    vec![
        rule(&[Role::Admin], CaseAccess::Act, CaseRules::All),
        rule(
            &[Role::Reviewer, Role::DibaoReviewer],
            CaseAccess::Act,
            CaseRules::ReviewerRole,
        ),
        rule(&[Role::Auditor], CaseAccess::Read, CaseRules::All),
        rule(
            &[Role::Analyst, Role::Statistician],
            CaseAccess::Figures,
            CaseRules::All,
        ),
    ]
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            small_cell_threshold: 5,
            limits: QueryLimits::default(),
            policies: Vec::new(),
            privacy: PrivacyConfig::default(),
            case_access: Vec::new(),
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

    pub fn effective_case_access(&self) -> Vec<CaseAccessRule> {
        if self.case_access.is_empty() {
            default_case_access()
        } else {
            self.case_access.clone()
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
