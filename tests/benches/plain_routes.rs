//! What the admin APIs cost with many plain actix-web routes and many plain requests waiting:
//! 1,000 plain routes (half with a dynamic segment, which actix matches with a regex), all
//! requested once so that `Observe` knows them, and 1,000 plain requests waiting on a route
//! registered after them. Every waiting request is matched to its route by path whenever the
//! admin APIs list it: `GET /_cat/routes`, `GET /_tasks` (what `underscore top` polls) and a
//! Prometheus scrape, timed in-process, each through the function the admin socket calls.
//!
//! With `TOP_SECS=N`, also the CPU this process (server and admin socket) spends in N seconds
//! idle, then in N seconds while `underscore top --interval 1s` polls it, as
//! `bench/cli_top_cost.sh` measures it (the CLI from `UNDERSCORE_CLI`, by default
//! `target/release/underscore`: build it with `cargo build --release -p underscore-cli`).
//!
//! Run with: `cargo bench -p underscore-tests --bench plain_routes`
//! (`SAMPLES=N` timed runs of each request after one warm-up, 5 by default.)

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use underscore_actix::core::api::{handle, Request};
use underscore_actix::core::prometheus::{self, Format};
use underscore_actix::{AdminSocket, Observe};

const ROUTES: usize = 1_000;
const WAITING: usize = 1_000;

/// Route `i`'s pattern, and a path it matches.
fn route(i: usize) -> (String, String) {
    if i.is_multiple_of(2) {
        (
            format!("/api/v{}/things/{i}/{{id}}", i % 7),
            format!("/api/v{}/things/{i}/42", i % 7),
        )
    } else {
        let path = format!("/static/{i}/page");
        (path.clone(), path)
    }
}

/// Sleeps for `{secs}` seconds: 0 to be discovered, long to wait.
async fn wait(secs: web::Path<u64>) -> &'static str {
    actix_web::rt::time::sleep(Duration::from_secs(*secs)).await;
    "waited"
}

fn routes(cfg: &mut web::ServiceConfig) {
    for i in 0..ROUTES {
        cfg.service(web::resource(route(i).0).route(web::get().to(|| async { "plain" })));
    }
    cfg.service(web::resource("/wait/{secs}").route(web::get().to(wait)));
}

/// Times `run` `samples` times after one warm-up; prints the median, min and max.
fn measure<T>(label: &str, samples: usize, mut run: impl FnMut() -> T) -> Duration {
    std::hint::black_box(run());
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(run());
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{label:<44} median {:>9.2} ms  min {:>9.2} ms  max {:>9.2} ms",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    median
}

fn api(path: &str, query: &str) -> usize {
    let res = handle(&Request::new("GET", path, query));
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.body.len()
}

/// This process's CPU time so far (user + system), in clock ticks of `hz` a second.
fn cpu(hz: f64) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / hz)
}

/// The clock ticks a second of `/proc/self/stat`'s times.
fn clock_ticks() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn main() {
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&socket).unwrap();
    let server = common::run_server(Some(admin), || {
        let server = HttpServer::new(|| App::new().wrap(Observe::new()).configure(routes))
            .workers(2)
            .max_connections(WAITING * 2)
            .disable_signals()
            .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let addr = server.addr;
    let base = format!("http://{addr}");
    for i in 0..ROUTES {
        let reply = common::http("GET", &format!("{base}{}", route(i).1), None);
        assert_eq!(reply.status, 200);
    }
    assert_eq!(
        common::http("GET", &format!("{base}/wait/0"), None).status,
        200
    );

    let tasks = underscore_actix::core::tasks::tasks();
    let _clients: Vec<TcpStream> = (0..WAITING)
        .map(|_| {
            common::send_raw(
                addr,
                "GET /wait/600 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
            )
        })
        .collect();
    let start = Instant::now();
    while tasks.len() < WAITING {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} waiting",
            tasks.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every waiting request is matched to its route.
    let res = handle(&Request::new("GET", "/_cat/routes/wait.secs", "h=active"));
    assert_eq!(
        String::from_utf8_lossy(&res.body).trim(),
        WAITING.to_string()
    );

    println!(
        "{ROUTES} plain routes, {WAITING} plain requests waiting; {samples} runs each after one warm-up"
    );
    measure("GET /_cat/routes", samples, || api("/_cat/routes", ""));
    measure("GET /_cat/routes?format=json&h=* (top)", samples, || {
        api("/_cat/routes", "format=json&h=*")
    });
    measure("GET /_tasks?detailed&group_by=none (top)", samples, || {
        api("/_tasks", "detailed&group_by=none")
    });
    measure("GET /_prometheus/metrics", samples, || {
        prometheus::encode(underscore_actix::core::registry(), Format::Text)
            .unwrap()
            .len()
    });

    if let Some(secs) = std::env::var("TOP_SECS").ok().and_then(|s| s.parse().ok()) {
        top_cost(&socket, secs);
    }
    drop(server);
}

/// The CPU `underscore top` costs this process, as `bench/cli_top_cost.sh` measures it.
fn top_cost(socket: &std::path::Path, secs: u64) {
    let cli = std::env::var("UNDERSCORE_CLI").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/underscore").to_owned()
    });
    let window = Duration::from_secs(secs);
    let hz = clock_ticks();
    let cpu = || cpu(hz);
    let t0 = cpu();
    std::thread::sleep(window);
    let idle = cpu() - t0;
    let mut top = std::process::Command::new(&cli)
        .arg("--socket")
        .arg(socket)
        .args(["top", "--frames", &(secs * 4 + 10).to_string()])
        .args(["--interval", "1s", "--size", "120x40"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{cli}: {e} (build it: cargo build --release -p underscore-cli)")
        });
    // Its first poll (h=*, which learns the columns) is outside the window.
    std::thread::sleep(Duration::from_secs(1));
    let t1 = cpu();
    std::thread::sleep(window);
    let polled = cpu() - t1;
    let _ = top.kill();
    let _ = top.wait();
    let share = |d: Duration| d.as_secs_f64() / window.as_secs_f64() * 100.0;
    println!(
        "CPU as % of one core over {secs} s: idle {:.2}%, while `underscore top --interval 1s` polls {:.2}%, cost of top {:.2}%",
        share(idle),
        share(polled),
        share(polled) - share(idle)
    );
}
