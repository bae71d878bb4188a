//! A running request's stack, captured for the slow log's reports while other stacks are being
//! resolved: many slow requests at once, each reported `stack_repeat` times.

mod common;

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{get, web, Responder};
use common::TestServer;
use serde_json::Value;
use underscore_actix::underscore_route;

/// Sleeps `ms` milliseconds (awaiting), then answers.
#[underscore_route]
#[get("/nap")]
async fn nap(query: web::Query<HashMap<String, String>>) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    napping(ms).await;
    format!("napped {ms}")
}

/// A named await point, for the reports' stacks.
async fn napping(ms: u64) {
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
}

/// Sleeps `ms` milliseconds (awaiting) while a task it spawned on its worker blocks that
/// worker from 100 ms on, for `block` milliseconds: the request is not polled meanwhile.
#[underscore_route]
#[get("/stall")]
async fn stall(query: web::Query<HashMap<String, String>>) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    let block: u64 = query.get("block").map_or(0, |ms| ms.parse().unwrap());
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        std::thread::sleep(Duration::from_millis(block));
    });
    napping(ms).await;
    format!("napped {ms}")
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(nap).service(stall);
}

/// The tests share the route's settings, and one holds a process-wide lock: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// `warn` and `stack_interval` 200 ms, `stack_repeat` 3 (the default), on `route`.
fn report_every_200ms(srv: &TestServer, route: &str) {
    let res = common::curl_unix(
        &srv.socket,
        "PUT",
        &format!("/_routes/{route}/settings"),
        Some(
            r#"{"transient": {"slowlog": {"threshold": {"warn": "200ms"},
                "stack_interval": "200ms", "stack_repeat": 3}}}"#,
        ),
    );
    assert_eq!(res.status, 200, "{}", res.body);
}

/// The running reports of the request with correlation id `id`.
fn reports(srv: &TestServer, id: &str) -> Vec<Value> {
    let json = srv.admin("GET", "/_slowlog?size=1000").json();
    json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["running"] == true && e["opaque_id"] == id)
        .cloned()
        .collect()
}

/// Waits (20 s at most) until each request of `ids` has 3 reports with their stacks, and
/// returns them.
fn three_reports_each(srv: &TestServer, ids: &[String]) -> Vec<Vec<Value>> {
    let start = Instant::now();
    loop {
        let all: Vec<Vec<Value>> = ids.iter().map(|id| reports(srv, id)).collect();
        if all
            .iter()
            .all(|r| r.len() == 3 && r.iter().all(|e| e["stack"].is_string()))
        {
            return all;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{all:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that `reports` are reports 1 to 3, each with the stack of the request's await point.
fn assert_stacks(id: &str, reports: &[Value]) {
    for (n, report) in reports.iter().enumerate() {
        assert_eq!(report["report"], n as u64 + 1, "{id}: {reports:#?}");
        let stack = report["stack"].as_str().unwrap();
        assert!(stack.contains("napping"), "{id}, report {}: {stack}", n + 1);
    }
}

/// Holds the `backtrace` crate's process-wide lock, as resolving a stack's symbols does (up
/// to seconds in a big binary, the first time), until the returned sender is dropped.
fn hold_symbol_lock() -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        // `trace` calls back with the lock held.
        backtrace::trace(|_| {
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            false
        });
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

#[test]
fn stacks_are_captured_while_another_stack_is_being_resolved() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    report_every_200ms(&srv, "nap");
    let (release, holder) = hold_symbol_lock();
    let conn = common::send_raw(
        srv.addr,
        "GET /nap?ms=2500 HTTP/1.1\r\nHost: t\r\nX-Opaque-Id: held\r\nConnection: close\r\n\r\n",
    );
    // Reported at 200, 400 and 600 ms: each stack is captured at the request's next poll,
    // and waits for the lock only to be resolved. Held a second past the last report (the
    // slow log waits a second for a capture), then let go.
    common::wait_until("3 reports", || reports(&srv, "held").len() == 3);
    std::thread::sleep(Duration::from_millis(1200));
    drop(release);
    holder.join().unwrap();
    let reports = three_reports_each(&srv, &["held".to_owned()]);
    assert_stacks("held", &reports[0]);
    assert!(common::read_all(conn).contains("napped 2500"));
}

#[test]
fn concurrent_slow_requests_each_get_every_report_with_its_stack() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    report_every_200ms(&srv, "nap");
    let ids: Vec<String> = (0..12).map(|i| format!("many-{i}")).collect();
    let conns: Vec<_> = ids
        .iter()
        .map(|id| {
            common::send_raw(
                srv.addr,
                format!(
                    "GET /nap?ms=1500 HTTP/1.1\r\nHost: t\r\nX-Opaque-Id: {id}\r\n\
                     Connection: close\r\n\r\n"
                ),
            )
        })
        .collect();
    for conn in conns {
        assert!(common::read_all(conn).contains("napped 1500"));
    }
    for (id, reports) in ids.iter().zip(three_reports_each(&srv, &ids)) {
        assert_stacks(id, &reports);
    }
}

#[test]
fn reports_asked_while_the_worker_is_blocked_all_get_the_stack() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    report_every_200ms(&srv, "stall");
    // Its worker is blocked from 100 to 800 ms: the reports at 200, 400 and 600 ms all wait
    // for the request's next poll, and each gets the stack it captures.
    let conn = common::send_raw(
        srv.addr,
        "GET /stall?ms=1500&block=700 HTTP/1.1\r\nHost: t\r\nX-Opaque-Id: stalled\r\n\
         Connection: close\r\n\r\n",
    );
    assert!(common::read_all(conn).contains("napped 1500"));
    let reports = three_reports_each(&srv, &["stalled".to_owned()]);
    assert_stacks("stalled", &reports[0]);
}
