//! Health checks, `/_health`, `/_cat/health`, failing a node by hand, and the probes, on a real
//! server (TCP) with the admin APIs on a socket. One test: checks are installed once per process.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use common::{curl_unix, http, run_server, wait_until};
use underscore_actix::{probes, AdminSocket, HealthCheck, Observe, Underscore};

static DB_UP: AtomicBool = AtomicBool::new(true);
static CACHE_UP: AtomicBool = AtomicBool::new(true);

#[test]
fn checks_feed_health_and_readiness_and_a_node_can_be_failed_by_hand() {
    let fast = Duration::from_millis(20);
    Underscore::builder()
        .health_check(
            HealthCheck::new("db", || async {
                if DB_UP.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("connection refused")
                }
            })
            .critical()
            .interval(fast),
        )
        .health_check(
            HealthCheck::new("cache", || async {
                if CACHE_UP.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("cache down")
                }
            })
            .interval(fast),
        )
        // Never returns: a failed check after its timeout, and never in a probe's way.
        .health_check(
            HealthCheck::new("stuck", || async {
                std::future::pending::<Result<(), String>>().await
            })
            .timeout(Duration::from_millis(100))
            .interval(fast),
        )
        .init()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&socket).unwrap();
    let server = run_server(Some(admin), || {
        let server = HttpServer::new(|| {
            App::new()
                .wrap(probes().readyz("/ready"))
                .wrap(Observe::new())
                .route("/hello", web::get().to(|| async { "hello" }))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let url = |path: &str| format!("http://{}{path}", server.addr);
    let admin = |method: &str, path: &str| curl_unix(&socket, method, path, None);
    let ready = || http("GET", &url("/ready"), None);

    wait_until("the first runs of the checks", || ready().status == 200);
    wait_until("the stuck check's timeout", || {
        admin("GET", "/_health").json()["checks"]["stuck"]["status"] == "fail"
    });
    let health = admin("GET", "/_health").json();
    assert_eq!(health["status"], "yellow", "{health}");
    assert_eq!(
        (&health["ready"], &health["live"], &health["draining"]),
        (&true.into(), &true.into(), &false.into())
    );
    assert_eq!(health["checks"]["db"]["status"], "pass");
    assert_eq!(health["checks"]["db"]["critical"], true);
    assert!(health["checks"]["db"]["took_ms"].is_number(), "{health}");
    assert!(health["checks"]["db"]["checked_at"].is_u64(), "{health}");
    assert_eq!(health["checks"]["stuck"]["error"], "timed out after 100ms");
    assert!(health["uptime_ms"].is_u64());

    let res = ready();
    assert_eq!((res.status, res.body.as_str()), (200, "ready\n"));
    assert_eq!(res.header("connection"), None);
    let res = http("HEAD", &url("/ready"), None);
    assert_eq!(res.status, 200);
    let res = http("GET", &url("/livez"), None);
    assert_eq!((res.status, res.body.as_str()), (200, "live\n"));
    // The default readiness path was moved: it is the app's (a 404).
    assert_eq!(http("GET", &url("/readyz"), None).status, 404);
    // Another method is the app's too.
    assert_eq!(http("POST", &url("/ready"), None).status, 404);

    // A critical check fails: red, not ready; liveness does not care.
    DB_UP.store(false, Ordering::Relaxed);
    wait_until("readiness to fail", || ready().status == 503);
    assert_eq!(ready().body, "not ready: a critical health check fails\n");
    let health = admin("GET", "/_health").json();
    assert_eq!(
        (&health["status"], &health["ready"]),
        (&"red".into(), &false.into())
    );
    assert_eq!(health["checks"]["db"]["error"], "connection refused");
    assert_eq!(http("GET", &url("/livez"), None).status, 200);
    DB_UP.store(true, Ordering::Relaxed);
    wait_until("readiness to come back", || ready().status == 200);

    // `_cat/health`: one row per check, as every `_cat`.
    CACHE_UP.store(false, Ordering::Relaxed);
    wait_until("the cache check to fail", || {
        admin("GET", "/_cat/health?h=check,status&s=check").body
            == "cache fail\ndb    pass\nstuck fail\n"
    });
    assert_eq!(
        admin(
            "GET",
            "/_cat/health?v&h=check,critical,error&s=critical:desc,check"
        )
        .body,
        "check critical error\n\
         db    true     -\n\
         cache false    cache down\n\
         stuck false    timed out after 100ms\n"
    );
    let rows = admin(
        "GET",
        "/_cat/health?format=json&h=check,critical,took&s=check",
    )
    .json();
    assert_eq!(rows[0]["check"], "cache");
    assert_eq!(rows[0]["critical"], false);
    assert!(rows[0]["took"].is_number(), "{rows}");
    let help = admin("GET", "/_cat/health?help").body;
    assert!(help.starts_with("check "), "{help}");
    let res = admin("GET", "/_cat/health?h=nope");
    assert_eq!(res.status, 400);
    assert!(res.body.contains("unknown column [nope]"), "{}", res.body);
    assert!(admin("GET", "/_cat").body.contains("/_cat/health\n"));
    CACHE_UP.store(true, Ordering::Relaxed);

    // Failed by hand, and back.
    let res = admin("POST", "/_health/_fail");
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["acknowledged"], true);
    assert_eq!(res.json()["failed_by_hand"], true);
    let res = ready();
    assert_eq!(
        (res.status, res.body.as_str()),
        (503, "not ready: failed by hand\n")
    );
    let metrics = admin("GET", "/_prometheus/metrics").body;
    assert!(metrics.contains("\nunderscore_ready 0\n"), "{metrics}");
    assert_eq!(admin("GET", "/_health/_fail").status, 405);
    assert_eq!(admin("POST", "/_health/_ok").status, 200);
    assert_eq!(ready().status, 200);

    let metrics = admin("GET", "/_prometheus/metrics").body;
    for series in [
        "\nunderscore_health_check_status{check=\"db\"} 1\n",
        "\nunderscore_health_check_status{check=\"stuck\"} 0\n",
        "\nunderscore_ready 1\n",
        "\nunderscore_draining 0\n",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }

    // Probes are never routes, nor unmatched requests.
    assert_eq!(http("GET", &url("/hello"), None).status, 200);
    assert_eq!(admin("GET", "/_cat/routes?h=id").body, "hello\n");
    let stats = admin("GET", "/_routes/stats").json();
    assert_eq!(stats["unmatched"]["404"]["requests"]["total"], 2, "{stats}");

    // A drain's bad input changes nothing.
    for (query, key) in [
        ("delay=-1s", "delay"),
        ("timeout=abc", "timeout"),
        ("nope=1", "nope"),
    ] {
        let res = admin("POST", &format!("/_drain?{query}"));
        assert_eq!(res.status, 400, "{query}: {}", res.body);
        assert!(res.body.contains(&format!("[{key}]")), "{}", res.body);
    }
    assert_eq!(admin("GET", "/_drain").status, 405);
    assert_eq!(admin("GET", "/_health").json()["draining"], false);
    assert_eq!(ready().status, 200);
    server.stop();
}
