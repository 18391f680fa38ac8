//! How fresh a delivered file is: stated by the mapping (a date, a pattern over the file name, or
//! the latest date in a column), else the extract date or month departments put in the file name
//! (`养老金发放明细_202406.csv`, `火化登记_20240630.xlsx`), else — a guess, reported as such — the
//! file's modification time, which copying resets.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::mapping::AsOf;

/// Where a file's as-of date came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The mapping states it (a fixed date or a pattern over the file name).
    Stated,
    /// The latest date in the column the mapping names.
    Column,
    /// A date or month found in the file name.
    FileName,
    /// The file's modification time: not stated, and copying resets it.
    Modified,
    /// A live source (database, API) read as it is at the time of the pull.
    Pulled,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Stated => "stated",
            Basis::Column => "column",
            Basis::FileName => "file_name",
            Basis::Modified => "modified",
            Basis::Pulled => "pulled",
        }
    }
}

/// Read `text` with a chrono format; a format without a day reads a month (its last day).
pub fn parse_with(format: &str, text: &str) -> Option<NaiveDate> {
    if format.contains("%d") || format.contains("%e") || format.contains("%F") {
        return NaiveDate::parse_from_str(text, format).ok();
    }
    let first = NaiveDate::parse_from_str(&format!("{text}01"), &format!("{format}%d")).ok()?;
    month_end(first)
}

fn month_end(first: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = (first.year(), first.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }?;
    next.pred_opt()
}

/// The as-of date of a file before it is read, when the mapping or the name tells it.
/// `Column` as-of dates are known only after the read; `None` then.
pub fn before_read(rel: &str, stated: &AsOf) -> Option<(NaiveDate, Basis)> {
    let name = rel.rsplit(['/', '\\']).next().unwrap_or(rel);
    match stated {
        AsOf::Fixed(d) => Some((*d, Basis::Stated)),
        AsOf::FileName { pattern, format } => pattern
            .captures(name)
            .and_then(|c| c.get(1))
            .and_then(|m| parse_with(format, m.as_str()))
            .map(|d| (d, Basis::Stated)),
        AsOf::Column(_) => None,
        AsOf::Auto => for_file(rel, None).map(|d| (d, Basis::FileName)),
    }
}
/// The date in a file name: the last run of 8 digits forming a valid date (YYYYMMDD), else the
/// last run of 6 digits forming a month (YYYYMM, meaning its last day).
pub fn from_file_name(rel: &str) -> Option<NaiveDate> {
    let name = rel.rsplit(['/', '\\']).next().unwrap_or(rel);
    let runs: Vec<&str> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .collect();
    let date = runs.iter().rev().filter(|r| r.len() == 8).find_map(|r| {
        NaiveDate::parse_from_str(r, "%Y%m%d")
            .ok()
            .filter(|d| (1990..=2100).contains(&d.year()))
    });
    date.or_else(|| {
        runs.iter().rev().filter(|r| r.len() == 6).find_map(|r| {
            let y: i32 = r[..4].parse().ok()?;
            let m: u32 = r[4..].parse().ok()?;
            let first = NaiveDate::from_ymd_opt(y, m, 1).filter(|_| (1990..=2100).contains(&y))?;
            let next = if m == 12 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(y, m + 1, 1)
            }?;
            Some(next.pred_opt().unwrap_or(first))
        })
    })
}

/// The as-of date of a delivered file: a date or month in its name; else the end of a year in its
/// name (`火化登记_2025.xlsx`), but never later than the delivery; else the delivery date.
pub fn for_file(rel: &str, delivered: Option<NaiveDate>) -> Option<NaiveDate> {
    from_file_name(rel).or_else(|| {
        let name = rel.rsplit(['/', '\\']).next().unwrap_or(rel);
        let year = name
            .split(|c: char| !c.is_ascii_digit())
            .filter(|r| r.len() == 4)
            .filter_map(|r| r.parse::<i32>().ok())
            .rfind(|y| (1990..=2100).contains(y));
        match (
            year.and_then(|y| NaiveDate::from_ymd_opt(y, 12, 31)),
            delivered,
        ) {
            (Some(end), Some(d)) => Some(end.min(d)),
            (Some(end), None) => Some(end),
            (None, d) => d,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_months_in_names() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            from_file_name("民政/火化登记_20240630.xlsx"),
            Some(d(2024, 6, 30))
        );
        assert_eq!(
            from_file_name("人社/养老金发放明细_202402.csv"),
            Some(d(2024, 2, 29))
        );
        assert_eq!(from_file_name("卫健/death/page-0001.json"), None);
        assert_eq!(from_file_name("公安/户籍人口.csv"), None);
        let delivered = Some(d(2026, 1, 5));
        assert_eq!(
            for_file("民政/殡葬火化登记_2025.xlsx", delivered),
            Some(d(2025, 12, 31))
        );
        assert_eq!(
            for_file("民政/殡葬火化登记_2026.xlsx", delivered),
            Some(d(2026, 1, 5)),
            "never after delivery"
        );
        assert_eq!(
            for_file("卫健/新农合参合登记_2014-2016.csv", delivered),
            Some(d(2016, 12, 31))
        );
        assert_eq!(
            for_file("卫健/死亡医学证明/page-0001.json", delivered),
            delivered
        );
    }
}
