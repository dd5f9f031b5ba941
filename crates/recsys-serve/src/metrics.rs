//! Request counts, errors and a latency histogram per endpoint, as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Endpoint {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    /// Cumulative counts per bucket of [`BUCKETS`], then +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

/// The server's counters (one lock: an update is a few additions).
#[derive(Default)]
pub struct Metrics {
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
}

impl Metrics {
    pub fn record(&self, endpoint: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(endpoint.to_string()).or_default();
        *e.by_status.entry(status).or_default() += 1;
        let b = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        e.buckets[b] += 1;
        e.sum_seconds += secs;
        e.count += 1;
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let map = self
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP recsys_requests_total Requests by endpoint and status."
        );
        let _ = writeln!(s, "# TYPE recsys_requests_total counter");
        for (name, e) in &map {
            for (status, n) in &e.by_status {
                let _ = writeln!(
                    s,
                    "recsys_requests_total{{endpoint=\"{name}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP recsys_errors_total Requests answered 4xx or 5xx."
        );
        let _ = writeln!(s, "# TYPE recsys_errors_total counter");
        for (name, e) in &map {
            let errors: u64 = e
                .by_status
                .iter()
                .filter(|(c, _)| **c >= 400)
                .map(|(_, n)| n)
                .sum();
            let _ = writeln!(s, "recsys_errors_total{{endpoint=\"{name}\"}} {errors}");
        }
        let _ = writeln!(s, "# HELP recsys_request_seconds Request latency.");
        let _ = writeln!(s, "# TYPE recsys_request_seconds histogram");
        for (name, e) in &map {
            let mut cumulative = 0;
            for (k, n) in e.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS.get(k).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    s,
                    "recsys_request_seconds_bucket{{endpoint=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                s,
                "recsys_request_seconds_sum{{endpoint=\"{name}\"}} {}",
                e.sum_seconds
            );
            let _ = writeln!(
                s,
                "recsys_request_seconds_count{{endpoint=\"{name}\"}} {}",
                e.count
            );
        }
        s
    }
}
