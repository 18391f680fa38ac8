//! How fresh each source is: when it was last pulled or delivered, the date its data is as of,
//! the lag behind today, and whether it is later than the cadence its mapping expects (stale).
//! Read from the commit log and the pull status alone, so the data page, `/metrics` and every
//! hit's evidence say the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::Snapshot;
use crate::pulls::{PULLS_DIR, read_status};

/// An as-of date ends at the city's midnight.
use hedui_model::CITY_UTC_OFFSET_HOURS;

#[derive(Debug, Clone, Serialize)]
pub struct SourceFreshness {
    pub source: String,
    /// Pulled by hedui (a database or an API) rather than delivered as files.
    pub live: bool,
    /// Live: the last successful pull; files: the newest batch's commit.
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Failed pulls since the last success, and in all.
    pub failures: u32,
    pub failures_total: u64,
    /// A pull is running (or was killed while running).
    pub running: bool,
    /// The newest as-of date of the source's live batches.
    pub as_of: Option<NaiveDate>,
    /// Days between the as-of date and today in the city.
    pub lag_days: Option<i64>,
    /// How often the mapping expects new data, in seconds.
    pub cadence_secs: Option<u64>,
    /// Later than its cadence: the data may be out of date.
    pub stale: bool,
}

impl SourceFreshness {
    /// A sentence for the evidence of a hit that relies on a stale source.
    pub fn warning(&self) -> Option<String> {
        self.stale.then(|| {
            format!(
                "数据源 {} 已超过预期更新周期（{}）未更新，数据截至 {} (the source is later than its cadence)",
                self.source,
                self.cadence_secs.map_or(String::new(), cadence_text),
                self.as_of.map_or("未知".to_string(), |d| d.to_string())
            )
        })
    }
}

fn cadence_text(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} 天", s / 86_400),
        s if s % 3_600 == 0 => format!("{} 小时", s / 3_600),
        s => format!("{} 分钟", s.div_ceil(60)),
    }
}

/// Every source the lake has batches or pull attempts of, as of `now`.
pub fn freshness(snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<SourceFreshness> {
    let mut by_source: BTreeMap<String, Vec<&crate::Commit>> = BTreeMap::new();
    for c in snapshot.live_commits() {
        by_source.entry(c.source.clone()).or_default().push(c);
    }
    if let Ok(dir) = std::fs::read_dir(snapshot.root().join(PULLS_DIR)) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(source) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            {
                by_source.entry(source.to_string()).or_default();
            }
        }
    }
    let today = (now + Duration::hours(CITY_UTC_OFFSET_HOURS)).date_naive();
    by_source
        .into_iter()
        .map(|(source, commits)| {
            let status = read_status(snapshot.root(), &source);
            let newest = commits.iter().max_by_key(|c| c.seq);
            let live = status.last_attempt_at.is_some() || commits.iter().any(|c| c.pull.is_some());
            let as_of = commits.iter().filter_map(|c| c.as_of).max();
            let cadence_secs = status.cadence_secs.or(newest.and_then(|c| c.cadence_secs));
            let last_success_at = if live {
                status.last_success_at.or(newest.map(|c| c.committed_at))
            } else {
                newest.map(|c| c.committed_at)
            };
            // Live data is as fresh as its last pull; delivered data as its as-of date.
            let reference = if live {
                last_success_at
            } else {
                as_of
                    .and_then(|d| d.succ_opt())
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc() - Duration::hours(CITY_UTC_OFFSET_HOURS))
                    .or(last_success_at)
            };
            let stale = match (cadence_secs, reference) {
                (Some(c), Some(r)) => now - r > Duration::seconds(c as i64),
                (Some(_), None) => true,
                _ => false,
            };
            SourceFreshness {
                source,
                live,
                last_success_at,
                last_attempt_at: status.last_attempt_at,
                last_error: status.last_error,
                failures: status.failures,
                failures_total: status.failures_total,
                running: status.running_since.is_some(),
                as_of,
                lag_days: as_of.map(|d| (today - d).num_days()),
                cadence_secs,
                stale,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitMeta, Counts, LakeWriter};

    fn commit(lake: &mut LakeWriter, source: &str, as_of: NaiveDate, cadence_secs: Option<u64>) {
        let batch = lake.begin(source, "f.csv");
        let meta = CommitMeta {
            fingerprint: format!("{source}{as_of}"),
            counts: Counts::default(),
            as_of: Some(as_of),
            cadence_secs,
            ..Default::default()
        };
        lake.commit(batch, meta).unwrap();
    }

    #[test]
    fn a_source_later_than_its_cadence_is_stale_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeWriter::open(dir.path()).unwrap();
        let now = Utc::now();
        let today = (now + Duration::hours(CITY_UTC_OFFSET_HOURS)).date_naive();
        commit(
            &mut lake,
            "monthly_late",
            today - Duration::days(40),
            Some(31 * 86_400),
        );
        commit(
            &mut lake,
            "monthly_fresh",
            today - Duration::days(3),
            Some(31 * 86_400),
        );
        commit(&mut lake, "no_cadence", today - Duration::days(400), None);
        let all = freshness(lake.snapshot(), now);
        let of = |s: &str| all.iter().find(|f| f.source == s).unwrap();
        assert!(of("monthly_late").stale);
        assert_eq!(of("monthly_late").lag_days, Some(40));
        assert!(of("monthly_late").warning().unwrap().contains("31 天"));
        assert!(!of("monthly_fresh").stale);
        assert!(of("monthly_fresh").warning().is_none());
        assert!(
            !of("no_cadence").stale,
            "no cadence stated, nothing to be late for"
        );
    }
}
