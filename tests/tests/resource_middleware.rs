//! An annotated route behind a resource middleware of the user's that edits the request (a
//! header added, a path segment rewritten), as many do: served exactly as without the
//! annotation, counted once, and interruptible while it waits, wherever it waits.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{get, web, Error, HttpRequest};
use common::{read_all, send_raw, wait_until, TestServer};
use serde_json::{json, Value};
use underscore_actix::underscore_route;

/// How long the handler (`ms`) or the middleware before it (`mw_ms`) waits.
fn wait_of(query: &str, key: &str) -> Duration {
    let map: HashMap<String, String> =
        web::Query::from_query(query).map_or_else(|_| HashMap::new(), web::Query::into_inner);
    Duration::from_millis(map.get(key).and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Adds a request header before calling on.
async fn add_header(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    req.headers_mut().insert(
        HeaderName::from_static("x-added"),
        HeaderValue::from_static("by middleware"),
    );
    next.call(req).await
}

/// Waits first (an authorisation lookup, say), then adds the header: the edit happens in a
/// later poll, not in the middleware's `call`.
async fn wait_then_add_header(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let wait = wait_of(req.query_string(), "mw_ms");
    actix_web::rt::time::sleep(wait).await;
    req.headers_mut().insert(
        HeaderName::from_static("x-added"),
        HeaderValue::from_static("after a wait"),
    );
    next.call(req).await
}

/// Adds a segment to the matched path's (a tenant, from the host name, say).
async fn add_segment(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    req.match_info_mut().add_static("tenant", "acme");
    next.call(req).await
}

fn added(req: &HttpRequest) -> String {
    req.headers()
        .get("x-added")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("missing")
        .to_owned()
}

/// Reads the header its middleware added.
#[underscore_route]
#[get("/mw/header", wrap = "actix_web::middleware::from_fn(add_header)")]
async fn header_added(req: HttpRequest) -> String {
    actix_web::rt::time::sleep(wait_of(req.query_string(), "ms")).await;
    format!("header: {}", added(&req))
}

/// Reads the header its middleware added after waiting.
#[underscore_route]
#[get(
    "/mw/late",
    wrap = "actix_web::middleware::from_fn(wait_then_add_header)"
)]
async fn header_late(req: HttpRequest) -> String {
    actix_web::rt::time::sleep(wait_of(req.query_string(), "ms")).await;
    format!("header: {}", added(&req))
}

/// Reads the segment its middleware added.
#[underscore_route]
#[get(
    "/mw/segment/{name}",
    wrap = "actix_web::middleware::from_fn(add_segment)"
)]
async fn segment(req: HttpRequest) -> String {
    actix_web::rt::time::sleep(wait_of(req.query_string(), "ms")).await;
    let info = req.match_info();
    format!("{} of {}", &info["name"], &info["tenant"])
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(header_added)
        .service(header_late)
        .service(segment);
}

fn route_stats(srv: &TestServer, id: &str) -> Value {
    srv.admin("GET", &format!("/_routes/{id}/stats")).json()["routes"][id].clone()
}

/// The ids `_cat/routes` lists.
fn route_ids(srv: &TestServer) -> Vec<String> {
    let rows = srv.admin("GET", "/_cat/routes?h=id&format=json").json();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The number of in-flight tasks of `action`.
fn tasks_of(srv: &TestServer, action: &str) -> usize {
    let json = srv
        .admin("GET", &format!("/_tasks?group_by=none&actions={action}"))
        .json();
    json["tasks"].as_array().unwrap().len()
}

fn get(srv: &TestServer, path: &str) -> std::net::TcpStream {
    send_raw(
        srv.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

/// Route statistics are the process's: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The route's counters: requests (total, active, interrupted) and 2xx responses.
fn counts(srv: &TestServer, id: &str) -> [u64; 4] {
    let s = route_stats(srv, id);
    let n = |v: &Value| v.as_u64().unwrap();
    [
        n(&s["requests"]["total"]),
        n(&s["requests"]["active"]),
        n(&s["requests"]["interrupted"]),
        n(&s["responses"]["2xx"]),
    ]
}

#[test]
fn a_middleware_that_edits_the_request_is_served_and_counted_once() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    for (path, body, id) in [
        ("/mw/header", "header: by middleware", "header_added"),
        ("/mw/late?mw_ms=20", "header: after a wait", "header_late"),
        ("/mw/segment/page", "page of acme", "segment"),
        // Handlers that wait, so the request registers as a task.
        ("/mw/header?ms=30", "header: by middleware", "header_added"),
        (
            "/mw/late?mw_ms=20&ms=30",
            "header: after a wait",
            "header_late",
        ),
        ("/mw/segment/page?ms=30", "page of acme", "segment"),
    ] {
        let [total, _, interrupted, ok] = counts(&srv, id);
        let res = srv.http("GET", path);
        assert_eq!((res.status, res.body.as_str()), (200, body), "{path}");
        wait_until(&format!("{path} ends"), || counts(&srv, id)[1] == 0);
        assert_eq!(
            counts(&srv, id),
            [total + 1, 0, interrupted, ok + 1],
            "{path}"
        );
    }
    // Not counted a second time as a plain route of the same path.
    let mut ids = route_ids(&srv);
    ids.sort();
    assert_eq!(ids, ["header_added", "header_late", "segment"]);
}

#[test]
fn a_request_behind_an_editing_middleware_is_interrupted_wherever_it_waits() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(routes);
    // Waiting in the handler, after the middleware's edit; and in the middleware itself,
    // before its edit and before the handler was called.
    for (path, id) in [
        ("/mw/header?ms=30000", "header_added"),
        ("/mw/segment/x?ms=30000", "segment"),
        ("/mw/late?mw_ms=30000", "header_late"),
        ("/mw/late?mw_ms=10&ms=30000", "header_late"),
        ("/mw/late?mw_ms=30000&again", "header_late"),
    ] {
        let [total, _, interrupted, ok] = counts(&srv, id);
        let client = get(&srv, path);
        let action = format!("http:{id}");
        wait_until(path, || tasks_of(&srv, &action) == 1);
        // Listed with its own method and target wherever it waits; the first request of a
        // route to wait in a middleware around its handler (where no clone of the request is
        // at hand) by its route's, until it reaches its handler.
        let listed = srv
            .admin(
                "GET",
                &format!("/_tasks?group_by=none&detailed&actions={action}"),
            )
            .json();
        let description = listed["tasks"][0]["description"].as_str().unwrap();
        let first_outside = path == "/mw/late?mw_ms=30000" && description == "GET /mw/late";
        assert!(
            description == format!("GET {path}") || first_outside,
            "{path}: {description}"
        );
        let res = srv.admin("POST", &format!("/_routes/{id}/interrupt"));
        assert_eq!(res.json(), json!({ id: {"interrupted": 1} }), "{path}");
        let reply = read_all(client);
        assert!(
            reply.starts_with("HTTP/1.1 503 Request interrupted\r\n"),
            "{path}: {reply}"
        );
        assert!(
            reply.ends_with("\r\n\r\nRequest interrupted\n"),
            "{path}: {reply}"
        );
        wait_until("the task gone", || tasks_of(&srv, &action) == 0);
        assert_eq!(
            counts(&srv, id),
            [total + 1, 0, interrupted + 1, ok],
            "{path}"
        );
    }
}
