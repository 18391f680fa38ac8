//! Who may read and act on which cases — from `[[access.cases]]`, not from code — and the
//! dashboard's figures, which for roles that see figures only carry the same differential
//! privacy as their aggregate SQL.

use hedui_auth::Identity;
use hedui_cases::{Scope, Stats};
use hedui_policy::{CaseAccess, CaseRules};
use serde::Serialize;

use crate::{Error, Result, Service};

impl Service {
    /// The most a caller may do with cases, if anything. A token without the claims its
    /// role's policies need (a reviewer's region) is granted no dataset and so no case either:
    /// it never falls back to seeing every region.
    pub fn case_access(&self, identity: &Identity) -> Option<CaseAccess> {
        if self.policy.grants(identity).is_empty() {
            return None;
        }
        self.case_access
            .iter()
            .filter(|r| r.roles.iter().any(|role| identity.has(*role)))
            .map(|r| r.access)
            .max()
    }

    /// The cases a caller may see with at least `need`: the rules of every case rule of theirs
    /// that allows it, in the token's region. `None` when no rule allows it.
    pub fn case_scope(&self, identity: &Identity, need: CaseAccess) -> Option<Scope> {
        self.case_access(identity)?;
        let mut rules: Option<Vec<String>> = Some(Vec::new());
        let mut any = false;
        for r in self
            .case_access
            .iter()
            .filter(|r| r.access >= need && r.roles.iter().any(|role| identity.has(*role)))
        {
            any = true;
            match r.rules {
                CaseRules::All => rules = None,
                CaseRules::ReviewerRole => {
                    if let Some(ids) = rules.as_mut() {
                        ids.extend(
                            self.rules
                                .iter()
                                .filter(|rule| {
                                    identity
                                        .roles
                                        .iter()
                                        .any(|role| role.as_str() == rule.reviewer_role)
                                })
                                .map(|rule| rule.id.clone()),
                        );
                    }
                }
            }
        }
        any.then(|| Scope {
            rules: rules.map(|mut ids| {
                ids.sort();
                ids.dedup();
                ids
            }),
            region: identity.region.clone(),
        })
    }

    /// The dashboard's figures for a caller. Exact for those who may read cases; for those who
    /// see figures only, noisy (each person's cases bounded, Laplace noise on every figure, the
    /// budget spent) with cells of few cases suppressed.
    pub async fn case_figures(&self, identity: &Identity) -> Result<Figures> {
        if let Some(scope) = self.case_scope(identity, CaseAccess::Read) {
            return Ok(Figures {
                stats: self.cases.stats(&scope, None).await?,
                privacy: None,
            });
        }
        let Some(scope) = self.case_scope(identity, CaseAccess::Figures) else {
            return Err(Error::Refused(format!(
                "case figures are not for the role {}",
                identity.roles_text()
            )));
        };
        let privacy = self.policy.privacy();
        let cfg = &privacy.config;
        // `sum_bound` is in yuan; amounts here are cents.
        let bound = (cfg.sum_bound * 100.0) as i64;
        let mut stats = self
            .cases
            .stats(
                &scope,
                Some(hedui_cases::Bounds {
                    cases_per_person: cfg.groups_per_person,
                    amount_cents: bound,
                }),
            )
            .await?;
        let spent = privacy
            .budget
            .spend(&identity.subject, cfg.epsilon_per_query)?;
        // The figures of one answer: per rule and region four, per state one, per month two,
        // recovered per month one, overdue one; the ε is shared equally among them.
        const FIGURES: usize = 9;
        let count_scale = privacy.count_scale(1, FIGURES);
        let amount_scale = privacy.sum_scale(FIGURES) * 100.0;
        let threshold = self.policy.small_cell_threshold() as i64;
        let count = |n: i64| hedui_policy::privacy::noise::count(n, count_scale).map(|v| v.max(0));
        // Each case's amount was clamped to the bound before summing: one case moves a figure
        // by at most that much.
        let amount = |c: i64| {
            hedui_policy::privacy::noise::sum(c as f64, amount_scale)
                .map(|v| v.max(0.0).round() as i64)
        };
        let noise_error = |e: String| Error::internal("adding noise", e);
        let mut suppressed = 0u64;
        for r in &mut stats.by_rule_region {
            r.cases = count(r.cases).map_err(noise_error)?;
            r.amount_cents = amount(r.amount_cents).map_err(noise_error)?;
            r.confirmed_cents = amount(r.confirmed_cents).map_err(noise_error)?;
            r.recovered_cents = amount(r.recovered_cents).map_err(noise_error)?;
            if r.cases < threshold {
                suppressed += 1;
            }
        }
        stats.by_rule_region.retain(|r| r.cases >= threshold);
        for (_, n) in &mut stats.by_state {
            *n = count(*n).map_err(noise_error)?;
        }
        stats.by_state.retain(|(_, n)| *n >= threshold);
        for m in &mut stats.by_month {
            m.cases = count(m.cases).map_err(noise_error)?;
            m.amount_cents = amount(m.amount_cents).map_err(noise_error)?;
        }
        stats.by_month.retain(|m| m.cases >= threshold);
        for (_, c) in &mut stats.recovered_by_month {
            *c = amount(*c).map_err(noise_error)?;
        }
        stats.overdue = count(stats.overdue).map_err(noise_error)?;
        // Laplace(b): |noise| < b·ln 20 with 95% probability.
        let ln20 = 20f64.ln();
        Ok(Figures {
            stats,
            privacy: Some(PrivacyNote {
                epsilon: spent.epsilon,
                spent: spent.total,
                budget: spent.budget,
                cases_error_95: (count_scale * ln20).round(),
                amount_error_95_cents: (amount_scale * ln20).round(),
                cells_suppressed: suppressed,
                threshold: threshold as u64,
                cases_per_person: cfg.groups_per_person,
            }),
        })
    }
}

/// The dashboard's figures, with how they were protected when they were.
#[derive(Debug, Serialize)]
pub struct Figures {
    #[serde(flatten)]
    pub stats: Stats,
    pub privacy: Option<PrivacyNote>,
}

/// What a statistician needs to read noisy figures.
#[derive(Debug, Serialize)]
pub struct PrivacyNote {
    pub epsilon: f64,
    /// ε spent in the period, this answer included, of `budget`.
    pub spent: f64,
    pub budget: f64,
    /// A case count is within this of the truth with 95% probability.
    pub cases_error_95: f64,
    pub amount_error_95_cents: f64,
    /// Rule-and-region cells left out for having fewer than `threshold` cases.
    pub cells_suppressed: u64,
    pub threshold: u64,
    /// Cases of one person counted at most (the rest left out at random).
    pub cases_per_person: u32,
}
