//! The routes the benchmarks read: annotated routes with one or two methods and a path pattern
//! each, spread over seven handler modules, as an application's would be.

use std::time::{Duration, Instant};

use underscore_core::api::{handle_in, Request};
use underscore_core::stats::RouteStats;
use underscore_core::{Registry, RouteMeta, RouteState};

/// A registry of `routes` annotated routes declared in `file`; `fill` gives route `i` its
/// statistics.
// `tasks_storm` builds its registry from `metas`, whose routes its tasks name.
#[allow(dead_code)]
pub(crate) fn registry(
    routes: usize,
    file: &'static str,
    fill: impl Fn(usize, &RouteStats),
) -> Registry {
    Registry::from_routes(metas(routes, file, fill))
}

/// The routes of [`registry`], for a benchmark that also needs them (its tasks name them).
pub(crate) fn metas(
    routes: usize,
    file: &'static str,
    fill: impl Fn(usize, &RouteStats),
) -> Vec<&'static RouteMeta> {
    (0..routes)
        .map(|i| {
            let meta = RouteMeta {
                name: Box::leak(format!("route_{i:05}").into_boxed_str()),
                handler: Box::leak(
                    format!("bench::api::v{}::route_{i:05}", i % 7).into_boxed_str(),
                ),
                methods: if i % 3 == 0 {
                    &["GET", "HEAD"]
                } else {
                    &["POST"]
                },
                paths: Box::leak(
                    vec![&*Box::leak(
                        format!("/api/v{}/things/{i}/{{id}}", i % 7).into_boxed_str(),
                    )]
                    .into_boxed_slice(),
                ),
                file,
                line: 10 + i as u32,
                doc: "A route of the benchmark.",
                state: RouteState::new(),
            };
            fill(i, &meta.state.stats);
            &*Box::leak(Box::new(meta))
        })
        .collect()
}

/// Answers `req` from `reg` once (it must succeed), then `samples` times more, timed; prints
/// `label`, the median, min and max, and what `describe` says of the first answer's body;
/// returns the median.
pub(crate) fn measure(
    reg: &Registry,
    req: &Request<'_>,
    samples: usize,
    label: &str,
    describe: impl Fn(&[u8]) -> String,
) -> Duration {
    let first = handle_in(reg, req);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            let res = handle_in(reg, req);
            let took = start.elapsed();
            std::hint::black_box(res);
            took
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{label:<44} median {:>7.2} ms  min {:>7.2} ms  max {:>7.2} ms  ({})",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        describe(&first.body)
    );
    median
}
