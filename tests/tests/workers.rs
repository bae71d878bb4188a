//! Blocked workers: poll timing, `_cat/workers`, blocking polls per route and task.

mod common;

use std::time::{Duration, Instant};

use actix_web::{get, web, Responder};
use common::TestServer;
use serde_json::Value;
use underscore_actix::underscore_route;

/// Blocks its worker with a synchronous sleep.
#[underscore_route]
#[get("/block")]
async fn block(query: web::Query<std::collections::HashMap<String, String>>) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    std::thread::sleep(Duration::from_millis(ms));
    format!("blocked {ms}")
}

/// Waits without blocking.
#[underscore_route]
#[get("/idle")]
async fn idle() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    "idle done"
}

/// The same as `block`, on a plain actix-web route (no `#[underscore_route]`).
async fn plain_block(
    query: web::Query<std::collections::HashMap<String, String>>,
) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    std::thread::sleep(Duration::from_millis(ms));
    format!("plain blocked {ms}")
}

/// `block`, reached only through a middleware that awaits before calling on: its `Track`
/// claims the request inside a poll `Observe` is timing.
#[underscore_route]
#[get("/block")]
async fn deferred_block() -> impl Responder {
    std::thread::sleep(Duration::from_millis(300));
    "deferred blocked"
}

async fn defer(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    actix_web::rt::task::yield_now().await;
    next.call(req).await
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(block)
        .service(idle)
        .route("/plain-block", web::get().to(plain_block))
        .service(
            web::scope("/deferred")
                .wrap(actix_web::middleware::from_fn(defer))
                .service(deferred_block),
        );
}

fn workers(srv: &TestServer) -> Vec<Value> {
    srv.admin("GET", "/_cat/workers?format=json&h=*")
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_blocked_worker_is_shown_while_it_blocks_and_counted_after() {
    common::capture_events("underscore::blocking");
    underscore_actix::Underscore::builder()
        .poll_timing(true)
        .blocking_threshold(Duration::from_millis(50))
        .init()
        .unwrap();
    let srv = TestServer::start(routes);
    let rows = workers(&srv);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|w| w["polling"].is_null()));

    // A waiting request: registered after its first poll, which was timed.
    let waiting = common::send_raw(srv.addr, "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n");
    common::wait_until("the idle task", || {
        srv.admin("GET", "/_cat/tasks?h=action")
            .body
            .contains("http:idle")
    });
    let polls = srv.admin("GET", "/_cat/tasks?h=action,polls,blocking_polls");
    let row: Vec<&str> = polls.body.split_whitespace().collect();
    assert_eq!(row[0], "http:idle", "{}", polls.body);
    assert!(row[1].parse::<u64>().unwrap() >= 1, "{}", polls.body);
    assert_eq!(row[2], "0", "{}", polls.body);

    // Both workers blocked at once (one connection each: actix spreads them).
    let started = Instant::now();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn({
                let url = srv.url("/block?ms=1500");
                move || common::http("GET", &url, None)
            })
        })
        .collect();
    common::wait_until("both workers polling block", || {
        workers(&srv).iter().all(|w| w["polling"] == "block")
    });
    let asked = Instant::now();
    let rows = workers(&srv);
    let answered = asked.elapsed();
    println!("_cat/workers answered in {answered:?} while both app workers were blocked");
    for w in &rows {
        assert_eq!(w["task"], Value::Null, "a first poll has no task yet: {w}");
        assert!(w["active"].as_u64().unwrap() >= 1, "{w}");
        assert!(
            w["polling_for"].as_str().unwrap().ends_with("ms")
                || w["polling_for"].as_str().unwrap().ends_with('s'),
            "{w}"
        );
    }
    for client in clients {
        assert_eq!(client.join().unwrap().body, "blocked 1500");
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));

    let stats = srv.admin("GET", "/_routes/block/stats").json();
    assert_eq!(stats["routes"]["block"]["blocking_polls"], 2, "{stats}");
    assert!(
        stats["routes"]["block"]["busy_ms"].as_f64().unwrap() >= 3000.0,
        "{stats}"
    );
    let idle_stats = srv.admin("GET", "/_routes/idle/stats").json();
    assert_eq!(
        idle_stats["routes"]["idle"]["blocking_polls"], 0,
        "{idle_stats}"
    );
    let rows = workers(&srv);
    for w in &rows {
        assert!(w["polling"].is_null(), "{w}");
        assert!(w["blocking_polls"].as_u64().unwrap() >= 1, "{w}");
        let longest = w["longest_poll"].as_str().unwrap();
        assert!(
            longest.ends_with('s') && !longest.ends_with("ms"),
            "{longest}"
        );
        // Sampled once a second: the worker was busy most of the last 5 s.
        common::wait_until("a busy ratio", || {
            workers(&srv)
                .iter()
                .all(|w| w["busy_5s"].as_f64().is_some_and(|r| r > 0.1))
        });
    }
    // Logged once per request, with its route.
    let events = common::captured_events();
    assert_eq!(
        events.iter().filter(|e| e.contains("route=block")).count(),
        2,
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("route=idle")),
        "{events:#?}"
    );

    // A plain route behind `Observe`: timed the same, once actix has served it once (a plain
    // route is known from its first answer on).
    assert_eq!(srv.http("GET", "/plain-block").body, "plain blocked 0");
    let client = std::thread::spawn({
        let url = srv.url("/plain-block?ms=600");
        move || common::http("GET", &url, None)
    });
    // Shown by its route, and as blocked once past the 50 ms threshold.
    common::wait_until("a worker blocked by plain-block", || {
        workers(&srv)
            .iter()
            .any(|w| w["polling"] == "plain-block" && w["blocked"] == true)
    });
    assert_eq!(client.join().unwrap().body, "plain blocked 600");
    let stats = srv.admin("GET", "/_routes/plain-block/stats").json();
    let plain = &stats["routes"]["plain-block"];
    assert_eq!(plain["blocking_polls"], 1, "{stats}");
    assert!(plain["busy_ms"].as_f64().unwrap() >= 600.0, "{stats}");
    let events = common::captured_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("route=plain-block"))
            .count(),
        1,
        "{events:#?}"
    );

    // An annotated route behind a deferring middleware: `Observe` times the poll in which the
    // `Track` claims the request, and the `Track` times its own inside it. Counted once, on
    // the route, and the worker is not left showing a poll.
    let worker_polls: u64 = workers(&srv)
        .iter()
        .map(|w| w["blocking_polls"].as_u64().unwrap())
        .sum();
    assert_eq!(srv.http("GET", "/deferred/block").body, "deferred blocked");
    let stats = srv.admin("GET", "/_routes/deferred_block/stats").json();
    assert_eq!(
        stats["routes"]["deferred_block"]["blocking_polls"], 1,
        "{stats}"
    );
    let rows = workers(&srv);
    assert!(rows.iter().all(|w| w["polling"].is_null()), "{rows:#?}");
    let after: u64 = rows
        .iter()
        .map(|w| w["blocking_polls"].as_u64().unwrap())
        .sum();
    assert_eq!(after, worker_polls + 1, "{rows:#?}");
    drop(waiting);
}
