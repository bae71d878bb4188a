//! Per-route statistics end to end: exact counts, outcomes, percentiles, buckets, and the
//! invariant that every request is counted exactly once, under concurrency.

mod common;

use std::time::Duration;

use actix_web::{get, web, HttpResponse, Responder};
use common::{curl_unix, TestServer};
use serde_json::Value;
use underscore_actix::underscore_route;

/// Answers with the status asked for, after `ms` milliseconds.
#[underscore_route]
#[get("/status/{code}")]
async fn status(
    path: web::Path<u16>,
    query: web::Query<std::collections::HashMap<String, u64>>,
) -> HttpResponse {
    let ms = query.get("ms").copied().unwrap_or(0);
    if ms > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(*path).unwrap()).finish()
}

/// Counted by the load test.
#[underscore_route]
#[get("/busy/{n}")]
async fn busy(n: web::Path<u64>) -> impl Responder {
    if n.is_multiple_of(3) {
        actix_web::rt::time::sleep(Duration::from_millis(*n % 7)).await;
    }
    "ok"
}

/// Waits, to be interrupted or cancelled.
#[underscore_route]
#[get("/hold")]
async fn hold() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    "held"
}

/// Panics, to be counted as dropped.
#[underscore_route]
#[get("/crash")]
async fn crash() -> &'static str {
    actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    panic!("crash, on purpose")
}

/// Behind a resource middleware of the user's that changes the body type (`Condition` answers
/// with an `EitherBody`), inside `Track`: the one case where `Track` boxes the body itself.
/// Streams its body in two pieces when asked.
#[underscore_route]
#[get(
    "/wrapped",
    wrap = "actix_web::middleware::Condition::new(true, \
            actix_web::middleware::DefaultHeaders::new().add((\"x-wrapped\", \"yes\")))"
)]
async fn wrapped(query: web::Query<std::collections::HashMap<String, String>>) -> HttpResponse {
    if query.contains_key("stream") {
        return HttpResponse::Ok().streaming(Pieces(vec![&b"amed"[..], &b"stre"[..]]));
    }
    HttpResponse::Ok().body("whole")
}

/// A body stream of the pieces, last first.
struct Pieces(Vec<&'static [u8]>);

impl futures_core::Stream for Pieces {
    type Item = Result<web::Bytes, actix_web::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.pop().map(|piece| Ok(web::Bytes::from_static(piece))))
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(status)
        .service(wrapped)
        .service(busy)
        .service(hold)
        .service(crash)
        .route("/plainbusy", web::get().to(|| async { "plain" }));
}

fn route_stats(srv: &TestServer, id: &str) -> Value {
    srv.admin("GET", &format!("/_routes/{id}/stats")).json()["routes"][id].clone()
}

/// `total = active + every outcome`: each request counted exactly once.
fn assert_adds_up(s: &Value) {
    let req = &s["requests"];
    let resp = &s["responses"];
    let ended: u64 = [
        "preempted",
        "shed",
        "timed_out",
        "interrupted",
        "cancelled",
        "dropped",
    ]
    .iter()
    .map(|k| req[k].as_u64().unwrap())
    .chain(
        ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .map(|k| resp[k].as_u64().unwrap()),
    )
    .sum();
    assert_eq!(
        req["total"].as_u64().unwrap(),
        req["active"].as_u64().unwrap() + ended,
        "{s}"
    );
}

#[test]
fn counts_by_outcome_and_percentiles() {
    let srv = TestServer::start(routes);
    for (code, n) in [(200, 5), (204, 2), (304, 1), (404, 3), (503, 2), (101, 0)] {
        for _ in 0..n {
            assert_eq!(
                srv.http("GET", &format!("/status/{code}?ms=2")).status,
                code
            );
        }
    }
    let s = route_stats(&srv, "status");
    assert_eq!(s["requests"]["total"], 13);
    assert_eq!(s["requests"]["active"], 0);
    assert_eq!(
        s["responses"],
        serde_json::json!({"1xx": 0, "2xx": 7, "3xx": 1, "4xx": 3, "5xx": 2})
    );
    let lat = &s["latency_ms"];
    assert_eq!(lat["count"], 13);
    let (p50, p90, p99, max) = (
        lat["p50"].as_f64().unwrap(),
        lat["p90"].as_f64().unwrap(),
        lat["p99"].as_f64().unwrap(),
        lat["max"].as_f64().unwrap(),
    );
    assert!(p50 <= p90 && p90 <= p99 && p99 <= max, "{lat}");
    assert!(p50 >= 1.5, "every request slept 2 ms: {lat}");
    let avg = lat["avg_1m"].as_f64().unwrap();
    assert!(avg >= 2.0 && avg <= max, "{lat}");
    assert_eq!(lat["avg_1m"], lat["avg_15m"]);
    assert_adds_up(&s);
    // The same figures as _cat/routes columns, typed, and sortable as numbers.
    let cat = srv.admin(
        "GET",
        "/_cat/routes/status?format=json&h=total,2xx,4xx,p50,max",
    );
    let row = &cat.json()[0];
    assert_eq!(
        (
            row["total"].as_u64(),
            row["2xx"].as_u64(),
            row["4xx"].as_u64()
        ),
        (Some(13), Some(7), Some(3))
    );
    assert_eq!(row["p50"].as_f64(), Some(p50));
    // A route with no requests: every latency is null, never NaN.
    let idle = route_stats(&srv, "hold");
    assert!(
        idle["latency_ms"]["avg_1m"].is_null() && idle["latency_ms"]["p99"].is_null(),
        "{idle}"
    );
    let text = srv.admin("GET", "/_cat/routes/crash?h=p50,avg_15m").body;
    assert_eq!(text, "- -\n");
}

#[test]
fn a_route_behind_a_middleware_that_changes_its_body_is_served_and_counted() {
    let srv = TestServer::start(routes);
    for (path, body) in [("/wrapped", "whole"), ("/wrapped?stream=1", "streamed")] {
        let reply = srv.http("GET", path);
        assert_eq!((reply.status, reply.body.as_str()), (200, body), "{path}");
        assert_eq!(reply.header("x-wrapped"), Some("yes"), "{path}");
    }
    // The streamed one ends once its body is sent, just after the client has it.
    common::wait_until("both requests ended", || {
        route_stats(&srv, "wrapped")["requests"]["active"] == 0
    });
    let s = route_stats(&srv, "wrapped");
    assert_eq!(s["requests"]["total"], 2, "{s}");
    assert_eq!(s["responses"]["2xx"], 2, "{s}");
    assert_eq!(s["latency_ms"]["count"], 2, "{s}");
    assert_adds_up(&s);
}

#[test]
fn preempted_interrupted_cancelled_and_dropped_land_in_their_counters() {
    let srv = TestServer::start(routes);
    // Preempted: answered without the app.
    let put = curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/hold/settings",
        Some(r#"{"transient":{"preempt.status":503}}"#),
    );
    assert_eq!(put.status, 200);
    for _ in 0..4 {
        assert_eq!(srv.http("GET", "/hold").status, 503);
    }
    curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/hold/settings",
        Some(r#"{"transient":{"preempt.*":null}}"#),
    );
    // Interrupted: 3 in flight, then the route is interrupted.
    let url = srv.url("/hold");
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let u = url.clone();
            std::thread::spawn(move || common::http("GET", &u, None))
        })
        .collect();
    common::wait_until("3 active", || {
        route_stats(&srv, "hold")["requests"]["active"] == 3
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    assert_eq!(
        srv.admin("POST", "/_routes/hold/interrupt").json()["hold"]["interrupted"],
        3
    );
    for w in waiting {
        assert_eq!(w.join().unwrap().status, 503);
    }
    // Cancelled: one more, cancelled as a task.
    let one = {
        let u = url.clone();
        std::thread::spawn(move || common::http("GET", &u, None))
    };
    let id = loop {
        let tasks = srv
            .admin("GET", "/_tasks?group_by=none&actions=http:hold")
            .json();
        if let Some(t) = tasks["tasks"].as_array().unwrap().first() {
            break format!("{}:{}", t["node"].as_str().unwrap(), t["id"]);
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        srv.admin("POST", &format!("/_tasks/{id}/_cancel")).status,
        200
    );
    assert_eq!(one.join().unwrap().status, 503);
    // Dropped: the handler panics.
    // No response to read: the connection just closes.
    common::raw(
        srv.addr,
        "GET /crash HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = route_stats(&srv, "hold");
        if s["requests"]["active"] == 0 {
            assert_eq!(s["requests"]["total"], 8);
            assert_eq!(s["requests"]["preempted"], 4);
            assert_eq!(s["requests"]["interrupted"], 3);
            assert_eq!(s["requests"]["cancelled"], 1);
            assert_eq!(
                s["latency_ms"]["count"], 0,
                "no latency without an app response"
            );
            assert_adds_up(&s);
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let crashed = route_stats(&srv, "crash");
    assert_eq!(
        (
            crashed["requests"]["total"].as_u64(),
            crashed["requests"]["dropped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_adds_up(&crashed);
}

#[test]
fn every_request_is_counted_exactly_once_under_concurrency() {
    let srv = TestServer::start(routes);
    const THREADS: usize = 8;
    const EACH: u64 = 60;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let srv = &srv;
            s.spawn(move || {
                for i in 0..EACH {
                    let n = t as u64 * EACH + i;
                    let path = match n % 4 {
                        0 => format!("/busy/{n}"),
                        1 => "/plainbusy".to_owned(),
                        2 => format!("/nothing-here/{n}"),
                        _ => format!("/busy/{n}"),
                    };
                    let res = srv.http("GET", &path);
                    assert!(
                        res.status == 200 || res.status == 404,
                        "{path}: {}",
                        res.status
                    );
                }
            });
        }
    });
    let total = THREADS as u64 * EACH;
    let counted = route_stats(&srv, "busy");
    assert_eq!(counted["requests"]["total"].as_u64().unwrap(), total / 2);
    assert_eq!(counted["responses"]["2xx"].as_u64().unwrap(), total / 2);
    assert_eq!(counted["requests"]["active"], 0);
    assert_adds_up(&counted);
    let plain = route_stats(&srv, "plainbusy");
    assert_eq!(plain["requests"]["total"].as_u64().unwrap(), total / 4);
    assert_eq!(plain["requests"]["active"], 0);
    assert_adds_up(&plain);
    // 404s share one bucket, however many distinct paths: the route table does not grow.
    let all = srv.admin("GET", "/_routes/stats").json();
    let unmatched = &all["unmatched"]["404"];
    assert!(
        unmatched["requests"]["total"].as_u64().unwrap() >= total / 4,
        "{unmatched}"
    );
    assert_adds_up(unmatched);
    assert!(
        all["routes"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("nothing")),
        "{all}"
    );
}
