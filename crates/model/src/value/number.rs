//! Money, decimals and counts as departments write them.

use super::ParseError;
use super::text::to_halfwidth;

/// Strip what surrounds a number in exports: thousands separators, currency and unit words.
fn strip_number(raw: &str) -> String {
    to_halfwidth(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, ',' | '，' | '¥' | '￥'))
        .collect::<String>()
        .trim_end_matches(['元', '㎡', '人', '口', '户'])
        .trim_end_matches("平方米")
        .trim_end_matches("万元")
        .trim_end_matches('万')
        .to_string()
}

/// A decimal with `scale` fraction digits as a scaled integer (1234.5 at scale 2 -> 123450).
/// More fraction digits than the scale are refused unless they are zeros: money is never rounded
/// silently.
pub fn parse_decimal(raw: &str, scale: u32) -> Result<i128, ParseError> {
    let s = strip_number(raw);
    let bad = || {
        ParseError::new(
            "number.form",
            format!("无法识别的数值：{raw} (not a number)"),
        )
    };
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || int.len() > 20
    {
        return Err(bad());
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale as usize {
        return Err(ParseError::new(
            "number.precision",
            format!("小数位过多：{raw} (more than {scale} decimal places)"),
        ));
    }
    let int_val: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut frac_val: i128 = 0;
    for i in 0..scale as usize {
        let digit = frac_trimmed
            .as_bytes()
            .get(i)
            .map_or(0, |b| i128::from(b - b'0'));
        frac_val = frac_val * 10 + digit;
    }
    let v = int_val * 10i128.pow(scale) + frac_val;
    Ok(if neg { -v } else { v })
}

/// A decimal from a spreadsheet number cell, rounded to `scale` (floats carry binary noise).
pub fn decimal_from_f64(v: f64, scale: u32) -> Result<i128, ParseError> {
    if !v.is_finite() {
        return Err(ParseError::new("number.form", format!("非有限数值：{v}")));
    }
    Ok((v * 10f64.powi(scale as i32)).round() as i128)
}

/// A whole number: "3", "3人", "３".
pub fn parse_int(raw: &str) -> Result<i64, ParseError> {
    let s = strip_number(raw);
    let s = s.strip_suffix(".0").unwrap_or(&s);
    s.parse().map_err(|_| {
        ParseError::new(
            "int.form",
            format!("无法识别的整数：{raw} (not a whole number)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_forms() {
        for (raw, cents) in [
            ("1,234.50", 123_450),
            ("1234.5元", 123_450),
            ("１２３４．５", 123_450),
            ("￥1,234.50", 123_450),
            ("1234", 123_400),
            ("-12.3", -1_230),
            (".5", 50),
            ("1234.500", 123_450),
        ] {
            assert_eq!(parse_decimal(raw, 2).unwrap(), cents, "{raw}");
        }
        assert_eq!(
            parse_decimal("12.345", 2).unwrap_err().code,
            "number.precision"
        );
        assert_eq!(parse_decimal("12元5角", 2).unwrap_err().code, "number.form");
        assert_eq!(parse_decimal("abc", 2).unwrap_err().code, "number.form");
        assert_eq!(decimal_from_f64(1234.4999999, 2).unwrap(), 123_450);
    }

    #[test]
    fn areas_and_counts() {
        assert_eq!(parse_decimal("89.5㎡", 2).unwrap(), 8_950);
        assert_eq!(parse_decimal("120平方米", 2).unwrap(), 12_000);
        assert_eq!(parse_decimal("50万元", 4).unwrap(), 500_000);
        assert_eq!(parse_int("3人").unwrap(), 3);
        assert_eq!(parse_int("３").unwrap(), 3);
        assert_eq!(parse_int("2.0").unwrap(), 2);
        assert!(parse_int("两人").is_err());
    }
}
