//! The per-request cost of underscore, measured two ways:
//!
//! 1. the core operations alone (stats recording, and in-flight task registration for a
//!    request that has to wait), in nanoseconds per request, on 1 and 2 threads;
//! 2. the whole middleware stack (`Observe` + `Track`) against the same actix app without it,
//!    calling the app's service directly (no network), alternating the two apps;
//! 3. a request shed by `limits.max_in_flight` against the same route served.
//!
//! Run with: `cargo bench -p underscore-actix --bench hot_path`
//! Target: stats recording and in-flight tracking together under 100 ns per request.

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use actix_web::{get, test, web, App, Responder};
use underscore_actix::core::clock::Stamp;
use underscore_actix::core::stats::{Outcome, RouteStats};
use underscore_actix::core::tasks::{TaskHandle, TaskKind, TaskRoute};
use underscore_actix::{underscore_route, Observe};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn per_op(iterations: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

static STATS: RouteStats = RouteStats::new();
static STATS_B: RouteStats = RouteStats::new();

/// Stats recording for one request: begin, latency (two clock reads), outcome.
fn stats_once(stats: &'static RouteStats) {
    let start = Stamp::now();
    stats.begin();
    stats.record_micros(start.elapsed_nanos() / 1000);
    stats.end(Outcome::Status(200));
}

/// In-flight tracking for one request that waits: register, one poll's check, remove.
fn task_once(waker: &Waker) {
    let kind = TaskKind::Request {
        method: http::Method::GET,
        uri: http::Uri::from_static("/hello/bench"),
        peer: None,
        opaque_id: None,
    };
    let mut handle = TaskHandle::register(kind, TaskRoute::None, waker);
    black_box(handle.poll_signal(waker));
    drop(handle);
}

fn core_ops() {
    const N: u64 = 2_000_000;
    let waker = Waker::from(Arc::new(Noop));
    let stats_1 = median((0..5).map(|_| per_op(N, || stats_once(&STATS))).collect());
    let tasks_1 = median((0..5).map(|_| per_op(N, || task_once(&waker))).collect());
    let both_1 = median(
        (0..5)
            .map(|_| {
                per_op(N, || {
                    stats_once(&STATS);
                    task_once(&waker)
                })
            })
            .collect(),
    );
    println!("core, 1 thread:  stats {stats_1:>5.1} ns, in-flight task {tasks_1:>5.1} ns, both {both_1:>5.1} ns per request");
    for (label, second) in [("same route", &STATS), ("own routes", &STATS_B)] {
        let run = |stats: &'static RouteStats| {
            let waker = Waker::from(Arc::new(Noop));
            median(
                (0..5)
                    .map(|_| {
                        per_op(N, || {
                            stats_once(stats);
                            task_once(&waker)
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| run(&STATS));
            let b = s.spawn(|| run(second));
            (a.join().unwrap(), b.join().unwrap())
        });
        println!(
            "core, 2 threads, {label}: both {:>5.1} ns per request (per thread)",
            (a + b) / 2.0
        );
    }
}

#[underscore_route]
#[get("/hello/{name}")]
async fn hello(name: web::Path<String>) -> impl Responder {
    format!("Hello {name}!")
}

#[underscore_route]
#[get("/wait/{name}")]
async fn wait(name: web::Path<String>) -> impl Responder {
    actix_web::rt::task::yield_now().await;
    format!("Hello {name}!")
}

/// The same handler as `hello`, on a route whose requests are all shed in part 3.
#[underscore_route]
#[get("/limited/{name}")]
async fn limited(name: web::Path<String>) -> impl Responder {
    format!("Hello {name}!")
}

async fn plain_hello(name: web::Path<String>) -> impl Responder {
    format!("Hello {name}!")
}

async fn plain_wait(name: web::Path<String>) -> impl Responder {
    actix_web::rt::task::yield_now().await;
    format!("Hello {name}!")
}

/// The app without underscore, and the same app annotated and observed (macros, not
/// functions, because `init_service`'s type cannot be named here).
macro_rules! plain_app {
    () => {
        test::init_service(
            App::new()
                .route("/hello/{name}", web::get().to(plain_hello))
                .route("/wait/{name}", web::get().to(plain_wait)),
        )
        .await
    };
}

macro_rules! tracked_app {
    () => {
        test::init_service(
            App::new()
                .wrap(Observe::new())
                .service(hello)
                .service(wait)
                .service(limited),
        )
        .await
    };
}

/// `HOT_PATH_N`, the number of requests per round, or `default`.
fn requests(default: u32) -> u32 {
    std::env::var("HOT_PATH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Sends `n` GET requests to `path` through `app`, one after another.
macro_rules! drive {
    ($app:expr, $n:expr, $path:expr) => {
        for _ in 0..$n {
            black_box(
                $app.call(test::TestRequest::get().uri($path).to_request())
                    .await
                    .unwrap(),
            );
        }
    };
}

fn middleware() {
    actix_rt::System::new().block_on(async {
        let plain = plain_app!();
        let tracked = tracked_app!();
        let n = requests(100_000);
        for path in ["/hello/bench", "/wait/bench"] {
            let mut deltas = Vec::new();
            let mut base = Vec::new();
            for _ in 0..7 {
                let t = Instant::now();
                drive!(plain, n, path);
                let a = t.elapsed();
                let t = Instant::now();
                drive!(tracked, n, path);
                let b = t.elapsed();
                let ns = |d: Duration| d.as_nanos() as f64 / f64::from(n);
                base.push(ns(a));
                deltas.push(ns(b) - ns(a));
            }
            println!(
                "middleware, GET {path:<13}: plain actix {:>6.0} ns/request, underscore adds {:>5.0} ns (median of 7 alternating rounds; min {:.0}, max {:.0})",
                median(base),
                median(deltas.clone()),
                deltas.iter().copied().fold(f64::INFINITY, f64::min),
                deltas.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
        }
    });
}

/// A shed request (the route at its `limits.max_in_flight`) against a served one, through the
/// whole stack: shedding must cost less than serving.
fn shedding() {
    use underscore_actix::core::api::{handle, Request};
    let put = handle(
        &Request::new("PUT", "/_routes/limited/settings", "")
            .with_body(br#"{"transient": {"limits.max_in_flight": 1}}"#),
    );
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let (_, meta) = underscore_actix::core::registry()
        .annotated()
        .iter()
        .find(|(id, _)| id == "limited")
        .expect("the limited route is registered");
    let stats = &meta.state.stats;
    actix_rt::System::new().block_on(async {
        let app = tracked_app!();
        let n = requests(100_000);
        let (mut served, mut shed) = (Vec::new(), Vec::new());
        // The same route, alternately served (its only slot free) and shed (the slot held by
        // a request begun here, so every request of the round is shed).
        for _ in 0..7 {
            let t = Instant::now();
            drive!(app, n, "/limited/bench");
            served.push(t.elapsed().as_nanos() as f64 / f64::from(n));
            stats.begin();
            let res = app
                .call(test::TestRequest::get().uri("/limited/bench").to_request())
                .await
                .unwrap();
            assert_eq!(res.status(), 503, "the route sheds");
            let t = Instant::now();
            drive!(app, n, "/limited/bench");
            shed.push(t.elapsed().as_nanos() as f64 / f64::from(n));
            stats.end(Outcome::Dropped);
        }
        let (served, shed) = (median(served), median(shed));
        println!(
            "shedding, one route with limits.max_in_flight: served {served:>6.0} ns/request ({:>8.0} requests/s), shed {shed:>6.0} ns/request ({:>8.0} requests/s): a shed request costs {:.2}x a served one (median of 7 alternating rounds, without the network)",
            1e9 / served,
            1e9 / shed,
            shed / served,
        );
    });
}

/// Runs `n` requests to `path` on one app only: for instruction counts under callgrind
/// (`HOT_PATH=plain|tracked HOT_PATH_N=.. HOT_PATH_URI=..`).
fn one_app(tracked: bool) {
    let n = requests(10_000);
    let path = std::env::var("HOT_PATH_URI").unwrap_or_else(|_| "/hello/bench".to_owned());
    actix_rt::System::new().block_on(async move {
        if tracked {
            let app = tracked_app!();
            drive!(app, n, &path);
        } else {
            let app = plain_app!();
            drive!(app, n, &path);
        }
    });
}

fn main() {
    // `HOT_PATH=middleware` runs only the middleware part (for profiling under callgrind).
    match std::env::var("HOT_PATH").as_deref() {
        Ok("plain") => one_app(false),
        Ok("tracked") => one_app(true),
        Ok("middleware") => middleware(),
        Ok("core") => core_ops(),
        Ok("shed") => shedding(),
        _ => {
            core_ops();
            middleware();
            shedding();
        }
    }
}
