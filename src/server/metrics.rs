//! The few numbers an operator wants from the App, in the Prometheus text format.
//!
//! Rendered by hand rather than with prometheus-client: five metric families with small,
//! closed label sets do not need a registry, and this keeps the binary and its build
//! lean. Label values are only ever chosen by us (event names are mapped onto a closed
//! list before they get here), so a hostile sender cannot grow the label space.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the check duration histogram, in seconds.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    checks: Mutex<BTreeMap<&'static str, Histogram>>,
    api_requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    api_errors: Mutex<BTreeMap<&'static str, u64>>,
    deploy_api: Mutex<BTreeMap<(&'static str, String), u64>>,
    in_flight: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a counter lock leaves the counter valid; keep counting.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn delivery(&self, event: &'static str, outcome: &'static str) {
        *lock(&self.deliveries).entry((event, outcome)).or_default() += 1;
    }

    /// A finished check: `conclusion` is `success`, `failure` or `error` (no check run
    /// could be written at all).
    pub fn check(&self, conclusion: &'static str, took: Duration) {
        let mut checks = lock(&self.checks);
        let h = checks.entry(conclusion).or_default();
        let secs = took.as_secs_f64();
        for (i, upper) in BUCKETS.iter().enumerate() {
            if secs <= *upper {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// One HTTP exchange with the GitHub API (`status` 0: no answer).
    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        *lock(&self.api_requests)
            .entry((endpoint, status))
            .or_default() += 1;
    }

    /// A GitHub API call that failed for good, after retries.
    pub fn api_error(&self, endpoint: &'static str) {
        *lock(&self.api_errors).entry(endpoint).or_default() += 1;
    }

    /// One request to the deploy API, by intent and the answer's `outcome`.
    pub fn deploy_api(&self, intent: &'static str, outcome: &str) {
        *lock(&self.deploy_api)
            .entry((intent, outcome.to_string()))
            .or_default() += 1;
    }

    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        header(
            w,
            "gitops_render_webhook_deliveries_total",
            "Webhook deliveries by event and outcome.",
            "counter",
        );
        for ((event, outcome), n) in lock(&self.deliveries).iter() {
            let _ = writeln!(
                w,
                "gitops_render_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        header(
            w,
            "gitops_render_check_duration_seconds",
            "Time from starting a pull request check to its completed check run, by conclusion.",
            "histogram",
        );
        for (conclusion, h) in lock(&self.checks).iter() {
            for (upper, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    w,
                    "gitops_render_check_duration_seconds_bucket{{conclusion=\"{conclusion}\",le=\"{upper}\"}} {n}"
                );
            }
            let _ = writeln!(
                w,
                "gitops_render_check_duration_seconds_bucket{{conclusion=\"{conclusion}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                w,
                "gitops_render_check_duration_seconds_sum{{conclusion=\"{conclusion}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                w,
                "gitops_render_check_duration_seconds_count{{conclusion=\"{conclusion}\"}} {}",
                h.count
            );
        }
        header(
            w,
            "gitops_render_checks_in_flight",
            "Pull request checks accepted and not yet finished.",
            "gauge",
        );
        let _ = writeln!(
            w,
            "gitops_render_checks_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        header(
            w,
            "gitops_render_github_api_requests_total",
            "HTTP exchanges with the GitHub API by endpoint and status (0: no answer).",
            "counter",
        );
        for ((endpoint, status), n) in lock(&self.api_requests).iter() {
            let _ = writeln!(
                w,
                "gitops_render_github_api_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        header(
            w,
            "gitops_render_github_api_errors_total",
            "GitHub API calls that failed after retries, by endpoint.",
            "counter",
        );
        for (endpoint, n) in lock(&self.api_errors).iter() {
            let _ = writeln!(
                w,
                "gitops_render_github_api_errors_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        header(
            w,
            "gitops_render_deploy_api_requests_total",
            "Deploy API requests by intent and outcome (committed, denied, unauthorized...).",
            "counter",
        );
        for ((intent, outcome), n) in lock(&self.deploy_api).iter() {
            let _ = writeln!(
                w,
                "gitops_render_deploy_api_requests_total{{intent=\"{intent}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out
    }
}

fn header(w: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.check("success", Duration::from_millis(70));
        m.check("success", Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains("le=\"0.05\"} 0"));
        assert!(text.contains("le=\"0.1\"} 1"));
        assert!(text.contains("le=\"5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(
            text.contains("gitops_render_check_duration_seconds_count{conclusion=\"success\"} 2")
        );
    }
}
