//! `truth.json`: what the generator planted, so that tests and benchmarks can measure the hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One true hit a rule must find.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hit {
    pub rule: String,
    /// Canonical 18-character ID, or household number for household rules.
    pub subject: String,
    /// The months involved, YYYY-MM, ascending.
    pub months: Vec<String>,
    /// Yuan with two decimals, where the rule computes an amount.
    pub amount: Option<String>,
    pub note: String,
}

/// A near miss that must not be flagged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Decoy {
    pub rule: String,
    pub subject: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleTruth {
    pub hits: Vec<Hit>,
    pub decoys: Vec<Decoy>,
}

/// A row the generator broke on purpose: ingest must quarantine exactly these.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BrokenRow {
    pub file: String,
    pub sheet: Option<String>,
    pub row: u64,
    pub dataset: String,
    /// The reason code ingest should give (`id.bad_check`, `date.invalid`, ...).
    pub problem: String,
    pub what: String,
}

/// A row repeated verbatim within its file: ingest must count it as a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DuplicateRow {
    pub file: String,
    pub sheet: Option<String>,
    pub row: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileTruth {
    pub dataset: Vec<String>,
    /// Data rows as written (broken and duplicate rows included).
    pub data_rows: u64,
    pub encoding: String,
}

/// A household verification request with members who cannot be counted as given: what a
/// verification must flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Canonical IDs in the order given (the applicant first).
    pub members: Vec<String>,
    /// Members the verification must count.
    pub counted: Vec<String>,
    /// Member -> why they cannot be counted: `deceased`, `unregistered`, `moved_out`,
    /// `other_roster`.
    pub irregular: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub persons: u64,
    pub year: i32,
    /// The city's dibao line (yuan per person per month) the data was planted against.
    pub dibao_line: String,
    pub rules: BTreeMap<String, RuleTruth>,
    pub broken_rows: Vec<BrokenRow>,
    pub duplicate_rows: Vec<DuplicateRow>,
    /// Files delivered twice with identical bytes (ingest must skip the second).
    pub redelivered_files: Vec<String>,
    pub files: BTreeMap<String, FileTruth>,
    /// Household verifications with irregular members.
    #[serde(default)]
    pub applications: Vec<Application>,
}

impl Truth {
    pub fn hit(&mut self, hit: Hit) {
        self.rules
            .entry(hit.rule.clone())
            .or_default()
            .hits
            .push(hit);
    }

    pub fn decoy(&mut self, rule: &str, subject: &str, why: &str) {
        self.rules
            .entry(rule.to_string())
            .or_default()
            .decoys
            .push(Decoy {
                rule: rule.to_string(),
                subject: subject.to_string(),
                why: why.to_string(),
            });
    }
}
