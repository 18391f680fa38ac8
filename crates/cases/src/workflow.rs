//! How cases move: who gets them (dispatch by the subject's region), by when (deadlines per rule),
//! what happens when that passes (escalation one level up), and the steps a reviewer records.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::State;

/// The levels a late case climbs, from the grid worker who visits to the city office.
pub const LEVELS: &[(&str, &str)] = &[
    ("grid", "网格/社区 grid or community"),
    ("subdistrict", "街道 sub-district"),
    ("district", "区县 district"),
    ("city", "市 city"),
];

/// Why a hit was not a real case: the list a reviewer chooses from, so that false positives can
/// be counted per cause and the rules improved.
pub const REJECT_REASONS: &[(&str, &str)] = &[
    (
        "identity_mismatch",
        "身份信息错配（同名或证号错误） identity mismatch",
    ),
    (
        "source_error",
        "源数据错误（已通知部门更正） source data error",
    ),
    ("lawful", "经核实属合规情形 lawful after verification"),
    (
        "already_handled",
        "已在其他渠道处理 already handled elsewhere",
    ),
    ("timing", "时间差（已按规定停发或核减） timing difference"),
    ("other", "其他（见备注） other, see note"),
];

/// A city's workflow settings (`[cases.workflow]` in hedui.toml).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowConfig {
    /// Days to finish a case, per rule id (限时办结).
    pub deadline_days: BTreeMap<String, u32>,
    /// Days to finish a case of a rule not listed.
    pub default_deadline_days: u32,
    /// Days the next level up gets after an escalation.
    pub escalation_days: u32,
    /// Who is responsible for which region: the longest matching prefix wins.
    pub dispatch: Vec<DispatchRule>,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            deadline_days: BTreeMap::new(),
            default_deadline_days: 30,
            escalation_days: 7,
            dispatch: Vec::new(),
        }
    }
}

/// One line of the dispatch table: cases whose subject lives in `region` (a code prefix) go to
/// `assignee` (a user or a team, as it appears in tokens' subjects).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DispatchRule {
    pub region: String,
    pub assignee: String,
}

impl WorkflowConfig {
    pub fn deadline_days(&self, rule: &str) -> u32 {
        self.deadline_days
            .get(rule)
            .copied()
            .unwrap_or(self.default_deadline_days)
    }

    /// The team responsible for a region: the configured one with the longest matching prefix,
    /// else the region's own grid queue (`grid-<region>`), so nothing is left undispatched.
    pub fn assignee_for(&self, region: Option<&str>) -> String {
        let Some(region) = region.filter(|r| !r.is_empty()) else {
            return "city-office".into();
        };
        self.dispatch
            .iter()
            .filter(|d| region.starts_with(&d.region))
            .max_by_key(|d| d.region.len())
            .map(|d| d.assignee.clone())
            .unwrap_or_else(|| format!("grid-{region}"))
    }

    pub fn due(&self, rule: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        from + Duration::days(self.deadline_days(rule) as i64)
    }

    /// A configuration mistake found at start, not at the first late case.
    pub fn validate(&self) -> Result<(), String> {
        for d in &self.dispatch {
            if d.region.is_empty() || !d.region.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "dispatch region `{}` must be a region code prefix (digits)",
                    d.region
                ));
            }
            if d.assignee.trim().is_empty() {
                return Err(format!("dispatch region {} has no assignee", d.region));
            }
        }
        if self.escalation_days == 0 {
            return Err("escalation_days must be at least 1".into());
        }
        Ok(())
    }
}

/// One step a person takes on a case: a transition, with what the target state needs.
#[derive(Debug, Clone)]
pub struct Step {
    pub to: State,
    pub actor: String,
    pub note: String,
    /// Rejected: one of [`REJECT_REASONS`].
    pub reason: Option<String>,
    /// Confirmed: the amount to recover; recovered: the amount recovered.
    pub amount_cents: Option<i64>,
    /// Recovered: the day the money came back.
    pub on: Option<NaiveDate>,
    /// Assigned: to whom.
    pub assignee: Option<String>,
    /// Confirmed: why more is to be recovered than the hit found (a longer period found on the
    /// home visit, for instance). Required then.
    pub excess_reason: Option<String>,
}

impl Step {
    pub fn to(to: State) -> Step {
        Step {
            to,
            actor: String::new(),
            note: String::new(),
            reason: None,
            amount_cents: None,
            on: None,
            assignee: None,
            excess_reason: None,
        }
    }
    pub fn excess_reason(mut self, why: impl Into<String>) -> Step {
        self.excess_reason = Some(why.into());
        self
    }
    pub fn by(mut self, actor: impl Into<String>) -> Step {
        self.actor = actor.into();
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Step {
        self.note = note.into();
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Step {
        self.reason = Some(reason.into());
        self
    }
    pub fn amount_cents(mut self, cents: i64) -> Step {
        self.amount_cents = Some(cents);
        self
    }
    pub fn on(mut self, day: NaiveDate) -> Step {
        self.on = Some(day);
        self
    }
    pub fn assignee(mut self, who: impl Into<String>) -> Step {
        self.assignee = Some(who.into());
        self
    }

    /// What the step lacks for its target state, in words for the reviewer.
    pub fn missing(&self) -> Option<String> {
        if self.note.trim().is_empty() {
            return Some("a note is required (办理意见必填)".into());
        }
        if self.actor.trim().is_empty() {
            return Some("the step has no actor".into());
        }
        match self.to {
            State::Assigned if self.assignee.as_deref().is_none_or(|a| a.trim().is_empty()) => {
                Some("assigning needs an assignee".into())
            }
            State::Rejected => match self.reason.as_deref() {
                None | Some("") => Some("rejecting needs a reason from the list".into()),
                Some(r) if !REJECT_REASONS.iter().any(|(code, _)| *code == r) => Some(format!(
                    "`{r}` is not a rejection reason; one of: {}",
                    REJECT_REASONS
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => None,
            },
            State::Confirmed | State::Recovered => match self.amount_cents {
                None => Some(if self.to == State::Confirmed {
                    "confirming needs the amount to recover".into()
                } else {
                    "recovering needs the amount recovered".into()
                }),
                Some(c) if c < 0 => Some("an amount cannot be negative".into()),
                Some(0) if self.to == State::Recovered => {
                    Some("a recovery of ¥0.00 recovers nothing".into())
                }
                _ if self.to == State::Recovered && self.on.is_none() => {
                    Some("recovering needs the date the money came back".into())
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// The level's name, for events and the UI.
pub fn level_name(level: i64) -> &'static str {
    LEVELS
        .get(level.clamp(0, LEVELS.len() as i64 - 1) as usize)
        .map_or("", |l| l.1)
}
