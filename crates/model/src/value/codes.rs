//! Coded fields: sex, status and scheme codes written as words or numbers, and the unified
//! social credit code of businesses.

use std::collections::HashMap;

use super::ParseError;
use super::text::to_halfwidth;
use crate::Sex;

/// 性别 as 男/女, 1/2 (GB/T 2261.1), M/F or words.
pub fn parse_sex(raw: &str) -> Result<Sex, ParseError> {
    let s = to_halfwidth(raw);
    match s.trim().to_ascii_uppercase().as_str() {
        "男" | "男性" | "1" | "M" | "MALE" => Ok(Sex::Male),
        "女" | "女性" | "2" | "F" | "FEMALE" => Ok(Sex::Female),
        _ => Err(ParseError::new(
            "sex.code",
            format!("无法识别的性别：{raw} (unknown sex code)"),
        )),
    }
}

/// A code table: department spellings (already normalised by [`code_key`]) to canonical codes.
#[derive(Debug, Clone, Default)]
pub struct CodeTable {
    map: HashMap<String, String>,
    /// The canonical values, for the error that names them.
    values: Vec<String>,
}

/// How a code is compared: half-width, no spaces, ASCII uppercase.
pub fn code_key(raw: &str) -> String {
    to_halfwidth(raw)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

impl CodeTable {
    /// Every canonical value maps to itself; each synonym to its canonical value.
    pub fn new<'a>(
        values: impl IntoIterator<Item = &'a str>,
        synonyms: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut map = HashMap::new();
        let mut canonical = Vec::new();
        for v in values {
            map.insert(code_key(v), v.to_string());
            canonical.push(v.to_string());
        }
        for (from, to) in synonyms {
            map.insert(code_key(from), to.to_string());
        }
        CodeTable {
            map,
            values: canonical,
        }
    }

    pub fn insert(&mut self, from: &str, to: &str) {
        self.map.insert(code_key(from), to.to_string());
    }

    pub fn lookup(&self, raw: &str) -> Result<&str, ParseError> {
        self.map
            .get(&code_key(raw))
            .map(String::as_str)
            .ok_or_else(|| {
                let allowed = self.values.join(", ");
                ParseError::new(
                    "code.unknown",
                    format!(
                        "无法识别的代码：{raw}。可用的值：{allowed}；若这是本部门的写法，请在映射中为该列加 values = {{ \"{raw}\" = \"…\" }} (unknown code `{raw}`; allowed: {allowed}; map the spelling with `values`)"
                    ),
                )
            })
    }
}

/// Characters of the unified social credit code (GB 32100-2015): digits and capitals without
/// I, O, S, V, Z.
const CREDIT_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Validate and normalise a unified social credit code (统一社会信用代码).
pub fn parse_credit_code(raw: &str) -> Result<String, ParseError> {
    let s = code_key(raw);
    let bad = |what: &str| {
        ParseError::new(
            "credit_code.invalid",
            format!("统一社会信用代码无效：{raw} ({what})"),
        )
    };
    if s.chars().count() != 18 {
        return Err(bad("expected 18 characters"));
    }
    let values: Option<Vec<u32>> = s
        .chars()
        .map(|c| CREDIT_CHARS.find(c).map(|i| i as u32))
        .collect();
    let values = values.ok_or_else(|| bad("invalid character"))?;
    let sum: u32 = values[..17]
        .iter()
        .zip(CREDIT_WEIGHTS)
        .map(|(v, w)| v * w)
        .sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return Err(bad("check character mismatch"));
    }
    Ok(s)
}

/// The check character for the first 17 characters of a credit code (for generated data).
pub fn credit_check_char(first17: &str) -> char {
    let sum: u32 = first17
        .chars()
        .zip(CREDIT_WEIGHTS)
        .map(|(c, w)| CREDIT_CHARS.find(c).expect("credit code character") as u32 * w)
        .sum();
    CREDIT_CHARS.as_bytes()[((31 - sum % 31) % 31) as usize] as char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sex_in_all_spellings() {
        for raw in ["男", "1", "M", "m", " 男性 ", "１"] {
            assert_eq!(parse_sex(raw).unwrap(), Sex::Male, "{raw}");
        }
        for raw in ["女", "2", "F", "female"] {
            assert_eq!(parse_sex(raw).unwrap(), Sex::Female, "{raw}");
        }
        assert_eq!(parse_sex("9").unwrap_err().code, "sex.code");
    }

    #[test]
    fn code_tables_fold_spellings() {
        let t = CodeTable::new(
            ["active", "deceased"],
            [("正常", "active"), ("死亡", "deceased"), ("1", "active")],
        );
        assert_eq!(t.lookup(" 正常 ").unwrap(), "active");
        assert_eq!(t.lookup("ACTIVE").unwrap(), "active");
        assert_eq!(t.lookup("１").unwrap(), "active");
        assert!(t.lookup("迁出").is_err());
    }

    #[test]
    fn credit_codes() {
        // A published example code with a valid check character.
        assert_eq!(
            parse_credit_code("91350100M000100Y43").unwrap(),
            "91350100M000100Y43"
        );
        assert!(parse_credit_code("91350100M000100Y44").is_err());
        assert!(parse_credit_code("91350100M000100Y4").is_err());
        let first17 = "91420500MA4ABCDE1";
        let full = format!("{first17}{}", credit_check_char(first17));
        assert_eq!(parse_credit_code(&full).unwrap(), full);
    }
}
