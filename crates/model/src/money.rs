//! Money: exact cents (分) in one type, read by one grammar and written by one formatter, so an
//! amount means the same in a department's file, a rule parameter, a case and a report.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::value::ParseError;
use crate::value::number::parse_decimal;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Yuan as departments and reviewers write them: `1234.5`, `1,234.50`, `¥12`, `800元`,
    /// full-width digits, a sign; never more than two decimals (money is not rounded).
    pub fn parse(text: &str) -> Result<Money, ParseError> {
        if text.trim().is_empty() {
            return Err(ParseError::new(
                "money.missing",
                "金额为空 (no amount)".to_string(),
            ));
        }
        let cents = parse_decimal(text, 2)?;
        i64::try_from(cents).map(Money).map_err(|_| {
            ParseError::new(
                "money.range",
                format!("金额超出范围：{text} (amount out of range)"),
            )
        })
    }

    /// `¥12,345.67`, `-¥0.50`: for people.
    pub fn grouped(self) -> String {
        let plain = Money(self.0.abs()).to_string();
        let (int, frac) = plain.split_once('.').expect("two decimals");
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{}¥{grouped}.{frac}", if self.0 < 0 { "-" } else { "" })
    }
}

/// `1234.56`, `-0.50`: for files, SQL and logs.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Money, ParseError> {
        Money::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Money;

    #[test]
    fn one_grammar_and_one_format_keep_the_sign_and_every_cent() {
        for (text, cents) in [
            ("1234.5", 123_450),
            ("¥0.07", 7),
            ("12", 1_200),
            ("1,234.50元", 123_450),
            ("-0.50", -50),
            ("-0.01", -1),
            ("１２.３", 1_230),
        ] {
            assert_eq!(Money::parse(text).unwrap().cents(), cents, "{text}");
        }
        for bad in ["", "1.234", "1e3", "abc", "99999999999999999999"] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Money::from_cents(-50).to_string(), "-0.50");
        assert_eq!(Money::from_cents(-1).to_string(), "-0.01");
        assert_eq!(Money::from_cents(123_456).to_string(), "1234.56");
        assert_eq!(Money::from_cents(1_234_567).grouped(), "¥12,345.67");
        assert_eq!(Money::from_cents(-50).grouped(), "-¥0.50");
        assert_eq!(Money::from_cents(100_000).grouped(), "¥1,000.00");
        for c in [-12_345_678, -99, 0, 5, 100, 98_765] {
            let m = Money::from_cents(c);
            assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
            assert_eq!(Money::parse(&m.grouped()).unwrap(), m);
        }
    }
}
