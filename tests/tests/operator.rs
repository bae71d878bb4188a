//! Operator settings, end to end: the real quickstart binary with
//! `UNDERSCORE_OPERATOR_SETTINGS` pointing into a directory laid out and updated the way the
//! kubelet updates a ConfigMap volume (a new timestamped directory, the `..data` link swapped
//! by one rename, `settings.json` a link through it), and the admin APIs over the UNIX socket.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Quickstart};
use serde_json::{json, Value};

/// A directory that a ConfigMap volume would be: `settings.json -> ..data/settings.json`,
/// `..data -> ..<timestamp>`, changed only as the kubelet's atomic writer changes it.
struct ConfigMap {
    dir: tempfile::TempDir,
    generation: u32,
}

impl ConfigMap {
    fn new(settings: &str) -> Self {
        let mut map = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        map.update(settings);
        std::os::unix::fs::symlink("..data/settings.json", map.path()).unwrap();
        map
    }

    /// The file the app is given.
    fn path(&self) -> PathBuf {
        self.dir.path().join("settings.json")
    }

    /// What the kubelet does: the new files, complete, in a new directory; a temporary link
    /// to it, renamed over `..data` (the one atomic step); the old directory removed.
    fn update(&mut self, settings: &str) {
        let root = self.dir.path();
        self.generation += 1;
        let name = format!("..2026_12_04_14_00_00.{:09}", self.generation);
        std::fs::create_dir(root.join(&name)).unwrap();
        std::fs::write(root.join(&name).join("settings.json"), settings).unwrap();
        let old = std::fs::read_link(root.join("..data")).ok();
        std::os::unix::fs::symlink(&name, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(root.join(old)).unwrap();
        }
    }
}

/// An operator settings file.
fn file(version: u64, routes: Value, logging: Value) -> String {
    json!({"metadata": {"version": version}, "routes": routes, "logging": logging}).to_string()
}

/// Polls `GET /_operator/settings` until it shows `version`; how long that took.
fn until_version(qs: &Quickstart, version: u64) -> Duration {
    let start = Instant::now();
    loop {
        if qs.poll("/_operator/settings")["version"] == version {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "version {version} never applied:\n{}",
            qs.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_configmap_update_applies_within_a_second_and_is_audited() {
    let mut map = ConfigMap::new(&file(
        1,
        json!({"hello": {"preempt.status": 503}}),
        json!({}),
    ));
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", map.path().as_os_str())]);
    let op = qs.get("/_operator/settings");
    assert_eq!(op["file"], map.path().display().to_string());
    assert_eq!(
        (op["status"].clone(), op["version"].clone()),
        (json!("ok"), json!(1))
    );
    assert_eq!(qs.app("/hello/x").status, 503);

    map.update(&file(
        2,
        json!({"hello": {"preempt": {"status": 429, "text": "the fleet says wait\n"}}}),
        json!({"logger.quickstart": "debug"}),
    ));
    let took = until_version(&qs, 2);
    eprintln!("applied {took:?} after the swap");
    assert!(took < Duration::from_secs(1), "applied after {took:?}");
    // The swap removed the directory of the first file: a watch on that file would be gone.
    map.update(&file(
        3,
        json!({"hello": {"preempt": {"status": 429, "text": "the fleet says wait\n"}}}),
        json!({"logger.quickstart": "debug"}),
    ));
    let took = until_version(&qs, 3);
    assert!(took < Duration::from_secs(1), "applied after {took:?}");
    let res = qs.app("/hello/x");
    assert_eq!(
        (res.status, res.body.as_str()),
        (429, "the fleet says wait\n")
    );
    // GET settings show the tier, nested or flat, with the defaults too.
    let settings = qs.get("/_routes/hello/settings?include_defaults");
    assert_eq!(settings["hello"]["operator"]["preempt"]["status"], 429);
    assert_eq!(settings["hello"]["defaults"]["limits"]["status"], 503);
    let flat = qs.get("/_routes/hello/settings?flat_settings");
    assert_eq!(
        flat["hello"]["operator"]["preempt.text"],
        "the fleet says wait\n"
    );
    assert_eq!(
        qs.get("/_logging/settings")["operator"]["logger"]["quickstart"],
        "debug"
    );
    // `_cat/routes` says where each setting comes from.
    let tiers = qs
        .admin("GET", "/_cat/routes/hello?h=id,settings.tiers", None)
        .body;
    assert_eq!(
        tiers,
        "hello preempt.status:operator,preempt.text:operator\n"
    );
    let loggers = qs
        .admin("GET", "/_cat/loggers?h=target,level,tier", None)
        .body;
    assert!(
        loggers
            .lines()
            .any(|l| l.split_whitespace().eq(["quickstart", "debug", "operator"])),
        "{loggers}"
    );
    // Every change is audited, as an API change is, by the operator file.
    wait_until("the audit lines", || {
        qs.count("caller=\"operator file\"") >= 4
    });
    let log = qs.log();
    assert!(
        log.contains("route=hello tier=\"operator\" setting=preempt.status old=503 new=429"),
        "{log}"
    );
    assert!(
        log.contains("setting=logger.quickstart old=null new=\"debug\""),
        "{log}"
    );
}

#[test]
fn a_hundred_swaps_never_show_a_half_written_or_mixed_state() {
    const SWAPS: u64 = 100;
    const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
    let routes = |i: u64| {
        json!({
            "_all": {"limits.retry_after": i},
            "hello": {"preempt.status": 400 + i, "preempt.retry_after": i},
        })
    };
    let logging = |i: u64| json!({"logger.fleet": LEVELS[(i % 5) as usize]});
    let mut map = ConfigMap::new(&file(1, routes(1), logging(1)));
    let qs = Arc::new(Quickstart::start(&[(
        "UNDERSCORE_OPERATOR_SETTINGS",
        map.path().as_os_str(),
    )]));

    // Read while the files change: every state seen must be one file's, whole.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (qs, done) = (qs.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                let op = qs.poll("/_operator/settings?flat_settings");
                let v = op["version"].as_u64().unwrap();
                assert_eq!(op["status"], "ok", "{op}");
                assert_eq!(op["routes"], routes(v), "version {v}: {op}");
                assert_eq!(op["logging"], logging(v), "version {v}: {op}");
                // What a route is given, read separately, is whole too.
                let hello = &qs.poll("/_routes/hello/settings?flat_settings")["hello"]["operator"];
                let i = hello["preempt.retry_after"].as_u64().unwrap();
                assert_eq!(
                    *hello,
                    json!({"limits.retry_after": i, "preempt.retry_after": i, "preempt.status": 400 + i}),
                );
                seen.insert(v);
            }
            seen
        })
    };
    for i in 2..=SWAPS {
        map.update(&file(i, routes(i), logging(i)));
        std::thread::sleep(Duration::from_millis(3));
    }
    let took = until_version(&qs, SWAPS);
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(
        took < Duration::from_secs(1),
        "the last swap applied after {took:?}"
    );
    assert!(seen.len() > 2, "the reader saw only {seen:?}");
    eprintln!(
        "100 swaps: the reader saw {} states; the last applied {took:?} after its swap",
        seen.len()
    );
    assert_eq!(qs.app("/hello/x").status, 400 + SWAPS as u16);
    assert_eq!(
        qs.count("operator settings file not applied"),
        0,
        "{}",
        qs.log()
    );
}

#[test]
fn a_bad_file_keeps_the_previous_state_and_says_why() {
    let good = file(1, json!({"hello": {"preempt.status": 503}}), json!({}));
    let mut map = ConfigMap::new(&good);
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", map.path().as_os_str())]);
    map.update(
        "{\"metadata\": {\"version\": 2},\n  \"routes\": {\"hello\": {\"preempt.status\": 429,}}}",
    );
    wait_until("the error", || {
        qs.poll("/_operator/settings")["status"] == "error"
    });
    let op = qs.get("/_operator/settings");
    assert_eq!(op["version"], 1);
    assert_eq!(
        op["last_error"]["reason"],
        "not valid JSON: trailing comma at line 2 column 46"
    );
    assert!(op["last_error"]["at_in_millis"].as_u64().unwrap() > 0);
    assert_eq!(qs.app("/hello/x").status, 503, "the last good state stays");
    // The node turns yellow (a non-critical check), and stays ready.
    wait_until("the operator_settings check to fail", || {
        qs.poll("/_health")["checks"]["operator_settings"]["status"] == "fail"
    });
    let health = qs.get("/_health");
    assert_eq!(health["status"], "yellow", "{health}");
    assert_eq!(health["ready"], true, "{health}");
    assert_eq!(health["checks"]["operator_settings"]["critical"], false);
    assert!(
        health["checks"]["operator_settings"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("trailing comma")),
        "{health}"
    );
    // An unknown key, a bad value: the same, nothing of the file applied.
    for (bad, why) in [
        (
            file(
                3,
                json!({"hello": {"preempt.status": 429}, "echo": {"limits.nope": 1}}),
                json!({}),
            ),
            "routes [echo]: unknown setting [limits.nope]",
        ),
        (
            file(
                4,
                json!({"hello": {"preempt.status": 429}}),
                json!({"logger.x": "loud"}),
            ),
            "logging: setting [logger.x] = \"loud\": must be one of",
        ),
    ] {
        map.update(&bad);
        wait_until(why, || {
            qs.poll("/_operator/settings")["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(why))
        });
        assert_eq!(qs.app("/hello/x").status, 503);
        assert_eq!(
            qs.get("/_routes/hello/settings")["hello"]["operator"]["preempt"]["status"],
            503
        );
    }
    assert!(
        qs.log().contains("operator settings file not applied"),
        "{}",
        qs.log()
    );
    // Fixed: applied, the error gone.
    map.update(&file(
        5,
        json!({"hello": {"preempt.status": 429}}),
        json!({}),
    ));
    until_version(&qs, 5);
    assert_eq!(qs.get("/_operator/settings")["last_error"], Value::Null);
    wait_until("the operator_settings check to pass", || {
        qs.poll("/_health")["checks"]["operator_settings"]["status"] == "pass"
    });
    assert_eq!(qs.app("/hello/x").status, 429);
}

#[test]
fn a_put_on_a_reserved_key_is_refused_until_the_file_releases_it() {
    let mut map = ConfigMap::new(&file(
        1,
        json!({"hel*": {"limits": {"timeout": "5s"}}}),
        json!({"logger.quickstart": "warn"}),
    ));
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", map.path().as_os_str())]);
    let file_name = map.path().display().to_string();
    let before = qs.get("/_routes/settings");
    for (path, body, reason) in [
        (
            "/_routes/hello/settings",
            r#"{"transient":{"limits.timeout":"1s","preempt.status":503}}"#,
            format!(
                "transient setting [limits.timeout] of route [hello] is reserved by the operator \
                 settings file [{file_name}]: change it in that file, or remove it from the file \
                 to release it"
            ),
        ),
        (
            "/_routes/_all/settings",
            r#"{"persistent":{"limits.*":null}}"#,
            "persistent setting [limits.*] would reset [limits.timeout] of route [hello], which \
             is reserved by the operator settings file"
                .to_owned(),
        ),
        (
            "/_logging/settings",
            r#"{"persistent":{"logger":{"quickstart":"debug"}}}"#,
            format!("persistent setting [logger.quickstart] is reserved by the operator settings file [{file_name}]"),
        ),
    ] {
        let res = qs.admin("PUT", path, Some(body));
        assert_eq!(res.status, 400, "{}", res.body);
        let json = res.json();
        assert_eq!(json["error"]["type"], "illegal_argument_exception");
        let got = json["error"]["reason"].as_str().unwrap();
        assert!(got.starts_with(&reason), "{got}");
    }
    assert_eq!(qs.get("/_routes/settings"), before, "nothing changed");
    // Other keys and routes are free.
    let ok = qs.admin(
        "PUT",
        "/_routes/hello/settings",
        Some(r#"{"transient":{"limits.max_in_flight":2}}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Removing the key from the file releases it.
    map.update(&file(2, json!({}), json!({})));
    until_version(&qs, 2);
    let ok = qs.admin(
        "PUT",
        "/_routes/hello/settings",
        Some(r#"{"transient":{"limits.timeout":"1s"}}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = qs.admin(
        "PUT",
        "/_logging/settings",
        Some(r#"{"transient":{"logger.quickstart":"debug"}}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn versions_only_move_forward() {
    let mut map = ConfigMap::new(&file(
        5,
        json!({"hello": {"preempt.status": 503}}),
        json!({}),
    ));
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", map.path().as_os_str())]);
    // Lower: ignored, with a warning, and shown.
    map.update(&file(
        4,
        json!({"hello": {"preempt.status": 429}}),
        json!({}),
    ));
    wait_until("the lower version's error", || {
        qs.poll("/_operator/settings")["status"] == "error"
    });
    let op = qs.get("/_operator/settings");
    assert_eq!(op["version"], 5);
    assert_eq!(
        op["last_error"]["reason"],
        "[metadata.version] 4 is lower than the version in effect, 5: the file was ignored"
    );
    assert_eq!(qs.app("/hello/x").status, 503);
    assert!(
        qs.log().contains("operator settings file ignored"),
        "{}",
        qs.log()
    );
    // The same version with other settings: applied, with a warning.
    map.update(&file(
        5,
        json!({"hello": {"preempt.status": 429}}),
        json!({}),
    ));
    wait_until("the same version's new settings", || {
        qs.app("/hello/x").status == 429
    });
    assert_eq!(qs.get("/_operator/settings")["status"], "ok");
    wait_until("the warning", || {
        qs.count("operator settings file changed without a higher [metadata.version]") == 1
    });
    // Higher: applied.
    map.update(&file(
        6,
        json!({"hello": {"preempt.status": 418}}),
        json!({}),
    ));
    until_version(&qs, 6);
    assert_eq!(qs.app("/hello/x").status, 418);
}

#[test]
fn a_plain_file_replaced_by_a_rename_applies_and_an_unchanged_one_is_not_read_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    // Padded, so that each read shows in the process's I/O counters.
    let padded = |version: u64| {
        let text = file(
            version,
            json!({"hello": {"preempt.status": 503}}),
            json!({}),
        );
        format!("{text}{}\n", " ".repeat(256 * 1024))
    };
    std::fs::write(&path, padded(1)).unwrap();
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", path.as_os_str())]);
    assert_eq!(qs.get("/_operator/settings")["version"], 1);
    // As an editor or `kubectl cp` would not, but a careful script does: a new file renamed
    // over the old one.
    std::fs::write(dir.path().join(".settings.json.new"), padded(2)).unwrap();
    std::fs::rename(dir.path().join(".settings.json.new"), &path).unwrap();
    until_version(&qs, 2);
    // Reading the file opens it, an event in its directory: it must not read it again and
    // again. Bytes read by the whole process over two seconds, while nothing changes: at most
    // the periodic re-read's.
    let read_bytes = || {
        let io = std::fs::read_to_string(format!("/proc/{}/io", qs.child.id())).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = read_bytes();
    std::thread::sleep(Duration::from_secs(2));
    let read = read_bytes() - before;
    assert!(
        read < 2 * 256 * 1024,
        "{read} bytes read in 2 s of nothing happening"
    );
}

#[test]
fn all_reaches_a_plain_route_seen_after_the_file_was_applied() {
    let map = ConfigMap::new(&file(
        1,
        json!({"_all": {"preempt": {"status": 503, "text": "fleet maintenance\n"}}}),
        json!({}),
    ));
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", map.path().as_os_str())]);
    assert_eq!(qs.get("/_operator/settings")["version"], 1);
    // `/plain` (plain actix-web) is unknown until its first request.
    assert!(qs.get("/_routes/settings").get("plain").is_none());
    qs.app("/plain");
    let settings = qs.get("/_routes/plain/settings");
    assert_eq!(settings["plain"]["operator"]["preempt"]["status"], 503);
    let res = qs.app("/plain");
    assert_eq!(
        (res.status, res.body.as_str()),
        (503, "fleet maintenance\n")
    );
}

#[test]
fn a_directory_that_does_not_exist_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("missing").join("settings.json");
    let (status, stderr) = common::quickstart_start_fails(
        &dir.path().join("admin.sock"),
        &dir.path().join("persistent.json"),
        &[("UNDERSCORE_OPERATOR_SETTINGS", operator.as_os_str())],
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "error: cannot watch the operator settings file {}: its directory {} does not exist",
            dir.path().join("missing/settings.json").display(),
            dir.path().join("missing").display()
        )),
        "{stderr}"
    );
}
