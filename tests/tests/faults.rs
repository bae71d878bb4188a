//! Load with faults: many concurrent requests on several routes while settings flip between
//! preempt and normal, routes are interrupted, tasks are cancelled and the admin APIs are
//! polled. At the end: no panic, the in-flight registry drains to zero, the per-route counts
//! add up exactly to what the clients saw, and every client got a well-formed response.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{get, web, Responder};
use common::{curl_unix, TestServer};
use serde_json::Value;
use underscore_actix::underscore_route;

/// Sleeps a little, depending on `n`.
#[underscore_route]
#[get("/work/{n}")]
async fn work(n: web::Path<u64>) -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_millis(5 + *n % 25)).await;
    "worked"
}

/// Answers at once.
#[underscore_route]
#[get("/quick")]
async fn quick() -> impl Responder {
    "quick"
}

async fn plain_work() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_millis(3)).await;
    "plain"
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(work)
        .service(quick)
        .route("/plainwork", web::get().to(plain_work));
}

/// What the clients saw, per route: status (and for 503, whether it was an interrupt).
type Seen = HashMap<(&'static str, String), u64>;

#[test]
fn counts_add_up_under_faults_and_the_registry_drains() {
    let srv = TestServer::start(routes);
    // Learn the plain route before the storm.
    assert_eq!(srv.http("GET", "/plainwork").status, 200);
    let seen: Mutex<Seen> = Mutex::new(HashMap::new());
    let stop = AtomicBool::new(false);
    const CLIENTS: u64 = 6;
    // Bounded for CI; `FAULTS_EACH=2000 cargo test -p underscore-tests --test faults -- --nocapture`
    // is the longer run.
    let each: u64 = std::env::var("FAULTS_EACH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let started = Instant::now();
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (srv, seen) = (&srv, &seen);
                s.spawn(move || {
                    for i in 0..each {
                        let n = c * each + i;
                        let (route, path) = match n % 5 {
                            0..=2 => ("work", format!("/work/{n}")),
                            3 => ("quick", "/quick".to_owned()),
                            _ => ("plainwork", "/plainwork".to_owned()),
                        };
                        // A transport error here (no well-formed response) fails the test.
                        let res = srv.http("GET", &path);
                        let what = match res.status {
                            200 => "200".to_owned(),
                            429 => "429 preempted".to_owned(),
                            503 if res.body == "Request interrupted\n" => {
                                "503 interrupted".to_owned()
                            }
                            other => format!("{other} {}", res.body),
                        };
                        *seen.lock().unwrap().entry((route, what)).or_default() += 1;
                    }
                })
            })
            .collect();
        // Settings flip between a preempt and normal.
        s.spawn(|| {
            let mut on = false;
            while !stop.load(Ordering::Relaxed) {
                on = !on;
                let body = if on {
                    r#"{"transient":{"preempt":{"status":429,"reason":"Storm"}}}"#
                } else {
                    r#"{"transient":{"preempt.*":null}}"#
                };
                assert_eq!(
                    curl_unix(
                        &srv.socket,
                        "PUT",
                        "/_routes/work,quick/settings",
                        Some(body)
                    )
                    .status,
                    200
                );
                std::thread::sleep(Duration::from_millis(25));
            }
            curl_unix(
                &srv.socket,
                "PUT",
                "/_routes/_all/settings",
                Some(r#"{"transient":{"preempt.*":null}}"#),
            );
        });
        // Routes are interrupted.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let res = curl_unix(
                    &srv.socket,
                    "POST",
                    "/_routes/work,plainwork/interrupt",
                    None,
                );
                assert_eq!(res.status, 200, "{}", res.body);
                std::thread::sleep(Duration::from_millis(40));
            }
        });
        // Single tasks are cancelled.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let tasks = srv.admin("GET", "/_tasks?group_by=none").json();
                if let Some(t) = tasks["tasks"].as_array().and_then(|t| t.first()) {
                    let id = format!("{}:{}", t["node"].as_str().unwrap(), t["id"]);
                    let res = srv.admin("POST", &format!("/_tasks/{id}/_cancel"));
                    assert!(res.status == 200 || res.status == 404, "{}", res.body);
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        // The admin APIs are polled all along.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for path in [
                    "/_cat/routes?h=*",
                    "/_cat/tasks?v",
                    "/_routes/stats",
                    "/_tasks?detailed",
                ] {
                    assert_eq!(srv.admin("GET", path).status, 200, "{path}");
                }
            }
        });
        for c in clients {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });

    // The registry drains to zero.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !underscore_actix::core::tasks::tasks().is_empty() {
        assert!(
            Instant::now() < deadline,
            "tasks left: {}",
            srv.admin("GET", "/_cat/tasks?v").body
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        srv.admin("GET", "/_tasks?group_by=none").json()["tasks"],
        Value::Array(vec![])
    );

    let seen = seen.into_inner().unwrap();
    let count =
        |route: &'static str, what: &str| seen.get(&(route, what.to_owned())).copied().unwrap_or(0);
    let unexpected: Vec<_> = seen
        .iter()
        .filter(|((_, w), _)| !["200", "429 preempted", "503 interrupted"].contains(&w.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    let stats = srv.admin("GET", "/_routes/stats").json();
    for route in ["work", "quick", "plainwork"] {
        let s = &stats["routes"][route];
        let sent: u64 = seen
            .iter()
            .filter(|((r, _), _)| *r == route)
            .map(|(_, n)| n)
            .sum();
        let extra = u64::from(route == "plainwork"); // the request that taught the route
        assert_eq!(s["requests"]["active"], 0, "{route}: {s}");
        assert_eq!(
            s["requests"]["total"].as_u64().unwrap(),
            sent + extra,
            "{route}: {s}"
        );
        assert_eq!(
            s["responses"]["2xx"].as_u64().unwrap(),
            count(route, "200") + extra,
            "{route}: {s}"
        );
        assert_eq!(
            s["requests"]["preempted"].as_u64().unwrap(),
            count(route, "429 preempted"),
            "{route}: {s}"
        );
        let ended = s["requests"]["interrupted"].as_u64().unwrap()
            + s["requests"]["cancelled"].as_u64().unwrap();
        assert_eq!(ended, count(route, "503 interrupted"), "{route}: {s}");
        assert_eq!(s["requests"]["dropped"], 0, "{route}: {s}");
    }
    println!(
        "{} requests under faults in {:?}: {:?}",
        CLIENTS * each,
        started.elapsed(),
        {
            let mut v: Vec<_> = seen.into_iter().collect();
            v.sort();
            v
        }
    );
}
