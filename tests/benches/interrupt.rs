//! Interrupting 1,000 in-flight requests: the time from `POST /_routes/{id}/interrupt` (sent
//! with curl over the admin socket, as an operator would) until every client has its 503; and
//! the memory an in-flight request costs.
//!
//! Run with: `cargo bench -p underscore-tests --bench interrupt`
//! Target: all 1,000 answered within 100 ms of the POST.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use actix_web::{get, App, HttpServer, Responder};
use underscore_actix::{underscore_route, AdminSocket, Observe};

const CLIENTS: usize = 1_000;

#[underscore_route]
#[get("/wait")]
async fn wait() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(120)).await;
    "waited"
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&socket).unwrap();
    let server = common::run_server(Some(admin), || {
        let server = HttpServer::new(|| App::new().wrap(Observe::new()).service(wait))
            .workers(2)
            .max_connections(CLIENTS * 2)
            .disable_signals()
            .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let addr = server.addr;
    let registry = underscore_actix::core::tasks::tasks();

    let mut rounds = Vec::new();
    for round in 0..5 {
        let before = rss_kib();
        let mut clients: Vec<TcpStream> = (0..CLIENTS)
            .map(|_| {
                common::send_raw(
                    addr,
                    "GET /wait HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
                )
            })
            .collect();
        let start = Instant::now();
        while registry.len() < CLIENTS {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "only {} in flight",
                registry.len()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let in_flight_kib = rss_kib().saturating_sub(before);

        let t0 = Instant::now();
        let reply = common::curl_unix(&socket, "POST", "/_routes/wait/interrupt", None);
        let answered_post = t0.elapsed();
        assert_eq!(
            reply.body,
            format!("{{\"wait\":{{\"interrupted\":{CLIENTS}}}}}")
        );
        let mut buf = Vec::with_capacity(256);
        for client in &mut clients {
            buf.clear();
            client.read_to_end(&mut buf).unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 503 Request interrupted\r\n"));
        }
        let all_answered = t0.elapsed();
        while !registry.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        println!(
            "round {round}: POST answered in {:>6.1} ms, all {CLIENTS} clients had their 503 after {:>6.1} ms; RSS +{} KiB while in flight ({} B per request, all of actix included)",
            answered_post.as_secs_f64() * 1e3,
            all_answered.as_secs_f64() * 1e3,
            in_flight_kib,
            in_flight_kib * 1024 / CLIENTS as u64,
        );
        rounds.push(all_answered);
    }
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    println!(
        "median: all {CLIENTS} answered {:.1} ms after the POST (target < 100 ms: {}); one task entry in the registry: {} bytes",
        median.as_secs_f64() * 1e3,
        if median < Duration::from_millis(100) { "met" } else { "MISSED" },
        underscore_actix::core::tasks::entry_size(),
    );
}
