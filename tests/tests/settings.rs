//! Route settings end to end: preempt on the wire, Elasticsearch update semantics, errors,
//! all-or-nothing, plain actix routes, persistence and concurrency.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use actix_web::{get, post, web, Responder};
use common::{curl_unix, Reply, TestServer};
use serde_json::{json, Value};
use underscore_actix::underscore_route;

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/quickstart.rs"]
mod quickstart;

macro_rules! routes {
    ($($name:ident => $path:literal),* $(,)?) => {
        $(
            #[underscore_route]
            #[get($path)]
            async fn $name() -> impl Responder {
                stringify!($name)
            }
        )*
        fn configure(cfg: &mut web::ServiceConfig) {
            quickstart::configure(cfg);
            $(cfg.service($name);)*
            cfg.service(shared_post)
                .route("/shared", web::get().to(|| async { "plain get" }))
                .route("/plainx", web::get().to(|| async { "plain x" }));
        }
    };
}

routes! {
    wire => "/wire",
    dotted => "/dotted",
    group_a => "/group/a",
    group_b => "/group/b",
    guarded => "/guarded",
    good => "/good",
    conc => "/conc",
    persisted => "/persisted",
}

/// Registered after the plain `GET /shared`: same path, another method.
#[underscore_route]
#[post("/shared")]
async fn shared_post() -> impl Responder {
    "annotated post"
}

/// The settings file of this test binary (one per process).
fn settings_file() -> &'static std::path::Path {
    static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let path = dir.path().join("settings.json");
        underscore_actix::Underscore::builder()
            .settings_file(&path)
            .init()
            .unwrap();
        path
    })
}

fn server() -> TestServer {
    settings_file();
    TestServer::start(configure)
}

fn put(srv: &TestServer, ids: &str, body: &str) -> Reply {
    curl_unix(
        &srv.socket,
        "PUT",
        &format!("/_routes/{ids}/settings"),
        Some(body),
    )
}

/// The raw response to `GET path`, to see the status line and headers exactly as sent.
fn raw_get(addr: SocketAddr, path: &str) -> String {
    common::raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn the_use_case_story() {
    let srv = server();
    assert_eq!(srv.http("GET", "/hello/storm").status, 200);
    let res = put(
        &srv,
        "hello",
        r#"{"transient": {"preempt": {"status": 503, "reason": "Route is temporarily deactivated"}}}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json(),
        json!({"hello": {"persistent": {}, "transient": {"preempt": {"reason": "Route is temporarily deactivated", "status": 503}}}})
    );
    for _ in 0..5 {
        let raw = raw_get(srv.addr, "/hello/storm");
        assert!(
            raw.starts_with("HTTP/1.1 503 Route is temporarily deactivated\r\n"),
            "{raw}"
        );
    }
    assert_eq!(
        srv.admin("GET", "/_cat/routes/hello?h=id,preempt,reason")
            .body,
        "hello 503 Route is temporarily deactivated\n"
    );
    let res = put(
        &srv,
        "hello",
        r#"{"transient": {"preempt": {"status": null, "reason": null}}}"#,
    );
    assert_eq!(
        res.json(),
        json!({"hello": {"persistent": {}, "transient": {}}})
    );
    assert_eq!(srv.http("GET", "/hello/storm").body, "Hello storm!\n");
    assert_eq!(
        srv.admin("GET", "/_cat/routes/hello?h=id,preempt").body,
        "hello -\n"
    );
}

#[test]
fn preempt_is_on_the_wire_and_the_handler_is_not_called() {
    let srv = server();
    let before = srv.admin("GET", "/_cat/routes/wire?h=total").body;
    let res = put(
        &srv,
        "wire",
        r#"{"transient": {"preempt.status": 503, "preempt.reason": "Shedding load", "preempt.text": "come back later\n", "preempt.retry_after": 120}}"#,
    );
    assert_eq!(res.status, 200);
    let raw = raw_get(srv.addr, "/wire");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 503 Shedding load\r\n"), "{raw}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("\r\nretry-after: 120"), "{raw}");
    assert!(
        head.contains("\r\ncontent-type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert_eq!(body, "come back later\n");
    // Counted on its route, though the handler never ran.
    let after: u64 = srv
        .admin("GET", "/_cat/routes/wire?h=total")
        .body
        .trim()
        .parse()
        .unwrap();
    assert_eq!(after, before.trim().parse::<u64>().unwrap() + 1);

    // Any status from 200 to 599; 204 never carries a body.
    put(&srv, "wire", r#"{"transient": {"preempt.status": 204}}"#);
    let raw = raw_get(srv.addr, "/wire");
    assert!(raw.starts_with("HTTP/1.1 204 Shedding load\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    put(&srv, "wire", r#"{"transient": {"preempt.*": null}}"#);
    assert_eq!(srv.http("GET", "/wire").body, "wire");
}

#[test]
fn dot_notation_flat_settings_and_defaults() {
    let srv = server();
    let res = put(
        &srv,
        "dotted",
        r#"{"transient": {"preempt": {"status": 429}, "preempt.text": "slow down"}}"#,
    );
    assert_eq!(
        res.json()["dotted"]["transient"],
        json!({"preempt": {"status": 429, "text": "slow down"}})
    );
    let flat = srv.admin("GET", "/_routes/dotted/settings?flat_settings");
    assert_eq!(
        flat.json(),
        json!({"dotted": {"persistent": {}, "transient": {"preempt.status": 429, "preempt.text": "slow down"}}})
    );
    let defaults = srv.admin(
        "GET",
        "/_routes/dotted/settings?include_defaults&flat_settings&filter_path=*.defaults",
    );
    assert_eq!(
        defaults.json(),
        json!({"dotted": {"defaults": {
            "preempt.reason": null, "preempt.retry_after": null, "preempt.status": null, "preempt.text": null,
            "preempt.percent": 100,
            "limits.max_in_flight": null, "limits.timeout": null, "limits.status": 503, "limits.retry_after": null,
            "slowlog.threshold.warn": null, "slowlog.threshold.info": null,
            "slowlog.threshold.debug": null, "slowlog.threshold.trace": null,
            "slowlog.stack_interval": null, "slowlog.stack_repeat": 3,
        }}})
    );
    let yaml = srv.admin(
        "GET",
        "/_routes/dotted/settings?format=yaml&filter_path=*.transient.preempt.status",
    );
    assert_eq!(
        yaml.body,
        "---\ndotted:\n  transient:\n    preempt:\n      status: 429\n"
    );
    // Absent keys are untouched; null resets one key.
    put(&srv, "dotted", r#"{"transient": {"preempt.text": null}}"#);
    let res = srv.admin("GET", "/_routes/dotted/settings?flat_settings");
    assert_eq!(
        res.json()["dotted"]["transient"],
        json!({"preempt.status": 429})
    );
    assert_eq!(srv.http("GET", "/dotted").status, 429);
    put(&srv, "dotted", r#"{"transient": {"preempt.*": null}}"#);
    assert_eq!(srv.http("GET", "/dotted").status, 200);
}

#[test]
fn wildcards_in_ids() {
    let srv = server();
    let res = put(&srv, "group_*", r#"{"transient": {"preempt.status": 503}}"#);
    assert_eq!(
        res.json().as_object().unwrap().keys().collect::<Vec<_>>(),
        ["group_a", "group_b"]
    );
    assert_eq!(srv.http("GET", "/group/a").status, 503);
    assert_eq!(srv.http("GET", "/group/b").status, 503);
    let all = srv.admin("GET", "/_routes/_all/settings").json();
    assert_eq!(all["group_a"]["transient"]["preempt"]["status"], 503);
    assert!(all.get("hello").is_some());
    assert_eq!(
        srv.admin("GET", "/_routes/settings")
            .json()
            .as_object()
            .unwrap()
            .len(),
        all.as_object().unwrap().len()
    );
    put(
        &srv,
        "group_a,group_b",
        r#"{"transient": {"preempt": {"status": null}}}"#,
    );
    assert_eq!(srv.http("GET", "/group/a").status, 200);
    assert_eq!(srv.http("GET", "/group/b").status, 200);
}

#[test]
fn every_error_is_elasticsearch_shaped_and_changes_nothing() {
    let srv = server();
    put(
        &srv,
        "guarded",
        r#"{"transient": {"preempt.text": "kept"}}"#,
    );
    let state = || srv.admin("GET", "/_routes/guarded/settings").body;
    let before = state();
    let big = format!(
        r#"{{"transient": {{"preempt.text": "{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        ("guarded", r#"{"transient": {"preempt.status": 42}}"#.into(), 400, "illegal_argument_exception",
         "failed to parse transient setting [preempt.status] with value [42]: must be an integer from 200 to 599"),
        ("guarded", r#"{"transient": {"preempt.stauts": 503}}"#.into(), 400, "illegal_argument_exception",
         "transient setting [preempt.stauts], not recognized"),
        ("guarded", r#"{"transient": {"preempt.reason": "bad\r\nX-Injected: 1"}}"#.into(), 400, "illegal_argument_exception",
         "failed to parse transient setting [preempt.reason] with value [\"bad\\r\\nX-Injected: 1\"]: must be printable ASCII (a reason phrase cannot carry other characters)"),
        ("guarded", r#"{"transient": {"preempt.status": 503}, "persistent": {"preempt.retry_after": "soon"}}"#.into(), 400, "illegal_argument_exception",
         "failed to parse persistent setting [preempt.retry_after] with value [\"soon\"]: must be a whole number of seconds from 0 to 4294967295"),
        ("guarded", "{\"transient\": {".into(), 400, "parse_exception", ""),
        ("guarded", "".into(), 400, "parse_exception", "request body is required"),
        ("guarded", nested, 400, "parse_exception", ""),
        ("guarded", big, 413, "content_too_long_exception", "request body is larger than the limit of [65536] bytes"),
        ("guarded,nope", r#"{"transient": {"preempt.status": 503}}"#.into(), 404, "resource_not_found_exception", "no such route [nope]"),
        ("zz*", r#"{"transient": {"preempt.status": 503}}"#.into(), 404, "resource_not_found_exception", "no such route [zz*]"),
    ];
    for (ids, body, status, kind, reason) in cases {
        let res = put(&srv, ids, &body);
        assert_eq!(
            res.status,
            status,
            "{ids} {}: {}",
            &body[..body.len().min(80)],
            res.body
        );
        let json = res.json();
        assert_eq!(json["status"], status);
        assert_eq!(json["error"]["type"], kind);
        assert_eq!(json["error"]["root_cause"][0]["type"], kind);
        if !reason.is_empty() {
            assert_eq!(json["error"]["reason"], reason);
        }
        assert_eq!(state(), before, "{ids} changed by a rejected PUT");
        assert_eq!(srv.http("GET", "/guarded").body, "guarded");
    }
    // A PUT on the all-routes path names the method problem.
    let res = curl_unix(&srv.socket, "PUT", "/_routes/settings", Some("{}"));
    assert_eq!((res.status, res.header("allow")), (405, Some("GET, HEAD")));
    let res = curl_unix(&srv.socket, "POST", "/_routes/guarded/settings", Some("{}"));
    assert_eq!(
        (res.status, res.header("allow")),
        (405, Some("GET, HEAD, PUT"))
    );
    // Unknown parameters and bad booleans, as everywhere.
    assert_eq!(
        curl_unix(
            &srv.socket,
            "PUT",
            "/_routes/guarded/settings?flat_settings=yes",
            Some("{}")
        )
        .status,
        400
    );
}

#[test]
fn a_rejected_put_changes_no_route_at_all() {
    let srv = server();
    // `good` is valid, the body is valid for it, but `nope` does not exist: nothing changes.
    assert_eq!(
        put(
            &srv,
            "good,nope",
            r#"{"transient": {"preempt.status": 503}}"#
        )
        .status,
        404
    );
    assert_eq!(srv.http("GET", "/good").status, 200);
    // One bad key among good ones: nothing changes either.
    let res = put(
        &srv,
        "good",
        r#"{"transient": {"preempt.status": 503, "preempt.reason": "Fine", "preempt.x": 1}}"#,
    );
    assert_eq!(res.status, 400);
    assert_eq!(srv.http("GET", "/good").status, 200);
    assert_eq!(
        srv.admin("GET", "/_routes/good/settings").json(),
        json!({"good": {"persistent": {}, "transient": {}}})
    );
}

#[test]
fn plain_actix_routes_can_be_preempted_without_collateral() {
    let srv = server();
    // Plain routes are known after their first request.
    assert_eq!(
        put(&srv, "plainx", r#"{"transient": {"preempt.status": 503}}"#).status,
        404
    );
    assert_eq!(srv.http("GET", "/plainx").body, "plain x");
    assert_eq!(srv.http("GET", "/shared").body, "plain get");
    assert_eq!(
        put(
            &srv,
            "plainx",
            r#"{"transient": {"preempt.status": 503, "preempt.text": "off"}}"#
        )
        .status,
        200
    );
    assert_eq!(
        put(&srv, "shared", r#"{"transient": {"preempt.status": 502}}"#).status,
        200
    );
    let res = srv.http("GET", "/plainx");
    assert_eq!((res.status, res.body.as_str()), (503, "off"));
    assert_eq!(srv.http("GET", "/shared").status, 502);
    // Same path, another resource (the annotated POST): not preempted.
    assert_eq!(srv.http("POST", "/shared").body, "annotated post");
    assert_eq!(
        srv.admin("GET", "/_cat/routes/plainx,shared?h=id,kind,preempt&s=id")
            .body,
        "plainx actix 503\nshared actix 502\n"
    );
    put(
        &srv,
        "plainx,shared",
        r#"{"transient": {"preempt.*": null}}"#,
    );
    assert_eq!(srv.http("GET", "/plainx").status, 200);
    assert_eq!(srv.http("GET", "/shared").status, 200);
}

#[test]
fn persistent_settings_are_written_to_the_file() {
    let srv = server();
    let res = put(
        &srv,
        "persisted",
        r#"{"persistent": {"preempt": {"status": 503, "reason": "Persisted"}}, "transient": {"preempt.reason": "Transient wins"}}"#,
    );
    assert_eq!(res.status, 200);
    let raw = raw_get(srv.addr, "/persisted");
    assert!(raw.starts_with("HTTP/1.1 503 Transient wins\r\n"), "{raw}");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(settings_file()).unwrap()).unwrap();
    assert_eq!(file["format"], "underscore-settings/1");
    assert_eq!(
        file["routes"]["persisted"],
        json!({"preempt.reason": "Persisted", "preempt.status": 503})
    );
    // Resetting the transient tier falls back to the persistent one.
    put(&srv, "persisted", r#"{"transient": {"preempt.*": null}}"#);
    assert!(raw_get(srv.addr, "/persisted").starts_with("HTTP/1.1 503 Persisted\r\n"));
    put(&srv, "persisted", r#"{"persistent": {"preempt.*": null}}"#);
    assert_eq!(srv.http("GET", "/persisted").status, 200);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(settings_file()).unwrap()).unwrap();
    assert!(file["routes"].get("persisted").is_none(), "{file}");
}

#[test]
fn concurrent_puts_while_requests_flow() {
    let srv = server();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let statuses: Vec<u16> = (500..520).collect();
    std::thread::scope(|s| {
        // Requests flow all along: every answer is the handler's 200 or one of the 5xx set.
        let traffic = s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = srv.http("GET", "/conc");
                assert!(
                    res.status == 200 || (500..520).contains(&res.status),
                    "{}",
                    res.status
                );
                n += 1;
            }
            n
        });
        // The file is always whole and parseable, whatever instant it is read at.
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(settings_file()) {
                    let v: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("torn file ({e}): {text}"));
                    assert_eq!(v["format"], "underscore-settings/1");
                    reads += 1;
                }
            }
            reads
        });
        let writers: Vec<_> = statuses
            .chunks(5)
            .map(|chunk| {
                let srv = &srv;
                s.spawn(move || {
                    for &status in chunk {
                        let body = format!(r#"{{"persistent": {{"preempt.status": {status}}}}}"#);
                        assert_eq!(put(srv, "conc", &body).status, 200);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(traffic.join().unwrap() > 0);
        assert!(reader.join().unwrap() > 0);
    });
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(settings_file()).unwrap()).unwrap();
    let last = file["routes"]["conc"]["preempt.status"].as_u64().unwrap() as u16;
    assert!(statuses.contains(&last));
    assert_eq!(
        srv.admin("GET", "/_routes/conc/settings?flat_settings")
            .json()["conc"]["persistent"]["preempt.status"],
        last
    );
    assert_eq!(srv.http("GET", "/conc").status, last);
    put(&srv, "conc", r#"{"persistent": {"preempt.*": null}}"#);
}
