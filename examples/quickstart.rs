//! Run with: `cargo run --example quickstart`
//!
//! A small actix-web app with the underscore admin APIs on a private UNIX socket.
//!
//! - `QUICKSTART_ADDR`: where the app listens (default `127.0.0.1:8080`);
//! - `UNDERSCORE_SOCKET`: the admin socket (default `/tmp/underscore.sock`);
//! - `UNDERSCORE_SETTINGS`: the persistent settings file (default
//!   `underscore-settings.json` in the system temp dir);
//! - `UNDERSCORE_OPERATOR_SETTINGS`: the fleet's operator settings file, watched (none by
//!   default; see `docs/fleet-settings.md`);
//! - `RUST_LOG`: log filter (default `info`), which `PUT /_logging/settings` can change;
//! - `QUICKSTART_UPSTREAM_DOWN`: while this file exists, the `upstream` health check fails
//!   (default `quickstart-upstream-down` in the system temp dir).
//!
//! Health: `/livez` and `/readyz` on the app's port, `GET /_health` on the socket, two checks
//! (`tmpdir`, critical; `upstream`, not). SIGTERM drains: readiness fails at once, the app
//! serves on for 5 s, then closes its listeners and gives requests in flight up to 30 s
//! (`POST /_drain?delay=1s&timeout=10s` on the socket does the same with its own times).
//! Ctrl-C drains at once, giving requests in flight 5 s.
//! - `UNDERSCORE_POLL_TIMING`: `0` turns poll timing off (on here, to show `_cat/workers`;
//!   off by default in a library user's app).
//!
//! Then, in another shell:
//!
//! ```text
//! curl --unix-socket /tmp/underscore.sock 'http://./_cat/routes?v'
//! curl --unix-socket /tmp/underscore.sock -XPUT 'http://./_logging/settings' \
//!     -d '{"transient":{"logger.quickstart":"debug"}}'
//! ```
//!
//! Load shedding on `slow`: at most two requests in flight, and none running past a second
//! (see docs/load-shedding.md):
//!
//! ```text
//! curl --unix-socket /tmp/underscore.sock -X PUT 'http://./_routes/slow/settings' \
//!   -d '{"transient": {"limits": {"max_in_flight": 2, "timeout": "1s"}}}'
//! curl -i 'http://127.0.0.1:8080/slow?ms=5000'     # 504 Request timed out, after 1 s
//! ```
//!
//! Slow requests logged, with the stack of those still running (see `docs/slow-requests.md`):
//!
//! ```text
//! curl --unix-socket /tmp/underscore.sock -X PUT 'http://./_routes/slow/settings' \
//!   -d '{"transient": {"slowlog.threshold": {"warn": "1s", "info": "200ms"}}}'
//! curl 'http://127.0.0.1:8080/slow?ms=2500'
//! curl --unix-socket /tmp/underscore.sock 'http://./_cat/slowlog?v'
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use actix_web::middleware::DefaultHeaders;
use actix_web::rt::signal;
use actix_web::{get, post, web, App, HttpResponse, HttpServer, Responder};
use tracing_subscriber::prelude::*;
use underscore_actix::{
    probes, record, start_drain, underscore_route, AdminSocket, HealthCheck, Observe, Underscore,
};

/// Says hello from the root.
#[underscore_route]
#[get("/")]
async fn index() -> impl Responder {
    "Hello from underscore! Try /hello/{name}, /slow?ms=N, /block?ms=N, POST /echo, /plain.\n"
}

/// Greets someone by name.
#[underscore_route]
#[get("/hello/{name}")]
async fn hello(name: web::Path<String>) -> impl Responder {
    // Hidden at the default level: `logger.quickstart: debug` shows it.
    tracing::debug!("greeting {name}");
    format!("Hello {name}!\n")
}

/// Sleeps `ms` milliseconds (default 30000), then answers 200.
#[underscore_route]
#[get("/slow")]
async fn slow(query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let ms = match query.get("ms").map(|ms| ms.parse::<u64>()) {
        None => 30_000,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => return HttpResponse::BadRequest().body("ms must be a whole number\n"),
    };
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    HttpResponse::Ok().body(format!("slept {ms} ms\n"))
}

/// Blocks its worker with a synchronous sleep of `ms` milliseconds (default 3000), as a
/// blocking call in async code does: every request on that worker waits (see `_cat/workers`).
#[underscore_route]
#[get("/block")]
async fn block(query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let ms = match query.get("ms").map(|ms| ms.parse::<u64>()) {
        None => 3_000,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => return HttpResponse::BadRequest().body("ms must be a whole number\n"),
    };
    std::thread::sleep(Duration::from_millis(ms));
    HttpResponse::Ok().body(format!("blocked {ms} ms\n"))
}

/// Echoes the request body.
#[underscore_route]
#[post("/echo")]
async fn echo(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

/// A route registered with plain actix-web, without `#[underscore_route]`.
async fn plain() -> &'static str {
    "A plain actix-web route.\n"
}

/// The quickstart's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(hello)
        .service(slow)
        .service(block)
        .service(echo)
        .route("/plain", web::get().to(plain));
}

/// The quickstart's health checks: the temp dir is writable (critical), and the `upstream`
/// (not critical) is up unless the file `QUICKSTART_UPSTREAM_DOWN` names exists.
fn health_checks(builder: Underscore) -> Underscore {
    let down = std::env::var_os("QUICKSTART_UPSTREAM_DOWN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("quickstart-upstream-down"));
    let tmpdir = HealthCheck::new("tmpdir", || async {
        let probe = std::env::temp_dir().join(format!("quickstart-{}.probe", std::process::id()));
        std::fs::write(&probe, b"ok")?;
        std::fs::remove_file(&probe)
    });
    let upstream = HealthCheck::new("upstream", move || {
        let down = down.exists().then(|| down.display().to_string());
        async move { down.map_or(Ok(()), |f| Err(format!("{f} exists"))) }
    });
    let second = Duration::from_secs(1);
    builder
        .health_check(tmpdir.critical().interval(second))
        .health_check(upstream.interval(second))
        .drain_on_sigterm()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // `main` returning these errors would print their `Debug` form: say them plainly instead.
    let fail = |err: &dyn std::fmt::Display| -> ! {
        eprintln!("error: {err}");
        std::process::exit(1);
    };
    // Logs go to stderr; stdout carries only the lines that say where to connect. The filter
    // is RUST_LOG (default `info`), made reloadable so that the admin APIs can change it.
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| "info".to_owned());
    tracing_subscriber::registry()
        .with(underscore_actix::logging::layer(&directives).unwrap_or_else(|err| fail(&err)))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let addr = std::env::var("QUICKSTART_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let socket =
        std::env::var("UNDERSCORE_SOCKET").unwrap_or_else(|_| "/tmp/underscore.sock".to_owned());

    let settings = std::env::var_os("UNDERSCORE_SETTINGS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("underscore-settings.json"));

    // SIGTERM drains (installed by `init`, before anything is announced).
    let mut builder = health_checks(Underscore::builder().settings_file(&settings))
        .poll_timing(std::env::var("UNDERSCORE_POLL_TIMING").map_or(true, |v| v != "0"));
    if let Some(operator) = std::env::var_os("UNDERSCORE_OPERATOR_SETTINGS") {
        builder = builder.operator_settings(operator);
    }
    builder.init().unwrap_or_else(|err| fail(&err));
    let admin = AdminSocket::bind(&socket).unwrap_or_else(|err| fail(&err));
    // Ctrl-C: a drain without delay; requests in flight get 5 s, then a 503.
    let mut sigint = signal::unix::signal(signal::unix::SignalKind::interrupt())?;
    actix_web::rt::spawn(async move {
        sigint.recv().await;
        tracing::info!("SIGINT received: draining at once");
        if let Err(err) = start_drain(Some(Duration::ZERO), Some(Duration::from_secs(5))) {
            tracing::error!("{err}");
        }
    });
    let server = HttpServer::new(|| {
        App::new()
            // Recorded, so that `_cat/middlewares` shows it (actix cannot list middleware).
            .wrap(record(
                DefaultHeaders::new().add(("X-Served-By", "underscore-quickstart")),
            ))
            // `/livez` and `/readyz`, answered before routing (and never counted as routes).
            .wrap(probes())
            // Outermost: it sees every request first.
            .wrap(Observe::new())
            .configure(configure)
    })
    // Counts the open connections shown by `_cat/transports`.
    .on_connect(underscore_actix::on_connect)
    // Signals are underscore's: both drain (actix's own would stop the server at once). Longer
    // than a drain's timeout, so that actix never cuts a request the drain still waits for.
    .disable_signals()
    .shutdown_timeout(35)
    .bind(&addr)?;
    underscore_actix::record_listeners(server.addrs_with_scheme());
    // Where to connect, on stdout. Write errors are ignored: a closed stdout (`| head -1`)
    // must not take the server down.
    let mut out = std::io::stdout();
    for addr in server.addrs() {
        let _ = writeln!(out, "app listening on http://{addr}");
    }
    let _ = writeln!(
        out,
        "admin APIs on {socket}: curl --unix-socket {socket} 'http://./_cat/routes?v'"
    );
    let _ = writeln!(out, "persistent settings in {}", settings.display());
    let _ = out.flush();
    admin.run_alongside(server.run()).await
}
