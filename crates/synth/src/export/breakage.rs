//! The rows a generator repeats or breaks on purpose: each file's fate for its next row, and the
//! ways a row is broken so that ingest must quarantine it with a known reason.

use super::csv_out::CsvOut;
use super::habits;
use crate::Result;
use crate::rng::Rng;

/// What happens to the next row of a file: written, written twice, or preceded by a broken copy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Normal,
    Duplicate,
    Break,
}

pub(super) struct Fates {
    n: u64,
    broke: bool,
}

impl Fates {
    pub(super) fn new() -> Self {
        Fates { n: 0, broke: false }
    }

    pub(super) fn next(&mut self, rng: &mut Rng) -> Fate {
        self.n += 1;
        // Every file of some size gets at least one broken row, early on.
        if !self.broke && self.n == 7 {
            self.broke = true;
            return Fate::Break;
        }
        match rng.below(1500) {
            0..=1 => Fate::Break,
            2 => Fate::Duplicate,
            _ => Fate::Normal,
        }
    }
}

pub(super) fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Write a CSV row with its fate. `id_col` is where the resident ID is; `breakers` are the ways
/// this file's rows get broken, chosen in turn.
pub(super) fn emit(
    out: &mut CsvOut,
    fates: &mut Fates,
    rng: &mut Rng,
    row: Vec<String>,
    id_col: usize,
    breakers: &[Breaker],
) -> Result<()> {
    match fates.next(rng) {
        Fate::Normal => out.row(&refs(&row)).map(|_| ()),
        Fate::Duplicate => {
            out.row(&refs(&row))?;
            out.duplicate(&refs(&row))
        }
        Fate::Break => {
            let b = breakers[rng.below(breakers.len())];
            let mut bad = row.clone();
            match b {
                Breaker::Check => {
                    let id = hedui_model::ResidentId::parse(&row[id_col])
                        .expect("generated IDs are valid");
                    bad[id_col] = habits::broken_id(&id);
                    out.broken(
                        &refs(&bad),
                        "id.bad_check",
                        "ID typed with a wrong check character",
                    )?;
                }
                Breaker::Missing => {
                    bad[id_col] = String::new();
                    out.broken(&refs(&bad), "value.missing", "ID left empty")?;
                }
                Breaker::Short => {
                    let id = hedui_model::ResidentId::parse(&row[id_col]).expect("valid");
                    bad[id_col] = id.as_str()[..17].to_string();
                    out.broken(
                        &refs(&bad),
                        "id.bad_length",
                        "ID missing its last character",
                    )?;
                }
                Breaker::Date(col) => {
                    bad[col] = "2025-02-30".into();
                    out.broken(&refs(&bad), "date.invalid", "a date that does not exist")?;
                }
                Breaker::Month(col) => {
                    bad[col] = "2025-13".into();
                    out.broken(&refs(&bad), "month.form", "a month that does not exist")?;
                }
                Breaker::Code(col) => {
                    bad[col] = "待定".into();
                    out.broken(
                        &refs(&bad),
                        "code.unknown",
                        "a code the department never defined",
                    )?;
                }
                Breaker::Misaligned(col) => out.misaligned(&refs(&bad), col)?,
            }
            out.row(&refs(&row)).map(|_| ())
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Breaker {
    Check,
    Missing,
    Short,
    Date(usize),
    Month(usize),
    Code(usize),
    Misaligned(usize),
}
