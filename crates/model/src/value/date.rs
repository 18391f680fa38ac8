//! Dates and year-month periods in every form departments export.

use chrono::{Datelike, NaiveDate};

use super::ParseError;
use super::text::to_halfwidth;

/// Excel's day zero in the 1900 date system (serial 1 = 1900-01-01; the phantom 1900-02-29
/// makes 1899-12-30 the right origin for every serial after February 1900).
fn excel_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid")
}

/// Date from an Excel serial number (days, fraction = time of day, ignored).
pub fn from_excel_serial(serial: f64) -> Result<NaiveDate, ParseError> {
    if !(1.0..=2_958_465.0).contains(&serial) {
        return Err(ParseError::new(
            "date.serial",
            format!("Excel 日期序号超出范围：{serial}"),
        ));
    }
    let days = serial.floor() as i64;
    // Serials 1..=60 count the phantom 1900-02-29, so they sit one day later.
    let days = if days <= 60 { days + 1 } else { days };
    Ok(excel_epoch() + chrono::Duration::days(days))
}

fn ymd(y: i32, m: u32, d: u32, raw: &str) -> Result<NaiveDate, ParseError> {
    NaiveDate::from_ymd_opt(y, m, d)
        .ok_or_else(|| ParseError::new("date.invalid", format!("日期不存在：{raw} (no such date)")))
}

/// Split a date-like string into its numeric parts, whatever the separators.
fn numeric_parts(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parse a calendar date: 2023-05-07, 2023/5/7, 20230507, 2023.05.07, 2023年5月7日, an Excel
/// serial (45053), each optionally followed by a time of day.
pub fn parse_date(raw: &str) -> Result<NaiveDate, ParseError> {
    let s = to_halfwidth(raw);
    let s = s.trim();
    // Drop a time of day: "2023-05-07 00:00:00", "2023-05-07T08:00".
    let s = s.split([' ', 'T']).next().unwrap_or(s);
    let bad = || {
        ParseError::new(
            "date.form",
            format!("无法识别的日期：{raw} (unrecognised date)"),
        )
    };
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') && !s.contains("..") {
        let digits_only = s.chars().all(|c| c.is_ascii_digit());
        if digits_only && s.len() == 8 {
            let y = s[..4].parse().map_err(|_| bad())?;
            let m = s[4..6].parse().map_err(|_| bad())?;
            let d = s[6..8].parse().map_err(|_| bad())?;
            return ymd(y, m, d, raw);
        }
        // Up to five digits (with an optional fraction) is an Excel serial stored as text.
        let int_len = s.split('.').next().unwrap_or("").len();
        if (1..=5).contains(&int_len) && s.matches('.').count() <= 1 {
            let serial: f64 = s.parse().map_err(|_| bad())?;
            return from_excel_serial(serial);
        }
    }
    let parts = numeric_parts(s);
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 => {
            let (y, m, d) = (
                y.parse().map_err(|_| bad())?,
                m.parse().map_err(|_| bad())?,
                d.parse().map_err(|_| bad())?,
            );
            ymd(y, m, d, raw)
        }
        _ => Err(bad()),
    }
}

/// Parse a year-month period to the first day of that month: 202305, 2023-05, 2023/5, 2023.05,
/// 2023年05月, or a full date (its month).
pub fn parse_month(raw: &str) -> Result<NaiveDate, ParseError> {
    let s = to_halfwidth(raw);
    let s = s.trim();
    let bad = || {
        ParseError::new(
            "month.form",
            format!("无法识别的年月：{raw} (unrecognised year-month)"),
        )
    };
    let month = |y: &str, m: &str| -> Result<NaiveDate, ParseError> {
        let y: i32 = y.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)
    };
    if s.len() == 6 && s.chars().all(|c| c.is_ascii_digit()) {
        return month(&s[..4], &s[4..]);
    }
    let parts = numeric_parts(s);
    match parts.as_slice() {
        [y, m] if y.len() == 4 => month(y, m),
        _ => parse_date(raw)
            .map(|d| d.with_day(1).expect("day 1 exists"))
            .map_err(|_| bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn every_date_form() {
        for raw in [
            "2023-05-07",
            "2023/5/7",
            "20230507",
            "2023.05.07",
            "2023年5月7日",
            "2023年05月07日",
            "２０２３－０５－０７",
            "2023-05-07 00:00:00",
            "45053",
            "45053.5",
        ] {
            assert_eq!(parse_date(raw).unwrap(), d(2023, 5, 7), "{raw}");
        }
    }

    #[test]
    fn excel_serials_around_the_phantom_leap_day() {
        assert_eq!(from_excel_serial(1.0).unwrap(), d(1900, 1, 1));
        assert_eq!(from_excel_serial(59.0).unwrap(), d(1900, 2, 28));
        assert_eq!(from_excel_serial(61.0).unwrap(), d(1900, 3, 1));
        assert_eq!(from_excel_serial(36526.0).unwrap(), d(2000, 1, 1));
    }

    #[test]
    fn impossible_dates_are_errors() {
        assert_eq!(parse_date("2023-02-30").unwrap_err().code, "date.invalid");
        assert_eq!(parse_date("20231340").unwrap_err().code, "date.invalid");
        assert_eq!(parse_date("去年五月").unwrap_err().code, "date.form");
        assert_eq!(parse_date("5/7/2023").unwrap_err().code, "date.form");
    }

    #[test]
    fn every_month_form() {
        for raw in [
            "202305",
            "2023-05",
            "2023/5",
            "2023.05",
            "2023年05月",
            "2023年5月",
            "2023-05-19",
        ] {
            assert_eq!(parse_month(raw).unwrap(), d(2023, 5, 1), "{raw}");
        }
        assert_eq!(parse_month("202313").unwrap_err().code, "month.form");
        assert_eq!(parse_month("23-05").unwrap_err().code, "month.form");
    }
}
