//! Changing cases: steps through the workflow, assignment, escalation of late cases, and the
//! household verifications reviewers keep. Every change writes a history event in the same
//! transaction, and a change races safely: it applies only to the state it was decided on.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::query::{Scope, Verification};
use crate::{CaseStore, Error, Result, State, Step, level_name, timestamp};

impl CaseStore {
    /// Move a case along its workflow (see [`State::can_go_to`]), with what the target state needs
    /// ([`Step::missing`]).
    pub async fn transition(&self, scope: &Scope, case_id: &str, step: &Step) -> Result<State> {
        if step.to == State::Assigned {
            return self.assign(scope, case_id, step).await;
        }
        if let Some(missing) = step.missing() {
            return Err(Error::Invalid(case_id.into(), missing));
        }
        let case = self.get(scope, case_id).await?.case;
        let from = case.state;
        if !from.can_go_to(step.to) {
            return Err(Error::Transition {
                case: case_id.into(),
                from,
                to: step.to,
            });
        }
        let to = outcome(&case, step)?;
        let at = timestamp(Utc::now());
        let detail = serde_json::json!({
            "reason": step.reason,
            "amount_cents": step.amount_cents,
            "on": step.on.map(|d| d.to_string()),
            "excess_reason": step.excess_reason,
            "partial": step.to == State::Recovered && to == State::Confirmed,
        });
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE cases SET state = $1, updated_at = $2, \
             reject_reason = CASE WHEN $3 = 'rejected' THEN $4 ELSE reject_reason END, \
             confirmed_cents = CASE WHEN $5 = 'confirmed' THEN $6 ELSE confirmed_cents END, \
             recovered_cents = CASE WHEN $7 = 'recovered' THEN COALESCE(recovered_cents, 0) + $8 ELSE recovered_cents END, \
             recovered_on = CASE WHEN $9 = 'recovered' THEN $10 ELSE recovered_on END \
             WHERE id = $11 AND state = $12",
        )
        .bind(to.as_str())
        .bind(&at)
        .bind(step.to.as_str())
        .bind(step.reason.as_deref())
        .bind(step.to.as_str())
        .bind(step.amount_cents)
        .bind(step.to.as_str())
        .bind(step.amount_cents)
        .bind(step.to.as_str())
        .bind(step.on.map(|d| d.to_string()))
        .bind(case_id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(changed_meanwhile(case_id));
        }
        if step.to == State::Recovered {
            sqlx::query(
                "INSERT INTO recoveries (case_id, seq, cents, on_date, actor, at) VALUES ($1, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM recoveries WHERE case_id = $2), $3, $4, $5, $6)",
            )
            .bind(case_id)
            .bind(case_id)
            .bind(step.amount_cents)
            .bind(step.on.map(|d| d.to_string()))
            .bind(&step.actor)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        event(
            &mut tx,
            case_id,
            &at,
            &step.actor,
            Some(from),
            to,
            &step.note,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Give an open case to someone: a new case becomes assigned, a case in progress keeps its
    /// state and changes hands.
    pub async fn assign(&self, scope: &Scope, case_id: &str, step: &Step) -> Result<State> {
        if let Some(missing) = step.missing() {
            return Err(Error::Invalid(case_id.into(), missing));
        }
        let from = self.state_in_scope(scope, case_id).await?;
        self.assign_from(case_id, from, step).await
    }

    /// Assign a case known (within the caller's scope) to be in `from`.
    async fn assign_from(&self, case_id: &str, from: State, step: &Step) -> Result<State> {
        let assignee = step.assignee.as_deref().unwrap_or_default();
        if !from.is_open() {
            return Err(Error::Transition {
                case: case_id.into(),
                from,
                to: State::Assigned,
            });
        }
        let to = if from == State::New {
            State::Assigned
        } else {
            from
        };
        let at = timestamp(Utc::now());
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE cases SET state = $1, assignee = $2, updated_at = $3 WHERE id = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(assignee)
        .bind(&at)
        .bind(case_id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(changed_meanwhile(case_id));
        }
        let detail = serde_json::json!({ "assignee": assignee });
        event(
            &mut tx,
            case_id,
            &at,
            &step.actor,
            Some(from),
            to,
            &step.note,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Assign every new case in the scope to the team responsible for its subject's region.
    /// Returns how many were assigned.
    pub async fn dispatch_new(&self, scope: &Scope, actor: &str) -> Result<u64> {
        let page = self
            .list(
                scope,
                &crate::CaseFilter {
                    states: vec![State::New],
                    ..Default::default()
                }
                .limit(i64::MAX),
            )
            .await?;
        let mut n = 0;
        for case in page.cases {
            let assignee = self.workflow().assignee_for(case.region.as_deref());
            let step = Step::to(State::Assigned)
                .by(actor)
                .assignee(&assignee)
                .note(format!(
                    "按属地分派 dispatched by region {}",
                    case.region.as_deref().unwrap_or("?")
                ));
            // The list applied the scope and read the state: no second read per case.
            match self.assign_from(&case.id, case.state, &step).await {
                Ok(_) => n += 1,
                // Someone else took it meanwhile: theirs stands.
                Err(Error::Invalid(..) | Error::Transition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Escalate every open case past its deadline one level up, with a fresh deadline for that
    /// level (跟踪督办). Cases at the top level stay there and stay overdue. Returns the cases
    /// escalated with their new level.
    pub async fn escalate(&self, now: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
        let at = timestamp(now);
        let top = crate::LEVELS.len() as i64 - 1;
        let late = sqlx::query(
            "SELECT id, state, level FROM cases WHERE state IN ('new', 'assigned', 'verifying', 'confirmed') AND due_at < $1 AND level < $2",
        )
        .bind(&at)
        .bind(top)
        .fetch_all(self.pool())
        .await?;
        let due = timestamp(now + chrono::Duration::days(self.workflow().escalation_days as i64));
        let mut escalated = Vec::new();
        for row in late {
            let id: String = row.try_get("id")?;
            let level: i64 = row.try_get("level")?;
            let state: State = row
                .try_get::<String, _>("state")?
                .parse()
                .unwrap_or(State::New);
            let mut tx = self.pool().begin().await?;
            let changed = sqlx::query(
                "UPDATE cases SET level = $1, due_at = $2, updated_at = $3 WHERE id = $4 AND level = $5",
            )
            .bind(level + 1)
            .bind(&due)
            .bind(&at)
            .bind(&id)
            .bind(level)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                continue;
            }
            let note = format!(
                "逾期未办结，升级至 {} (overdue, escalated); 新期限 new deadline {due}",
                level_name(level + 1)
            );
            let detail = serde_json::json!({ "level": level + 1, "due_at": due });
            event(
                &mut tx,
                &id,
                &at,
                "hedui",
                Some(state),
                state,
                &note,
                &detail,
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(case = %id, level = level + 1, "case overdue, escalated");
            escalated.push((id, level + 1));
        }
        Ok(escalated)
    }

    async fn state_in_scope(&self, scope: &Scope, case_id: &str) -> Result<State> {
        // Through `get`, so a case outside the scope is "no case", not "forbidden": its existence
        // is not disclosed either.
        Ok(self.get(scope, case_id).await?.case.state)
    }

    /// Keep a household verification's report, so that it can be printed again and audited.
    pub async fn save_verification(&self, v: &Verification) -> Result<()> {
        sqlx::query("INSERT INTO verifications (id, at, reviewer, authorisation, region, members, verdict, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&v.id)
            .bind(&v.at)
            .bind(&v.reviewer)
            .bind(&v.authorisation)
            .bind(v.region.as_deref())
            .bind(serde_json::to_string(&v.members).expect("json"))
            .bind(&v.verdict)
            .bind(v.report.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A kept verification, if it is in the caller's region (verifications made by callers with
    /// no region are visible only to callers with no region).
    pub async fn verification(&self, scope: &Scope, id: &str) -> Result<Verification> {
        let row = sqlx::query("SELECT id, at, reviewer, authorisation, region, members, verdict, report FROM verifications WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Error::NoCase(id.into()))?;
        let region: Option<String> = row.try_get("region")?;
        if let Some(mine) = &scope.region
            && !region
                .as_deref()
                .is_some_and(|r| r.starts_with(mine.as_str()))
        {
            return Err(Error::NoCase(id.into()));
        }
        Ok(Verification {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            reviewer: row.try_get("reviewer")?,
            authorisation: row.try_get("authorisation")?,
            region,
            members: serde_json::from_str(&row.try_get::<String, _>("members")?)
                .unwrap_or_default(),
            verdict: row.try_get("verdict")?,
            report: serde_json::from_str(&row.try_get::<String, _>("report")?).unwrap_or_default(),
        })
    }
}

/// Someone else moved the case between reading and writing it: theirs stands.
fn changed_meanwhile(case_id: &str) -> Error {
    Error::Invalid(
        case_id.into(),
        "the case changed meanwhile; reload it and try again".into(),
    )
}

/// The state a step really leads to, and the outcomes no office would record: more to recover
/// than was found without a reason, a recovery dated in the future, recoveries adding up to more
/// than was confirmed. A recovery short of the confirmed amount is partial: the case stays
/// confirmed until the recoveries add up.
fn outcome(case: &crate::Case, step: &Step) -> Result<State> {
    let invalid = |m: String| Err(Error::Invalid(case.id.clone(), m));
    let yuan = |c: i64| hedui_model::Money::from_cents(c).grouped();
    match step.to {
        State::Confirmed => {
            let amount = step.amount_cents.unwrap_or(0);
            let found = case.amount_cents.unwrap_or(0);
            let explained = step
                .excess_reason
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty());
            if amount > found && !explained {
                return invalid(format!(
                    "确认追回金额 {} 超过核查发现的 {}，须写明理由 excess_reason (the amount to recover exceeds the amount found; give the reason)",
                    yuan(amount),
                    yuan(found)
                ));
            }
            Ok(State::Confirmed)
        }
        State::Recovered => {
            let today =
                (Utc::now() + chrono::Duration::hours(crate::CITY_UTC_OFFSET_HOURS)).date_naive();
            if step.on.is_some_and(|d| d > today) {
                return invalid(format!(
                    "追回日期 {} 晚于今天，不能登记 (the recovery date is in the future)",
                    step.on.expect("checked")
                ));
            }
            let confirmed = case.confirmed_cents.unwrap_or(0);
            let remaining = confirmed - case.recovered_cents.unwrap_or(0);
            let amount = step.amount_cents.unwrap_or(0);
            if amount > remaining {
                return invalid(format!(
                    "本次追回 {} 超过尚待追回的 {}（确认追回 {}）(the recovery exceeds what remains to be recovered)",
                    yuan(amount),
                    yuan(remaining),
                    yuan(confirmed)
                ));
            }
            Ok(if amount == remaining {
                State::Recovered
            } else {
                State::Confirmed
            })
        }
        other => Ok(other),
    }
}

#[allow(clippy::too_many_arguments)]
async fn event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    at: &str,
    actor: &str,
    from: Option<State>,
    to: State,
    note: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    sqlx::query("INSERT INTO case_events (case_id, at, actor, from_state, to_state, note, detail, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = $8))")
        .bind(case_id)
        .bind(at)
        .bind(actor)
        .bind(from.map(|s| s.as_str()))
        .bind(to.as_str())
        .bind(note)
        .bind(detail.to_string())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
