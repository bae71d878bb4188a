//! `/readyz` while a critical health check never returns: the probe reads the checks' last
//! results and never waits on one, so its latency does not move. A keep-alive client sends
//! sequential probes (as a kubelet or a load balancer does, only faster) while the stuck check
//! is running (before its timeout: `pending`, 503) and after (`fail`, 503), beside `/livez` and
//! a plain actix handler answering 200 on the same server; p50, p99 and max of each.
//!
//! Run with: `cargo bench -p underscore-tests --bench readyz`
//! Target: `/readyz` p99 under 1 ms (printed, not asserted).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use underscore_actix::{probes, HealthCheck, Observe, Underscore};

const REQUESTS: usize = 20_000;

/// Sends `n` `GET path` on one kept-alive connection; each request's latency.
fn probe(addr: std::net::SocketAddr, path: &str, n: usize) -> (Vec<Duration>, u16) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let (mut line, mut times, mut status) = (String::new(), Vec::with_capacity(n), 0);
    for _ in 0..n {
        let t0 = Instant::now();
        writer.write_all(request.as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length: ") {
                length = v.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        times.push(t0.elapsed());
    }
    (times, status)
}

fn report(what: &str, (mut times, status): (Vec<Duration>, u16)) -> Duration {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<44} status {status}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(times[times.len() - 1])
    );
    at(0.99)
}

fn main() {
    let timeout = Duration::from_secs(3);
    Underscore::builder()
        .health_check(
            HealthCheck::new("stuck", || async {
                std::future::pending::<Result<(), String>>().await
            })
            .critical()
            .timeout(timeout),
        )
        .health_check(HealthCheck::new("fine", || async { Ok::<(), String>(()) }).critical())
        .init()
        .unwrap();
    let started = Instant::now();
    let server = common::run_server(None, || {
        let server = HttpServer::new(|| {
            App::new().wrap(probes()).wrap(Observe::new()).route(
                "/ok",
                web::get().to(|| async { HttpResponse::Ok().finish() }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let addr = server.addr;
    probe(addr, "/readyz", 1000);
    let p99 = report(
        "/readyz, the stuck check running (503)",
        probe(addr, "/readyz", REQUESTS),
    );
    assert!(
        started.elapsed() < timeout,
        "the first measurement ran past the check's timeout: fewer REQUESTS"
    );
    std::thread::sleep(timeout.saturating_sub(started.elapsed()) + Duration::from_millis(100));
    let p99_after = report(
        "/readyz, the stuck check past its timeout (503)",
        probe(addr, "/readyz", REQUESTS),
    );
    report("/livez", probe(addr, "/livez", REQUESTS));
    report(
        "/ok, a plain actix handler answering 200",
        probe(addr, "/ok", REQUESTS),
    );
    let worst = p99.max(p99_after);
    println!(
        "/readyz p99 with a check that never returns: {:.3} ms (target < 1 ms: {})",
        worst.as_secs_f64() * 1e3,
        if worst < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    server.stop();
}
