//! The hits each rule last found, subject by subject, as the engine builds them (opaque text to
//! the store), with the lake version they are the hits of. A run after a commit adds the hit
//! rows the new rows give to these instead of evaluating every changed subject again; it may
//! only when the kept hits are those of the version it starts from, with the same rule version
//! and parameters. Kept in the run's own transaction, so they always agree with the cases.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use crate::{CaseStore, Result};

/// The lake version a rule's kept hits are those of, and what they were found with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptHits {
    pub rule_version: u32,
    /// The rule's parameters (JSON, defaults filled in).
    pub params: String,
    pub lake_version: u64,
}

/// What a run does to the kept hits of one rule.
#[derive(Debug, Clone)]
pub struct RuleHits {
    pub rule: String,
    pub rule_version: u32,
    pub params: String,
    /// `None`: the run evaluated every subject, and its hits replace all kept ones. `Some(v)`:
    /// it evaluated some subjects starting from the hits kept at version `v`; if they are no
    /// longer at `v` (another run moved them on meanwhile), the rule's kept hits are dropped,
    /// to be found again by its next full run.
    pub from: Option<u64>,
    /// Subject -> its hit now (`None`: evaluated, no hit).
    pub subjects: Vec<(String, Option<String>)>,
}

/// What a run does to the kept hits, and which subjects it evaluated (an incremental run: so
/// that it can be reproduced).
#[derive(Debug, Clone, Default)]
pub struct HitsUpdate {
    pub rules: Vec<RuleHits>,
    /// Rules whose kept hits are still those of the run's lake version: nothing they read
    /// changed since the version they are kept at (`rule` -> that version).
    pub unchanged: Vec<(String, u64)>,
    /// Rule -> the subjects evaluated, for an incremental run.
    pub evaluated: Option<BTreeMap<String, Vec<String>>>,
}

impl CaseStore {
    /// The rules with kept hits, and the lake version each is at.
    pub async fn kept_hits(&self) -> Result<HashMap<String, KeptHits>> {
        let rows =
            sqlx::query("SELECT rule_id, rule_version, params, lake_version FROM hit_state_rules")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("rule_id")?,
                    KeptHits {
                        rule_version: r.try_get::<i64, _>("rule_version")? as u32,
                        params: r.try_get("params")?,
                        lake_version: r.try_get::<i64, _>("lake_version")? as u64,
                    },
                ))
            })
            .collect()
    }

    /// The kept hits of these subjects of a rule (those without one have none).
    pub async fn kept_hits_of(
        &self,
        rule: &str,
        subjects: &[&str],
    ) -> Result<HashMap<String, String>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = HashMap::new();
        for subject in subjects {
            let row =
                sqlx::query("SELECT state FROM hit_state WHERE rule_id = $1 AND subject = $2")
                    .bind(rule)
                    .bind(*subject)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(row) = row {
                out.insert(subject.to_string(), row.try_get("state")?);
            }
        }
        Ok(out)
    }

    /// Bring the kept hits of `update.unchanged` to `lake_version` (nothing they read changed).
    pub async fn advance_kept_hits(&self, update: &HitsUpdate, lake_version: u64) -> Result<()> {
        let unchanged = HitsUpdate {
            unchanged: update.unchanged.clone(),
            ..HitsUpdate::default()
        };
        let mut tx = self.pool.begin().await?;
        crate::take_write_lock(&mut tx).await?;
        keep(&mut tx, "", lake_version, &unchanged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The subjects an incremental run evaluated, by rule (`None`: a full run, or one recorded
    /// before they were kept).
    pub async fn run_evaluated(&self, run: &str) -> Result<Option<BTreeMap<String, Vec<String>>>> {
        let row = sqlx::query("SELECT evaluated FROM runs WHERE id = $1")
            .bind(run)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .and_then(|r| r.try_get::<Option<String>, _>("evaluated").ok().flatten())
            .and_then(|text| serde_json::from_str(&text).ok()))
    }
}

/// Apply a run's update to the kept hits, in its transaction.
pub(crate) async fn keep(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    lake_version: u64,
    update: &HitsUpdate,
) -> Result<()> {
    for rule in &update.rules {
        let still = match rule.from {
            None => {
                sqlx::query("DELETE FROM hit_state WHERE rule_id = $1")
                    .bind(&rule.rule)
                    .execute(&mut **tx)
                    .await?;
                true
            }
            Some(from) => kept_at(tx, &rule.rule).await? == Some(from),
        };
        sqlx::query("DELETE FROM hit_state_rules WHERE rule_id = $1")
            .bind(&rule.rule)
            .execute(&mut **tx)
            .await?;
        if !still {
            tracing::warn!(rule = %rule.rule, run = run_id, "kept hits moved on during the run: dropped until the rule's next full run");
            continue;
        }
        for (subject, state) in &rule.subjects {
            if rule.from.is_some() {
                sqlx::query("DELETE FROM hit_state WHERE rule_id = $1 AND subject = $2")
                    .bind(&rule.rule)
                    .bind(subject)
                    .execute(&mut **tx)
                    .await?;
            }
            if let Some(state) = state {
                sqlx::query("INSERT INTO hit_state (rule_id, subject, state) VALUES ($1, $2, $3)")
                    .bind(&rule.rule)
                    .bind(subject)
                    .bind(state)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        sqlx::query("INSERT INTO hit_state_rules (rule_id, rule_version, params, lake_version) VALUES ($1, $2, $3, $4)")
            .bind(&rule.rule)
            .bind(i64::from(rule.rule_version))
            .bind(&rule.params)
            .bind(lake_version as i64)
            .execute(&mut **tx)
            .await?;
    }
    for (rule, from) in &update.unchanged {
        if kept_at(tx, rule).await? == Some(*from) {
            sqlx::query("UPDATE hit_state_rules SET lake_version = $1 WHERE rule_id = $2")
                .bind(lake_version as i64)
                .bind(rule)
                .execute(&mut **tx)
                .await?;
        }
    }
    if let Some(evaluated) = &update.evaluated {
        sqlx::query("UPDATE runs SET evaluated = $1 WHERE id = $2")
            .bind(serde_json::to_string(evaluated).expect("json"))
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The lake version a rule's kept hits are at, read in the run's transaction.
async fn kept_at(tx: &mut sqlx::Transaction<'_, sqlx::Any>, rule: &str) -> Result<Option<u64>> {
    let row = sqlx::query("SELECT lake_version FROM hit_state_rules WHERE rule_id = $1")
        .bind(rule)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<i64, _>("lake_version")? as u64),
        None => None,
    })
}
