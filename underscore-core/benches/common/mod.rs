//! The routes the benchmarks read: annotated routes with one or two methods and a path pattern
//! each, spread over seven handler modules, as an application's would be.

use underscore_core::stats::RouteStats;
use underscore_core::{Registry, RouteMeta, RouteState};

/// A registry of `routes` annotated routes declared in `file`; `fill` gives route `i` its
/// statistics.
pub(crate) fn registry(
    routes: usize,
    file: &'static str,
    fill: impl Fn(usize, &RouteStats),
) -> Registry {
    let metas = (0..routes).map(|i| {
        let meta = RouteMeta {
            name: Box::leak(format!("route_{i:05}").into_boxed_str()),
            handler: Box::leak(format!("bench::api::v{}::route_{i:05}", i % 7).into_boxed_str()),
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
    });
    Registry::from_routes(metas)
}
