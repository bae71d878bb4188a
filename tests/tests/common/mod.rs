//! Shared harness: a real actix-web server on `127.0.0.1:0` with the admin APIs on a socket in
//! a temp dir, a real HTTP client for TCP, and `curl --unix-socket` for the socket.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use underscore_actix::{AdminSocket, Observe};

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A server running in its own actix `System` on its own thread; stopped gracefully on drop.
pub struct Running {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

/// Runs the server `build` binds (inside the new `System`), with the admin APIs on `admin`
/// alongside when given.
pub fn run_server<B>(admin: Option<AdminSocket>, build: B) -> Running
where
    B: FnOnce() -> std::io::Result<(SocketAddr, Server)> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let (addr, server) = build().expect("the server binds");
            tx.send((addr, server.handle())).unwrap();
            match admin {
                Some(admin) => admin.run_alongside(server).await,
                None => server.await,
            }
            .expect("the server ran cleanly");
        });
    });
    let (addr, handle) = rx.recv().expect("server started");
    Running {
        addr,
        handle,
        thread: Some(thread),
    }
}

impl Running {
    /// Stops the server gracefully and waits for its thread (and the admin socket's removal).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            actix_rt::System::new().block_on(self.handle.stop(true));
            thread.join().expect("server thread ended cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        }
    }
}

/// A running app: routes from `configure` behind `Observe`, admin APIs on a private socket.
pub struct TestServer {
    pub addr: SocketAddr,
    pub socket: PathBuf,
    server: Running,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start(configure: fn(&mut web::ServiceConfig)) -> Self {
        Self::start_with(configure, false)
    }

    /// Like `start`, and also mounts the admin APIs in the app (in-app mode).
    pub fn start_with(configure: fn(&mut web::ServiceConfig), in_app: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("admin.sock");
        let admin = AdminSocket::bind(&socket).expect("bind the admin socket");
        let server = run_server(Some(admin), move || {
            let server = HttpServer::new(move || {
                let app = App::new().wrap(Observe::new()).configure(configure);
                if in_app {
                    app.configure(underscore_actix::admin::configure)
                } else {
                    app
                }
            })
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .bind("127.0.0.1:0")?;
            Ok((server.addrs()[0], server.run()))
        });
        Self {
            addr: server.addr,
            socket,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to the app over TCP.
    pub fn http(&self, method: &str, path: &str) -> Reply {
        http(method, &self.url(path), None)
    }

    /// A request to the admin socket with curl.
    pub fn admin(&self, method: &str, path: &str) -> Reply {
        curl_unix(&self.socket, method, path, None)
    }
}

/// A request over TCP with a real HTTP client.
pub fn http(method: &str, url: &str, body: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("HEAD", _) => agent.head(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("POST", b) => agent.post(url).send(b.unwrap_or("")),
        ("PUT", b) => agent.put(url).send(b.unwrap_or("")),
        (m, _) => panic!("method {m} not supported by the test client"),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let status = res.status().as_u16();
    let body = if method == "HEAD" {
        String::new()
    } else {
        res.body_mut().read_to_string().unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A request over a UNIX socket with `curl --unix-socket`, as an operator would send it.
pub fn curl_unix(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "10", "--unix-socket"])
        .arg(socket)
        .args(["-X", method]);
    if method == "HEAD" {
        cmd.arg("-I");
    }
    if let Some(body) = body {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    cmd.arg(format!("http://./{}", path.trim_start_matches('/')));
    let out = cmd.output().expect("curl runs");
    assert!(
        out.status.success(),
        "curl {method} {path} failed: {:?}",
        out
    );
    parse_reply(&String::from_utf8(out.stdout).expect("UTF-8 reply"))
}

/// A raw HTTP reply as `curl -i` prints it.
pub fn parse_reply(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Connects to `addr` and sends `request` as is (a write the server cuts short is not an
/// error: what it answered is what the test looks at). Reads time out after 20 s.
pub fn send_raw(addr: SocketAddr, request: impl AsRef<[u8]>) -> TcpStream {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = conn.write_all(request.as_ref());
    conn
}

/// Everything the server sends on `conn` until it closes it, decoded leniently.
pub fn read_all(mut conn: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The raw response to `request`, status line and headers exactly as sent.
pub fn raw(addr: SocketAddr, request: impl AsRef<[u8]>) -> String {
    read_all(send_raw(addr, request))
}

/// Waits (10 s at most) until `ok` holds.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `quickstart` example binary, built beside the test binaries.
pub fn quickstart_exe() -> PathBuf {
    // Test binaries live in target/<profile>/deps; examples in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("quickstart");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build --examples`)",
        path.display()
    );
    path
}

/// Starts the quickstart binary on `127.0.0.1:0` with this admin socket and settings file,
/// `RUST_LOG=info`, stdout and stderr piped, and returns once it has said where to connect:
/// the process, the app's address, and the two lines after it (the socket's, the settings
/// file's).
pub fn spawn_quickstart(
    socket: &Path,
    settings: &Path,
) -> (std::process::Child, String, [String; 2]) {
    spawn_quickstart_with(socket, settings, &[])
}

/// [`spawn_quickstart`], with more environment variables.
pub fn spawn_quickstart_with(
    socket: &Path,
    settings: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, String, [String; 2]) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(quickstart_exe())
        .envs(env.iter().copied())
        .env("QUICKSTART_ADDR", "127.0.0.1:0")
        .env("UNDERSCORE_SOCKET", socket)
        .env("UNDERSCORE_SETTINGS", settings)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || {
        lines
            .next()
            .expect("the quickstart printed its addresses")
            .unwrap()
    };
    let first = next();
    let addr = first
        .strip_prefix("app listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    let after = [next(), next()];
    (child, addr, after)
}

/// Runs the quickstart binary on `127.0.0.1:0` with this admin socket, settings file and more
/// environment variables, for a start that must fail: how it exited, and its stderr.
pub fn quickstart_start_fails(
    socket: &Path,
    settings: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (std::process::ExitStatus, String) {
    let out = Command::new(quickstart_exe())
        .envs(env.iter().copied())
        .env("QUICKSTART_ADDR", "127.0.0.1:0")
        .env("UNDERSCORE_SOCKET", socket)
        .env("UNDERSCORE_SETTINGS", settings)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the quickstart started");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The events [`capture_events`] captured.
static EVENTS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A tracing layer that keeps the events on one target in [`EVENTS`].
struct Capture(&'static str);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        if event.metadata().target() == self.0 {
            let mut fields = Fields(event.metadata().level().to_string());
            event.record(&mut fields);
            EVENTS.lock().unwrap().push(fields.0);
        }
    }
}

/// From now on, keeps every event this process emits on the tracing target `target`, for
/// [`captured_events`]: the test binary's global subscriber (the first call installs it; a
/// test binary captures one target).
pub fn capture_events(target: &'static str) {
    use tracing_subscriber::prelude::*;
    let _ = tracing_subscriber::registry()
        .with(Capture(target))
        .try_init();
}

/// The events captured so far, as `LEVEL field=value ...`.
pub fn captured_events() -> Vec<String> {
    EVENTS.lock().unwrap().clone()
}

/// Sends `sig` (`-INT`, `-KILL`, ...) to `child` with `kill`, as an operator would.
pub fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (`timeout` at most) for `child` to exit.
pub fn wait(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "the quickstart did not exit in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A response body stream that sends one chunk (`first chunk\n`), then stalls until dropped.
pub struct Stalling(bool);

impl Stalling {
    pub fn new() -> Self {
        Self(false)
    }
}

impl futures_core::Stream for Stalling {
    type Item = Result<actix_web::web::Bytes, actix_web::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.0 {
            std::task::Poll::Pending
        } else {
            self.0 = true;
            std::task::Poll::Ready(Some(Ok(actix_web::web::Bytes::from_static(
                b"first chunk\n",
            ))))
        }
    }
}

/// The quickstart binary with its admin socket and settings file in a temp dir, and its log
/// (stderr) collected; killed when dropped.
pub struct Quickstart {
    pub child: std::process::Child,
    pub addr: String,
    pub socket: PathBuf,
    /// The settings file (persistent tier).
    pub settings: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    env: Vec<(String, std::ffi::OsString)>,
    _dir: tempfile::TempDir,
}

impl Quickstart {
    /// Starts the quickstart with these environment variables (see [`spawn_quickstart_with`]).
    pub fn start(env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("admin.sock");
        let settings = dir.path().join("persistent.json");
        let env: Vec<(String, std::ffi::OsString)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, addr, stderr) = Self::spawn(&socket, &settings, &env);
        Self {
            child,
            addr,
            socket,
            settings,
            stderr,
            env,
            _dir: dir,
        }
    }

    #[allow(clippy::type_complexity)]
    fn spawn(
        socket: &Path,
        settings: &Path,
        env: &[(String, std::ffi::OsString)],
    ) -> (
        std::process::Child,
        String,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use std::io::{BufRead, BufReader};
        let env: Vec<(&str, &std::ffi::OsStr)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        let (mut child, addr, _) = spawn_quickstart_with(socket, settings, &env);
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        (child, addr, stderr)
    }

    /// Kills the quickstart and starts it again, with the same socket, settings file and
    /// environment (the transient tier is lost, the persistent one read again).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, stderr) = Self::spawn(&self.socket, &self.settings, &self.env);
        (self.child, self.addr, self.stderr) = (child, addr, stderr);
    }

    /// A request to the admin socket with curl.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        curl_unix(&self.socket, method, path, body)
    }

    /// `GET path` on the admin socket, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let res = self.admin("GET", path, None);
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        res.json()
    }

    /// `GET path` over the socket with a plain HTTP/1.0 exchange: fast enough to poll.
    pub fn poll(&self, path: &str) -> serde_json::Value {
        let mut conn = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        write!(conn, "GET {path} HTTP/1.0\r\nHost: .\r\n\r\n").unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.0 200"), "{path}: {raw}");
        serde_json::from_str(body).unwrap()
    }

    /// `GET path` on the app, over TCP.
    pub fn app(&self, path: &str) -> Reply {
        http("GET", &format!("http://{}{path}", self.addr), None)
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The first log line so far that contains `needle`.
    pub fn line(&self, needle: &str) -> Option<String> {
        let lines = self.stderr.lock().unwrap();
        lines.iter().find(|l| l.contains(needle)).cloned()
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
