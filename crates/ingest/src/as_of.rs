//! How fresh a delivered file is: departments put the extract date or month in the file name
//! (`养老金发放明细_202406.csv`, `火化登记_20240630.xlsx`); otherwise the delivery date counts.

use chrono::{Datelike, NaiveDate};

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
    }
}
