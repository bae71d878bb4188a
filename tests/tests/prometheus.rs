//! `GET /_prometheus/metrics` end to end: scraped over the admin socket with curl (and on the
//! app's port through `metrics_handler`), parsed with an independent parser
//! (`openmetrics-parser`, not the crate that encodes it), and every family's type, label names
//! and values checked against `GET /_routes/stats`, in both the text format and OpenMetrics.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use actix_web::{get, web, HttpResponse, Responder};
use common::{curl_unix, TestServer};
use openmetrics_parser::{
    MetricsExposition, OpenMetricsType, OpenMetricsValue, PrometheusType, PrometheusValue,
    RenderableMetricValue,
};
use serde_json::Value;
use underscore_actix::underscore_route;

/// Answers 200.
#[underscore_route]
#[get("/ok")]
async fn ok() -> impl Responder {
    "ok"
}

/// Answers the status asked for.
#[underscore_route]
#[get("/status/{code}")]
async fn answer(path: web::Path<u16>) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(*path).unwrap()).finish()
}

/// Waits, to be interrupted (or to stay in flight).
#[underscore_route]
#[get("/hold")]
async fn hold() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    "held"
}

/// Preempted by a setting.
#[underscore_route]
#[get("/pre")]
async fn pre() -> impl Responder {
    "not preempted"
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(ok)
        .service(answer)
        .service(hold)
        .service(pre)
        .route("/plainx", web::get().to(|| async { "plain" }))
        .route("/metrics", underscore_actix::metrics_handler());
}

/// A value of one series, whatever the format.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Number(f64),
    Histogram {
        /// `(le, cumulative count)`, `+Inf` last.
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
}

impl Val {
    fn number(&self) -> f64 {
        match self {
            Val::Number(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }
}

/// One family: type, label names, series by label set.
#[derive(Debug)]
struct Family {
    kind: &'static str,
    labels: Vec<String>,
    series: BTreeMap<Vec<(String, String)>, Val>,
}

type Families = BTreeMap<String, Family>;

fn labelset(names: &[String], values: Vec<(&String, &String)>) -> Vec<(String, String)> {
    assert_eq!(
        values.iter().map(|(n, _)| (*n).clone()).collect::<Vec<_>>(),
        names,
        "a series' label names differ from its family's"
    );
    let mut out: Vec<(String, String)> = values
        .into_iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    out.sort();
    out
}

fn histogram(h: &openmetrics_parser::HistogramValue) -> Val {
    Val::Histogram {
        buckets: h
            .buckets
            .iter()
            .map(|b| (b.upper_bound, b.count.as_f64()))
            .collect(),
        sum: h.sum.as_ref().expect("a _sum").as_f64(),
        count: h.count.expect("a _count") as f64,
    }
}

/// The families of a parsed exposition, whatever the format: `kind` gives a family's type and
/// what to append to its name to compare it by, `value` a sample's value.
fn families<T: Clone, V: RenderableMetricValue + Clone>(
    exposition: MetricsExposition<T, V>,
    kind: impl Fn(&str, &T) -> (&'static str, &'static str),
    value: impl Fn(&str, &V) -> Val,
) -> Families {
    exposition
        .families
        .into_iter()
        .map(|(name, family)| {
            let (kind, suffix) = kind(&name, &family.family_type);
            let name = name + suffix;
            let labels = family.get_label_names().to_vec();
            let series = family
                .iter_samples()
                .map(|s| {
                    let set = s.get_labelset().unwrap();
                    let key = labelset(&labels, set.iter().collect());
                    (key, value(&name, &s.value))
                })
                .collect();
            (
                name,
                Family {
                    kind,
                    labels,
                    series,
                },
            )
        })
        .collect()
}

/// Parses the text format (0.0.4).
fn parse_text(body: &str) -> Families {
    let exposition = openmetrics_parser::prometheus::parse_prometheus(body)
        .unwrap_or_else(|e| panic!("not valid text format ({e:?}):\n{body}"));
    families(
        exposition,
        |name, family_type| match family_type {
            PrometheusType::Counter => ("counter", ""),
            PrometheusType::Gauge => ("gauge", ""),
            PrometheusType::Histogram => ("histogram", ""),
            other => panic!("{name}: unexpected type {other:?}"),
        },
        |name, value| match value {
            PrometheusValue::Counter(c) => Val::Number(c.value.as_f64()),
            PrometheusValue::Gauge(n) => Val::Number(n.as_f64()),
            PrometheusValue::Histogram(h) => histogram(h),
            other => panic!("{name}: unexpected value {other:?}"),
        },
    )
}

/// Parses OpenMetrics; counters are named as in the text format (`_total`), to compare.
fn parse_open_metrics(body: &str) -> Families {
    // OpenMetrics gives any family a unit (its spec's own examples put `# UNIT .. seconds` on a
    // summary); this parser accepts units on counters and gauges only, so the histogram's
    // unit line is checked here and left out of what it parses.
    let unit = "# UNIT underscore_request_duration_seconds seconds\n";
    assert!(body.contains(unit), "{body}");
    let body = &body.replacen(unit, "", 1);
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(body)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics ({e:?}):\n{body}"));
    families(
        exposition,
        |name, family_type| match family_type {
            OpenMetricsType::Counter => ("counter", "_total"),
            OpenMetricsType::Gauge => ("gauge", ""),
            OpenMetricsType::Histogram => ("histogram", ""),
            other => panic!("{name}: unexpected type {other:?}"),
        },
        |name, value| match value {
            OpenMetricsValue::Counter(c) => Val::Number(c.value.as_f64()),
            OpenMetricsValue::Gauge(n) => Val::Number(n.as_f64()),
            OpenMetricsValue::Histogram(h) => histogram(h),
            other => panic!("{name}: unexpected value {other:?}"),
        },
    )
}

fn key(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.sort();
    out
}

/// Checks every family of `families` against `_routes/stats`, `_routes` and `_cat/routes`.
fn check_against_stats(families: &Families, stats: &Value, routes: &Value, cat: &Value) {
    let expected: BTreeMap<&str, (&str, Vec<&str>)> = [
        (
            "underscore_requests_total",
            ("counter", vec!["route", "method", "outcome"]),
        ),
        (
            "underscore_responses_total",
            ("counter", vec!["route", "status_class"]),
        ),
        (
            "underscore_request_duration_seconds",
            ("histogram", vec!["route"]),
        ),
        ("underscore_requests_in_flight", ("gauge", vec!["route"])),
        (
            "underscore_oldest_request_age_seconds",
            ("gauge", vec!["route"]),
        ),
        ("underscore_route_preempted", ("gauge", vec!["route"])),
        ("underscore_route_preempt_ratio", ("gauge", vec!["route"])),
        ("underscore_route_max_in_flight", ("gauge", vec!["route"])),
        ("underscore_route_timeout_seconds", ("gauge", vec!["route"])),
        (
            "underscore_route_info",
            ("gauge", vec!["route", "path", "methods"]),
        ),
        (
            "underscore_unmatched_requests_total",
            ("counter", vec!["status"]),
        ),
        // No health check in this process: no `underscore_health_check_status`.
        ("underscore_ready", ("gauge", vec![])),
        ("underscore_draining", ("gauge", vec![])),
    ]
    .into_iter()
    // A settings family is there only when some route has that setting.
    .filter(|(name, _)| {
        let column = match *name {
            "underscore_route_preempt_ratio" => "preempt.percent",
            "underscore_route_max_in_flight" => "limits.max_in_flight",
            "underscore_route_timeout_seconds" => "limits.timeout",
            _ => return true,
        };
        cat.as_array()
            .unwrap()
            .iter()
            .any(|row| !row[column].is_null())
    })
    .collect();
    assert_eq!(
        families.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>(),
        "the families"
    );
    for (name, (kind, labels)) in &expected {
        let family = &families[*name];
        assert_eq!(family.kind, *kind, "{name}'s type");
        // The parser keeps label names sorted.
        let mut labels = labels.clone();
        labels.sort_unstable();
        assert_eq!(family.labels, labels, "{name}'s label names");
    }
    let ids: BTreeSet<&str> = stats["routes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(ids.contains("plainx") && ids.contains("hold"), "{ids:?}");
    assert!(!ids.contains("metrics"), "the metrics route was counted");
    // Every series names a route of `_routes/stats`, and every route has its series.
    for (name, family) in families {
        // The unmatched buckets and the node's health have no route; the settings gauges
        // cover only the routes that have those settings (checked below).
        if [
            "underscore_unmatched_requests_total",
            "underscore_ready",
            "underscore_draining",
            "underscore_route_preempt_ratio",
            "underscore_route_max_in_flight",
            "underscore_route_timeout_seconds",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let seen: BTreeSet<&str> = family
            .series
            .keys()
            .map(|k| k.iter().find(|(n, _)| n == "route").unwrap().1.as_str())
            .collect();
        assert_eq!(seen, ids, "{name}'s routes");
    }
    let cat: BTreeMap<&str, &Value> = cat
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_str().unwrap(), row))
        .collect();
    // Each settings gauge has a series exactly for the routes `_cat/routes` shows a value for.
    for (family, column, scale) in [
        ("underscore_route_preempt_ratio", "preempt.percent", 0.01),
        (
            "underscore_route_max_in_flight",
            "limits.max_in_flight",
            1.0,
        ),
        ("underscore_route_timeout_seconds", "limits.timeout", 1.0),
    ] {
        let Some(series) = families.get(family).map(|f| &f.series) else {
            assert!(
                ids.iter().all(|id| cat[id][column].is_null()),
                "{family} is missing"
            );
            continue;
        };
        for id in &ids {
            let shown = &cat[id][column];
            let expected = match shown {
                Value::Null => None,
                Value::String(text) => Some(
                    underscore_actix::core::settings::parse_time(text)
                        .unwrap()
                        .as_secs_f64(),
                ),
                n => Some(n.as_f64().unwrap() * scale),
            };
            let got = series.get(&key(&[("route", id)])).map(|v| v.number());
            assert_eq!(got, expected, "{family} of {id}");
        }
    }

    let outcomes = [
        "preempted",
        "shed",
        "timed_out",
        "interrupted",
        "cancelled",
        "dropped",
    ];
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    for id in &ids {
        let s = &stats["routes"][id];
        let methods: Vec<&str> = routes[id]["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let methods = methods.join(",");
        let n = |v: &Value| v.as_u64().unwrap() as f64;

        let requests = &families["underscore_requests_total"].series;
        let per_route = requests
            .keys()
            .filter(|k| k.contains(&("route".to_owned(), (*id).to_owned())))
            .count();
        assert_eq!(
            per_route,
            1 + outcomes.len(),
            "{id}: one series per outcome"
        );
        let served: f64 = classes.iter().map(|c| n(&s["responses"][c])).sum();
        let get = |outcome: &str| {
            requests[&key(&[("route", id), ("method", &methods), ("outcome", outcome)])].number()
        };
        assert_eq!(get("served"), served, "{id} served");
        let mut ended = served;
        for outcome in outcomes {
            assert_eq!(get(outcome), n(&s["requests"][outcome]), "{id} {outcome}");
            ended += get(outcome);
        }
        let in_flight =
            families["underscore_requests_in_flight"].series[&key(&[("route", id)])].number();
        assert_eq!(in_flight, n(&s["requests"]["active"]), "{id} in flight");
        if s["requests"]["total"].as_u64().unwrap() > 0 && *id != "plainx" {
            // Annotated routes: counted from their start (plain ones once they answered).
            assert_eq!(ended + in_flight, n(&s["requests"]["total"]), "{id} total");
        }

        for class in classes {
            let v = families["underscore_responses_total"].series
                [&key(&[("route", id), ("status_class", class)])]
                .number();
            assert_eq!(v, n(&s["responses"][class]), "{id} {class}");
        }

        let Val::Histogram {
            buckets,
            sum,
            count,
        } = &families["underscore_request_duration_seconds"].series[&key(&[("route", id)])]
        else {
            panic!("{id}: not a histogram");
        };
        assert_eq!(*count, n(&s["latency_ms"]["count"]), "{id} latency count");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, *count)), "{id} +Inf");
        assert_eq!(buckets.len(), 14, "{id} buckets");
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        // The sum lies between what the bucket bounds allow.
        let (mut low, mut high, mut prev) = (0.0, 0.0, (0.0, 0.0));
        for &(le, cumulative) in buckets {
            let inside = cumulative - prev.1;
            if inside > 0.0 {
                low += inside * prev.0;
                high += inside * le;
            }
            prev = (le, cumulative);
        }
        assert!(
            low <= *sum && *sum <= high,
            "{id}: sum {sum} outside [{low}, {high}]"
        );
        if let Some(max) = s["latency_ms"]["max"].as_f64() {
            assert!(
                *sum <= max / 1000.0 * count + 1e-9,
                "{id}: sum above count * max"
            );
        }

        let age = families["underscore_oldest_request_age_seconds"].series[&key(&[("route", id)])]
            .number();
        if *id == "hold" {
            assert!(age > 0.0 && age < 60.0, "hold's oldest request: {age} s");
        } else {
            assert_eq!(age, 0.0, "{id} has nothing in flight");
        }

        let preempted =
            families["underscore_route_preempted"].series[&key(&[("route", id)])].number();
        assert_eq!(
            preempted,
            if cat[id]["preempt"].is_null() {
                0.0
            } else {
                1.0
            },
            "{id}"
        );

        let path = routes[id]["path"].as_str().unwrap();
        let info = &families["underscore_route_info"].series
            [&key(&[("route", id), ("path", path), ("methods", &methods)])];
        assert_eq!(info.number(), 1.0, "{id} info");
    }

    for status in ["404", "405"] {
        let b = &stats["unmatched"][status]["requests"];
        let ended = (b["total"].as_u64().unwrap() - b["active"].as_u64().unwrap()) as f64;
        let v = families["underscore_unmatched_requests_total"].series[&key(&[("status", status)])]
            .number();
        assert_eq!(v, ended, "unmatched {status}");
    }
}

/// `curl --unix-socket` with extra headers; the reply as `(status, headers, body)`.
fn curl_with(socket: &Path, method: &str, path: &str, headers: &[&str]) -> common::Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "10", "--unix-socket"])
        .arg(socket)
        .args(["-X", method]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(format!("http://./{}", path.trim_start_matches('/')));
    let out = cmd.output().expect("curl runs");
    assert!(out.status.success(), "curl failed: {out:?}");
    common::parse_reply(&String::from_utf8(out.stdout).unwrap())
}

/// Reads stats, scrapes, and reads stats again until nothing moved in between.
fn consistent_scrape(srv: &TestServer, accept: Option<&str>) -> (common::Reply, Value) {
    for _ in 0..20 {
        let before = srv.admin("GET", "/_routes/stats").json();
        let headers: Vec<String> = accept.map(|a| format!("Accept: {a}")).into_iter().collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let scrape = curl_with(&srv.socket, "GET", "/_prometheus/metrics", &headers);
        let after = srv.admin("GET", "/_routes/stats").json();
        if before == after {
            return (scrape, after);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the statistics kept moving");
}

fn strip_latency_windows(mut stats: Value) -> Value {
    // The rolling means and percentiles are not compared (and may move with the sampler).
    if let Some(routes) = stats["routes"].as_object_mut() {
        for s in routes.values_mut() {
            s["latency_ms"] = serde_json::json!({"count": s["latency_ms"]["count"], "max": s["latency_ms"]["max"]});
        }
    }
    stats
}

#[test]
fn metrics_match_routes_stats_in_both_formats() {
    let srv = TestServer::start(routes);
    // 2xx, 3xx, 4xx, 5xx, a plain route, and requests no route serves.
    for path in [
        "/ok",
        "/ok",
        "/ok",
        "/status/304",
        "/status/404",
        "/status/404",
    ] {
        srv.http("GET", path);
    }
    assert_eq!(srv.http("GET", "/status/503").status, 503);
    assert_eq!(srv.http("GET", "/plainx").status, 200);
    assert_eq!(srv.http("GET", "/no/such/route").status, 404);
    // Preempted, through a settings PUT.
    let put = curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/pre/settings",
        Some(r#"{"transient":{"preempt.status":503}}"#),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    // Shedding settings, shown by their gauges (limits high enough to change nothing here).
    let put = curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/ok/settings",
        Some(
            r#"{"transient":{"limits":{"max_in_flight":50,"timeout":"90s"},"preempt":{"status":503,"percent":0}}}"#,
        ),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    for _ in 0..2 {
        assert_eq!(srv.http("GET", "/pre").status, 503);
    }
    // Interrupted: one request in flight, then the route is interrupted.
    let url = srv.url("/hold");
    let first = {
        let u = url.clone();
        std::thread::spawn(move || common::http("GET", &u, None))
    };
    common::wait_until("1 active", || {
        srv.admin("GET", "/_routes/hold/stats").json()["routes"]["hold"]["requests"]["active"] == 1
    });
    srv.admin("POST", "/_routes/hold/interrupt");
    assert_eq!(first.join().unwrap().status, 503);
    // And one more left in flight while scraping.
    let second = std::thread::spawn(move || common::http("GET", &url, None));
    common::wait_until("1 active again", || {
        let s = srv.admin("GET", "/_routes/hold/stats").json();
        s["routes"]["hold"]["requests"]["active"] == 1
            && s["routes"]["hold"]["requests"]["interrupted"] == 1
    });
    std::thread::sleep(Duration::from_millis(20));
    let routes = srv.admin("GET", "/_routes").json();
    let cat = srv
        .admin(
            "GET",
            "/_cat/routes?format=json&h=id,preempt,preempt.percent,limits.max_in_flight,limits.timeout",
        )
        .json();

    let (text, stats) = consistent_scrape(&srv, None);
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!text.body.contains("# EOF"));
    check_against_stats(&parse_text(&text.body), &stats, &routes, &cat);
    assert_eq!(stats["routes"]["pre"]["requests"]["preempted"], 2);
    assert_eq!(stats["routes"]["answer"]["responses"]["4xx"], 2);

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (om, stats) = consistent_scrape(&srv, Some(accept));
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"));
    check_against_stats(&parse_open_metrics(&om.body), &stats, &routes, &cat);

    // The app's own metrics route answers the same, and is never counted as a route.
    let before = strip_latency_windows(srv.admin("GET", "/_routes/stats").json());
    let public = srv.http("GET", "/metrics");
    assert_eq!(public.status, 200);
    assert_eq!(
        public.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let families = parse_text(&public.body);
    assert!(families.contains_key("underscore_request_duration_seconds"));
    let after = strip_latency_windows(srv.admin("GET", "/_routes/stats").json());
    assert_eq!(before, after, "a scrape of /metrics changed the statistics");

    srv.admin("POST", "/_routes/hold/interrupt");
    assert_eq!(second.join().unwrap().status, 503);
}

#[test]
fn wrong_methods_and_parameters_are_elasticsearch_errors() {
    let srv = TestServer::start(routes);
    for method in ["POST", "PUT", "DELETE"] {
        let res = srv.admin(method, "/_prometheus/metrics");
        assert_eq!(res.status, 405, "{method}");
        assert_eq!(res.header("allow"), Some("GET, HEAD"));
        assert_eq!(res.json()["error"]["type"], "method_not_allowed_exception");
    }
    assert_eq!(srv.http("POST", "/metrics").status, 405);
    for query in ["foo", "format=json", "pretty", "filter_path=a"] {
        let res = srv.admin("GET", &format!("/_prometheus/metrics?{query}"));
        assert_eq!(res.status, 400, "{query}");
        let body = res.json();
        assert_eq!(body["status"], 400);
        assert_eq!(body["error"]["type"], "illegal_argument_exception");
        let name = query.split('=').next().unwrap();
        assert_eq!(
            body["error"]["reason"],
            format!("request [/_prometheus/metrics] contains unrecognized parameter: [{name}]")
        );
        assert_eq!(srv.http("GET", &format!("/metrics?{query}")).status, 400);
    }
    let head = srv.admin("HEAD", "/_prometheus/metrics");
    assert_eq!(head.status, 200);
    // A scrape is not an application route, whatever it was answered (the other test checks
    // that the statistics do not move: the other test's requests are in them too).
    let stats = srv.admin("GET", "/_routes/stats").json();
    assert!(stats["routes"].get("metrics").is_none(), "{stats}");
}

#[test]
fn the_in_app_mount_and_the_app_route_negotiate_like_the_socket() {
    let srv = TestServer::start_with(routes, true);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for path in ["/_prometheus/metrics", "/metrics"] {
        let url = srv.url(path);
        let text = agent.get(&url).call().unwrap();
        assert_eq!(text.status(), 200, "{path}");
        assert_eq!(
            text.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8",
            "{path}"
        );
        let mut om = agent
            .get(&url)
            .header("Accept", "application/openmetrics-text; version=1.0.0")
            .call()
            .unwrap();
        assert_eq!(
            om.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "{path}"
        );
        let body = om.body_mut().read_to_string().unwrap();
        assert!(body.ends_with("# EOF\n"), "{path}");
        parse_open_metrics(&body);
    }
}

/// The value of `name{labels}` in `families`, if the series is there.
fn sample_of(families: &Families, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .get(name)?
        .series
        .get(&key(labels))
        .map(Val::number)
}

#[test]
fn slow_requests_blocking_polls_and_busy_workers_are_series_of_the_quickstart() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let (child, addr, _) = common::spawn_quickstart(&socket, &dir.path().join("settings.json"));
    // Killed however the test ends, a failed assertion included.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let url = |path: &str| format!("http://{addr}{path}");
    common::wait_until("readiness", || {
        common::http("GET", &url("/readyz"), None).status == 200
    });
    let scrape = |accept: Option<&str>| {
        let headers: Vec<String> = accept.map(|a| format!("Accept: {a}")).into_iter().collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let res = curl_with(&socket, "GET", "/_prometheus/metrics", &headers);
        assert_eq!(res.status, 200, "{}", res.body);
        res.body
    };

    // Nothing logged yet: no slow-request family (an empty one trips parsers); poll timing is
    // on in the quickstart, so every route has a blocking-poll counter, at 0.
    let before = parse_text(&scrape(None));
    assert!(!before.contains_key("underscore_slow_requests_total"));
    let blocking = &before["underscore_blocking_polls_total"];
    assert_eq!(blocking.kind, "counter");
    assert_eq!(blocking.labels, ["route"]);
    assert_eq!(
        sample_of(
            &before,
            "underscore_blocking_polls_total",
            &[("route", "block")]
        ),
        Some(0.0)
    );

    let res = curl_unix(
        &socket,
        "PUT",
        "/_routes/slow/settings",
        Some(
            r#"{"transient": {"slowlog.threshold.warn": "200ms", "slowlog.threshold.info": "50ms"}}"#,
        ),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(common::http("GET", &url("/slow?ms=300"), None).status, 200);
    assert_eq!(common::http("GET", &url("/slow?ms=80"), None).status, 200);
    assert_eq!(common::http("GET", &url("/slow?ms=80"), None).status, 200);
    assert_eq!(common::http("GET", &url("/slow?ms=0"), None).status, 200);
    // 60 ms in one poll: past the default 10 ms blocking threshold.
    assert_eq!(common::http("GET", &url("/block?ms=60"), None).status, 200);

    let workers = curl_unix(&socket, "GET", "/_cat/workers?format=json", None).json();
    let workers = workers.as_array().unwrap().len();
    assert!(workers > 0);
    common::wait_until("every worker's busy ratio sampled", || {
        parse_text(&scrape(None))
            .get("underscore_worker_busy_ratio")
            .is_some_and(|f| f.series.len() == workers)
    });
    for (body, families) in [
        (scrape(None), None),
        (scrape(Some("application/openmetrics-text")), Some(())),
    ] {
        let families = match families {
            None => parse_text(&body),
            Some(()) => parse_open_metrics(&body),
        };
        let slow = &families["underscore_slow_requests_total"];
        assert_eq!(slow.kind, "counter");
        assert_eq!(
            slow.labels,
            ["level", "route"],
            "the parser sorts label names"
        );
        let count = |level| {
            sample_of(
                &families,
                "underscore_slow_requests_total",
                &[("route", "slow"), ("level", level)],
            )
        };
        assert_eq!(count("warn"), Some(1.0), "{body}");
        assert_eq!(count("info"), Some(2.0), "{body}");
        assert_eq!(count("debug"), None, "{body}");
        assert_eq!(
            sample_of(
                &families,
                "underscore_blocking_polls_total",
                &[("route", "block")]
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample_of(
                &families,
                "underscore_blocking_polls_total",
                &[("route", "slow")]
            ),
            Some(0.0),
            "an await is no blocking poll: {body}"
        );
        let busy = &families["underscore_worker_busy_ratio"];
        assert_eq!(busy.kind, "gauge");
        assert_eq!(busy.labels, ["worker"]);
        for i in 0..workers {
            let ratio = sample_of(
                &families,
                "underscore_worker_busy_ratio",
                &[("worker", &i.to_string())],
            )
            .unwrap_or_else(|| panic!("no worker {i}: {body}"));
            assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        }
    }
    assert!(
        scrape(None).contains("# HELP underscore_worker_busy_ratio Share of the last 5 seconds")
    );
}
