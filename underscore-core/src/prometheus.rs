//! The per-route statistics in the Prometheus text format (version 0.0.4), or in OpenMetrics
//! when the scraper asks for it: `GET /_prometheus/metrics`.
//!
//! Everything is read at scrape time from the figures the admin APIs already show (the same
//! snapshot as `_routes/stats`), and encoded with `prometheus-client` through a custom
//! [`Collector`]: the request path records nothing more for Prometheus.
//!
//! # Families
//!
//! | family | type | labels | value |
//! |---|---|---|---|
//! | `underscore_requests_total` | counter | `route`, `method`, `outcome` | requests that ended, by outcome: `served` (the app answered; the sum of the status classes), `preempted`, `shed`, `timed_out`, `interrupted`, `cancelled`, `dropped` |
//! | `underscore_responses_total` | counter | `route`, `status_class` | the app's responses by class, `1xx` .. `5xx` |
//! | `underscore_request_duration_seconds` | histogram | `route` | time to the app's response head ([`BUCKETS_MICROS`]) |
//! | `underscore_requests_in_flight` | gauge | `route` | requests in flight (`requests.active`) |
//! | `underscore_oldest_request_age_seconds` | gauge | `route` | how long the oldest in-flight request has run, 0 without one |
//! | `underscore_route_preempted` | gauge | `route` | 1 while the effective settings preempt the route (all its requests or a share), else 0 |
//! | `underscore_route_preempt_ratio` | gauge | `route` | the share of requests preempted, 0 to 1 (`preempt.percent` / 100); routes with a preempt only |
//! | `underscore_route_max_in_flight` | gauge | `route` | the effective `limits.max_in_flight`; routes with that limit only |
//! | `underscore_route_timeout_seconds` | gauge | `route` | the effective `limits.timeout`; routes with a timeout only |
//! | `underscore_route_info` | gauge | `route`, `path`, `methods` | 1, to join a route id to its path pattern |
//! | `underscore_unmatched_requests_total` | counter | `status` (`404`, `405`) | requests that matched no route, or no method: one series each, whatever the path |
//! | `underscore_health_check_status` | gauge | `check` | 1 while the health check passes, 0 while it fails (or has not run yet); only with checks |
//! | `underscore_ready` | gauge | | 1 while `/readyz` says 200, else 0 |
//! | `underscore_draining` | gauge | | 1 from the start of a drain on, else 0 |
//! | `underscore_slow_requests_total` | counter | `route`, `level` | requests the slow log logged, at the highest level they crossed (`slowlog::counts`); only once one was logged |
//! | `underscore_blocking_polls_total` | counter | `route` | timed polls longer than `blocking.threshold`; only with poll timing on |
//! | `underscore_worker_busy_ratio` | gauge | `worker` | share of the last 5 seconds the app worker spent in polls, 0 to 1; only with poll timing on, once sampled |
//!
//! The statistics are kept per route, not per method: `method` is the route's methods joined
//! with `,` (`GET`, or `GET,POST`), as `_cat/routes` shows them; no per-method figure is made
//! up. Every label value is a route id, a path pattern or a name of this module, never taken
//! from a request, so the number of series is bounded by the number of routes.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::api::routes::RouteInfo;
use crate::stats::{Latencies, Outcome, StatsSnapshot};
use crate::Registry;

/// The upper bounds (`le`) of the duration histogram's buckets, in microseconds: the bucket
/// boundaries of the internal histogram nearest to the usual 1, 2.5, 5, 10, 25, 50, 100,
/// 250 and 500 ms and 1, 2.5, 5 and 10 s (within 5%), so that every count is exact rather than
/// an estimate. A bucket counts the latencies strictly below its bound, which measured in whole
/// microseconds of a continuous time is the same as Prometheus's "at most".
pub const BUCKETS_MICROS: [u64; 13] = [
    1_024, 2_560, 5_120, 10_240, 24_576, 49_152, 98_304, 262_144, 524_288, 1_048_576, 2_621_440,
    5_242_880, 10_485_760,
];

/// The exposition format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: the default.
    Text,
    /// OpenMetrics 1.0.0 text, when `Accept` prefers `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` with a quality at least that of `text/plain` (or of a
    /// wildcard), else the text format (also for a missing header, or one accepting neither,
    /// as Prometheus's own clients do).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut open_metrics, mut text) = (0.0f64, 0.0f64);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut quality = 1.0;
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        // An unreadable quality makes the item unacceptable, not preferred.
                        quality = value
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0);
                    }
                }
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                open_metrics = open_metrics.max(quality);
            } else if ["text/plain", "text/*", "*/*"]
                .iter()
                .any(|m| media.eq_ignore_ascii_case(m))
            {
                text = text.max(quality);
            }
        }
        if open_metrics > 0.0 && open_metrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every route's metrics in `format`, read from `reg` now.
///
/// # Errors
///
/// Only if the encoder fails, which writing into a `String` does not.
pub fn encode(reg: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let routes = crate::api::routes::snapshot_with(reg, true)
        .into_iter()
        .map(RouteSample::from_info)
        .collect();
    let scrape = Scrape {
        routes,
        unmatched: [
            ("404", reg.unmatched().snapshot()),
            ("405", reg.method_not_allowed().snapshot()),
        ],
        health: HealthSample::now(),
        slow: crate::slowlog::counts()
            .into_iter()
            .map(|((route, level), n)| (route, level.as_str(), n))
            .collect(),
        poll_timing: crate::workers::poll_timing(),
        workers: crate::workers::all()
            .into_iter()
            .filter_map(|w| Some((w.index.to_string(), w.busy_ratios()[1]?)))
            .collect(),
    };
    scrape.encode(format)
}

/// What one scrape reports of one route.
#[derive(Debug, Clone)]
pub(crate) struct RouteSample {
    pub id: String,
    pub methods: String,
    pub path: String,
    pub stats: StatsSnapshot,
    pub latencies: Latencies,
    pub in_flight: u64,
    pub oldest: Duration,
    /// The share preempted, 0 to 1, with a preempt (`None`: the route is not preempted).
    pub preempt_ratio: Option<f64>,
    pub max_in_flight: Option<u32>,
    pub timeout: Option<Duration>,
}

impl RouteSample {
    fn from_info(info: RouteInfo) -> Self {
        let path = info.path();
        Self {
            methods: info.methods.join(","),
            path,
            // `snapshot_with(.., true)` always reads them; an empty histogram otherwise.
            latencies: info.latencies.map_or_else(Latencies::default, |l| *l),
            in_flight: info.active,
            // `snapshot_with(.., true)` always reads it.
            oldest: info.oldest.unwrap_or_default(),
            preempt_ratio: info.preempt.as_ref().map(|p| p.percent() / 100.0),
            max_in_flight: info.limits.as_ref().and_then(|l| l.max_in_flight),
            timeout: info
                .limits
                .as_ref()
                .and_then(|l| l.timeout.as_ref().map(|(d, _)| *d)),
            stats: info.stats,
            id: info.id,
        }
    }
}

/// The node's health at a scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthSample {
    /// Each check, and whether it passes.
    pub checks: Vec<(String, bool)>,
    pub ready: bool,
    pub draining: bool,
}

impl HealthSample {
    fn now() -> Self {
        Self {
            checks: crate::health::checks()
                .iter()
                .map(|c| {
                    let pass = c.status() == crate::health::CheckStatus::Pass;
                    (c.spec().name.clone(), pass)
                })
                .collect(),
            ready: crate::health::readiness() == crate::health::Readiness::Ready,
            draining: crate::health::is_draining(),
        }
    }
}

/// The figures of one scrape, read before encoding starts: the collector only formats them.
#[derive(Debug)]
pub(crate) struct Scrape {
    pub routes: Vec<RouteSample>,
    /// The 404 and 405 buckets.
    pub unmatched: [(&'static str, StatsSnapshot); 2],
    pub health: HealthSample,
    /// The slow log's counts: route, level, requests.
    pub slow: Vec<(String, &'static str, u64)>,
    /// Whether polls are timed (else no route has blocking polls to count).
    pub poll_timing: bool,
    /// Each app worker's index and busy share over the last 5 seconds.
    pub workers: Vec<(String, f64)>,
}

impl Scrape {
    pub(crate) fn encode(self, format: Format) -> Result<String, std::fmt::Error> {
        // A fresh registry per scrape costs one small allocation; it holds only this collector,
        // so nothing is kept between scrapes and nothing is shared with the request path.
        let lines = self.routes.len() * 40 + 16;
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::with_capacity(lines * 64);
        match format {
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
        }
        Ok(out)
    }

    /// A gauge family labelled by `route` alone: one series for each route `value` gives a
    /// number for.
    fn route_gauge<N: EncodeGaugeValue>(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        value: impl Fn(&RouteSample) -> Option<N>,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
        for r in &self.routes {
            if let Some(v) = value(r) {
                ConstGauge::new(v).encode(family.encode_family(&[("route", r.id.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// The `outcome` label values of `underscore_requests_total`, with their counts: `served`
/// (every status class), then the other outcomes by their `_routes/stats` names.
fn requests_by_outcome(stats: &StatsSnapshot) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    let served = Outcome::ALL
        .iter()
        .filter(|o| o.is_status())
        .map(|&o| stats.count(o))
        .sum();
    std::iter::once(("served", served)).chain(
        Outcome::ALL
            .iter()
            .filter(|o| !o.is_status())
            .map(|&o| (o.name(), stats.count(o))),
    )
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "underscore_requests",
            "Requests that ended, by route and outcome (served: the app answered)",
            None,
            MetricType::Counter,
        )?;
        for r in &self.routes {
            for (outcome, count) in requests_by_outcome(&r.stats) {
                let labels = [
                    ("route", r.id.as_str()),
                    ("method", r.methods.as_str()),
                    ("outcome", outcome),
                ];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "underscore_responses",
            "Responses of the app, by route and status class",
            None,
            MetricType::Counter,
        )?;
        for r in &self.routes {
            for outcome in Outcome::ALL.into_iter().filter(|o| o.is_status()) {
                let labels = [("route", r.id.as_str()), ("status_class", outcome.name())];
                ConstCounter::new(r.stats.count(outcome)).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "underscore_request_duration",
            "Time until the app's response head, by route",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for r in &self.routes {
            let count = r.latencies.count();
            let mut below = 0;
            // Per bucket, not cumulative: the encoder adds them up.
            let mut buckets: Vec<(f64, u64)> = BUCKETS_MICROS
                .iter()
                .map(|&le| {
                    let cumulative = r.latencies.count_below(le);
                    let own = cumulative - below;
                    below = cumulative;
                    (le as f64 / 1e6, own)
                })
                .collect();
            buckets.push((f64::INFINITY, count - below));
            let sum = r.latencies.sum_micros() as f64 / 1e6;
            family
                .encode_family(&[("route", r.id.as_str())])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        self.route_gauge(
            &mut encoder,
            "underscore_requests_in_flight",
            "Requests in flight, by route",
            None,
            |r| Some(r.in_flight),
        )?;
        self.route_gauge(
            &mut encoder,
            "underscore_oldest_request_age",
            "How long the oldest in-flight request of the route has run (0 without one)",
            Some(&Unit::Seconds),
            |r| Some(r.oldest.as_secs_f64()),
        )?;
        self.route_gauge(
            &mut encoder,
            "underscore_route_preempted",
            "1 while the route's effective settings preempt it, else 0",
            None,
            |r| Some(i64::from(r.preempt_ratio.is_some())),
        )?;

        // The shedding settings: a series only for the routes that have them (a missing limit is
        // no limit, which no number would say), and a family only if some route has one.
        if self.routes.iter().any(|r| r.preempt_ratio.is_some()) {
            self.route_gauge(
                &mut encoder,
                "underscore_route_preempt_ratio",
                "The share of the route's requests its effective preempt answers, 0 to 1",
                None,
                |r| r.preempt_ratio,
            )?;
        }
        if self.routes.iter().any(|r| r.max_in_flight.is_some()) {
            self.route_gauge(
                &mut encoder,
                "underscore_route_max_in_flight",
                "The route's effective limits.max_in_flight: more requests at once are shed",
                None,
                |r| r.max_in_flight.map(i64::from),
            )?;
        }
        if self.routes.iter().any(|r| r.timeout.is_some()) {
            self.route_gauge(
                &mut encoder,
                "underscore_route_timeout",
                "The route's effective limits.timeout: requests running longer are answered 504",
                Some(&Unit::Seconds),
                |r| r.timeout.map(|t| t.as_secs_f64()),
            )?;
        }

        let mut family = encoder.encode_descriptor(
            "underscore_route_info",
            "1 for every route: its path pattern and methods",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.routes {
            let labels = [
                ("route", r.id.as_str()),
                ("path", r.path.as_str()),
                ("methods", r.methods.as_str()),
            ];
            ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "underscore_unmatched_requests",
            "Requests that matched no route (404) or no method of a route (405), whatever their path",
            None,
            MetricType::Counter,
        )?;
        for (status, stats) in &self.unmatched {
            // A sum of counters that only grow, not `total - active`: those two are read at
            // different instants, so a request beginning between the reads was counted as
            // ended, and the next scrape went back.
            ConstCounter::new(stats.ended())
                .encode(family.encode_family(&[("status", *status)])?)?;
        }

        // Only with checks: a family without a series says nothing (and trips some parsers).
        if !self.health.checks.is_empty() {
            let mut family = encoder.encode_descriptor(
                "underscore_health_check_status",
                "1 while the health check passes, 0 while it fails or has not run yet",
                None,
                MetricType::Gauge,
            )?;
            for (check, pass) in &self.health.checks {
                ConstGauge::new(i64::from(*pass))
                    .encode(family.encode_family(&[("check", check.as_str())])?)?;
            }
        }
        for (name, help, value) in [
            (
                "underscore_ready",
                "1 while the node takes traffic (/readyz answers 200), else 0",
                self.health.ready,
            ),
            (
                "underscore_draining",
                "1 from the start of a drain on, else 0",
                self.health.draining,
            ),
        ] {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::from(value)).encode(family)?;
        }

        // Families without a series trip some parsers: each only once it has one.
        if !self.slow.is_empty() {
            let mut family = encoder.encode_descriptor(
                "underscore_slow_requests",
                "Requests the slow log logged, by route and the highest level they crossed",
                None,
                MetricType::Counter,
            )?;
            for (route, level, n) in &self.slow {
                let labels = [("route", route.as_str()), ("level", *level)];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        if self.poll_timing && !self.routes.is_empty() {
            let mut family = encoder.encode_descriptor(
                "underscore_blocking_polls",
                "Timed polls of the route's requests longer than blocking.threshold",
                None,
                MetricType::Counter,
            )?;
            for r in &self.routes {
                ConstCounter::new(r.stats.blocking_polls)
                    .encode(family.encode_family(&[("route", r.id.as_str())])?)?;
            }
        }
        if !self.workers.is_empty() {
            let mut family = encoder.encode_descriptor(
                "underscore_worker_busy_ratio",
                "Share of the last 5 seconds the app worker spent polling requests, 0 to 1",
                None,
                MetricType::Gauge,
            )?;
            for (worker, ratio) in &self.workers {
                ConstGauge::new(*ratio)
                    .encode(family.encode_family(&[("worker", worker.as_str())])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RouteStats;

    fn sample(id: &str, stats: &RouteStats) -> RouteSample {
        let (stats, latencies) = stats.snapshot_with_latencies();
        RouteSample {
            id: id.to_owned(),
            methods: "GET,POST".to_owned(),
            path: "/things/{id}".to_owned(),
            in_flight: stats.active,
            stats,
            latencies,
            oldest: Duration::from_millis(1500),
            preempt_ratio: Some(0.25),
            max_in_flight: Some(8),
            timeout: Some(Duration::from_millis(2500)),
        }
    }

    fn scrape(routes: Vec<RouteSample>, format: Format) -> String {
        let empty = RouteStats::new().snapshot();
        Scrape {
            routes,
            unmatched: [("404", empty.clone()), ("405", empty)],
            health: HealthSample::default(),
            slow: Vec::new(),
            poll_timing: false,
            workers: Vec::new(),
        }
        .encode(format)
        .unwrap()
    }

    #[test]
    fn every_bucket_bound_is_an_internal_boundary() {
        for le in BUCKETS_MICROS {
            assert!(Latencies::is_boundary(le), "{le} µs is not a boundary");
        }
        assert!(BUCKETS_MICROS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn accept_headers_choose_the_format() {
        let om = Format::OpenMetrics;
        let text = Format::Text;
        for (accept, want) in [
            (None, text),
            (Some(""), text),
            (Some("*/*"), text),
            (Some("text/plain; version=0.0.4"), text),
            (Some("application/json"), text),
            (Some("application/openmetrics-text"), om),
            (Some("Application/OpenMetrics-Text; version=1.0.0"), om),
            // Prometheus 2's default.
            (
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                om,
            ),
            (Some("application/openmetrics-text;q=0.2, text/plain"), text),
            (Some("application/openmetrics-text;q=0"), text),
            (Some("application/openmetrics-text;q=nope"), text),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn label_values_are_escaped_in_both_formats() {
        // Route ids cannot hold these characters (see `registry::is_valid_id`), but paths and
        // ids still go through the encoder's escaping.
        let stats = RouteStats::new();
        let id = "quote\" back\\slash new\nline";
        for format in [Format::Text, Format::OpenMetrics] {
            let out = scrape(vec![sample(id, &stats)], format);
            assert!(
                out.contains(r#"route="quote\" back\\slash new\nline""#),
                "{out}"
            );
            assert!(!out.contains("new\nline"), "a raw newline in {out}");
        }
    }

    #[test]
    fn route_ids_never_need_escaping() {
        for bad in ["a\"b", "a\\b", "a\nb"] {
            assert!(!crate::registry::is_valid_id(bad), "{bad:?}");
        }
        // Ids derived from patterns (plain actix routes) replace such characters.
        for pattern in ["/q\"uote", "/back\\slash", "/new\nline/{id}"] {
            let id = crate::registry::id_from_pattern(pattern);
            assert!(crate::registry::is_valid_id(&id), "{pattern:?} gave {id:?}");
        }
    }

    #[test]
    fn text_and_open_metrics_differ_as_the_formats_do() {
        let stats = RouteStats::new();
        stats.begin();
        stats.record_micros(1_500);
        stats.end(Outcome::Status(200));
        let text = scrape(vec![sample("hello", &stats)], Format::Text);
        assert!(
            text.contains("# TYPE underscore_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains(
            "underscore_requests_total{route=\"hello\",method=\"GET,POST\",outcome=\"served\"} 1\n"
        ));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains(
                "underscore_request_duration_seconds_bucket{route=\"hello\",le=\"0.001024\"} 0\n\
             underscore_request_duration_seconds_bucket{route=\"hello\",le=\"0.00256\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("underscore_request_duration_seconds_sum{route=\"hello\"} 0.0015\n"));
        assert!(text.contains("underscore_request_duration_seconds_count{route=\"hello\"} 1\n"));
        assert!(text.contains("underscore_oldest_request_age_seconds{route=\"hello\"} 1.5\n"));
        assert!(text.contains("underscore_route_preempted{route=\"hello\"} 1\n"));

        let om = scrape(vec![sample("hello", &stats)], Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE underscore_requests counter\n"), "{om}");
        assert!(
            om.contains("# UNIT underscore_request_duration_seconds seconds\n"),
            "{om}"
        );
    }

    /// The value of the series `name{labels}` in a text-format scrape.
    fn series(text: &str, name_and_labels: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name_and_labels} in {text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn the_unmatched_counter_never_goes_backwards() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let reg: &'static Registry = Box::leak(Box::new(Registry::from_routes([])));
        static DONE: AtomicBool = AtomicBool::new(false);
        // 404s that begin in bursts and end a while later: a scrape reading the counters while
        // a burst begins must not count those requests as ended before they are.
        let workers: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let stats = reg.unmatched();
                    while !DONE.load(Ordering::Relaxed) {
                        for _ in 0..500 {
                            stats.begin();
                        }
                        std::thread::sleep(Duration::from_micros(300));
                        for _ in 0..500 {
                            stats.end(Outcome::Status(404));
                        }
                        std::thread::sleep(Duration::from_micros(300));
                    }
                })
            })
            .collect();
        let mut last = 0;
        let mut backwards = None;
        for _ in 0..5_000 {
            let text = encode(reg, Format::Text).unwrap();
            let now = series(&text, "underscore_unmatched_requests_total{status=\"404\"}");
            if now < last {
                backwards = Some((last, now));
                break;
            }
            last = now;
        }
        DONE.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(backwards, None, "the counter went backwards (from, to)");
        assert!(last > 0, "no request was counted");
    }

    #[test]
    fn requests_by_outcome_covers_every_outcome_once() {
        let stats = RouteStats::new();
        for outcome in Outcome::ALL {
            stats.begin();
            stats.end(outcome);
        }
        let snap = stats.snapshot();
        let by: Vec<(&str, u64)> = requests_by_outcome(&snap).collect();
        let served = Outcome::ALL.iter().filter(|o| o.is_status()).count() as u64;
        assert_eq!(by[0], ("served", served));
        assert_eq!(by.len(), 1 + Outcome::ALL.len() - served as usize);
        assert_eq!(by.iter().map(|(_, n)| n).sum::<u64>(), snap.total);
    }
}
