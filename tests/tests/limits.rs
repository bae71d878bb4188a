//! Load shedding end to end: `limits.max_in_flight` (exact under concurrency, sheds with
//! `limits.status` and `Retry-After`), `limits.timeout` (504, the handler dropped, the task
//! gone), `preempt.percent` (exact in aggregate), on annotated and plain routes, with every
//! bad value refused whole.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{get, web, HttpResponse, Responder};
use common::{curl_unix, raw, wait_until, Reply, TestServer};
use serde_json::{json, Value};
use underscore_actix::underscore_route;

/// A gate a handler waits at until a test opens it, counting who is inside.
struct Gate {
    open: AtomicBool,
    inside: AtomicU64,
    most: AtomicU64,
}

impl Gate {
    const fn new() -> Self {
        Self {
            open: AtomicBool::new(false),
            inside: AtomicU64::new(0),
            most: AtomicU64::new(0),
        }
    }

    async fn pass(&self) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // Leaves the count however the future ends (answered, dropped, timed out).
        struct Leave<'a>(&'a AtomicU64);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.inside);
        while !self.open.load(Ordering::SeqCst) {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

static SHED_GATE: Gate = Gate::new();
static LOWER_GATE: Gate = Gate::new();
static PLAIN_GATE: Gate = Gate::new();
static COUNT_GATE: Gate = Gate::new();
static TIMEOUT_DROPPED: AtomicBool = AtomicBool::new(false);

#[underscore_route]
#[get("/limited")]
async fn limited() -> impl Responder {
    SHED_GATE.pass().await;
    "served"
}

#[underscore_route]
#[get("/lower")]
async fn lower() -> impl Responder {
    LOWER_GATE.pass().await;
    "served"
}

/// Concurrency is counted by the handler itself, independently of underscore.
static BUSY_NOW: AtomicU64 = AtomicU64::new(0);
static BUSY_MOST: AtomicU64 = AtomicU64::new(0);

#[underscore_route]
#[get("/busy")]
async fn busy() -> impl Responder {
    let now = BUSY_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    BUSY_MOST.fetch_max(now, Ordering::SeqCst);
    actix_web::rt::time::sleep(Duration::from_millis(3)).await;
    BUSY_NOW.fetch_sub(1, Ordering::SeqCst);
    "busy"
}

#[underscore_route]
#[get("/sleepy")]
async fn sleepy(query: web::Query<std::collections::HashMap<String, String>>) -> HttpResponse {
    struct Flag;
    impl Drop for Flag {
        fn drop(&mut self) {
            TIMEOUT_DROPPED.store(true, Ordering::SeqCst);
        }
    }
    let ms: u64 = query.get("ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
    let flag = Flag;
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    std::mem::forget(flag);
    HttpResponse::Ok().body(format!("slept {ms} ms"))
}

#[underscore_route]
#[get("/share")]
async fn share() -> impl Responder {
    "served"
}

#[underscore_route]
#[get("/strict")]
async fn strict() -> impl Responder {
    "strict"
}

fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(limited)
        .service(lower)
        .service(busy)
        .service(sleepy)
        .service(share)
        .service(strict)
        .route(
            "/plaingate",
            web::get().to(|| async {
                PLAIN_GATE.pass().await;
                "plain served"
            }),
        )
        .route(
            "/plaincount",
            web::get().to(|| async {
                COUNT_GATE.pass().await;
                "counted"
            }),
        );
}

fn put(srv: &TestServer, ids: &str, body: Value) -> Reply {
    curl_unix(
        &srv.socket,
        "PUT",
        &format!("/_routes/{ids}/settings"),
        Some(&body.to_string()),
    )
}

fn stats(srv: &TestServer, id: &str) -> Value {
    srv.admin("GET", &format!("/_routes/{id}/stats")).json()["routes"][id].clone()
}

/// The raw answer to a `GET` of `path`, status line and headers exactly as sent.
fn get_raw(srv: &TestServer, path: &str) -> String {
    get_raw_at(srv.addr, path)
}

fn get_raw_at(addr: std::net::SocketAddr, path: &str) -> String {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

/// [`get_raw`] on a thread of its own, for a request that waits.
fn get_in_background(srv: &TestServer, path: &'static str) -> std::thread::JoinHandle<String> {
    let addr = srv.addr;
    std::thread::spawn(move || get_raw_at(addr, path))
}

#[test]
fn max_in_flight_serves_n_and_sheds_the_rest_at_once() {
    let srv = TestServer::start(configure);
    let res = put(
        &srv,
        "limited",
        json!({"transient": {"limits": {"max_in_flight": 2, "retry_after": 7}}}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json()["limited"]["transient"],
        json!({"limits": {"max_in_flight": 2, "retry_after": 7}})
    );

    // Five concurrent clients: two get in and wait at the gate, three are shed at once.
    let clients: Vec<_> = (0..5)
        .map(|_| get_in_background(&srv, "/limited"))
        .collect();
    wait_until("two requests inside and three shed", || {
        SHED_GATE.inside.load(Ordering::SeqCst) == 2
            && stats(&srv, "limited")["requests"]["shed"] == 3
    });
    assert_eq!(stats(&srv, "limited")["requests"]["active"], 2);
    SHED_GATE.open.store(true, Ordering::SeqCst);
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let served: Vec<_> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 200 OK"))
        .collect();
    let shed: Vec<_> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503 Too many requests in flight\r\n"))
        .collect();
    assert_eq!((served.len(), shed.len()), (2, 3), "{answers:#?}");
    for answer in &shed {
        assert!(answer.contains("\r\nretry-after: 7\r\n"), "{answer}");
        assert!(
            answer.ends_with("\r\n\r\nToo many requests in flight\n"),
            "{answer}"
        );
    }
    assert_eq!(SHED_GATE.most.load(Ordering::SeqCst), 2);
    let s = stats(&srv, "limited");
    assert_eq!(s["requests"]["total"], 5);
    assert_eq!(s["requests"]["shed"], 3);
    assert_eq!(s["responses"]["2xx"], 2);
    assert_eq!(
        s["responses"]["5xx"], 0,
        "a shed request is its own outcome"
    );

    // `limits.status` changes the answer; null lifts the limit.
    SHED_GATE.open.store(false, Ordering::SeqCst);
    put(
        &srv,
        "limited",
        json!({"transient": {"limits.status": 429, "limits.max_in_flight": 1}}),
    );
    let first = get_in_background(&srv, "/limited");
    wait_until("one request inside", || {
        SHED_GATE.inside.load(Ordering::SeqCst) == 1
    });
    let answer = get_raw(&srv, "/limited");
    assert!(
        answer.starts_with("HTTP/1.1 429 Too many requests in flight\r\n"),
        "{answer}"
    );
    SHED_GATE.open.store(true, Ordering::SeqCst);
    assert!(first.join().unwrap().starts_with("HTTP/1.1 200 OK"));
    let res = put(&srv, "limited", json!({"transient": {"limits.*": null}}));
    assert_eq!(res.json()["limited"]["transient"], json!({}));
    assert_eq!(srv.http("GET", "/limited").status, 200);
}

#[test]
fn max_in_flight_admits_exactly_n_at_every_instant_under_32_connections() {
    const N: u64 = 4;
    let srv = TestServer::start(configure);
    assert_eq!(
        put(
            &srv,
            "busy",
            json!({"transient": {"limits.max_in_flight": N}})
        )
        .status,
        200
    );
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (addr, stop) = (srv.addr, stop.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let url = format!("http://{addr}/busy");
                let (mut ok, mut shed) = (0u64, 0u64);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match agent.get(&url).call().map(|r| r.status().as_u16()) {
                        Ok(200) => ok += 1,
                        Ok(503) => shed += 1,
                        other => panic!("unexpected answer {other:?}"),
                    }
                }
                (ok, shed)
            })
        })
        .collect();
    // 1,000 samples of the route's active count, through the admin APIs.
    let mut seen = [0u64; 8];
    for i in 0..1_000 {
        let body = if i % 50 == 0 {
            // Some over the socket, as an operator would look...
            srv.admin("GET", "/_routes/busy/stats").body
        } else {
            // ...most through the same handler in-process, to sample fast.
            let res = underscore_actix::core::api::handle(
                &underscore_actix::core::api::Request::new("GET", "/_routes/busy/stats", ""),
            );
            String::from_utf8(res.body).unwrap()
        };
        let v: Value = serde_json::from_str(&body).unwrap();
        let active = v["routes"]["busy"]["requests"]["active"].as_u64().unwrap();
        assert!(
            active <= N,
            "sample {i}: {active} requests in flight, limit {N}"
        );
        seen[active as usize] += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let (ok, shed) = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(
        BUSY_MOST.load(Ordering::SeqCst) <= N,
        "the handler saw more than {N} at once"
    );
    assert_eq!(
        BUSY_MOST.load(Ordering::SeqCst),
        N,
        "the limit is reached, not undercut"
    );
    assert!(seen[N as usize] > 0, "samples: {seen:?}");
    assert!(ok > 0 && shed > 0, "served {ok}, shed {shed}");
    wait_until("the route drains", || {
        stats(&srv, "busy")["requests"]["active"] == 0
    });
    let s = stats(&srv, "busy");
    assert_eq!(s["requests"]["shed"], shed, "{s}");
    assert_eq!(s["responses"]["2xx"], ok, "{s}");
    assert_eq!(s["requests"]["total"], ok + shed, "{s}");
    println!("32 connections, limit {N}: {ok} served, {shed} shed; active samples {seen:?}");
}

#[test]
fn lowering_the_limit_below_the_running_count_sheds_only_new_requests() {
    let srv = TestServer::start(configure);
    let running: Vec<_> = (0..3).map(|_| get_in_background(&srv, "/lower")).collect();
    wait_until("three requests inside", || {
        LOWER_GATE.inside.load(Ordering::SeqCst) == 3
    });
    assert_eq!(
        put(
            &srv,
            "lower",
            json!({"transient": {"limits.max_in_flight": 1}})
        )
        .status,
        200
    );
    assert!(get_raw(&srv, "/lower").starts_with("HTTP/1.1 503 Too many requests in flight"));
    assert_eq!(
        LOWER_GATE.inside.load(Ordering::SeqCst),
        3,
        "nothing running was dropped"
    );
    LOWER_GATE.open.store(true, Ordering::SeqCst);
    for r in running {
        assert!(r.join().unwrap().starts_with("HTTP/1.1 200 OK"));
    }
    wait_until("the route drains", || {
        stats(&srv, "lower")["requests"]["active"] == 0
    });
    assert!(get_raw(&srv, "/lower").starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn timeout_answers_504_drops_the_handler_and_ends_the_task() {
    let srv = TestServer::start(configure);
    let res = put(
        &srv,
        "sleepy",
        json!({"transient": {"limits.timeout": "300ms"}}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let started = Instant::now();
    let answer = get_raw(&srv, "/sleepy?ms=5000");
    let took = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nRequest timed out\n"), "{answer}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(
        TIMEOUT_DROPPED.load(Ordering::SeqCst),
        "the handler's future was dropped"
    );
    let tasks = srv.admin("GET", "/_tasks?group_by=none").json();
    assert!(
        !tasks.to_string().contains("/sleepy"),
        "the task is gone: {tasks}"
    );
    // A request that ends in time is served.
    assert_eq!(srv.http("GET", "/sleepy?ms=10").status, 200);
    let s = stats(&srv, "sleepy");
    assert_eq!(s["requests"]["timed_out"], 1, "{s}");
    assert_eq!(s["responses"]["2xx"], 1, "{s}");
    assert_eq!(s["requests"]["active"], 0, "{s}");
    let row = srv.admin(
        "GET",
        "/_cat/routes/sleepy?h=id,limits.timeout,timeout&format=json",
    );
    // `timeout` is the alias of `stats.req.timed_out`: each column is shown once.
    assert_eq!(
        row.json(),
        json!([{"id": "sleepy", "limits.timeout": "300ms", "timeout": 1}])
    );
}

#[test]
fn preempt_percent_is_exact_over_every_hundred_requests() {
    let srv = TestServer::start(configure);
    let res = put(
        &srv,
        "share",
        json!({"transient": {"preempt": {"status": 503, "percent": 25}}}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let preempted: Vec<bool> = (0..300)
        .map(|_| match srv.http("GET", "/share").status {
            200 => false,
            503 => true,
            other => panic!("status {other}"),
        })
        .collect();
    for (i, window) in preempted.windows(100).enumerate() {
        let n = window.iter().filter(|&&p| p).count();
        assert!((24..=26).contains(&n), "window at {i}: {n} preempted");
    }
    let s = stats(&srv, "share");
    assert_eq!(s["requests"]["preempted"], 75, "{s}");
    assert_eq!(s["responses"]["2xx"], 225, "{s}");
    let cat = srv.admin("GET", "/_cat/routes/share?h=id,preempt,percent&format=json");
    assert_eq!(
        cat.json(),
        json!([{"id": "share", "preempt": 503, "percent": 25}])
    );
    // Without a percent, every request is preempted; 0 preempts none.
    put(
        &srv,
        "share",
        json!({"transient": {"preempt.percent": null}}),
    );
    assert!((0..10).all(|_| srv.http("GET", "/share").status == 503));
    put(&srv, "share", json!({"transient": {"preempt.percent": 0}}));
    assert!((0..10).all(|_| srv.http("GET", "/share").status == 200));
}

#[test]
fn plain_routes_are_limited_too() {
    let srv = TestServer::start(configure);
    // A plain route is known after its first request.
    PLAIN_GATE.open.store(true, Ordering::SeqCst);
    assert_eq!(srv.http("GET", "/plaingate").status, 200);
    PLAIN_GATE.open.store(false, Ordering::SeqCst);
    assert_eq!(
        put(
            &srv,
            "plaingate",
            json!({"transient": {"limits.max_in_flight": 1}})
        )
        .status,
        200
    );
    let first = get_in_background(&srv, "/plaingate");
    wait_until("one plain request inside", || {
        PLAIN_GATE.inside.load(Ordering::SeqCst) == 1
    });
    assert!(get_raw(&srv, "/plaingate").starts_with("HTTP/1.1 503 Too many requests in flight"));
    PLAIN_GATE.open.store(true, Ordering::SeqCst);
    assert!(first.join().unwrap().starts_with("HTTP/1.1 200 OK"));
    assert_eq!(PLAIN_GATE.most.load(Ordering::SeqCst), 1);
    let s = stats(&srv, "plaingate");
    assert_eq!(s["requests"]["shed"], 1, "{s}");
    assert_eq!(s["responses"]["2xx"], 2, "{s}");
    assert_eq!(s["requests"]["active"], 0, "{s}");
    put(&srv, "plaingate", json!({"transient": {"limits.*": null}}));
}

#[test]
fn bad_limits_are_refused_whole_naming_the_key() {
    let srv = TestServer::start(configure);
    let base = json!({"transient": {"limits.max_in_flight": 3, "limits.timeout": "2s", "preempt.percent": 10}});
    assert_eq!(put(&srv, "strict", base.clone()).status, 200);
    let before = srv.admin("GET", "/_routes/strict/settings").body;
    for (key, value) in [
        ("limits.max_in_flight", json!(0)),
        ("limits.max_in_flight", json!(-1)),
        ("limits.max_in_flight", json!(1.5)),
        ("limits.max_in_flight", json!("abc")),
        ("limits.timeout", json!("5 parsecs")),
        ("limits.timeout", json!("-1s")),
        ("limits.timeout", json!("0s")),
        ("limits.timeout", json!(5)),
        ("preempt.percent", json!(101)),
        ("preempt.percent", json!(-1)),
        ("preempt.percent", json!("NaN")),
        ("limits.status", json!(600)),
        ("limits.retry_after", json!(-5)),
    ] {
        // A valid key beside the bad one: neither is applied.
        let body = json!({"transient": {"limits.status": 429, key: value}});
        let res = put(&srv, "strict", body);
        assert_eq!(res.status, 400, "{key}={value}: {}", res.body);
        let err = res.json();
        assert_eq!(err["error"]["type"], "illegal_argument_exception");
        let reason = err["error"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("[{key}] with value [{value}]")),
            "{key}={value}: {reason}"
        );
        assert_eq!(
            srv.admin("GET", "/_routes/strict/settings").body,
            before,
            "nothing changed"
        );
    }
    // The limits still apply as they were.
    let row = srv.admin(
        "GET",
        "/_cat/routes/strict?h=limits.max_in_flight,limits.timeout,preempt.percent",
    );
    assert_eq!(
        row.body, "3 2s -\n",
        "no preempt status, so no effective percent"
    );
    let defaults = srv.admin(
        "GET",
        "/_routes/strict/settings?include_defaults&flat_settings",
    );
    let defaults = &defaults.json()["strict"]["defaults"];
    for key in [
        "limits.max_in_flight",
        "limits.timeout",
        "limits.status",
        "limits.retry_after",
        "preempt.percent",
    ] {
        assert!(defaults.get(key).is_some(), "{key} in {defaults}");
    }
}

/// What the admin APIs say is in flight on `id`: `_cat/routes`, `_routes/stats` and the
/// Prometheus gauge.
fn in_flight_everywhere(srv: &TestServer, id: &str) -> [u64; 3] {
    let cat = srv.admin("GET", &format!("/_cat/routes/{id}?h=active&format=json"));
    let cat = cat.json()[0]["active"].as_u64().unwrap();
    let stats = stats(srv, id)["requests"]["active"].as_u64().unwrap();
    let metrics = srv.admin("GET", "/_prometheus/metrics").body;
    let series = format!("underscore_requests_in_flight{{route=\"{id}\"}} ");
    let gauge = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in {metrics}"))
        .parse()
        .unwrap();
    [cat, stats, gauge]
}

#[test]
fn waiting_requests_of_a_plain_route_are_counted_once_with_or_without_a_limit() {
    let srv = TestServer::start(configure);
    // A plain route is known after its first request.
    COUNT_GATE.open.store(true, Ordering::SeqCst);
    assert_eq!(srv.http("GET", "/plaincount").status, 200);
    COUNT_GATE.open.store(false, Ordering::SeqCst);
    for limit in [json!(null), json!(10)] {
        put(
            &srv,
            "plaincount",
            json!({"transient": {"limits.max_in_flight": limit}}),
        );
        let waiting: Vec<_> = (0..3)
            .map(|_| get_in_background(&srv, "/plaincount"))
            .collect();
        wait_until("three requests inside", || {
            COUNT_GATE.inside.load(Ordering::SeqCst) == 3
        });
        // Each is listed once it has waited: then all of them are, and counted.
        wait_until("three tasks", || {
            let tasks = srv.admin("GET", "/_tasks?group_by=none&actions=http:plaincount");
            tasks.json()["tasks"].as_array().unwrap().len() == 3
        });
        assert_eq!(
            in_flight_everywhere(&srv, "plaincount"),
            [3, 3, 3],
            "limit {limit}"
        );
        COUNT_GATE.open.store(true, Ordering::SeqCst);
        for answer in waiting {
            assert!(answer.join().unwrap().starts_with("HTTP/1.1 200 OK"));
        }
        wait_until("none inside", || {
            COUNT_GATE.inside.load(Ordering::SeqCst) == 0
        });
        assert_eq!(in_flight_everywhere(&srv, "plaincount"), [0, 0, 0]);
        COUNT_GATE.open.store(false, Ordering::SeqCst);
    }
}
