//! Prometheus metrics, kept by hand: a few counters and one latency histogram.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    n: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Add one to `name{labels}`; labels are already formatted (`route="/x",status="200"`).
    pub fn inc(&self, name: &str, labels: String) {
        *self
            .counters
            .lock()
            .expect("metrics lock")
            .entry((name.to_string(), labels))
            .or_default() += 1;
    }

    pub fn observe(&self, route: &str, seconds: f64) {
        let mut map = self.latency.lock().expect("metrics lock");
        let h = map.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.n += 1;
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("metrics lock");
        let mut last = "";
        for ((name, labels), v) in counters.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        let _ = writeln!(out, "# TYPE hedui_http_request_duration_seconds histogram");
        for (route, h) in self.latency.lock().expect("metrics lock").iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "hedui_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "hedui_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.n
            );
            let _ = writeln!(
                out,
                "hedui_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "hedui_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.n
            );
        }
        out
    }
}

/// How one series reads its value off a source's freshness (none: not exported for it).
type SourceValue = fn(&hedui_lake::SourceFreshness, chrono::DateTime<chrono::Utc>) -> Option<f64>;

/// Gauges and counters of each source's freshness and pulls (from the lake, at each scrape).
pub fn render_sources(
    sources: &[hedui_lake::SourceFreshness],
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut out = String::new();
    let series: [(&str, &str, SourceValue); 5] = [
        ("hedui_source_stale", "gauge", |f, _| {
            Some(if f.stale { 1.0 } else { 0.0 })
        }),
        ("hedui_source_lag_days", "gauge", |f, _| {
            f.lag_days.map(|d| d as f64)
        }),
        ("hedui_source_seconds_since_success", "gauge", |f, now| {
            f.last_success_at
                .map(|t| (now - t).num_milliseconds() as f64 / 1000.0)
        }),
        ("hedui_source_pull_failures", "gauge", |f, _| {
            f.live.then_some(f.failures as f64)
        }),
        ("hedui_source_pull_failures_total", "counter", |f, _| {
            f.live.then_some(f.failures_total as f64)
        }),
    ];
    for (name, kind, value) in series {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for f in sources {
            if let Some(v) = value(f, now) {
                let _ = writeln!(out, "{name}{{source=\"{}\"}} {v}", f.source);
            }
        }
    }
    out
}
