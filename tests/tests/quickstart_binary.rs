//! The real `quickstart` example binary, as a newcomer runs it: its routes, ids and
//! environment variables are a public contract.

mod common;

use common::{signal, wait};

use std::process::{Child, Command};
use std::time::Duration;

struct Quickstart {
    child: Child,
    addr: String,
}

fn start(socket: &std::path::Path) -> Quickstart {
    start_with(socket, &socket.with_extension("settings.json"))
}

fn start_with(socket: &std::path::Path, settings: &std::path::Path) -> Quickstart {
    let (child, addr, [second, third]) = common::spawn_quickstart(socket, settings);
    assert!(
        second.contains(&format!("curl --unix-socket {}", socket.display())),
        "{second}"
    );
    assert_eq!(
        third,
        format!("persistent settings in {}", settings.display())
    );
    Quickstart { child, addr }
}

#[test]
fn quickstart_serves_its_routes_and_the_admin_socket_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let mut qs = start(&socket);
    let app = |path: &str| format!("http://{}{path}", qs.addr);

    assert_eq!(common::http("GET", &app("/"), None).status, 200);
    assert_eq!(
        common::http("GET", &app("/hello/ferris"), None).body,
        "Hello ferris!\n"
    );
    assert_eq!(
        common::http("GET", &app("/slow?ms=10"), None).body,
        "slept 10 ms\n"
    );
    assert_eq!(
        common::http("GET", &app("/block?ms=10"), None).body,
        "blocked 10 ms\n"
    );
    assert_eq!(common::http("GET", &app("/block?ms=x"), None).status, 400);
    assert_eq!(
        common::http("POST", &app("/echo"), Some("round trip")).body,
        "round trip"
    );
    assert_eq!(common::http("GET", &app("/plain"), None).status, 200);
    // The admin APIs are on the socket only, not on the app's port.
    assert_eq!(common::http("GET", &app("/_cat/routes"), None).status, 404);

    let res = common::curl_unix(
        &socket,
        "GET",
        "/_cat/routes?v&h=id,method,path,total&s=id",
        None,
    );
    assert_eq!(
        res.body,
        "id    method path          total\n\
         block GET    /block            2\n\
         echo  POST   /echo             1\n\
         hello GET    /hello/{name}     1\n\
         index GET    /                 1\n\
         plain GET    /plain            1\n\
         slow  GET    /slow             1\n"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A second instance on the same socket refuses to start, and leaves the first alone.
    let second = Command::new(common::quickstart_exe())
        .env("QUICKSTART_ADDR", "127.0.0.1:0")
        .env("UNDERSCORE_SOCKET", &socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by a running process"), "{stderr}");
    assert_eq!(
        common::curl_unix(&socket, "GET", "/_cat/routes/hello?h=id", None).body,
        "hello\n"
    );

    // Ctrl-C: a graceful stop that removes the socket.
    signal(&qs.child, "-INT");
    let status = wait(&mut qs.child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket outlived the quickstart");
}

#[test]
fn a_restart_keeps_persistent_settings_and_drops_transient_ones() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let settings = dir.path().join("settings.json");
    let mut qs = start_with(&socket, &settings);
    let res = common::curl_unix(
        &socket,
        "PUT",
        "/_routes/hello/settings",
        Some(r#"{"persistent": {"preempt.status": 503, "preempt.reason": "Persisted"}}"#),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let res = common::curl_unix(
        &socket,
        "PUT",
        "/_routes/index/settings",
        Some(r#"{"transient": {"preempt.status": 429}}"#),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        common::http("GET", &format!("http://{}/", qs.addr), None).status,
        429
    );
    signal(&qs.child, "-TERM");
    assert!(wait(&mut qs.child, Duration::from_secs(15)).success());
    // The audit log names the caller of each change: uid and pid over the socket.
    let mut log = String::new();
    std::io::Read::read_to_string(qs.child.stderr.as_mut().unwrap(), &mut log).unwrap();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("underscore::audit"))
        .collect();
    assert_eq!(audit.len(), 3, "{log}");
    assert!(
        audit
            .iter()
            .all(|l| l.contains("caller=\"uid=") && l.contains(" pid=")),
        "{log}"
    );
    assert!(
        audit[0].contains("route=hello") && audit[0].contains("tier=\"persistent\""),
        "{log}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("setting=preempt.status") && l.contains("old=null new=503")),
        "{log}"
    );

    let mut qs = start_with(&socket, &settings);
    let res = common::curl_unix(
        &socket,
        "GET",
        "/_routes/hello,index/settings?flat_settings",
        None,
    );
    assert_eq!(
        res.json(),
        serde_json::json!({
            "hello": {"persistent": {"preempt.reason": "Persisted", "preempt.status": 503}, "transient": {}},
            "index": {"persistent": {}, "transient": {}}
        })
    );
    assert_eq!(
        common::http("GET", &format!("http://{}/hello/x", qs.addr), None).status,
        503
    );
    assert_eq!(
        common::http("GET", &format!("http://{}/", qs.addr), None).status,
        200
    );
    signal(&qs.child, "-INT");
    assert!(wait(&mut qs.child, Duration::from_secs(15)).success());
}

#[test]
fn a_corrupt_settings_file_stops_start_up_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let settings = dir.path().join("settings.json");
    let corrupt =
        "{\"format\": \"underscore-settings/1\", \"routes\": {\"hello\": {\"preempt.status\": 42";
    std::fs::write(&settings, corrupt).unwrap();
    let (_, stderr) = common::quickstart_start_fails(&socket, &settings, &[]);
    assert!(
        stderr.contains(&settings.display().to_string()) && stderr.contains("corrupt"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), corrupt);
    assert!(!socket.exists(), "nothing was served");
}

#[test]
fn persistent_settings_survive_sigkill_at_any_instant() {
    // `CRASH_ROUNDS=200` for a longer run.
    let rounds: u32 = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let settings = dir.path().join("settings.json");
    let mut attempted: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut next_status = 200u64;
    for round in 0..rounds {
        // Start-up must load whatever the previous kill left: a corrupt file would stop it.
        let mut qs = start_with(&socket, &settings);
        let now = common::curl_unix(
            &socket,
            "GET",
            "/_routes/hello/settings?flat_settings",
            None,
        )
        .json();
        let held = &now["hello"]["persistent"]["preempt.status"];
        if round > 0 {
            let held = held.as_u64().expect("a persistent state survives");
            assert!(
                attempted.contains(&held),
                "round {round}: {held} was never written"
            );
        }
        // A burst of persistent PUTs, and a SIGKILL in the middle of it.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let burst = {
            let (socket, stop, done) = (socket.clone(), stop.clone(), done.clone());
            let values: Vec<u64> = (0..1000).map(|i| 200 + (next_status + i) % 400).collect();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for status in values {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    sent.push(status);
                    let body = format!(r#"{{"persistent":{{"preempt.status":{status}}}}}"#);
                    let out = Command::new("curl")
                        .args(["-s", "--max-time", "5", "-X", "PUT", "--unix-socket"])
                        .arg(&socket)
                        .args(["-d", &body, "http://./_routes/hello/settings"])
                        .output();
                    if out.map_or(true, |o| !o.status.success()) {
                        break;
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                sent
            })
        };
        // The kill lands within the burst, once it has written at least once (on a loaded
        // machine the first curl can take longer than the delay below).
        common::wait_until("a first persistent PUT", || {
            done.load(std::sync::atomic::Ordering::Relaxed) > 0
        });
        std::thread::sleep(Duration::from_millis(20 + u64::from(round % 7) * 15));
        signal(&qs.child, "-KILL");
        wait(&mut qs.child, Duration::from_secs(10));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sent = burst.join().unwrap();
        next_status += sent.len() as u64;
        attempted.extend(sent);
        // The file is whole: valid JSON in the settings format, whatever instant the kill hit.
        let text = std::fs::read_to_string(&settings).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("round {round}: torn file ({e}): {text}"));
        assert_eq!(doc["format"], "underscore-settings/1");
    }
    // One last start, then a clean stop.
    let mut qs = start_with(&socket, &settings);
    signal(&qs.child, "-INT");
    assert!(wait(&mut qs.child, Duration::from_secs(15)).success());
    println!(
        "survived {rounds} SIGKILLs during bursts of {} persistent PUTs",
        attempted.len()
    );
}

#[test]
fn quickstart_probes_and_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("underscore.sock");
    let down = dir.path().join("upstream-down");
    let (mut child, addr, _) = common::spawn_quickstart_with(
        &socket,
        &dir.path().join("settings.json"),
        &[("QUICKSTART_UPSTREAM_DOWN", down.as_os_str())],
    );
    let app = |path: &str| common::http("GET", &format!("http://{addr}{path}"), None);
    let admin = |method: &str, path: &str| common::curl_unix(&socket, method, path, None);
    common::wait_until("readiness", || app("/readyz").status == 200);
    assert_eq!(app("/livez").body, "live\n");
    assert_eq!(
        admin("GET", "/_cat/health?v&h=check,status,critical&s=check").body,
        "check    status critical\n\
         tmpdir   pass   true\n\
         upstream pass   false\n"
    );
    assert_eq!(admin("GET", "/_health").json()["status"], "green");

    // The upstream goes down: yellow, still ready.
    std::fs::write(&down, b"").unwrap();
    common::wait_until("the upstream check to fail", || {
        admin("GET", "/_health").json()["status"] == "yellow"
    });
    let health = admin("GET", "/_health").json();
    assert_eq!(health["ready"], true);
    let error = health["checks"]["upstream"]["error"].as_str().unwrap();
    assert!(error.contains("upstream-down exists"), "{error}");
    assert_eq!(app("/readyz").status, 200);
    std::fs::remove_file(&down).unwrap();
    common::wait_until("green again", || {
        admin("GET", "/_health").json()["status"] == "green"
    });

    // Out of rotation by hand, and back: audited with the caller.
    assert_eq!(admin("POST", "/_health/_fail").status, 200);
    assert_eq!(app("/readyz").status, 503);
    assert_eq!(admin("POST", "/_health/_ok").status, 200);
    assert_eq!(app("/readyz").status, 200);
    // Probes are never routes (a plain route shows once requested; none was).
    assert_eq!(
        admin("GET", "/_cat/routes?h=id&s=id").body,
        "block\necho\nhello\nindex\nslow\n"
    );

    signal(&child, "-INT");
    assert!(wait(&mut child, Duration::from_secs(15)).success());
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("underscore::audit"))
        .collect();
    assert_eq!(audit.len(), 2, "{log}");
    assert!(
        audit[0].contains("node failed by hand") && audit[0].contains("caller=\"uid="),
        "{log}"
    );
    assert!(audit[1].contains("node put back by hand"), "{log}");
}
