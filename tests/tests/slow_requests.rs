//! Why a request is slow: correlation ids, the slow log.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use actix_web::{get, web, Responder};
use common::TestServer;
use serde_json::{json, Value};
use underscore_actix::underscore_route;

/// Waits until interrupted.
#[underscore_route]
#[get("/hold/{n}")]
async fn hold(n: web::Path<u32>) -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    format!("held {n}")
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(hold);
}

/// Sends `GET path` with `headers` (`Name: value\r\n` lines) and returns the open connection.
fn send(addr: SocketAddr, path: &str, headers: &str) -> TcpStream {
    common::send_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"),
    )
}

fn tasks_of(srv: &TestServer, action: &str) -> Vec<Value> {
    let json = srv
        .admin("GET", &format!("/_tasks?group_by=none&actions={action}"))
        .json();
    json["tasks"].as_array().unwrap().clone()
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_correlation_id_comes_from_the_first_header_present() {
    let srv = TestServer::start(routes);
    let cases = [
        (
            "/hold/1",
            "X-Opaque-Id: job-1\r\nX-Request-Id: r-1\r\n",
            Some("job-1"),
        ),
        ("/hold/2", "X-Request-Id: r-2\r\n", Some("r-2")),
        (
            "/hold/3",
            &*format!("traceparent: {TRACEPARENT}\r\n"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
        ("/hold/4", "traceparent: garbage\r\n", None),
        ("/hold/5", "", None),
    ];
    let _clients: Vec<TcpStream> = cases
        .iter()
        .map(|(path, headers, _)| send(srv.addr, path, headers))
        .collect();
    common::wait_until("5 tasks", || tasks_of(&srv, "http:hold").len() == 5);
    let tasks = tasks_of(&srv, "http:hold");
    for (path, _, want) in cases {
        let task = tasks.iter().find(|t| t["path"] == path).unwrap();
        assert_eq!(task["opaque_id"].as_str(), want, "{path}: {task}");
        let id = format!("{}:{}", task["node"].as_str().unwrap(), task["id"]);
        let cat = srv.admin("GET", &format!("/_cat/tasks/{id}?h=opaque_id"));
        assert_eq!(cat.body.trim(), want.unwrap_or("-"), "{path}");
        let stack = srv.admin("GET", &format!("/_tasks/{id}/print_stack"));
        assert_eq!(stack.status, 200, "{}", stack.body);
        let first = stack.body.lines().next().unwrap().to_owned();
        match want {
            Some(want) => assert!(
                first.contains(&format!("GET {path}, opaque_id {want})")),
                "{first}"
            ),
            None => assert!(!first.contains("opaque_id"), "{first}"),
        }
    }
}

/// Sleeps `ms` milliseconds (awaiting), then answers.
#[underscore_route]
#[get("/nap")]
async fn nap(query: web::Query<std::collections::HashMap<String, String>>) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    napping(ms).await;
    format!("napped {ms}")
}

/// A named await point, for the running report's stack.
async fn napping(ms: u64) {
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
}

fn nap_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(nap);
}

fn slowlog(srv: &TestServer, query: &str) -> Vec<Value> {
    let json = srv.admin("GET", &format!("/_slowlog?{query}")).json();
    json["entries"].as_array().unwrap().clone()
}

fn put_settings(srv: &TestServer, body: &str) -> common::Reply {
    common::curl_unix(&srv.socket, "PUT", "/_routes/nap/settings", Some(body))
}

#[test]
fn slow_requests_are_logged_at_the_highest_level_crossed_and_while_they_run() {
    common::capture_events("underscore::slowlog");
    let srv = TestServer::start(nap_routes);
    // Off by default: nothing is logged, however slow.
    assert_eq!(srv.http("GET", "/nap?ms=120").status, 200);
    assert!(slowlog(&srv, "route=nap").is_empty());

    let res = put_settings(
        &srv,
        r#"{"transient": {"slowlog": {"threshold": {"warn": "400ms", "info": "100ms", "trace": "-1"},
            "stack_interval": "200ms", "stack_repeat": 3}}}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(srv.http("GET", "/nap?ms=0").status, 200);
    let info = send(srv.addr, "/nap?ms=150", "X-Request-Id: r-info\r\n");
    assert!(common::read_all(info).contains("napped 150"));
    let warn = send(srv.addr, "/nap?ms=1000", "X-Opaque-Id: slow-1\r\n");
    assert!(common::read_all(warn).contains("napped 1000"));
    let waited = std::time::Instant::now();
    // Reports carry their stacks once rendered.
    let settled = |entries: Vec<Value>| {
        entries.len() == 4
            && entries
                .iter()
                .all(|e| e["running"] == false || e["stack"].is_string())
    };
    while !settled(slowlog(&srv, "route=nap&level=warn")) {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "{:#?}",
            slowlog(&srv, "route=nap")
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let all = slowlog(&srv, "route=nap");
    assert_eq!(all.len(), 5, "{all:#?}");
    let info = &all[0];
    assert_eq!(info["level"], "info");
    assert_eq!(info["status"], 200);
    assert_eq!(info["method"], "GET");
    assert_eq!(info["path"], "/nap");
    assert_eq!(info["opaque_id"], "r-info");
    assert!(info["took_in_nanos"].as_u64().unwrap() >= 150_000_000);
    // Reported three times while running (at 400, 600 and 800 ms: stack_repeat 3, the
    // default), each with its stack, then at its end.
    let (reports, end): (Vec<&Value>, Vec<&Value>) =
        all[1..].iter().partition(|e| e["running"] == true);
    assert_eq!(reports.len(), 3, "{all:#?}");
    for (n, report) in reports.iter().enumerate() {
        assert_eq!(report["report"], n as u64 + 1);
        assert_eq!(report["status"], Value::Null);
        assert_eq!(report["opaque_id"], "slow-1");
        assert!(report["task"].as_str().unwrap().contains(':'));
        let stack = report["stack"].as_str().unwrap();
        assert!(stack.contains("napping"), "{stack}: {all:#?}");
        let took = report["took_in_nanos"].as_u64().unwrap();
        assert!(took >= 400_000_000 + 200_000_000 * n as u64, "{took}");
    }
    assert_eq!(end[0]["level"], "warn");
    assert_eq!(end[0]["status"], 200);
    assert_eq!(end[0]["task"], reports[0]["task"]);
    assert!(end[0]["took_in_nanos"].as_u64().unwrap() >= 1_000_000_000);

    // The filters.
    assert_eq!(slowlog(&srv, "route=na*&size=1")[0]["seq"], all[4]["seq"]);
    assert_eq!(slowlog(&srv, "route=nap&level=info").len(), 5);
    let since = all[4]["time_in_millis"].as_u64().unwrap();
    assert_eq!(slowlog(&srv, &format!("route=nap&since={since}")).len(), 1);
    assert_eq!(slowlog(&srv, "route=nap&since=1h").len(), 5);
    for (query, names) in [
        ("route=nope", "nope"),
        ("level=loud", "[level]"),
        ("since=5parsecs", "[since]"),
        ("size=0", "[size]"),
        ("sise=1", "sise"),
    ] {
        let res = srv.admin("GET", &format!("/_slowlog?{query}"));
        assert!(
            res.status == 400 || res.status == 404,
            "{query}: {}",
            res.status
        );
        assert!(res.body.contains(names), "{query}: {}", res.body);
    }
    let cat = srv.admin(
        "GET",
        "/_cat/slowlog?v&route=nap&h=level,route,status,method,path,opaque_id",
    );
    let lines: Vec<Vec<&str>> = cat
        .body
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["level", "route", "status", "method", "path", "opaque_id"]
    );
    assert_eq!(lines[1], ["info", "nap", "200", "GET", "/nap", "r-info"]);
    for line in &lines[2..5] {
        assert_eq!(line, &["warn", "nap", "running", "GET", "/nap", "slow-1"]);
    }
    assert_eq!(lines[5], ["warn", "nap", "200", "GET", "/nap", "slow-1"]);

    // One tracing event per entry, at its level, with what the entry holds.
    let events = common::captured_events();
    let mine = |needle: &str| events.iter().filter(|e| e.contains(needle)).count();
    assert_eq!(mine("opaque_id=\"r-info\""), 1, "{events:#?}");
    assert!(events.iter().any(|e| e.starts_with("INFO")
        && e.contains("r-info")
        && e.contains("status=200")
        && e.contains("path=/nap")));
    assert_eq!(mine("opaque_id=\"slow-1\""), 4, "{events:#?}");
    assert!(events.iter().any(|e| e.starts_with("WARN")
        && e.contains("slow request still running")
        && e.contains("napping")));

    // A bad value is a 400 naming its key, and changes nothing.
    let res = put_settings(
        &srv,
        r#"{"transient": {"slowlog.threshold.warn": "-1", "slowlog.threshold.info": "5 parsecs"}}"#,
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("slowlog.threshold.info"), "{}", res.body);
    let settings = srv
        .admin("GET", "/_routes/nap/settings?flat_settings")
        .json();
    assert_eq!(
        settings["nap"]["transient"]["slowlog.threshold.warn"], "400ms",
        "{settings}"
    );
    // Reset with a wildcard: off again.
    let res = put_settings(&srv, r#"{"transient": {"slowlog.*": null}}"#);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(srv.http("GET", "/nap?ms=150").status, 200);
    assert_eq!(slowlog(&srv, "route=nap").len(), 5);
}

/// `nap` on a plain actix-web route (no `#[underscore_route]`).
async fn plain_nap(query: web::Query<std::collections::HashMap<String, String>>) -> impl Responder {
    let ms: u64 = query.get("ms").map_or(0, |ms| ms.parse().unwrap());
    napping(ms).await;
    format!("plain napped {ms}")
}

fn plain_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/plain-nap", web::get().to(plain_nap));
}

#[test]
fn a_plain_route_has_its_slow_log_too() {
    let srv = TestServer::start(plain_routes);
    // A plain route is known from its first answer on.
    assert_eq!(srv.http("GET", "/plain-nap?ms=0").body, "plain napped 0");
    let res = common::curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/plain-nap/settings",
        Some(
            r#"{"transient": {"slowlog": {"threshold": {"warn": "300ms", "info": "100ms"},
                "stack_interval": "200ms", "stack_repeat": 2}}}"#,
        ),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        srv.http("GET", "/plain-nap?ms=150").body,
        "plain napped 150"
    );
    assert_eq!(
        srv.http("GET", "/plain-nap?ms=800").body,
        "plain napped 800"
    );
    // Two reports while it ran (at 300 and 500 ms), each with its stack, then its end.
    let waited = std::time::Instant::now();
    let settled = |entries: &[Value]| {
        entries.len() == 4
            && entries
                .iter()
                .all(|e| e["running"] == false || e["stack"].is_string())
    };
    let mut all = slowlog(&srv, "route=plain-nap");
    while !settled(&all) {
        assert!(waited.elapsed() < Duration::from_secs(10), "{all:#?}");
        std::thread::sleep(Duration::from_millis(10));
        all = slowlog(&srv, "route=plain-nap");
    }
    assert_eq!(
        (
            &all[0]["level"],
            &all[0]["status"],
            &all[0]["method"],
            &all[0]["path"]
        ),
        (
            &json!("info"),
            &json!(200),
            &json!("GET"),
            &json!("/plain-nap")
        ),
        "{all:#?}"
    );
    for (n, report) in all[1..3].iter().enumerate() {
        assert_eq!(report["running"], true, "{all:#?}");
        assert_eq!(report["report"], n as u64 + 1, "{all:#?}");
        assert!(
            report["stack"].as_str().unwrap().contains("napping"),
            "{all:#?}"
        );
    }
    assert_eq!(
        (&all[3]["level"], &all[3]["status"], &all[3]["task"]),
        (&json!("warn"), &json!(200), &all[1]["task"]),
        "{all:#?}"
    );
}
