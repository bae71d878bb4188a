//! Hostile input against every admin endpoint, through the real actix service: never a 5xx,
//! never a panic, never a hang, never a partial change; every rejection is an
//! Elasticsearch-shaped 4xx.

mod common;

use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::Method;
use actix_web::test as atest;
use actix_web::{get, web, App, Responder};
use proptest::prelude::*;
use serde_json::Value;
use underscore_actix::{underscore_route, Observe};

#[underscore_route]
#[get("/alpha")]
async fn alpha() -> impl Responder {
    "alpha"
}

#[underscore_route]
#[get("/beta/{x}")]
async fn beta(x: web::Path<String>) -> impl Responder {
    x.into_inner()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "_cat",
            "_routes",
            "_tasks",
            "_logging",
            "loggers",
            "_prometheus",
            "metrics",
            "routes",
            "tasks",
            "settings",
            "stats",
            "interrupt",
            "_cancel",
            "cancel",
            "print_stack",
            "middlewares",
            "transports",
            "alpha",
            "beta",
            "_all",
            "*",
            "al*",
            "nope*",
            "a,,b",
            ",",
            "%ff",
            "%zz",
            "%2F",
            "%00",
            "..",
            ".",
            "node:1",
            "x:y:z",
            "node:99999999999999999999",
            "%E2%82%AC",
            "alpha,beta",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9_.*,:%-]{0,12}",
        (1usize..3).prop_map(|n| vec!["alpha"; n * 5000].join(",")),
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "/_cat",
            "/_routes",
            "/_tasks",
            "/_cat/routes",
            "/_routes/alpha",
            "/_logging/settings",
            "/_cat/loggers",
            "/_prometheus",
            "/_prometheus/metrics",
        ]),
        prop::collection::vec(segment(), 0..4),
    )
        .prop_map(|(base, segs)| {
            let mut p = base.to_owned();
            for s in segs {
                p.push('/');
                p.push_str(&s);
            }
            p
        })
}

fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "v",
        "help",
        "h",
        "s",
        "format",
        "pretty",
        "filter_path",
        "flat_settings",
        "include_defaults",
        "group_by",
        "actions",
        "detailed",
        "foo",
        "%zz",
        "h%00",
        "",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "true",
            "false",
            "yes",
            "json",
            "yaml",
            "text",
            "xml",
            "*",
            "id,path",
            "id:desc",
            "id:up",
            "nope",
            ",",
            "a,,b",
            "**.x",
            "-",
            "%ff",
            "%zz",
            "%",
            "nodes",
            "parents",
            "none",
            "tree",
            "http:*",
            "stats.*",
            "%E2%82%AC",
        ])
        .prop_map(str::to_owned),
        (1usize..3).prop_map(|n| vec!["id"; n * 5000].join(",")),
        "[a-z.*:,%0-9-]{0,16}",
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.to_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![
            r#"{"transient":{"preempt.status":503}}"#,
            r#"{"transient":{"preempt":{"status":42}}}"#,
            r#"{"persistent":{"preempt.status":503}}"#,
            r#"{"transient":{"preempt.*":null}}"#,
            r#"{"transient":{"nope":1}}"#,
            r#"{"transient":{"logger._root":"debug"}}"#,
            r#"[1,2,3]"#,
            r#"{"#,
            "null",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        (1usize..3)
            .prop_map(|n| format!("{}{}", "[".repeat(n * 3000), "]".repeat(n * 3000)).into_bytes()),
        Just(vec![b'x'; 70 * 1024]),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::from_bytes(b"PURGE").unwrap(),
    ])
}

fn is_es_error(body: &[u8], status: u16) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    v["status"] == status
        && v["error"]["type"].is_string()
        && v["error"]["reason"].is_string()
        && v["error"]["root_cause"][0]["type"] == v["error"]["type"]
}

#[test]
fn hostile_requests_get_a_4xx_at_worst_and_change_nothing_when_rejected() {
    let rt = actix_rt::System::new();
    let app = rt.block_on(atest::init_service(
        App::new()
            .wrap(Observe::new())
            .service(alpha)
            .service(beta)
            .configure(underscore_actix::admin::configure),
    ));
    let settings = |app: &_| {
        rt.block_on(async {
            let req = atest::TestRequest::get()
                .uri("/_routes/settings?flat_settings")
                .to_request();
            let res = atest::call_service(app, req).await;
            atest::read_body(res).await
        })
    };
    let tried = std::cell::Cell::new(0u32);
    let uris_rejected_by_http = std::cell::Cell::new(0u32);
    let config = ProptestConfig {
        cases: 600,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(m in method(), p in path(), q in query(), b in body(), origin in any::<bool>())| {
        let uri = if q.is_empty() { p.clone() } else { format!("{p}?{q}") };
        if actix_web::http::Uri::try_from(uri.as_str()).is_err() {
            // Not even a valid request target: actix's HTTP layer answers 400 before any
            // handler (checked over a real socket below).
            uris_rejected_by_http.set(uris_rejected_by_http.get() + 1);
            return Ok(());
        }
        tried.set(tried.get() + 1);
        let before = settings(&app);
        let mut req = atest::TestRequest::default().method(m.clone()).uri(&uri).set_payload(b.clone());
        if origin {
            req = req.insert_header(("Origin", "https://elsewhere.example"));
        }
        let (status, body) = rt.block_on(async {
            let call = app.call(req.to_request());
            match actix_web::rt::time::timeout(Duration::from_secs(10), call).await {
                Ok(Ok(res)) => {
                    let status = res.status().as_u16();
                    (status, atest::read_body(res).await)
                }
                Ok(Err(err)) => (err.as_response_error().status_code().as_u16(), Default::default()),
                Err(_) => (0, Default::default()),
            }
        });
        prop_assert!(status != 0, "hang: {} {}", m, uri);
        prop_assert!(status < 500, "{} {} {:?} -> {}: {}", m, uri, String::from_utf8_lossy(&b[..b.len().min(60)]), status, String::from_utf8_lossy(&body));
        if status >= 400 && m != Method::HEAD {
            prop_assert!(is_es_error(&body, status), "{} {} -> {} not ES-shaped: {}", m, uri, status, String::from_utf8_lossy(&body));
            prop_assert_eq!(settings(&app), before, "a rejected {} {} changed settings", m, uri);
        }
        if status == 200 && (m == Method::PUT || m == Method::POST) {
            // Undo whatever an accepted change did, so later cases start clean.
            rt.block_on(async {
                let req = atest::TestRequest::put()
                    .uri("/_routes/_all/settings")
                    .set_payload(r#"{"transient":{"preempt.*":null}}"#)
                    .to_request();
                let _ = app.call(req).await;
            });
        }
    });
    let (tried, skipped) = (tried.get(), uris_rejected_by_http.get());
    println!("hostile inputs tried through the actix service: {tried} (+{skipped} not valid request targets)");
    assert!(tried > 300, "too few cases reached the service: {tried}");
}

#[test]
fn malformed_http_is_refused_by_the_socket_layer_and_the_server_survives() {
    let server = common::run_server(None, || {
        let server =
            actix_web::HttpServer::new(|| App::new().configure(underscore_actix::admin::configure))
                .workers(1)
                .disable_signals()
                .client_request_timeout(Duration::from_secs(2))
                .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let addr = server.addr;
    let send = |raw: &[u8]| common::raw(addr, raw);
    for raw in [
        &b"GET /_cat/routes?h=%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /_cat/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /_cat HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"PUT /_routes/alpha/settings HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n{",
        b"GET /_cat HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\x02\r\nConnection: close\r\n\r\n",
    ] {
        let reply = send(raw);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{:?} -> {reply:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // Still serving.
    let ok = send(b"GET /_cat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    server.stop();
}
