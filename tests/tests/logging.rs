//! Log levels at runtime, end to end: the real quickstart binary, its stderr read as it runs,
//! and `curl --unix-socket` for `/_logging/settings` and `/_cat/loggers`.

mod common;

use std::time::Duration;

use actix_web::{get, web, Responder};
use common::{curl_unix, wait_until, Quickstart, Reply, TestServer};
use serde_json::json;

impl Quickstart {
    fn hello(&self, name: &str) {
        let res = self.app(&format!("/hello/{name}"));
        assert_eq!(res.body, format!("Hello {name}!\n"));
    }

    fn put(&self, body: &str) -> Reply {
        self.admin("PUT", "/_logging/settings", Some(body))
    }

    /// Waits until every line written so far is read: a PUT that changes nothing writes an
    /// audit line after them (stderr keeps its order), whatever the levels are.
    fn settle(&self) {
        let marker = "log levels PUT changed nothing";
        let n = self.count(marker);
        assert_eq!(self.put(r#"{"transient":{}}"#).status, 200);
        wait_until("the audit line of a no-op PUT", || self.count(marker) > n);
    }

    /// Stops it as an operator would (SIGINT), and waits for it to exit.
    fn stop(&mut self) {
        common::signal(&self.child, "-INT");
        common::wait(&mut self.child, Duration::from_secs(15));
    }
}

#[test]
fn a_level_raised_at_runtime_shows_debug_lines_on_every_worker_until_reset() {
    let mut qs = Quickstart::start(&[]);
    qs.hello("before");
    qs.settle();
    assert!(!qs.log().contains("greeting before"), "{}", qs.log());

    let res = qs.put(r#"{"transient":{"logger.quickstart":"DEBUG"}}"#);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json(),
        json!({"persistent": {}, "transient": {"logger": {"quickstart": "debug"}}})
    );
    // New connections, spread over the app's workers: each one logs at debug now.
    for i in 0..6 {
        qs.hello(&format!("w{i}"));
    }
    wait_until("six debug lines", || {
        (0..6).all(|i| qs.count(&format!("DEBUG quickstart: greeting w{i}")) == 1)
    });
    // The audit line: who, from which peer (uid and pid on the socket), old and new.
    let audit = qs.line("underscore::audit: log level changed").unwrap();
    assert!(
        audit.contains("caller=\"uid=")
            && audit.contains(" pid=")
            && audit
                .contains("tier=\"transient\" setting=logger.quickstart old=null new=\"debug\""),
        "{audit}"
    );
    assert_eq!(
        qs.admin("GET", "/_cat/loggers?v", None).body,
        "target            level tier\n\
         _root             info  default\n\
         quickstart        debug transient\n\
         underscore::audit info  default\n"
    );

    let res = qs.put(r#"{"transient":{"logger.quickstart":null}}"#);
    assert_eq!(res.json(), json!({"persistent": {}, "transient": {}}));
    qs.hello("after");
    qs.settle();
    assert!(!qs.log().contains("greeting after"), "{}", qs.log());

    // `logger.*: null` resets every level of the tier; root `off` keeps the audit lines.
    let res = qs.put(r#"{"transient":{"logger._root":"off","logger":{"quickstart":"trace"}}}"#);
    assert_eq!(res.status, 200);
    qs.hello("off");
    wait_until("a trace-level line", || qs.count("greeting off") == 1);
    let res = qs.put(r#"{"transient":{"logger.*":null}}"#);
    assert_eq!(res.json(), json!({"persistent": {}, "transient": {}}));
    // Read from the quickstart's stderr by a thread of its own: waited for, not assumed there.
    wait_until("the audit line of the reset", || {
        qs.count("setting=logger._root old=\"off\" new=null") == 1
    });
    qs.hello("reset");
    qs.settle();
    assert!(!qs.log().contains("greeting reset"), "{}", qs.log());
    qs.stop();
}

#[test]
fn bad_levels_and_targets_are_a_400_naming_the_key_and_change_nothing() {
    let mut qs = Quickstart::start(&[]);
    assert_eq!(
        qs.put(r#"{"persistent":{"logger.kept":"warn"}}"#).status,
        200
    );
    let state = || {
        (
            qs.admin("GET", "/_logging/settings?include_defaults", None)
                .body,
            qs.admin("GET", "/_cat/loggers?h=*", None).body,
            std::fs::read_to_string(&qs.settings).unwrap(),
        )
    };
    let before = state();
    for (body, reason) in [
        (
            r#"{"transient":{"logger.quickstart":"loud"}}"#,
            "failed to parse transient setting [logger.quickstart] with value [\"loud\"]: must be one of [trace, debug, info, warn, error, off], in any case",
        ),
        (
            r#"{"persistent":{"logger.quickstart":5}}"#,
            "failed to parse persistent setting [logger.quickstart] with value [5]",
        ),
        (
            r#"{"transient":{"logger.":"info"}}"#,
            "transient setting [logger.], not recognized: the target after [logger.] is empty",
        ),
        (
            r#"{"transient":{"logger.a=b":"info"}}"#,
            "transient setting [logger.a=b], not recognized: [a=b] is not a tracing target",
        ),
        (
            r#"{"transient":{"notlogger.x":"info"}}"#,
            "transient setting [notlogger.x], not recognized: log levels are [logger._root] and [logger.<target>]",
        ),
        (
            r#"{"transient":{"logger.*":"debug"}}"#,
            "transient setting [logger.*] is a pattern: it can only be reset with null, got [\"debug\"]",
        ),
        // One bad key among good ones: none of them is applied.
        (
            r#"{"transient":{"logger._root":"trace"},"persistent":{"logger.a,b":"info"}}"#,
            "persistent setting [logger.a,b], not recognized",
        ),
    ] {
        let res = qs.put(body);
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        let json = res.json();
        assert_eq!(json["error"]["type"], "illegal_argument_exception");
        let got = json["error"]["reason"].as_str().unwrap();
        assert!(got.starts_with(reason), "{body}: {got}");
        assert_eq!(state(), before, "{body} changed something");
    }
    let res = qs.admin("POST", "/_logging/settings", Some("{}"));
    assert_eq!(
        (res.status, res.header("allow")),
        (405, Some("GET, HEAD, PUT"))
    );
    assert_eq!(
        qs.admin("GET", "/_logging/settings?verbose", None).status,
        400
    );
    qs.stop();
}

#[test]
fn persistent_levels_survive_a_restart_and_apply_from_the_start() {
    let mut qs = Quickstart::start(&[]);
    let res = qs
        .put(r#"{"persistent":{"logger.quickstart":"debug"},"transient":{"logger._root":"warn"}}"#);
    assert_eq!(res.status, 200, "{}", res.body);
    let res = qs.admin(
        "PUT",
        "/_routes/index/settings",
        Some(r#"{"persistent":{"preempt.status":503}}"#),
    );
    assert_eq!(res.status, 200);
    qs.stop();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&qs.settings).unwrap()).unwrap();
    assert_eq!(file["logging"], json!({"logger.quickstart": "debug"}));
    assert_eq!(file["routes"]["index"], json!({"preempt.status": 503}));

    // Persistent kept, transient lost; debug lines from the first request, with no PUT.
    qs.restart();
    assert_eq!(
        qs.admin("GET", "/_logging/settings?flat_settings", None)
            .json(),
        json!({"persistent": {"logger.quickstart": "debug"}, "transient": {}})
    );
    qs.hello("again");
    wait_until("a debug line after the restart", || {
        qs.count("greeting again") == 1
    });
    qs.stop();

    // A file written by hand, before the first start.
    std::fs::write(
        &qs.settings,
        r#"{"format":"underscore-settings/1","routes":{},"logging":{"logger.quickstart":"TRACE"}}"#,
    )
    .unwrap();
    qs.restart();
    qs.hello("by-hand");
    wait_until("a debug line from a hand-written file", || {
        qs.count("greeting by-hand") == 1
    });
    assert_eq!(
        qs.admin("GET", "/_cat/loggers?h=target,level,tier&s=target", None)
            .body,
        "_root             info  default\n\
         quickstart        trace persistent\n\
         underscore::audit info  default\n"
    );
    qs.stop();
}

#[test]
fn a_corrupt_logging_section_stops_start_up_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("s.json");
    let corrupt = r#"{"format":"underscore-settings/1","routes":{},"logging":{"logger.x":"loud"}}"#;
    std::fs::write(&settings, corrupt).unwrap();
    let (_, stderr) = common::quickstart_start_fails(&dir.path().join("u.sock"), &settings, &[]);
    assert!(
        stderr.contains(&settings.display().to_string())
            && stderr.contains("corrupt")
            && stderr.contains("logging: setting [logger.x]"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), corrupt);
}

#[get("/nolayer")]
async fn nolayer() -> impl Responder {
    "no layer here"
}

fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(nolayer);
}

#[test]
fn an_app_without_the_layer_is_told_how_to_enable_it() {
    // This test process never installs the layer; the admin APIs are on the socket and in-app.
    let srv = TestServer::start_with(configure, true);
    let hint = "add underscore_actix::logging::layer(..) to your tracing-subscriber registry";
    for (method, path, body) in [
        ("GET", "/_logging/settings", None),
        (
            "PUT",
            "/_logging/settings",
            Some(r#"{"transient":{"logger._root":"debug"}}"#),
        ),
        ("GET", "/_cat/loggers?v", None),
    ] {
        let res = curl_unix(&srv.socket, method, path, body);
        assert_eq!(res.status, 400, "{method} {path}: {}", res.body);
        let json = res.json();
        assert_eq!(json["error"]["type"], "illegal_argument_exception");
        assert!(
            json["error"]["reason"].as_str().unwrap().ends_with(hint),
            "{}",
            res.body
        );
    }
    let res = srv.http("GET", "/_logging/settings");
    assert_eq!(res.status, 400, "mounted in-app too: {}", res.body);
    assert!(res.body.contains(hint));
}
