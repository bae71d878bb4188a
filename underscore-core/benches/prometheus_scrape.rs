//! `GET /_prometheus/metrics` over 1,000 routes: the time of a scrape, end to end through
//! `api::handle_in` (registry snapshot with histograms, task registry, encoding).
//!
//! Run with: `cargo bench -p underscore-core --bench prometheus_scrape`
//! Target: under 20 ms a scrape with 1,000 routes.

mod common;

use std::time::Duration;

use underscore_core::api::Request;
use underscore_core::stats::Outcome;
use underscore_core::Registry;

const ROUTES: usize = 1_000;

fn measure(reg: &Registry, label: &str, accept: Option<&str>) -> Duration {
    let req = Request::new("GET", "/_prometheus/metrics", "").with_accept(accept);
    common::measure(reg, &req, 25, label, |body| {
        let lines = body.iter().filter(|&&b| b == b'\n').count();
        format!("{} bytes, {lines} lines", body.len())
    })
}

fn main() {
    // Latencies spread over the histogram, and every outcome, so no bucket is empty.
    let reg = common::registry(ROUTES, "benches/prometheus_scrape.rs", |i, stats| {
        for n in 0..(50 + i % 50) as u64 {
            stats.begin();
            stats.record_micros(10 + (n * 7919 + i as u64 * 104_729) % 3_000_000);
            stats.end(Outcome::ALL[(n as usize + i) % Outcome::ALL.len()]);
        }
    });
    println!("{ROUTES} routes, 25 scrapes each after one warm-up");
    let text = measure(&reg, "GET /_prometheus/metrics (text 0.0.4)", None);
    let om = measure(
        &reg,
        "GET /_prometheus/metrics (OpenMetrics)",
        Some("application/openmetrics-text"),
    );
    let verdict = if text.max(om) < Duration::from_millis(20) {
        "meets"
    } else {
        "MISSES"
    };
    println!("a scrape of {ROUTES} routes {verdict} the 20 ms target");
}
