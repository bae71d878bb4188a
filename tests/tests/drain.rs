//! A drain as a load balancer sees it, on the real quickstart binary: clients send requests at a
//! steady rate over kept-alive connections, poll `/readyz` every 100 ms, and stop sending to the
//! node once it answers 503 (or refuses). Across a whole drain, with slow requests in flight, no
//! request fails, every one sent is answered, and the process exits 0.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{curl_unix, signal, spawn_quickstart, wait};

/// One answer read off a connection.
struct Answer {
    status: u16,
    reason: String,
    close: bool,
    body: String,
}

/// Sends `GET path` on `conn` and reads the answer (a body of known length).
fn exchange(conn: &mut BufReader<TcpStream>, path: &str) -> std::io::Result<Answer> {
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: lb\r\n\r\n")?;
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::Error::other("connection closed before an answer"));
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let status = parts.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or("").to_owned();
    let (mut length, mut close) = (0, false);
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(Answer {
        status,
        reason,
        close,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn connect(addr: &str) -> std::io::Result<BufReader<TcpStream>> {
    let conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(BufReader::new(conn))
}

/// What the simulated load balancer saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    /// Answers with `Connection: close`.
    closed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// A load balancer in front of one node.
struct LoadBalancer {
    out_of_rotation: Arc<AtomicBool>,
    tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

impl LoadBalancer {
    /// Polls `/readyz` every 100 ms; `fast` clients send `/hello/lb` every 20 ms and `slow`
    /// ones `/slow?ms=1500` back to back, each on its kept-alive connection (reopened when an
    /// answer says `Connection: close`).
    fn start(addr: &str, fast: usize, slow: usize) -> Self {
        let out = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut threads = Vec::new();
        {
            let (addr, out) = (addr.to_owned(), out.clone());
            threads.push(std::thread::spawn(move || {
                while !out.load(Ordering::SeqCst) {
                    let ready = connect(&addr)
                        .and_then(|mut c| exchange(&mut c, "/readyz"))
                        .is_ok_and(|a| a.status == 200);
                    if !ready {
                        out.store(true, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }));
        }
        let clients = (0..fast)
            .map(|_| ("/hello/lb", Duration::from_millis(20)))
            .chain((0..slow).map(|_| ("/slow?ms=1500", Duration::ZERO)));
        for (path, every) in clients {
            let (addr, out, tally) = (addr.to_owned(), out.clone(), tally.clone());
            threads.push(std::thread::spawn(move || {
                let mut conn: Option<BufReader<TcpStream>> = None;
                while !out.load(Ordering::SeqCst) {
                    tally.sent.fetch_add(1, Ordering::SeqCst);
                    let answer = match conn.take() {
                        Some(c) => Ok(c),
                        None => connect(&addr),
                    }
                    .and_then(|mut c| exchange(&mut c, path).map(|a| (a, c)));
                    match answer {
                        Ok((a, c)) if a.status == 200 => {
                            tally.answered.fetch_add(1, Ordering::SeqCst);
                            if a.close {
                                tally.closed.fetch_add(1, Ordering::SeqCst);
                            } else {
                                conn = Some(c);
                            }
                        }
                        Ok((a, _)) => tally
                            .failures
                            .lock()
                            .unwrap()
                            .push(format!("{path}: {} {} {}", a.status, a.reason, a.body)),
                        Err(e) => tally.failures.lock().unwrap().push(format!("{path}: {e}")),
                    }
                    std::thread::sleep(every);
                }
            }));
        }
        Self {
            out_of_rotation: out,
            tally,
            threads,
        }
    }

    /// Waits for every client to stop, and checks that nothing failed.
    fn finish(self) -> Arc<Tally> {
        for t in self.threads {
            t.join().unwrap();
        }
        assert!(self.out_of_rotation.load(Ordering::SeqCst));
        let tally = self.tally;
        let failures = tally.failures.lock().unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:#?}");
        drop(failures);
        let (sent, answered) = (
            tally.sent.load(Ordering::SeqCst),
            tally.answered.load(Ordering::SeqCst),
        );
        assert_eq!(sent, answered, "every request sent is answered");
        assert!(sent > 50, "the clients sent {sent} requests");
        println!(
            "{sent} requests sent and answered, {} with Connection: close",
            tally.closed.load(Ordering::SeqCst)
        );
        tally
    }
}

#[test]
fn a_drain_through_the_api_loses_no_request_and_the_process_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let (mut child, addr, _) = spawn_quickstart(&socket, &dir.path().join("settings.json"));
    let admin = |method: &str, path: &str| curl_unix(&socket, method, path, None);
    common::wait_until("readiness", || {
        connect(&addr)
            .and_then(|mut c| exchange(&mut c, "/readyz"))
            .is_ok_and(|a| a.status == 200)
    });
    let lb = LoadBalancer::start(&addr, 4, 2);
    // A request longer than the drain's timeout: interrupted, with an answer.
    let straggler = {
        let addr = addr.clone();
        std::thread::spawn(move || exchange(&mut connect(&addr).unwrap(), "/slow?ms=60000"))
    };
    std::thread::sleep(Duration::from_millis(1000));

    let started = Instant::now();
    let res = admin("POST", "/_drain?delay=1s&timeout=3s");
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    assert_eq!(body["already_running"], false);
    let task = body["task"].as_str().unwrap().to_owned();
    assert_eq!(body["drain"]["phase"], "delay");
    assert_eq!(body["drain"]["timeout"], "3s");
    // A second drain answers the first.
    let again = admin("POST", "/_drain?delay=10s").json();
    assert_eq!(
        (&again["already_running"], &again["task"]),
        (&true.into(), &task.clone().into())
    );
    // Back in rotation during a drain: no.
    let res = admin("POST", "/_health/_ok");
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("draining"), "{}", res.body);
    // The drain is a task, with its phase and the requests in flight as its status.
    let tasks = admin("GET", "/_tasks?actions=underscore:*&group_by=none").json();
    let listed = &tasks["tasks"][0];
    assert_eq!(listed["action"], "underscore:drain", "{tasks}");
    assert_eq!(listed["cancellable"], false);
    assert_eq!(
        format!("{}:{}", listed["node"].as_str().unwrap(), listed["id"]),
        task
    );
    assert!(
        listed["status"]["in_flight"].as_u64().unwrap() >= 1,
        "{tasks}"
    );
    let res = admin("POST", &format!("/_tasks/{task}/_cancel"));
    assert_eq!(res.status, 400, "{}", res.body);
    common::wait_until("the waiting phase", || {
        admin("GET", "/_health").json()["drain"]["phase"] == "waiting"
    });
    assert!(admin("GET", "/_prometheus/metrics")
        .body
        .contains("\nunderscore_draining 1\n"));

    let tally = lb.finish();
    assert!(
        tally.closed.load(Ordering::SeqCst) > 0,
        "no Connection: close seen"
    );
    let cut = straggler
        .join()
        .unwrap()
        .expect("the straggler was answered");
    assert_eq!(
        (cut.status, cut.reason.as_str(), cut.body.as_str()),
        (503, "Server draining", "Server draining\n")
    );
    let status = wait(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let took = started.elapsed();
    // delay 1 s + timeout 3 s, then the servers stop.
    assert!(took >= Duration::from_secs(4), "{took:?}");
    assert!(!socket.exists());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    for phase in ["delay", "waiting", "interrupting", "stopping", "stopped"] {
        assert!(
            log.contains(&format!("phase=\"{phase}\"")),
            "no {phase} phase in {log}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("underscore::audit") && l.contains("drain started")),
        "{log}"
    );
}

#[test]
fn sigterm_drains_with_the_builders_times_and_the_process_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let (mut child, addr, _) = spawn_quickstart(&socket, &dir.path().join("settings.json"));
    common::wait_until("readiness", || {
        connect(&addr)
            .and_then(|mut c| exchange(&mut c, "/readyz"))
            .is_ok_and(|a| a.status == 200)
    });
    let lb = LoadBalancer::start(&addr, 4, 2);
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, "-TERM");
    let started = Instant::now();
    common::wait_until("the drain to show", || {
        curl_unix(&socket, "GET", "/_health", None).json()["drain"]["caller"] == "SIGTERM"
    });
    lb.finish();
    let status = wait(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    // The quickstart's drain: 5 s of delay first.
    assert!(started.elapsed() >= Duration::from_secs(5));
}
