//! `GET /_cat/workers` while every app worker is blocked: the admin server runs on its own
//! thread, so it answers when the app cannot, which is when an operator asks. Both workers of
//! a two-worker app are blocked by a handler sleeping synchronously for 3 s; meanwhile
//! `_cat/workers` is asked over the admin socket (`HTTP/1.0` on a fresh connection each time,
//! as `curl --unix-socket` does, without curl's own start-up), one request after another; p50,
//! p99 and max. The same with the workers idle, for comparison.
//!
//! Run with: `cargo bench -p underscore-tests --bench workers_blocked`
//! Target: under 50 ms while every worker is blocked (printed, not asserted).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::{get, web, Responder};
use common::TestServer;
use underscore_actix::underscore_route;

/// Blocks its worker with a synchronous sleep.
#[underscore_route]
#[get("/block")]
async fn block() -> impl Responder {
    std::thread::sleep(Duration::from_secs(3));
    "blocked"
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(block);
}

/// One `GET path` on a fresh connection to the admin socket: its latency and body.
fn ask(socket: &Path, path: &str) -> (Duration, String) {
    let start = Instant::now();
    let mut conn = UnixStream::connect(socket).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: .\r\n\r\n").unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let took = start.elapsed();
    assert!(raw.starts_with("HTTP/1.0 200"), "{raw}");
    (took, raw.split_once("\r\n\r\n").unwrap().1.to_owned())
}

fn report(what: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<44} {:>4} requests  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        times.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
    );
    at(0.99)
}

fn main() {
    underscore_actix::Underscore::builder()
        .poll_timing(true)
        .init()
        .unwrap();
    let srv = TestServer::start(routes);
    let path = "/_cat/workers?v";

    let idle: Vec<Duration> = (0..200).map(|_| ask(&srv.socket, path).0).collect();
    report("GET /_cat/workers, workers idle", idle);

    // Both workers blocked at once (one connection each: actix spreads them).
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let url = srv.url("/block");
            std::thread::spawn(move || common::http("GET", &url, None))
        })
        .collect();
    common::wait_until("both workers polling block", || {
        let (_, body) = ask(&srv.socket, "/_cat/workers?h=polling");
        body.lines().filter(|l| l.trim() == "block").count() == 2
    });
    let until = Instant::now() + Duration::from_secs(2);
    let mut blocked = Vec::new();
    let mut last = String::new();
    while Instant::now() < until {
        let (took, body) = ask(&srv.socket, path);
        blocked.push(took);
        last = body;
    }
    let p99 = report("GET /_cat/workers, every app worker blocked", blocked);
    print!("{last}");
    for client in clients {
        assert_eq!(client.join().unwrap().body, "blocked");
    }
    println!(
        "p99 {} the 50 ms target while every worker is blocked",
        if p99 < Duration::from_millis(50) {
            "meets"
        } else {
            "MISSES"
        }
    );
}
