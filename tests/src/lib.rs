//! End-to-end tests live in `tests/`.

/// The Rust snippets of the README and of the guide (`docs/`), compiled as doc tests (and run,
/// unless marked `no_run`), so that a renamed API breaks `cargo test`. `tests/docs.rs` checks
/// that every page of the guide is listed here.
#[cfg(doctest)]
mod markdown {
    #[doc = include_str!("../../README.md")]
    mod readme {}
    #[doc = include_str!("../../docs/README.md")]
    mod docs_readme {}
    #[doc = include_str!("../../docs/benchmarks.md")]
    mod benchmarks {}
    #[doc = include_str!("../../docs/cli.md")]
    mod cli {}
    #[doc = include_str!("../../docs/dashboard.md")]
    mod dashboard {}
    #[doc = include_str!("../../docs/fleet-settings.md")]
    mod fleet_settings {}
    #[doc = include_str!("../../docs/health.md")]
    mod health {}
    #[doc = include_str!("../../docs/load-shedding.md")]
    mod load_shedding {}
    #[doc = include_str!("../../docs/logging.md")]
    mod logging {}
    #[doc = include_str!("../../docs/plain-routes.md")]
    mod plain_routes {}
    #[doc = include_str!("../../docs/routes-and-cat.md")]
    mod routes_and_cat {}
    #[doc = include_str!("../../docs/security.md")]
    mod security {}
    #[doc = include_str!("../../docs/settings.md")]
    mod settings {}
    #[doc = include_str!("../../docs/setup.md")]
    mod setup {}
    #[doc = include_str!("../../docs/slow-requests.md")]
    mod slow_requests {}
    #[doc = include_str!("../../docs/statistics-and-prometheus.md")]
    mod statistics_and_prometheus {}
    #[doc = include_str!("../../docs/tasks.md")]
    mod tasks {}
}
