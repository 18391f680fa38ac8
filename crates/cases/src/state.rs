//! The workflow of a case: new -> assigned -> verifying -> confirmed -> recovered -> closed, or
//! verifying -> rejected (a false positive, with a reason) -> closed.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    New,
    Assigned,
    Verifying,
    Confirmed,
    Rejected,
    Recovered,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Assigned => "assigned",
            State::Verifying => "verifying",
            State::Confirmed => "confirmed",
            State::Rejected => "rejected",
            State::Recovered => "recovered",
            State::Closed => "closed",
        }
    }

    /// Open cases are in someone's hands; a hit for the same rule and subject joins them.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            State::New | State::Assigned | State::Verifying | State::Confirmed
        )
    }

    pub fn can_go_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (New, Assigned)
                | (Assigned, Assigned)
                | (Assigned, Verifying)
                | (New, Verifying)
                | (Verifying, Confirmed)
                | (Verifying, Rejected)
                | (Confirmed, Recovered)
                | (Confirmed, Closed)
                | (Recovered, Closed)
                | (Rejected, Closed)
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "new" => State::New,
            "assigned" => State::Assigned,
            "verifying" => State::Verifying,
            "confirmed" => State::Confirmed,
            "rejected" => State::Rejected,
            "recovered" => State::Recovered,
            "closed" => State::Closed,
            other => return Err(format!("unknown case state `{other}`")),
        })
    }
}
