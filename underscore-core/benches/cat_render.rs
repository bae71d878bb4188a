//! `_cat/routes` and `_routes` over 10,000 routes: the time to answer, end to end through
//! `api::handle_in` (registry snapshot, column selection, sort, rendering).
//!
//! Run with: `cargo bench -p underscore-core --bench cat_render`
//! Target: under 50 ms for `GET /_cat/routes` with 10,000 routes.

mod common;

use std::time::{Duration, Instant};

use underscore_core::api::{handle_in, Request};
use underscore_core::Registry;

const ROUTES: usize = 10_000;

fn measure(reg: &Registry, label: &str, path: &str, query: &str) -> Duration {
    let req = Request::new("GET", path, query);
    let first = handle_in(reg, &req);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let mut samples: Vec<Duration> = (0..15)
        .map(|_| {
            let start = Instant::now();
            let res = handle_in(reg, &req);
            let took = start.elapsed();
            std::hint::black_box(res);
            took
        })
        .collect();
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "{label:<44} median {:>7.2} ms  min {:>7.2} ms  max {:>7.2} ms  ({} bytes)",
        median.as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        first.body.len()
    );
    median
}

fn main() {
    let reg = common::registry(ROUTES, "benches/cat_render.rs", |i, stats| {
        for _ in 0..(i % 13) {
            stats.begin();
        }
    });
    println!("{ROUTES} routes, 15 runs each after one warm-up");
    let default = measure(&reg, "GET /_cat/routes", "/_cat/routes", "");
    measure(&reg, "GET /_cat/routes?v&h=*", "/_cat/routes", "v&h=*");
    measure(
        &reg,
        "GET /_cat/routes?v&s=total:desc,path",
        "/_cat/routes",
        "v&s=total:desc,path",
    );
    measure(
        &reg,
        "GET /_cat/routes?format=json",
        "/_cat/routes",
        "format=json",
    );
    measure(&reg, "GET /_routes", "/_routes", "");
    let verdict = if default < Duration::from_millis(50) {
        "meets"
    } else {
        "MISSES"
    };
    println!("GET /_cat/routes {verdict} the 50 ms target");
}
