//! The dashboard in a real browser: headless Chromium, driven over WebDriver (the system's
//! `chromium` and `chromedriver`, which `.ci/run` installs), against real quickstart
//! processes behind `underscore ui`, and the `in_app` example's `/_ui`.
//!
//! Without Chromium or chromedriver these tests FAIL, saying what to install: a browser test
//! that passes without a browser would prove nothing.
//!
//! The tests take turns (one Chromium at a time: the machine is small), wait on the page's
//! `data-ready` and `data-round` attributes rather than on sleeps, and check every action's
//! effect with a real HTTP client (curl) against the app.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    build_if_stale, curl_socket, profile_dir, read_stdout, spawn_announcing, Proc, Quickstart,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const UNDERSCORE: &str = env!("CARGO_BIN_EXE_underscore");

/// One browser test at a time (each test has its own thread and runtime: tokio's mutex
/// works across them, and a failed test does not poison it).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---- binaries ------------------------------------------------------------------------------

/// `target/<profile>/`, with what the tests run beside the CLI built there, once: the
/// quickstart and in_app examples, and the bench server (1,000 routes, for the first-render
/// figure), each only when missing or stale.
fn built() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let examples = dir.join("examples");
        build_if_stale(
            &[
                "-p",
                "underscore-examples",
                "--example",
                "quickstart",
                "--example",
                "in_app",
            ],
            &[examples.join("quickstart"), examples.join("in_app")],
            &[],
        );
        build_if_stale(
            &["-p", "underscore-bench", "--bin", "bench-server"],
            &[dir.join("bench-server")],
            &["bench"],
        );
        dir
    })
}

/// `underscore --socket ... ui --listen 127.0.0.1:0`, and the URL it printed.
fn start_ui(sockets: &[&Path]) -> (Proc, String) {
    let mut cmd = Command::new(UNDERSCORE);
    for s in sockets {
        cmd.arg("--socket").arg(s);
    }
    cmd.args(["ui", "--listen", "127.0.0.1:0"])
        .env_remove("UNDERSCORE_UI_TOKEN");
    spawn_announcing(&mut cmd, "dashboard on ")
}

/// `curl` to `url` printing only the status code, giving up after `secs` seconds.
fn curl_status(url: &str, secs: u32) -> Command {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time"])
        .arg(secs.to_string())
        .arg(url);
    curl
}

/// `curl` to the app: the status code.
fn status(url: &str) -> u16 {
    let out = curl_status(url, 10).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// `curl --unix-socket` to an admin API: the JSON body.
fn admin(socket: &Path, path: &str) -> Value {
    let out = curl_socket(socket, path, &[]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{path}: {e}: {out:?}"))
}

/// A slow request (`/slow?ms=60000`) in flight from curl; `wait` gives its status.
fn slow_request(q: &Quickstart) -> Child {
    curl_status(&q.url("/slow?ms=60000"), 60)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: &mut Child) -> Option<u16> {
    child.try_wait().unwrap()?;
    Some(read_stdout(child).parse().unwrap_or(0))
}

// ---- the browser ---------------------------------------------------------------------------

/// The flags that keep Chromium from reaching out to the network (there is none here: it
/// would hang) and from needing a display or a sandbox.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1000",
];

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free port, in its own process group, and a fresh Chromium profile.
struct Browser {
    _driver: Proc,
    port: u16,
    chromium: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Self {
        let missing = "\n\n*** THE DASHBOARD'S BROWSER TESTS CANNOT RUN: {} is missing. ***\n\
                       Install Debian's chromium and chromium-driver \
                       (apt-get install -y chromium chromium-driver; .ci/run does it).\n\n";
        let chromium = which(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("{}", missing.replace("{}", "chromium")));
        let chromedriver = which(&["chromedriver"])
            .unwrap_or_else(|| panic!("{}", missing.replace("{}", "chromedriver")));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Proc {
            child,
            group: true,
            out: None,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _driver: driver,
            port,
            chromium,
            profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn session(&self) -> Client {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", self.profile.path().display()));
        let caps = json!({"goog:chromeOptions": {"binary": self.chromium, "args": args}});
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session starts")
    }
}

/// Evaluates `expr` in the page.
async fn eval(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Waits (20 s at most) until `expr` is true in the page.
async fn wait_for(c: &Client, what: &str, expr: &str) {
    let start = Instant::now();
    while eval(c, expr).await != Value::Bool(true) {
        if start.elapsed() > Duration::from_secs(20) {
            let body = eval(c, "document.body.innerText").await;
            panic!("timed out waiting for {what} ({expr}); the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css` matches `n` elements.
async fn wait_count(c: &Client, css: &str, n: usize) {
    let expr = format!("document.querySelectorAll('{css}').length === {n}");
    wait_for(c, &format!("{n} of {css}"), &expr).await;
}

/// Waits until `css` matches an element.
async fn wait_present(c: &Client, css: &str) {
    wait_for(c, css, &format!("!!document.querySelector('{css}')")).await;
}

/// Waits until the page has refreshed once more after now.
async fn next_round(c: &Client) {
    let now = eval(c, "Number(document.body.dataset.round)").await;
    let now = now.as_f64().unwrap_or(0.0);
    wait_for(
        c,
        "a refresh",
        &format!("Number(document.body.dataset.round) > {now}"),
    )
    .await;
}

async fn open(c: &Client, url: &str) {
    c.goto(url).await.unwrap();
    wait_for(
        c,
        "the page to be ready",
        "document.body.dataset.ready === 'true'",
    )
    .await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Sends `keys` to the element `css`.
async fn type_keys(c: &Client, css: &str, keys: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("keys to {css}: {e}"));
}

/// Types `text` into the confirmation dialog's field `name`, replacing what it held.
async fn fill(c: &Client, name: &str, text: &str) {
    let input = c
        .find(Locator::Css(&format!("#confirm input[name=\"{name}\"]")))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Confirms the open dialog after checking what it says it will do, and waits for the
/// outcome line.
async fn confirm(c: &Client, says: &[&str]) -> String {
    let what = text(c, "#confirm-what").await;
    for s in says {
        assert!(
            what.contains(s),
            "the confirmation should say {s:?}: {what}"
        );
    }
    eval(c, "document.getElementById('message').textContent = ''").await;
    click(c, "#confirm-ok").await;
    wait_for(
        c,
        "the outcome",
        "document.getElementById('message').textContent !== ''",
    )
    .await;
    text(c, "#message").await
}

/// Shows the first task's stack, and waits until it is there.
async fn show_a_stack(c: &Client) {
    click(c, "#tasks tr[data-task] button[data-action=\"stack\"]").await;
    wait_for(
        c,
        "the stack",
        "document.getElementById('stack').textContent.includes(' at ')",
    )
    .await;
}

fn route_button(route: &str, action: &str) -> String {
    format!("tr[data-route=\"{route}\"] button[data-action=\"{action}\"]")
}

// ---- the set-up the browser tests share ----------------------------------------------------

/// What a browser test runs against: its turn (taken first), a quickstart for each name (on
/// `NAME.sock` in a temp dir: the dashboard names a node after its socket), and `underscore ui`
/// over them. Dropped in that order backwards: the UI, the quickstarts, the dir, the turn.
struct Scene {
    /// The dashboard's address, as `underscore ui` printed it.
    url: String,
    _ui: Proc,
    apps: Vec<Quickstart>,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Scene {
    async fn start(names: &[&str]) -> Self {
        let turn = TURN.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let apps: Vec<Quickstart> = names
            .iter()
            .map(|name| Quickstart::start(&dir.path().join(format!("{name}.sock"))))
            .collect();
        let sockets: Vec<&Path> = apps.iter().map(|q| q.socket.as_path()).collect();
        let (ui, url) = start_ui(&sockets);
        Self {
            url,
            _ui: ui,
            apps,
            _dir: dir,
            _turn: turn,
        }
    }
}

/// Chromium (its driver ends with the returned [`Browser`]) with the dashboard at `url` open
/// and ready.
async fn browse(url: &str) -> (Browser, Client) {
    let browser = Browser::start();
    let c = browser.session().await;
    open(&c, url).await;
    (browser, c)
}

// ---- the tests -----------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn routes_appear_and_a_preempt_set_from_the_page_answers_503_until_resumed() {
    let s = Scene::start(&["app"]).await;
    let q = &s.apps[0];
    let (_browser, c) = browse(&s.url).await;
    for route in ["index", "hello", "slow", "echo"] {
        wait_present(&c, &format!("tr[data-route=\"{route}\"]")).await;
    }
    assert_eq!(
        eval(
            &c,
            "document.querySelector('[data-node=\"app\"]').dataset.state"
        )
        .await,
        "ok"
    );
    assert_eq!(status(&q.url("/hello/you")), 200);

    click(&c, &route_button("hello", "preempt")).await;
    fill(&c, "reason", "Down for maintenance").await;
    fill(&c, "retry_after", "30").await;
    let outcome = confirm(&c, &["503", "[hello]", "node app", "Retry-After: 30"]).await;
    assert!(outcome.contains("app: preempt hello: done"), "{outcome}");
    let head = curl_i(&[&q.url("/hello/you")]);
    assert!(
        head.starts_with("HTTP/1.1 503 Down for maintenance"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 30"),
        "{head}"
    );
    next_round(&c).await;
    let badges = text(&c, "tr[data-route=\"hello\"] td.badges").await;
    assert!(badges.contains("preempt 503"), "{badges}");

    // The server's refusal is shown, and nothing changes.
    click(&c, &route_button("hello", "preempt")).await;
    fill(&c, "percent", "150").await;
    let outcome = confirm(&c, &["150% of"]).await;
    assert!(
        outcome.contains("refused (400)") && outcome.contains("preempt.percent"),
        "{outcome}"
    );
    assert_eq!(status(&q.url("/hello/you")), 503);

    click(&c, &route_button("hello", "resume")).await;
    let outcome = confirm(&c, &["[hello]", "node app"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    assert_eq!(status(&q.url("/hello/you")), 200);

    // Log levels: the form sets a target's transient level on the node.
    type_keys(&c, "#logger-target", "quickstart").await;
    eval(
        &c,
        "document.getElementById('logger-level').value = 'debug'",
    )
    .await;
    click(&c, "#logger-form button[type=\"submit\"]").await;
    let outcome = confirm(&c, &["[quickstart]", "debug", "node app"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    assert_eq!(
        admin(&q.socket, "/_logging/settings")["transient"],
        json!({"logger": {"quickstart": "debug"}})
    );
    wait_present(&c, "#loggers tr[data-logger=\"quickstart\"]").await;

    // Keyboard: `/` goes to the filter, which narrows the table.
    type_keys(&c, "body", "/").await;
    assert_eq!(eval(&c, "document.activeElement.id").await, "filter");
    type_keys(&c, "#filter", "hel").await;
    wait_count(&c, "#routes tbody tr", 1).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn stack_cancel_and_interrupt_from_the_page_end_slow_requests() {
    let s = Scene::start(&["app"]).await;
    let mut slow: Vec<Child> = (0..3).map(|_| slow_request(&s.apps[0])).collect();
    let (_browser, c) = browse(&s.url).await;
    wait_count(&c, "#tasks tr[data-task]", 3).await;

    show_a_stack(&c).await;
    let stack = text(&c, "#stack").await;
    assert!(
        stack.contains("quickstart::slow"),
        "the handler's frame: {stack}"
    );
    assert!(stack.contains("quickstart.rs"), "{stack}");

    let task = eval(
        &c,
        "document.querySelector('#tasks tr[data-task]').dataset.task",
    )
    .await;
    let task = task.as_str().unwrap().to_owned();
    click(
        &c,
        &format!("#tasks tr[data-task=\"{task}\"] button[data-action=\"cancel\"]"),
    )
    .await;
    let outcome = confirm(&c, &[&task, "node app", "503"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    let start = Instant::now();
    let ended = loop {
        let ended: Vec<u16> = slow.iter_mut().filter_map(finished).collect();
        if !ended.is_empty() || start.elapsed() > Duration::from_secs(10) {
            break ended;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended, [503], "the cancelled request, and it alone, ends");
    let mut running: Vec<Child> = slow.into_iter().filter(|ch| ch.stdout.is_some()).collect();
    assert_eq!(running.len(), 2);

    click(&c, &route_button("slow", "interrupt")).await;
    let outcome = confirm(&c, &["[slow]", "node app"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    for ch in &mut running {
        let start = Instant::now();
        let code = loop {
            if let Some(code) = finished(ch) {
                break code;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "a slow request still runs"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(code, 503);
    }
    wait_count(&c, "#tasks tr[data-task]", 0).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_that_goes_away_turns_stale_and_comes_back() {
    let mut s = Scene::start(&["a", "b"]).await;
    let (_browser, c) = browse(&s.url).await;
    let state = |n: &str| format!("document.querySelector('[data-node=\"{n}\"]').dataset.state");
    wait_for(
        &c,
        "both nodes up",
        &format!("{} === 'ok' && {} === 'ok'", state("a"), state("b")),
    )
    .await;
    assert_eq!(
        eval(&c, "document.getElementById('updated').dataset.stale").await,
        "false"
    );

    s.apps[1].kill();
    wait_for(&c, "b stale", &format!("{} === 'stale'", state("b"))).await;
    assert_eq!(eval(&c, &state("a")).await, "ok");
    let updated = text(&c, "#updated").await;
    assert!(
        updated.contains("stale") && updated.contains('b'),
        "{updated}"
    );
    let card = text(&c, "[data-node=\"b\"]").await;
    assert!(
        card.contains("stale") && card.contains("no answer for"),
        "{card}"
    );

    let _qb = Quickstart::start(&s.apps[1].socket);
    wait_for(&c, "b back", &format!("{} === 'ok'", state("b"))).await;
    wait_for(
        &c,
        "nothing stale",
        "document.getElementById('updated').dataset.stale === 'false'",
    )
    .await;
    c.close().await.unwrap();
}

/// Serves `page` at every path on `127.0.0.1:0` (another origin than the servers under
/// test), until the process ends.
fn serve_page(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "current_thread")]
async fn a_page_on_another_origin_changes_nothing_and_the_in_app_page_acts_with_its_token() {
    let s = Scene::start(&["app"]).await;
    let ui_base = s.url.trim_end_matches("/_ui").to_owned();
    let mut slow = slow_request(&s.apps[0]);

    // The in_app example with a token, and its dashboard.
    let token = "s3cret-token";
    // `app and admin APIs on http://127.0.0.1:PORT: curl ...`
    let (_in_app, first) = spawn_announcing(
        Command::new(built().join("examples").join("in_app"))
            .env("IN_APP_ADDR", "127.0.0.1:0")
            .env("IN_APP_TOKEN", token),
        "app and admin APIs on ",
    );
    let (app, _) = first
        .split_once(": ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));

    let (_browser, c) = browse(&s.url).await;
    wait_count(&c, "#tasks tr[data-task]", 1).await;

    // Another origin tries every state change a page can send without CORS's consent: a
    // form post and no-cors fetches to the CLI's proxy, and (knowing the token, the worst
    // case) a PUT with the bearer header to the in-app APIs.
    let evil = format!(
        r#"<!doctype html><body><iframe name="sink"></iframe>
<form id="f" method="POST" target="sink" action="{ui_base}/n/0/_routes/slow/interrupt"></form>
<script>
(async () => {{
  const tries = [
    fetch('{ui_base}/n/0/_routes/slow/interrupt', {{method: 'POST', mode: 'no-cors'}}),
    fetch('{ui_base}/n/0/_routes/hello/settings', {{method: 'PUT', headers: {{'Content-Type': 'application/json'}},
      body: JSON.stringify({{transient: {{preempt: {{status: 503}}}}}})}}),
    fetch('{app}/_routes/index/settings', {{method: 'PUT', headers: {{'Authorization': 'Bearer {token}',
      'Content-Type': 'application/json'}}, body: JSON.stringify({{transient: {{preempt: {{status: 503}}}}}})}}),
    fetch('{app}/_routes/index/interrupt', {{method: 'POST', mode: 'no-cors'}}),
  ];
  await Promise.allSettled(tries);
  const sink = document.querySelector('iframe');
  await new Promise((ok) => {{ sink.onload = ok; document.getElementById('f').submit(); setTimeout(ok, 3000); }});
  document.body.dataset.done = 'true';
}})();
</script></body>"#
    );
    let evil_port = serve_page(evil);
    c.goto(&format!("http://127.0.0.1:{evil_port}/"))
        .await
        .unwrap();
    wait_for(
        &c,
        "the other origin's attempts",
        "document.body.dataset.done === 'true'",
    )
    .await;

    assert_eq!(finished(&mut slow), None, "the slow request must still run");
    let stats = admin(
        &s.apps[0].socket,
        "/_cat/routes/slow,hello?format=json&h=id,stats.req.interrupted,preempt",
    );
    assert_eq!(
        stats,
        json!([
            {"id": "hello", "stats.req.interrupted": 0, "preempt": null},
            {"id": "slow", "stats.req.interrupted": 0, "preempt": null}
        ])
    );
    assert_eq!(
        status(&format!("{app}/")),
        200,
        "the in-app index is not preempted"
    );

    // The in-app dashboard, with its token in the fragment, acts from its own origin.
    open(&c, &format!("{app}/_ui#token={token}")).await;
    assert_eq!(
        eval(&c, "location.hash").await,
        "",
        "the token leaves the address bar"
    );
    wait_present(&c, "tr[data-route=\"index\"]").await;
    click(&c, &route_button("index", "preempt")).await;
    let outcome = confirm(&c, &["[index]"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    assert_eq!(status(&format!("{app}/")), 503);
    click(&c, &route_button("index", "resume")).await;
    let outcome = confirm(&c, &["[index]"]).await;
    assert!(outcome.contains("done"), "{outcome}");
    assert_eq!(status(&format!("{app}/")), 200);

    let _ = slow.kill();
    c.close().await.unwrap();
}

/// The first render with 1,000 routes and 1,000 tasks in flight, printed (a figure, not an
/// assertion): the bench server's 1,000 extra routes and 1,000 requests held on `/wait`.
#[tokio::test(flavor = "current_thread")]
async fn first_render_with_1000_routes_and_1000_tasks() {
    let _turn = TURN.lock().await;
    let mut child = Command::new(built().join("bench-server"))
        .args(["underscore", "127.0.0.1:0"])
        .env("BENCH_ROUTES", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let (mut addr, mut socket) = (String::new(), PathBuf::new());
    while addr.is_empty() || socket.as_os_str().is_empty() {
        let line = next();
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = a.trim_start_matches("http://").to_owned();
        } else if let Some(s) = line.strip_prefix("admin socket ") {
            socket = PathBuf::from(s);
        }
    }
    let _server = Proc {
        child,
        group: false,
        out: None,
    };
    let held: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /wait HTTP/1.1\r\nHost: bench\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    while admin(&socket, "/_tasks?size=1")["total"] != 1000 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "1,000 tasks in flight"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_ui, url) = start_ui(&[&socket]);
    let (_browser, c) = browse(&url).await;
    let first = eval(&c, "Number(document.body.dataset.firstRenderMs)").await;
    let routes = eval(&c, "document.getElementById('routes-count').textContent").await;
    let tasks = eval(&c, "document.getElementById('tasks-count').textContent").await;
    println!(
        "dashboard first render: {} ms after navigation start, routes {routes}, tasks {tasks} \
         (headless Chromium, debug build of the servers)",
        first.as_f64().unwrap_or(f64::NAN)
    );
    assert!(routes.as_str().unwrap_or("").contains("1003"), "{routes}");
    assert!(
        tasks.as_str().unwrap_or("").contains("1000 in flight"),
        "{tasks}"
    );
    c.close().await.unwrap();
    drop(held);
    let _ = std::fs::remove_file(&socket);
}

/// `curl -i` with extra arguments: the raw answer.
fn curl_i(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ui_guards_the_token_the_loopback_host_and_the_origin() {
    // Off loopback, a token is required.
    let out = Command::new(UNDERSCORE)
        .args([
            "--socket",
            "/nonexistent/x.sock",
            "ui",
            "--listen",
            "0.0.0.0:0",
        ])
        .env_remove("UNDERSCORE_UI_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a loopback address: give --token"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let q = Quickstart::start(&socket);
    let gone = dir.path().join("gone.sock");

    // Loopback without a token: the Host must be a loopback name (DNS rebinding).
    let (_ui, url) = start_ui(&[&socket, &gone]);
    let base = url.trim_end_matches("/_ui");
    let ok = curl_i(&[&format!("{base}/n/0/_cat/routes/hello?h=id")]);
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("hello\n"),
        "{ok}"
    );
    let rebound = curl_i(&[
        "-H",
        "Host: evil.example",
        &format!("{base}/n/0/_cat/routes"),
    ]);
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("loopback host only"), "{rebound}");
    // A browser's state change from another origin is refused; from its own, it passes.
    let port = base.rsplit(':').next().unwrap();
    let cross = curl_i(&[
        "-X",
        "POST",
        "-H",
        "Origin: http://127.0.0.1:1",
        &format!("{base}/n/0/_routes/slow/interrupt"),
    ]);
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let same = curl_i(&[
        "-X",
        "POST",
        "-H",
        &format!("Origin: http://127.0.0.1:{port}"),
        &format!("{base}/n/0/_routes/slow/interrupt"),
    ]);
    assert!(same.starts_with("HTTP/1.1 200"), "{same}");
    // The node list, and a node that cannot be reached: a 502 that says why.
    let nodes = curl_i(&[&format!("{base}/_ui/nodes")]);
    assert!(
        nodes.contains(r#"{"nodes":[{"name":"app","base":"/n/0"},{"name":"gone","base":"/n/1"}]}"#),
        "{nodes}"
    );
    let down = curl_i(&[&format!("{base}/n/1/_cat/routes")]);
    assert!(down.starts_with("HTTP/1.1 502"), "{down}");
    assert!(
        down.contains("node_unreachable_exception") && down.contains("gone"),
        "{down}"
    );
    // Only the admin APIs are proxied; errors are the server's, as it sent them.
    assert!(curl_i(&[&format!("{base}/n/0/hello/x")]).starts_with("HTTP/1.1 404"));
    let bad = curl_i(&[&format!("{base}/n/0/_cat/routes?nope")]);
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("unrecognized parameter"),
        "{bad}"
    );
    assert!(curl_i(&[base]).starts_with("HTTP/1.1 302"));

    // With a token, every request but the page's load needs it; the printed URL carries it
    // in its fragment.
    let (_ui, url) = spawn_announcing(
        Command::new(UNDERSCORE)
            .arg("--socket")
            .arg(&socket)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .env("UNDERSCORE_UI_TOKEN", "s3cret"),
        "dashboard on ",
    );
    assert!(url.ends_with("/_ui#token=s3cret"), "{url}");
    let base = url.trim_end_matches("/_ui#token=s3cret");
    assert!(curl_i(&[&format!("{base}/_ui")]).starts_with("HTTP/1.1 200"));
    let denied = curl_i(&[&format!("{base}/n/0/_cat/routes")]);
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(curl_i(&[&format!("{base}/_ui/nodes")]).starts_with("HTTP/1.1 401"));
    let allowed = curl_i(&[
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "Host: dashboard.internal",
        &format!("{base}/n/0/_cat/routes"),
    ]);
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    drop(q);
}

/// Writes `docs/dashboard.png` (or the path in `DASHBOARD_SCREENSHOT`) when that variable
/// is set: `docs/screenshot.sh` runs this. Without it, it still renders the same scene and
/// checks it.
#[tokio::test(flavor = "current_thread")]
async fn screenshot() {
    let s = Scene::start(&["app-1", "app-2"]).await;
    let (qa, qb) = (&s.apps[0], &s.apps[1]);
    let _slow: Vec<Proc> = [qa, qa, qb]
        .iter()
        .map(|q| Proc {
            child: slow_request(q),
            group: false,
            out: None,
        })
        .collect();
    let (_browser, c) = browse(&s.url).await;
    // Some traffic over a few refreshes, a preempted share of /hello and a limit on /slow.
    for q in [qa, qb] {
        admin_put(
            &q.socket,
            "/_routes/hello/settings",
            r#"{"transient":{"preempt":{"status":503,"percent":20}}}"#,
        );
    }
    admin_put(
        &qa.socket,
        "/_routes/slow/settings",
        r#"{"transient":{"limits":{"max_in_flight":8,"timeout":"1m"}}}"#,
    );
    for round in 0..8 {
        for i in 0..(20 + round * 5) {
            let q = if i % 3 == 0 { qb } else { qa };
            let _ = status(&q.url(&format!("/hello/n{i}")));
            if i % 4 == 0 {
                let _ = status(&q.url("/"));
            }
        }
        next_round(&c).await;
    }
    show_a_stack(&c).await;
    let badges = text(&c, "tr[data-route=\"hello\"] td.badges").await;
    assert!(badges.contains("preempt 503 20%"), "{badges}");
    if let Some(path) = std::env::var_os("DASHBOARD_SCREENSHOT") {
        eval(&c, "window.scrollTo(0, 0)").await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        println!("wrote {}", Path::new(&path).display());
    }
    c.close().await.unwrap();
}

fn admin_put(socket: &Path, path: &str, body: &str) {
    let out = curl_socket(socket, path, &["-f", "-X", "PUT", "-d", body]);
    assert!(out.status.success(), "{path}: {out:?}");
}
