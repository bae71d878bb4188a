//! Every command of the built `underscore` binary against real quickstart processes: a
//! temp-dir socket each, the app on `127.0.0.1:0`, the app's answers checked with curl.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{curl_socket, read_stdout, Quickstart};

const UNDERSCORE: &str = env!("CARGO_BIN_EXE_underscore");

impl Quickstart {
    /// A request to the app with curl: status line, headers and body, as curl -i prints them.
    fn get(&self, path: &str) -> String {
        curl(&self.url(path))
    }
}

fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "40", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// A request to the admin socket with curl, the body only.
fn admin(socket: &Path, path: &str) -> String {
    String::from_utf8(curl_socket(socket, path, &[]).stdout).unwrap()
}

/// A `PUT` of a JSON body to the admin socket with curl; the answer's body.
fn admin_put(socket: &Path, path: &str, body: &str) -> String {
    let json = ["-X", "PUT", "-H", "content-type: application/json"];
    let out = curl_socket(
        socket,
        path,
        &[&json[..], &["--data-binary", body]].concat(),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A slow request in flight, on its own curl process.
fn slow_request(qs: &Quickstart) -> Child {
    Command::new("curl")
        .args(["-sS", "-i", "--max-time", "40"])
        .arg(format!("http://{}/slow?ms=30000", qs.addr))
        .stdout(Stdio::piped())
        // A test may end with this request in flight: curl's complaint is no news.
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn finish(mut child: Child) -> String {
    let out = read_stdout(&mut child);
    child.wait().unwrap();
    out.replace("\r\n", "\n")
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `underscore top` printing 80x24 frames every 200ms, read a frame at a time; killed on drop.
struct Top {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Top {
    /// Starts `frames` frames of `underscore`, its sockets (flags or environment) already set.
    fn start(underscore: &mut Command, frames: u32) -> Self {
        let frames = frames.to_string();
        let mut child = underscore
            .args(["top", "--frames", &frames, "--interval", "200ms"])
            .args(["--size", "80x24"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next frame's 24 lines.
    fn frame(&mut self) -> String {
        (0..24)
            .map(|_| self.lines.next().unwrap().unwrap() + "\n")
            .collect()
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(UNDERSCORE)
        .args(args)
        .env_remove("UNDERSCORE_SOCKET")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs `underscore --socket SOCKET args..` and expects success.
fn ok(socket: &Path, args: &[&str]) -> String {
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "underscore {args:?} failed ({:?}): {}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// Runs it and expects a failure with this exit status and exactly one `error:` line.
fn fails(args: &[&str], code: i32) -> String {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "underscore {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("Error {"),
        "{err}"
    );
    err
}

fn status_of(reply: &str) -> &str {
    reply.split(' ').nth(1).unwrap_or("")
}

#[test]
fn cat_prints_each_table_exactly_as_the_server_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    qs.get("/hello/you");
    qs.get("/plain");
    let s = &qs.socket;
    for (args, path) in [
        (&["cat", "routes"][..], "/_cat/routes"),
        (&["cat", "routes", "-v"], "/_cat/routes?v"),
        (
            &[
                "cat",
                "routes",
                "-v",
                "-h",
                "id,path,total",
                "-s",
                "total:desc,id",
            ],
            "/_cat/routes?v&h=id,path,total&s=total:desc,id",
        ),
        (
            &["cat", "routes", "hel*", "-h", "*"],
            "/_cat/routes/hel*?h=*",
        ),
        (&["cat", "routes", "--help-columns"], "/_cat/routes?help"),
        (&["cat", "tasks", "-v"], "/_cat/tasks?v"),
        (&["cat", "middlewares", "-v"], "/_cat/middlewares?v"),
        (
            &["cat", "transports", "-v", "-h", "owner,kind,mode"],
            "/_cat/transports?v&h=owner,kind,mode",
        ),
    ] {
        let expected = admin(s, path);
        assert!(
            !expected.is_empty() && !expected.starts_with('{'),
            "{path}: {expected}"
        );
        assert_eq!(ok(s, args), expected, "underscore {args:?}");
    }
    assert!(
        ok(s, &["cat", "routes", "-v", "-h", "id,total", "-s", "id"])
            .starts_with("id    total\nblock     0\necho      0\nhello     1\n")
    );
}

#[test]
fn preempt_resume_and_settings_change_what_the_app_answers() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = &qs.socket;
    let out = ok(
        s,
        &[
            "preempt",
            "hello",
            "--status",
            "503",
            "--reason",
            "Storm ahead",
            "--retry-after",
            "30",
        ],
    );
    assert_eq!(
        out,
        "id    preempt preempt.percent preempt.reason preempt.retry_after\n\
         hello     503             100 Storm ahead                     30\n"
    );
    let reply = qs.get("/hello/you");
    assert!(reply.starts_with("HTTP/1.1 503 Storm ahead\n"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("\nretry-after: 30\n"),
        "{reply}"
    );

    let settings = ok(s, &["settings", "hello"]);
    assert!(settings.starts_with("route key"), "{settings}");
    assert!(
        settings.contains("hello preempt.reason      Storm ahead -          Storm ahead"),
        "{settings}"
    );
    let json = ok(s, &["settings", "hello", "--json"]);
    assert!(json.contains("\"transient\""), "{json}");

    assert_eq!(
        ok(s, &["resume", "hello"]),
        "id    preempt preempt.percent preempt.reason preempt.retry_after\n\
         hello       -               - -                                -\n"
    );
    assert!(qs.get("/hello/you").starts_with("HTTP/1.1 200 OK\n"));

    // A persistent preempt outlives a transient resume, and says so; --persistent ends it.
    ok(s, &["preempt", "hello", "--status", "502", "--persistent"]);
    let out = run(&["--socket", s.to_str().unwrap(), "resume", "hello"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("hello     502"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("resume hello --persistent"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status_of(&qs.get("/hello/you")), "502");
    ok(s, &["resume", "hello", "--persistent"]);
    assert_eq!(status_of(&qs.get("/hello/you")), "200");
    assert!(ok(s, &["settings"]).contains("hello -"));
}

#[test]
fn settings_show_the_operator_tier_where_an_app_has_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("a.sock");
    // A persistent value from before the operator file set the same key.
    let persistent = socket.with_extension("settings.json");
    std::fs::write(
        &persistent,
        r#"{"format":"underscore-settings/1","routes":{"hello":{"preempt.status":429}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&persistent, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.path().join("operator.json");
    std::fs::write(
        &file,
        r#"{"metadata":{"version":1},"routes":{"hello":{"preempt.status":503}}}"#,
    )
    .unwrap();
    let qs = Quickstart::start_with(&socket, &[("UNDERSCORE_OPERATOR_SETTINGS", &file)]);
    let s = &qs.socket;
    admin_put(
        s,
        "/_routes/hello/settings",
        r#"{"transient":{"preempt.reason":"Later"}}"#,
    );
    // The operator's value is the one in effect.
    assert_eq!(
        ok(s, &["settings", "hello"]),
        "route key            operator transient persistent effective\n\
         hello preempt.reason -        Later     -          Later\n\
         hello preempt.status 503      -         429        503\n"
    );
    assert_eq!(status_of(&qs.get("/hello/you")), "503");
}

#[test]
fn preempt_resets_an_earlier_percent_and_shows_the_percent() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = &qs.socket;
    let reply = admin_put(
        s,
        "/_routes/hello/settings",
        r#"{"transient": {"preempt.percent": 10}}"#,
    );
    assert!(reply.contains("\"percent\":10"), "{reply}");
    // No --percent: the earlier 10% is reset, so every request is preempted, as printed.
    let out = ok(s, &["preempt", "hello", "--status", "503"]);
    assert_eq!(
        out,
        "id    preempt preempt.percent preempt.reason preempt.retry_after\n\
         hello     503             100 -                                -\n"
    );
    let statuses: Vec<String> = (0..10)
        .map(|_| status_of(&qs.get("/hello/you")).to_owned())
        .collect();
    assert_eq!(statuses, ["503"; 10], "every request preempted");

    let out = ok(
        s,
        &["preempt", "hello", "--status", "429", "--percent", "50"],
    );
    assert_eq!(
        out,
        "id    preempt preempt.percent preempt.reason preempt.retry_after\n\
         hello     429              50 -                                -\n"
    );
    let preempted = (0..10)
        .filter(|_| status_of(&qs.get("/hello/you")) == "429")
        .count();
    assert_eq!(preempted, 5, "half of every 10 consecutive requests");
    // clap's own usage error: status 2.
    let out = run(&[
        "--socket",
        s.to_str().unwrap(),
        "preempt",
        "hello",
        "--status",
        "503",
        "--percent",
        "101",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--percent"), "{}", stderr(&out));
}

#[test]
fn the_cli_and_the_server_take_the_same_time_values() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = qs.socket.to_str().unwrap();
    for (value, valid) in [
        ("1500ms", true),
        ("1h", true),
        ("2 S", true),
        ("1.5s", false),
        ("2", false),
        ("1M", false),
        ("10sec", false),
    ] {
        let body = format!(r#"{{"transient": {{"limits.timeout": "{value}"}}}}"#);
        let server = admin_put(&qs.socket, "/_routes/slow/settings", &body);
        let cli = run(&[
            "--socket",
            s,
            "--timeout",
            value,
            "cat",
            "routes",
            "-h",
            "id",
        ]);
        let top = run(&["--socket", s, "top", "--frames", "1", "--interval", value]);
        if valid {
            assert!(server.starts_with(r#"{"slow":"#), "{value}: {server}");
            assert!(cli.status.success(), "{value}: {}", stderr(&cli));
            assert!(top.status.success(), "{value}: {}", stderr(&top));
            continue;
        }
        // The server names the setting, the CLI the flag; the reason is the same words.
        let server: serde_json::Value = serde_json::from_str(&server).unwrap();
        let prefix = format!(
            "failed to parse transient setting [limits.timeout] with value [\"{value}\"]: "
        );
        let reason = server["error"]["reason"]
            .as_str()
            .and_then(|r| r.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{value}: {server}"));
        for (out, flag) in [(&cli, "--timeout"), (&top, "--interval")] {
            assert_eq!(out.status.code(), Some(2), "{value} {flag}");
            let err = stderr(out);
            assert!(
                err.contains(&format!("'{value}' for '{flag} <DURATION>': {reason}\n")),
                "{value}: {err} (the server: {reason})"
            );
        }
    }
}

#[test]
fn interrupt_ends_the_routes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let client = slow_request(&qs);
    wait_until("the slow request in flight", || {
        admin(&qs.socket, "/_cat/routes/slow?h=active") == "1\n"
    });
    assert_eq!(
        ok(&qs.socket, &["interrupt", "slow"]),
        "route interrupted\nslow            1\n"
    );
    let reply = finish(client);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.trim_end().ends_with("Request interrupted"), "{reply}");
}

#[test]
fn tasks_stack_and_cancel_act_on_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = &qs.socket;
    let client = slow_request(&qs);
    wait_until("the slow task", || !admin(s, "/_cat/tasks?h=id").is_empty());
    let id = admin(s, "/_cat/tasks?h=id").trim().to_owned();

    let tasks = ok(s, &["tasks"]);
    assert!(tasks.starts_with("id "), "a header: {tasks}");
    assert!(
        tasks.contains(&id) && tasks.contains("/slow?ms=30000"),
        "{tasks}"
    );
    assert_eq!(
        ok(s, &["tasks", "-h", "id,route"]),
        format!("id{} route\n{id} slow\n", " ".repeat(id.len() - 2))
    );

    // The quickstart is built with task tracing (.cargo/config.toml and its taskdump feature).
    let stack = ok(s, &["stack", &id]);
    assert!(
        stack.starts_with(&format!("task {id} (http:slow, GET /slow?ms=30000)")),
        "{stack}"
    );
    assert!(stack.contains("  at "), "{stack}");

    assert_eq!(
        ok(s, &["cancel", &id]),
        format!("cancelled task {id} (http:slow, GET /slow?ms=30000)\n")
    );
    let reply = finish(client);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    let err = fails(&["--socket", s.to_str().unwrap(), "cancel", &id], 1);
    assert_eq!(
        err,
        format!("error: task [{id}] isn't running (status 404)\n")
    );
}

#[test]
fn errors_are_one_clear_line_and_a_non_zero_status() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let err = fails(&["--socket", missing.to_str().unwrap(), "cat", "routes"], 3);
    assert!(
        err.contains(&format!("no admin socket at {}", missing.display())),
        "{err}"
    );

    // A stale socket: the file is there, nobody listens.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = fails(&["--socket", stale.to_str().unwrap(), "tasks"], 3);
    assert!(err.contains("nothing is listening on"), "{err}");

    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = qs.socket.to_str().unwrap();
    let err = fails(&["--socket", s, "cat", "routes", "nope"], 1);
    assert_eq!(err, "error: no such route [nope] (status 404)\n");
    let err = fails(&["--socket", s, "interrupt", "nope"], 1);
    assert_eq!(err, "error: no such route [nope] (status 404)\n");
    let err = fails(&["--socket", s, "cat", "routes", "-h", "bogus"], 1);
    assert!(
        err.contains("bogus") && err.ends_with("(status 400)\n"),
        "{err}"
    );
    let err = fails(
        &[
            "--socket", s, "preempt", "hello", "--status", "503", "--reason", "bad\u{7}",
        ],
        1,
    );
    assert!(err.contains("preempt.reason"), "{err}");
    fails(&["--socket", s, "cat", "middlewares", "x"], 2);
    // clap's own usage errors: status 2, no panic.
    let out = run(&["preempt", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--status"), "{}", stderr(&out));

    let err = permission_denied(&qs.socket);
    if let Some(err) = err {
        assert!(err.starts_with("error: permission denied on"), "{err}");
    }
}

/// `underscore` as a user who may not use the socket: the current user when it is not root
/// (with the socket's mode 000), else `nobody` through setpriv. `None` when neither can be
/// arranged (root without setpriv), which the test then says.
fn permission_denied(socket: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let out = if !is_root {
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = run(&["--socket", socket.to_str().unwrap(), "cat", "routes"]);
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        out
    } else {
        // root bypasses permission checks: ask as nobody (the temp dir is 0700, the socket 0600).
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                UNDERSCORE,
                "--socket",
            ])
            .arg(socket)
            .args(["cat", "routes"])
            .output();
        match out {
            Ok(out) if stderr(&out).contains("setpriv:") || out.status.code().is_none() => {
                eprintln!("permission-denied case not checked: setpriv could not drop to nobody");
                return None;
            }
            Ok(out) => out,
            Err(_) => {
                eprintln!("permission-denied case not checked: running as root without setpriv");
                return None;
            }
        }
    };
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    Some(stderr(&out))
}

#[test]
fn several_sockets_merge_into_one_table_with_a_node_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = Quickstart::start(&dir.path().join("app-1.sock"));
    let b = Quickstart::start(&dir.path().join("app-2.sock"));
    a.get("/hello/x");
    a.get("/hello/y");
    b.get("/hello/z");
    b.get("/");
    let (sa, sb) = (
        a.socket.to_str().unwrap().to_owned(),
        b.socket.to_str().unwrap().to_owned(),
    );
    let (sa, sb) = (sa.as_str(), sb.as_str());

    let out = run(&[
        "--socket",
        sa,
        "cat",
        "routes",
        "-v",
        "-h",
        "id,total",
        "-s",
        "total:desc,id",
        "--socket",
        sb,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "node  id    total\n\
         app-1 hello     2\n\
         app-2 hello     1\n\
         app-2 index     1\n\
         app-1 block     0\n\
         app-2 block     0\n\
         app-1 echo      0\n\
         app-2 echo      0\n\
         app-1 index     0\n\
         app-1 slow      0\n\
         app-2 slow      0\n"
    );
    // The same through a glob in UNDERSCORE_SOCKET; a sort column need not be shown.
    let glob = Command::new(UNDERSCORE)
        .args(["cat", "routes", "-h", "id", "-s", "total:desc,id"])
        .env("UNDERSCORE_SOCKET", dir.path().join("app-*.sock"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&glob),
        "app-1 hello\napp-2 hello\napp-2 index\napp-1 block\napp-2 block\napp-1 echo\napp-2 echo\napp-1 index\napp-1 slow\napp-2 slow\n",
        "{}",
        stderr(&glob)
    );

    // A sort key may be an alias of a displayed column.
    let alias = run(&[
        "--socket",
        sa,
        "--socket",
        sb,
        "cat",
        "routes",
        "-h",
        "id,stats.req.total",
        "-s",
        "total:desc,i",
    ]);
    assert_eq!(
        stdout(&alias).lines().take(3).collect::<Vec<_>>(),
        ["app-1 hello 2", "app-2 hello 1", "app-2 index 1"],
        "{}",
        stderr(&alias)
    );

    // Changes fan out to every replica.
    let both = ["--socket", sa, "--socket", sb];
    let out = run(&[&both[..], &["preempt", "hello", "--status", "503"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "node  id    preempt preempt.percent preempt.reason preempt.retry_after\n\
         app-1 hello     503             100 -                                -\n\
         app-2 hello     503             100 -                                -\n"
    );
    assert_eq!(status_of(&a.get("/hello/x")), "503");
    assert_eq!(status_of(&b.get("/hello/x")), "503");
    assert!(run(&[&both[..], &["resume", "hello"]].concat())
        .status
        .success());
    assert_eq!(status_of(&b.get("/hello/x")), "200");

    // Replicas on one host can hold the same task id: the node prefix says which.
    let (ca, cb) = (slow_request(&a), slow_request(&b));
    wait_until("both slow tasks", || {
        !admin(&a.socket, "/_cat/tasks?h=id").is_empty()
            && !admin(&b.socket, "/_cat/tasks?h=id").is_empty()
    });
    let tasks = stdout(&run(&[&both[..], &["tasks", "-h", "id,route"]].concat()));
    assert!(tasks.starts_with("node  id"), "{tasks}");
    assert_eq!(
        tasks.lines().filter(|l| l.ends_with(" slow")).count(),
        2,
        "{tasks}"
    );
    let id_b = admin(&b.socket, "/_cat/tasks?h=id").trim().to_owned();
    if admin(&a.socket, "/_cat/tasks?h=id").trim() == id_b {
        let err = stderr(&run(&[&both[..], &["cancel", &id_b]].concat()));
        assert!(err.contains("runs on several nodes"), "{err}");
    }
    let out = run(&[&both[..], &["cancel", &format!("app-2/{id_b}")]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(finish(cb).starts_with("HTTP/1.1 503"));
    assert!(
        admin(&a.socket, "/_cat/tasks?h=route").contains("slow"),
        "app-1's task is left alone"
    );
    let out = run(&[&both[..], &["interrupt", "slow"]].concat());
    assert_eq!(
        stdout(&out),
        "node  route interrupted\napp-1 slow            1\napp-2 slow            0\n"
    );
    assert!(finish(ca).starts_with("HTTP/1.1 503"));

    // One replica down: the others still answer, the failure is one line, the status 3.
    drop(b);
    let out = run(&[&both[..], &["cat", "routes", "-h", "id", "-s", "id"]].concat());
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stdout(&out),
        "app-1 block\napp-1 echo\napp-1 hello\napp-1 index\napp-1 slow\n"
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: app-2: "), "{err}");
}

#[test]
fn top_prints_frames_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let loader = {
        let url = format!("http://{}/hello/load", qs.addr);
        std::thread::spawn(move || {
            for _ in 0..20 {
                curl(&url);
            }
        })
    };
    let slow = slow_request(&qs);
    wait_until("the slow task", || {
        !admin(&qs.socket, "/_cat/tasks?h=id").is_empty()
    });
    let out = ok(
        &qs.socket,
        &[
            "top",
            "--frames",
            "2",
            "--interval",
            "500ms",
            "--size",
            "80x24",
        ],
    );
    loader.join().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 48, "two frames of 24 lines:\n{out}");
    let last = lines[24..].join("\n");
    assert!(last.starts_with(" underscore top "), "{last}");
    for needle in [
        "ROUTE",
        "REQ/S",
        "P99",
        "PREEMPT",
        "hello",
        "slow",
        "http:slow",
        "GET /slow?ms=30000",
    ] {
        assert!(last.contains(needle), "{needle} in\n{last}");
    }
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{out}");
    // The first frame has no rates yet, the second one does.
    let rate = |frame: &[&str]| {
        frame
            .iter()
            .find(|l| l.starts_with("slow "))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(rate(&lines[..24]), "-");
    assert!(rate(&lines[24..]).parse::<f64>().is_ok(), "{last}");
    drop(slow);

    let out = run(&["--socket", qs.socket.to_str().unwrap(), "top"]);
    assert_eq!(out.status.code(), Some(2), "no terminal, no --frames");
    assert!(stderr(&out).contains("--frames"));
}

#[test]
fn top_shows_disconnected_then_reconnects_when_the_server_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("a.sock");
    let mut top = Top::start(Command::new(UNDERSCORE).arg("--socket").arg(&socket), 30);
    let first = top.frame();
    assert!(
        first.contains("a: disconnected, retrying every 200ms: no admin socket at"),
        "{first}"
    );
    let qs = Quickstart::start(&socket);
    qs.get("/hello/back");
    let seen = (1..30).any(|_| {
        let f = top.frame();
        f.contains("hello") && !f.contains("disconnected")
    });
    assert!(seen, "top reconnected");
}

#[test]
fn top_follows_a_server_that_goes_away_mid_run_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("a.sock");
    let qs = Quickstart::start(&socket);
    qs.get("/hello/before");
    let mut top = Top::start(Command::new(UNDERSCORE).arg("--socket").arg(&socket), 150);
    let serving =
        |f: &str| f.lines().any(|l| l.starts_with("hello ")) && !f.contains("disconnected");
    assert!(
        (0..50).any(|_| serving(&top.frame())),
        "top shows the server"
    );
    // Killed, as a crash would: its socket file stays behind, with nobody listening.
    drop(qs);
    let gone = (0..50).find_map(|_| {
        let f = top.frame();
        f.contains("a: disconnected, retrying every 200ms: ")
            .then_some(f)
    });
    let gone = gone.expect("top shows the server gone");
    assert!(!gone.lines().any(|l| l.starts_with("hello ")), "{gone}");
    let qs = Quickstart::start(&socket);
    qs.get("/hello/after");
    assert!(
        (0..50).any(|_| serving(&top.frame())),
        "top reconnected to the restarted server"
    );
}

#[test]
fn every_command_has_help_and_shells_get_completions() {
    for cmd in [
        "cat",
        "top",
        "preempt",
        "resume",
        "settings",
        "interrupt",
        "tasks",
        "cancel",
        "stack",
        "health",
        "fail",
        "ok",
        "drain",
        "completions",
    ] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            stdout(&out).contains("Usage: underscore"),
            "{cmd}: {}",
            stdout(&out)
        );
    }
    assert!(stdout(&run(&["--help"])).contains("Exit status"));
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success());
        assert!(stdout(&out).contains("preempt"), "{shell}");
    }
}

#[test]
fn top_with_a_glob_picks_up_a_replica_started_later() {
    let dir = tempfile::tempdir().unwrap();
    let _a = Quickstart::start(&dir.path().join("app-1.sock"));
    let mut top = Top::start(
        Command::new(UNDERSCORE).env("UNDERSCORE_SOCKET", dir.path().join("app-*.sock")),
        40,
    );
    let first = top.frame();
    assert!(first.contains("  node app-1  "), "{first}");
    let _b = Quickstart::start(&dir.path().join("app-2.sock"));
    let seen = (1..40).any(|_| {
        let f = top.frame();
        f.contains("  2 nodes  ") && f.lines().any(|l| l.starts_with("app-2 "))
    });
    assert!(seen, "the second replica joined the view");
}

#[test]
fn health_fail_ok_and_drain_take_a_node_out_of_rotation_and_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = qs.socket.clone();
    wait_until("readiness", || status_of(&qs.get("/readyz")) == "200");
    let out = ok(&s, &["health"]);
    assert!(
        out.starts_with(
            "status ready draining failed_by_hand phase in_flight\n\
             green  true  false    false          -             -\n\n\
             check    status critical took_ms error\n"
        ),
        "{out}"
    );
    assert!(out.contains("\ntmpdir   pass   true "), "{out}");
    assert_eq!(
        ok(&s, &["health", "-h", "check,status", "-s", "check"])
            .lines()
            .last(),
        Some("upstream pass")
    );

    let out = ok(&s, &["fail"]);
    assert!(out.contains("\ngreen  false false    true "), "{out}");
    assert_eq!(status_of(&qs.get("/readyz")), "503");
    ok(&s, &["ok"]);
    assert_eq!(status_of(&qs.get("/readyz")), "200");

    let slow = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "40"])
        .arg(format!("http://{}/slow?ms=1500", qs.addr))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the slow request in flight", || {
        admin(&s, "/_cat/tasks?h=action").contains("http:slow")
    });
    let out = ok(
        &s,
        &["drain", "--delay", "500ms", "--timeout", "10s", "--wait"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("drain started: task ")
            && lines[0].ends_with(", delay 500ms, timeout 10s"),
        "{out}"
    );
    assert!(lines[1].starts_with("phase delay, 1 in flight"), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("phase waiting")),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"stopped"), "{out}");
    // The slow request was answered, on a connection the server closed.
    let answer = finish(slow);
    assert!(answer.starts_with("HTTP/1.1 200 OK\n"), "{answer}");
    assert!(answer.contains("\nconnection: close\n"), "{answer}");
    assert!(qs.proc.child.wait().unwrap().success());
    // Nothing left to ask.
    fails(&["--socket", s.to_str().unwrap(), "health"], 3);
}

/// A request to the app with one header, with curl.
fn get_with(qs: &Quickstart, path: &str, header: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "40", "-H", header])
        .arg(format!("http://{}{path}", qs.addr))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn workers_show_every_nodes_workers_with_a_node_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = Quickstart::start(&dir.path().join("app-1.sock"));
    let b = Quickstart::start(&dir.path().join("app-2.sock"));
    // Poll timing is on in the quickstart: 60 ms in one poll is a blocking poll.
    assert!(a.get("/block?ms=60").contains("200 OK"));
    let h = "worker,blocking_polls";
    let one = ok(&a.socket, &["workers", "-h", h]);
    assert_eq!(one, admin(&a.socket, &format!("/_cat/workers?v&h={h}")));
    assert!(one.starts_with("worker blocking_polls\n"), "{one}");

    let count = |qs: &Quickstart| {
        admin(&qs.socket, "/_cat/workers?format=json")
            .matches("\"worker\"")
            .count()
    };
    let (na, nb) = (count(&a), count(&b));
    let out = run(&[
        "--socket",
        a.socket.to_str().unwrap(),
        "--socket",
        b.socket.to_str().unwrap(),
        "workers",
        "-h",
        h,
        "-s",
        "worker",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stdout(&out);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["node", "worker", "blocking_polls"],
        "{out}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), na + nb, "{out}");
    let blocking = |node: &str| -> u64 {
        rows.iter()
            .filter(|r| r[0] == node)
            .map(|r| r[2].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(rows.iter().filter(|r| r[0] == "app-1").count(), na, "{out}");
    assert_eq!(blocking("app-1"), 1, "{out}");
    assert_eq!(blocking("app-2"), 0, "{out}");
}

#[test]
fn slowlog_prints_the_table_and_follow_prints_each_new_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let qs = Quickstart::start(&dir.path().join("a.sock"));
    let s = &qs.socket;
    let set = admin_put(
        s,
        "/_routes/slow/settings",
        r#"{"transient": {"slowlog.threshold.info": "50ms"}}"#,
    );
    assert!(set.contains("50ms"), "{set}");
    assert!(get_with(&qs, "/slow?ms=80", "X-Opaque-Id: old-1").contains("slept 80 ms"));
    let h = "level,route,status,method,path,opaque_id";
    let table = ok(s, &["slowlog", "-h", h]);
    assert_eq!(table, admin(s, &format!("/_cat/slowlog?v&h={h}")));
    assert_eq!(
        table,
        "level route status method path  opaque_id\ninfo  slow  200    GET    /slow old-1\n"
    );

    let mut follow = Command::new(UNDERSCORE)
        .args([
            "--socket",
            s.to_str().unwrap(),
            "slowlog",
            "--follow",
            "-h",
            h,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a line");
    assert_eq!(next(), "level route status method path  opaque_id");
    assert_eq!(next(), "info  slow  200    GET    /slow old-1");
    assert!(get_with(&qs, "/slow?ms=70", "X-Opaque-Id: new-1").contains("slept 70"));
    assert_eq!(next(), "info  slow  200    GET    /slow new-1");
    assert!(get_with(&qs, "/slow?ms=60", "X-Opaque-Id: new-2").contains("slept 60"));
    assert_eq!(next(), "info  slow  200    GET    /slow new-2");
    // Polls go on every second: nothing is printed twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(rx.try_recv().ok(), None);
    let _ = follow.kill();
    let _ = follow.wait();

    // Sorted otherwise than by `seq`: every entry is still printed, once.
    let mut sorted = Command::new(UNDERSCORE)
        .args(["--socket", s.to_str().unwrap(), "slowlog", "--follow"])
        .args(["-h", "opaque_id", "-s", "took:asc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sorted.stdout.take().unwrap()).lines();
    let first: Vec<String> = (0..4).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(first, ["opaque_id", "new-2", "new-1", "old-1"]);
    let _ = sorted.kill();
    let _ = sorted.wait();
}
