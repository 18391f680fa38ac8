//! The resident ID number (公民身份号码, GB 11643-1999): normalise what departments export, upgrade
//! legacy 15-digit numbers, validate, derive birth date, sex and region, and give a compact
//! integer key that makes joins cheap.

use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::region;
use crate::value::text::to_halfwidth;

/// Weights of the ISO 7064 MOD 11-2 check over the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by `S mod 11`.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// A validated 18-character resident ID, stored as its ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId([u8; 18]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The canonical code stored in the lake.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

/// Why a value is not a usable resident ID. Each variant says what a person repairing the row
/// needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("身份证号码为空 (ID number is empty)")]
    Empty,
    #[error(
        "身份证号码被 Excel 转成科学计数法，后几位已丢失 (Excel turned the ID into `{0}`; digits are lost)"
    )]
    ScientificNotation(String),
    #[error("身份证号码含非法字符 `{0}` (invalid character)")]
    BadCharacter(char),
    #[error("身份证号码位数错误：{0} 位 (expected 18 or legacy 15 digits, found {0})")]
    BadLength(usize),
    #[error("身份证号码校验码错误：应为 {expected}，实为 {found} (check character mismatch)")]
    BadCheck { expected: char, found: char },
    #[error("身份证号码出生日期无效：{0} (invalid birth date)")]
    BadBirthDate(String),
    #[error("身份证号码地址码无效：{0} (invalid address code)")]
    BadAddressCode(String),
}

impl IdError {
    /// A stable machine-readable code for reports and filters.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "id.empty",
            IdError::ScientificNotation(_) => "id.scientific_notation",
            IdError::BadCharacter(_) => "id.bad_character",
            IdError::BadLength(_) => "id.bad_length",
            IdError::BadCheck { .. } => "id.bad_check",
            IdError::BadBirthDate(_) => "id.bad_birth_date",
            IdError::BadAddressCode(_) => "id.bad_address_code",
        }
    }
}

/// Step 1 of normalisation: trim, drop Excel's leading apostrophe and any inner spaces, turn
/// full-width characters into ASCII and uppercase the x.
pub fn normalise(raw: &str) -> String {
    let half = to_halfwidth(raw);
    let trimmed = half.trim().trim_start_matches(['\'', '‘', '’', '`']).trim();
    trimmed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{200b}' && *c != '\u{feff}')
        .map(|c| if c == 'x' { 'X' } else { c })
        .collect()
}

/// The check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl ResidentId {
    /// Normalise and validate a value as departments export it (18 or legacy 15 digits).
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        // Most IDs arrive clean: 18 ASCII characters, nothing to normalise.
        let b = raw.as_bytes();
        if b.len() == 18
            && b[..17].iter().all(u8::is_ascii_digit)
            && (b[17].is_ascii_digit() || b[17] == b'X')
        {
            return Self::from_18(b);
        }
        let s = normalise(raw);
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if (s.contains("E+") || s.contains("e+")) && s.contains('.') {
            return Err(IdError::ScientificNotation(s));
        }
        if let Some(bad) = s
            .chars()
            .enumerate()
            .find(|&(i, c)| !(c.is_ascii_digit() || (c == 'X' && i == 17)))
        {
            return Err(IdError::BadCharacter(bad.1));
        }
        match s.len() {
            18 => Self::from_18(s.as_bytes()),
            15 => Self::upgrade_15(s.as_bytes()),
            n => Err(IdError::BadLength(n)),
        }
    }

    fn from_18(b: &[u8]) -> Result<Self, IdError> {
        let mut id = [0u8; 18];
        id.copy_from_slice(b);
        let id = ResidentId(id);
        id.validate_parts()?;
        let expected = check_char(&b[..17]);
        if expected != b[17] {
            return Err(IdError::BadCheck {
                expected: expected as char,
                found: b[17] as char,
            });
        }
        Ok(id)
    }

    /// GB 11643-1989 numbers: insert "19" before the two-digit year and append the check.
    fn upgrade_15(b: &[u8]) -> Result<Self, IdError> {
        let mut id = [0u8; 18];
        id[..6].copy_from_slice(&b[..6]);
        id[6..8].copy_from_slice(b"19");
        id[8..17].copy_from_slice(&b[6..15]);
        id[17] = check_char(&id[..17]);
        let id = ResidentId(id);
        id.validate_parts()?;
        Ok(id)
    }

    fn validate_parts(&self) -> Result<(), IdError> {
        let s = self.as_str();
        if !region::is_valid_address_code(&s[..6]) {
            return Err(IdError::BadAddressCode(s[..6].to_string()));
        }
        let date = &s[6..14];
        let parsed = NaiveDate::parse_from_str(date, "%Y%m%d")
            .ok()
            .filter(|d| d.year() >= 1800 && *d <= chrono::Utc::now().date_naive());
        if parsed.is_none() {
            return Err(IdError::BadBirthDate(date.to_string()));
        }
        Ok(())
    }

    /// Rebuild an ID from its compact key (the first 17 digits as an integer).
    pub fn from_key(key: i64) -> Option<Self> {
        if !(0..100_000_000_000_000_000).contains(&key) {
            return None;
        }
        let digits = format!("{key:017}");
        let mut id = [0u8; 18];
        id[..17].copy_from_slice(digits.as_bytes());
        id[17] = check_char(&id[..17]);
        let id = ResidentId(id);
        id.validate_parts().ok().map(|_| id)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and `X` are ever stored.
        std::str::from_utf8(&self.0).expect("ASCII")
    }

    /// The compact join key: the first 17 digits as an integer. The check character is a
    /// function of them, so the key is unique per valid ID and fits easily in an i64.
    pub fn key(&self) -> i64 {
        self.0[..17]
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
    }

    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.as_str()[6..14], "%Y%m%d").expect("validated")
    }

    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The six-digit address code where the number was first issued.
    pub fn address_code(&self) -> &str {
        &self.as_str()[..6]
    }

    /// Build a valid ID from its parts, computing the check character. Used by the synthetic
    /// city; panics on parts that are not digits of the right length.
    pub fn from_parts(address: &str, birth: NaiveDate, sequence: u16) -> Self {
        let first17 = format!("{address}{}{sequence:03}", birth.format("%Y%m%d"));
        assert_eq!(
            first17.len(),
            17,
            "address code must be 6 digits, sequence < 1000"
        );
        let mut id = [0u8; 18];
        id[..17].copy_from_slice(first17.as_bytes());
        id[17] = check_char(&id[..17]);
        ResidentId(id)
    }

    /// The legacy 15-digit form of a number issued to someone born in the 1900s.
    pub fn legacy_15(&self) -> Option<String> {
        let s = self.as_str();
        (&s[6..8] == "19").then(|| format!("{}{}", &s[..6], &s[8..17]))
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn standard_examples_validate() {
        for s in ["11010519491231002X", "440524188001010014"] {
            let id = ResidentId::parse(s).unwrap();
            assert_eq!(id.as_str(), s);
        }
        let old = ResidentId::parse("440524188001010014").unwrap();
        assert_eq!(
            old.birth_date(),
            NaiveDate::from_ymd_opt(1880, 1, 1).unwrap()
        );
        assert_eq!(old.sex(), Sex::Male);
        let woman = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(woman.sex(), Sex::Female);
        assert_eq!(woman.address_code(), "110105");
    }

    #[test]
    fn legacy_15_digit_upgrade() {
        let id = ResidentId::parse("370986890623212").unwrap();
        assert_eq!(id.as_str(), "370986198906232123");
        assert_eq!(id.legacy_15().unwrap(), "370986890623212");
    }

    #[test]
    fn department_habits_are_normalised() {
        let want = "11010519491231002X";
        for raw in [
            "11010519491231002x",
            " 11010519491231002X ",
            "'11010519491231002X",
            "110105 19491231 002X",
            "１１０１０５１９４９１２３１００２Ｘ",
            "１１０１０５１９４９１２３１００２ｘ",
            "\u{3000}11010519491231002X\u{3000}",
        ] {
            assert_eq!(ResidentId::parse(raw).unwrap().as_str(), want, "{raw:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(ResidentId::parse("  ").unwrap_err(), IdError::Empty);
        assert_eq!(
            ResidentId::parse("4.20102E+17").unwrap_err().code(),
            "id.scientific_notation"
        );
        assert_eq!(
            ResidentId::parse("1101051949123100").unwrap_err(),
            IdError::BadLength(16)
        );
        assert_eq!(
            ResidentId::parse("110105194912310021").unwrap_err(),
            IdError::BadCheck {
                expected: 'X',
                found: '1'
            }
        );
        assert_eq!(
            ResidentId::parse("110105194913310021").unwrap_err().code(),
            "id.bad_birth_date"
        );
        assert_eq!(
            ResidentId::parse("990105194912310021").unwrap_err().code(),
            "id.bad_address_code"
        );
        assert_eq!(
            ResidentId::parse("1101051949123100X2").unwrap_err(),
            IdError::BadCharacter('X')
        );
    }

    #[test]
    fn key_round_trips() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(id.key(), 11010519491231002);
        assert_eq!(ResidentId::from_key(id.key()).unwrap(), id);
    }

    fn valid_id() -> impl Strategy<Value = ResidentId> {
        (
            prop::sample::select(vec!["420502", "420503", "420506", "110105", "440524"]),
            1900i32..2020,
            1u32..=12,
            1u32..=28,
            0u16..1000,
        )
            .prop_map(|(addr, y, m, d, seq)| {
                ResidentId::from_parts(addr, NaiveDate::from_ymd_opt(y, m, d).unwrap(), seq)
            })
    }

    proptest! {
        #[test]
        fn generated_ids_validate_and_round_trip(id in valid_id()) {
            let parsed = ResidentId::parse(id.as_str()).unwrap();
            prop_assert_eq!(parsed, id);
            prop_assert_eq!(ResidentId::from_key(id.key()).unwrap(), id);
        }

        /// The check detects every single-character error.
        #[test]
        fn every_single_digit_error_is_caught(id in valid_id(), pos in 0usize..18, delta in 1u8..11) {
            let mut b = id.as_str().as_bytes().to_vec();
            let alphabet: &[u8] = if pos == 17 { b"0123456789X" } else { b"0123456789" };
            let at = alphabet.iter().position(|c| *c == b[pos]).unwrap();
            let replacement = alphabet[(at + delta as usize) % alphabet.len()];
            prop_assume!(replacement != b[pos]);
            b[pos] = replacement;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(ResidentId::parse(&changed).is_err(), "{} accepted", changed);
        }

        /// ... and every transposition of two adjacent, different digits.
        #[test]
        fn every_adjacent_transposition_is_caught(id in valid_id(), pos in 0usize..17) {
            let mut b = id.as_str().as_bytes().to_vec();
            prop_assume!(b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(ResidentId::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn legacy_form_upgrades_to_the_same_id(id in valid_id()) {
            prop_assume!(id.legacy_15().is_some());
            prop_assert_eq!(ResidentId::parse(&id.legacy_15().unwrap()).unwrap(), id);
        }
    }
}
