//! `_cat/routes` and `_routes` over 10,000 routes: the time to answer, end to end through
//! `api::handle_in` (registry snapshot, column selection, sort, rendering).
//!
//! Run with: `cargo bench -p underscore-core --bench cat_render`
//! Target: under 50 ms for `GET /_cat/routes` with 10,000 routes.

mod common;

use std::time::Duration;

use underscore_core::api::Request;
use underscore_core::Registry;

const ROUTES: usize = 10_000;

fn measure(reg: &Registry, label: &str, path: &str, query: &str) -> Duration {
    common::measure(reg, &Request::new("GET", path, query), 15, label, |body| {
        format!("{} bytes", body.len())
    })
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
