//! A response whose body is still streaming keeps its request in flight until its last byte,
//! whether its length is known (`SizedStream`, a proxied response with `Content-Length`) or
//! not (`.streaming()`): listed, counted active, limited, timed out and interrupted alike.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use actix_web::body::SizedStream;
use actix_web::{get, web, HttpResponse};
use common::{curl_unix, read_all, send_raw, wait_until, Stalling, TestServer};
use serde_json::{json, Value};
use underscore_actix::underscore_route;

/// A stream of unknown length (chunked).
#[underscore_route]
#[get("/body/chunked")]
async fn chunked() -> HttpResponse {
    HttpResponse::Ok().streaming(Stalling::new())
}

/// A stream of known length (`Content-Length: 24`), as a proxy answers once its upstream has
/// (or at once, with `?now`).
#[underscore_route]
#[get("/body/sized")]
async fn sized(req: actix_web::HttpRequest) -> HttpResponse {
    if req.query_string() != "now" {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    HttpResponse::Ok().body(SizedStream::new(24, Stalling::new()))
}

/// Behind a middleware of the user's that changes the body type (`Condition` answers with an
/// `EitherBody`): a stream of known length, or (with `?whole`) a body in memory.
#[underscore_route]
#[get(
    "/body/wrapped",
    wrap = "actix_web::middleware::Condition::new(true, \
            actix_web::middleware::DefaultHeaders::new().add((\"x-wrapped\", \"yes\")))"
)]
async fn wrapped_sized(req: actix_web::HttpRequest) -> HttpResponse {
    if req.query_string() == "whole" {
        return HttpResponse::Ok().body("whole body");
    }
    HttpResponse::Ok().body(SizedStream::new(24, Stalling::new()))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(chunked).service(sized).service(wrapped_sized);
}

/// Route statistics are the process's: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends `GET path` and reads the response head (and the first chunk, if it came with it).
fn start(srv: &TestServer, path: &str) -> (TcpStream, String) {
    let mut conn = send_raw(
        srv.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    );
    let mut head = [0u8; 1024];
    let n = conn.read(&mut head).unwrap();
    (conn, String::from_utf8_lossy(&head[..n]).into_owned())
}

fn active(srv: &TestServer, id: &str) -> u64 {
    let s = srv.admin("GET", &format!("/_routes/{id}/stats")).json();
    s["routes"][id]["requests"]["active"].as_u64().unwrap()
}

fn tasks_of(srv: &TestServer, id: &str) -> usize {
    let json = srv
        .admin("GET", &format!("/_tasks?group_by=none&actions=http:{id}"))
        .json();
    json["tasks"].as_array().unwrap().len()
}

fn put(srv: &TestServer, id: &str, body: Value) {
    let res = curl_unix(
        &srv.socket,
        "PUT",
        &format!("/_routes/{id}/settings"),
        Some(&body.to_string()),
    );
    assert_eq!(res.status, 200, "{}", res.body);
}

/// The rest of a response cut short: the first chunk came, the body is not complete.
fn assert_cut_short(head: String, conn: TcpStream, id: &str) {
    let whole = head + &read_all(conn);
    assert!(whole.starts_with("HTTP/1.1 200 OK\r\n"), "{id}: {whole}");
    assert!(whole.contains("first chunk"), "{id}: {whole}");
    assert!(!whole.ends_with("0\r\n\r\n"), "{id}: complete: {whole:?}");
}

#[test]
fn a_streaming_body_is_listed_counted_and_interrupted_until_its_last_byte() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    for id in ["chunked", "sized"] {
        let (conn, head) = start(&srv, &format!("/body/{id}"));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{id}: {head}");
        wait_until("the task", || tasks_of(&srv, id) == 1);
        assert_eq!(active(&srv, id), 1, "{id}");
        let res = srv.admin("POST", &format!("/_routes/{id}/interrupt"));
        assert_eq!(res.json(), json!({ id: {"interrupted": 1} }), "{id}");
        assert_cut_short(head, conn, id);
        wait_until("the task gone", || tasks_of(&srv, id) == 0);
        assert_eq!(active(&srv, id), 0, "{id}");
    }
}

#[test]
fn a_streaming_body_holds_its_slot_and_is_timed_out() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    for id in ["chunked", "sized"] {
        put(
            &srv,
            id,
            json!({"transient": {"limits.max_in_flight": 1, "limits.timeout": "500ms"}}),
        );
        let sent = Instant::now();
        // Answered at once: the limit and the timeout are what make it followed.
        let (conn, head) = start(&srv, &format!("/body/{id}?now"));
        // Still streaming: its slot is taken.
        let shed = common::raw(
            srv.addr,
            format!("GET /body/{id}?now HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            shed.starts_with("HTTP/1.1 503 Too many requests in flight"),
            "{id}: {shed}"
        );
        // Cut at its timeout, not before.
        assert_cut_short(head, conn, id);
        let took = sent.elapsed();
        assert!(took >= Duration::from_millis(500), "{id}: {took:?}");
        wait_until("the slot is free", || active(&srv, id) == 0);
        let s = srv.admin("GET", &format!("/_routes/{id}/stats")).json();
        assert_eq!(s["routes"][id]["requests"]["timed_out"], 1, "{id}: {s}");
        assert_eq!(s["routes"][id]["requests"]["shed"], 1, "{id}: {s}");
        put(&srv, id, json!({"transient": {"limits.*": null}}));
    }
}

#[test]
fn a_body_of_known_length_behind_a_body_changing_middleware_is_told_apart() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    let id = "wrapped_sized";
    put(
        &srv,
        id,
        json!({"transient": {"limits.max_in_flight": 1, "limits.timeout": "500ms"}}),
    );
    // In memory: sent whole, its slot freed with the response.
    for _ in 0..3 {
        let res = srv.http("GET", "/body/wrapped?whole");
        assert_eq!((res.status, res.body.as_str()), (200, "whole body"));
        assert_eq!(res.header("x-wrapped"), Some("yes"));
        wait_until("the slot is free", || active(&srv, id) == 0);
    }
    // A stream: its slot held until it is cut at its timeout.
    let (conn, head) = start(&srv, "/body/wrapped");
    assert!(head.contains("x-wrapped: yes"), "{head}");
    let shed = common::raw(
        srv.addr,
        "GET /body/wrapped?whole HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        shed.starts_with("HTTP/1.1 503 Too many requests in flight"),
        "{shed}"
    );
    assert_cut_short(head, conn, id);
    wait_until("the slot is free", || active(&srv, id) == 0);
    let s = srv.admin("GET", &format!("/_routes/{id}/stats")).json();
    let req = &s["routes"][id]["requests"];
    assert_eq!(
        (req["timed_out"].as_u64(), req["shed"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    put(&srv, id, json!({"transient": {"limits.*": null}}));
}
