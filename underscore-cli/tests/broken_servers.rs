//! The built `underscore` binary against fake admin servers on temp-dir UNIX sockets that
//! answer what a real one never should: 2xx bodies that are not JSON, error bodies that are
//! not Elasticsearch's, endless or oversized bodies, an error from one endpoint only. The CLI must say what went wrong, clearly and
//! boundedly, and keep what it can.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const UNDERSCORE: &str = env!("CARGO_BIN_EXE_underscore");

/// What the fake server answers to one request.
enum Answer {
    /// A whole body with its length.
    Body {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A 200 with a chunked body that never ends (until the client goes away).
    Endless,
    /// A 200 that declares this length, then sends zeros until the client goes away.
    Declared(u64),
}

fn json(status: u16, body: &str) -> Answer {
    Answer::Body {
        status,
        content_type: "application/json",
        body: body.as_bytes().to_vec(),
    }
}

/// A fake admin server on a socket in a temp dir: each request (`"GET /path?query"`) is
/// answered by `answer`. It serves until the test process ends; `sent` counts the body bytes
/// it wrote.
struct FakeServer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    sent: Arc<AtomicU64>,
}

impl FakeServer {
    fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let answer = Arc::new(answer);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (answer, sent) = (Arc::clone(&answer), Arc::clone(&counter));
                std::thread::spawn(move || serve(stream, &*answer, &sent));
            }
        });
        Self {
            _dir: dir,
            socket,
            sent,
        }
    }

    fn socket(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

/// Serves one kept-alive connection until the client closes it or a write fails.
fn serve(stream: UnixStream, answer: &dyn Fn(&str) -> Answer, sent: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = request_line
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let written = match answer(&target) {
            Answer::Body {
                status,
                content_type,
                body,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                out.write_all(head.as_bytes())
                    .and_then(|()| out.write_all(&body))
            }
            Answer::Endless => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                let chunk = [b'['; 64 * 1024];
                let mut result = out.write_all(head.as_bytes());
                while result.is_ok() {
                    result = out
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|()| out.write_all(&chunk))
                        .and_then(|()| out.write_all(b"\r\n"));
                    if result.is_ok() {
                        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
                result
            }
            Answer::Declared(length) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
                );
                let chunk = [b' '; 64 * 1024];
                let mut result = out.write_all(head.as_bytes());
                while result.is_ok() {
                    result = out.write_all(&chunk);
                    if result.is_ok() {
                        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
                result
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn run(socket: &str, args: &[&str]) -> Output {
    Command::new(UNDERSCORE)
        .args(["--socket", socket])
        .args(args)
        .env_remove("UNDERSCORE_SOCKET")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Expects exactly one `error:` line and this exit status; returns the line.
fn one_error(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err
}

#[test]
fn a_2xx_answer_that_is_not_json_names_the_endpoint_and_shows_its_start() {
    let mut html = b"<html><body>\x07\x1b[31mproxy says hi\n".to_vec();
    html.extend(std::iter::repeat_n(b'x', 10_000));
    let server = FakeServer::start(move |_| Answer::Body {
        status: 200,
        content_type: "text/html",
        body: html.clone(),
    });
    let out = run(server.socket(), &["interrupt", "slow"]);
    let err = one_error(&out, 1);
    assert!(
        err.starts_with(
            "error: unexpected answer to POST /_routes/slow/interrupt (200, text/html): not JSON"
        ),
        "{err}"
    );
    assert!(
        err.contains(r#"it starts "<html><body>\u{7}\u{1b}[31mproxy says hi\nxxx"#),
        "{err}"
    );
    assert!(!err.contains('\u{7}') && !err.contains('\u{1b}'), "{err:?}");
    assert!(err.len() < 400, "bounded: {} bytes", err.len());
}

#[test]
fn an_error_body_that_is_not_elasticsearch_s_is_shown_bounded_and_printable() {
    let server = FakeServer::start(|_| Answer::Body {
        status: 502,
        content_type: "text/plain",
        body: format!("bad\u{7} gateway {}\n", "y".repeat(5000)).into_bytes(),
    });
    let err = one_error(&run(server.socket(), &["cat", "routes"]), 1);
    assert!(err.starts_with(r#"error: bad\u{7} gateway yyy"#), "{err}");
    assert!(err.ends_with("... (status 502)\n"), "{err}");
    assert!(err.len() < 400, "bounded: {} bytes", err.len());
}

#[test]
fn an_endless_answer_stops_at_the_limit_with_an_error_naming_it() {
    let server = FakeServer::start(|_| Answer::Endless);
    let out = run(server.socket(), &["interrupt", "slow"]);
    let err = one_error(&out, 1);
    assert!(
        err.contains("the answer to POST /_routes/slow/interrupt is larger than 64 MiB"),
        "{err}"
    );
    let sent = server.sent.load(Ordering::Relaxed);
    assert!(
        sent >= 64 << 20,
        "the limit was reached, not a timeout: {sent} bytes"
    );
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let server = FakeServer::start(|_| Answer::Declared(1 << 40));
    let out = run(server.socket(), &["cat", "routes"]);
    let err = one_error(&out, 1);
    assert!(
        err.contains("the answer to GET /_cat/routes is larger than 64 MiB"),
        "{err}"
    );
    assert!(err.contains("1099511627776 bytes"), "{err}");
}

/// `_cat/routes` answers, `_tasks` is refused (as a proxy or an older build might).
fn routes_but_no_tasks(target: &str) -> Answer {
    if target.starts_with("GET /_cat/routes") {
        json(
            200,
            r#"[{"id":"hello","method":"GET","path":"/hello/{name}","stats.req.total":7,"stats.req.active":0,"preempt":null}]"#,
        )
    } else {
        json(
            403,
            r#"{"error":{"root_cause":[{"type":"security_exception","reason":"no tasks for you"}],"type":"security_exception","reason":"no tasks for you"},"status":403}"#,
        )
    }
}

#[test]
fn top_keeps_what_one_endpoint_answered_when_the_other_fails() {
    let server = FakeServer::start(routes_but_no_tasks);
    let out = run(
        server.socket(),
        &["top", "--frames", "1", "--size", "140x20"],
    );
    let frame = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!frame.contains("disconnected"), "{frame}");
    assert!(frame.contains("hello"), "the routes are kept:\n{frame}");
    // The rows it asks for are as many as the frame has lines.
    assert!(
        frame.contains(
            "fake: GET /_tasks?detailed&group_by=none&sort=running_time:desc&size=20 failed: no tasks for you (status 403)"
        ),
        "{frame}"
    );
    assert!(
        frame.contains("fake: GET /_tasks?group_by=routes failed: no tasks for you (status 403)"),
        "{frame}"
    );
}

/// An older build: `_tasks` knows no `size` (a 400, as for any unknown parameter) and lists
/// every task.
fn older_build(target: &str) -> Answer {
    if target.starts_with("GET /_cat/routes") {
        json(
            200,
            r#"[{"id":"slow","method":"GET","path":"/slow","stats.req.total":3,"stats.req.active":2,"preempt":null}]"#,
        )
    } else if target == "GET /_tasks?detailed&group_by=none" {
        json(
            200,
            r#"{"tasks":[{"node":"vm","id":1024,"action":"http:slow","route_id":"slow","method":"GET","path":"/slow?ms=1","running_time_in_nanos":2000000000,"cancelled":false},{"node":"vm","id":2048,"action":"http:slow","route_id":"slow","method":"GET","path":"/slow?ms=2","running_time_in_nanos":3000000000,"cancelled":false}]}"#,
        )
    } else {
        json(
            400,
            r#"{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"request [/_tasks] contains unrecognized parameter: [sort]"}],"type":"illegal_argument_exception","reason":"request [/_tasks] contains unrecognized parameter: [sort]"},"status":400}"#,
        )
    }
}

#[test]
fn top_lists_an_older_build_s_tasks_without_size() {
    let server = FakeServer::start(older_build);
    let out = run(
        server.socket(),
        &[
            "top",
            "--frames",
            "2",
            "--interval",
            "100ms",
            "--size",
            "120x30",
        ],
    );
    let frame = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!frame.contains("failed"), "{frame}");
    assert!(
        frame.contains(" Tasks: 2 in flight, longest first"),
        "{frame}"
    );
    assert!(frame.contains("vm:2048"), "{frame}");
}

/// A node of this build with `/_health`, as `health` says; its other endpoints answer plainly.
fn with_health(health: &'static str) -> impl Fn(&str) -> Answer {
    move |target| {
        if target.starts_with("GET /_cat/routes") {
            json(
                200,
                r#"[{"id":"slow","method":"GET","path":"/slow","stats.req.total":3,"stats.req.active":2,"preempt":null}]"#,
            )
        } else if target == "GET /_health" && !health.is_empty() {
            json(200, health)
        } else if target == "GET /_tasks?group_by=routes" {
            json(200, r#"{"total":0,"routes":{}}"#)
        } else if target.starts_with("GET /_tasks?") {
            json(200, r#"{"tasks":[]}"#)
        } else {
            json(
                404,
                r#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"no handler found"}],"type":"resource_not_found_exception","reason":"no handler found"},"status":404}"#,
            )
        }
    }
}

#[test]
fn top_shows_the_health_and_the_drain_in_its_header() {
    let server = FakeServer::start(with_health(
        r#"{"status":"yellow","ready":false,"live":true,"draining":true,"drain":{"phase":"waiting","in_flight":3}}"#,
    ));
    let out = run(
        server.socket(),
        &["top", "--frames", "1", "--size", "120x20"],
    );
    let frame = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let header = frame.lines().next().unwrap();
    assert!(
        header.ends_with("  sort req/s  draining: waiting, 3 in flight"),
        "{header}"
    );
    let server = FakeServer::start(with_health(
        r#"{"status":"red","ready":false,"live":true,"draining":false}"#,
    ));
    let out = run(
        server.socket(),
        &["top", "--frames", "1", "--size", "120x20"],
    );
    let frame = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        frame.lines().next().unwrap().ends_with("  red not ready"),
        "{frame}"
    );
}

#[test]
fn top_copes_with_a_node_without_health() {
    let server = FakeServer::start(with_health(""));
    let out = run(
        server.socket(),
        &["top", "--frames", "1", "--size", "120x20"],
    );
    let frame = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!frame.contains("failed"), "{frame}");
    assert!(
        frame.lines().next().unwrap().ends_with("  sort req/s"),
        "{frame}"
    );
    assert!(frame.contains("slow"), "{frame}");
}
