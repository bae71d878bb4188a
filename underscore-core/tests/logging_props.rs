//! `GET|PUT /_logging/settings` and `GET /_cat/loggers` through `api::handle_in`, with a filter
//! that records the directives it is given: any body gives a success or a 4xx, a rejection
//! changes nothing (in memory, on disk, or in the filter), and the settings file keeps both of
//! its sections whichever API writes it.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use underscore_core::api::{handle_in, Request};
use underscore_core::{Registry, RouteMeta, RouteState};

struct Fixture {
    reg: Registry,
    dir: tempfile::TempDir,
    directives: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    fn new(defaults: &str) -> Self {
        let meta: &'static RouteMeta = Box::leak(Box::new(RouteMeta {
            name: "a",
            handler: "props::a",
            methods: &["GET"],
            paths: &["/a"],
            file: "props.rs",
            line: 1,
            doc: "",
            state: RouteState::new(),
        }));
        let reg = Registry::from_routes([meta]);
        let dir = tempfile::tempdir().unwrap();
        reg.configure_settings_file(dir.path().join("settings.json"))
            .unwrap();
        let directives = Arc::new(Mutex::new(Vec::new()));
        let seen = directives.clone();
        reg.install_log_filter(
            defaults,
            Box::new(move |d: &str| {
                seen.lock().unwrap().push(d.to_owned());
                Ok(())
            }),
        )
        .unwrap();
        Self {
            reg,
            dir,
            directives,
        }
    }

    fn call(&self, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, String) {
        let res = handle_in(
            &self.reg,
            &Request::new(method, path, query)
                .with_body(body)
                .with_caller("test"),
        );
        (res.status, String::from_utf8(res.body).unwrap())
    }

    fn put(&self, body: &str) -> (u16, Value) {
        let (status, body) = self.call(
            "PUT",
            "/_logging/settings",
            "flat_settings",
            body.as_bytes(),
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn get(&self) -> Value {
        let (status, body) = self.call("GET", "/_logging/settings", "flat_settings", b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn file(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("settings.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    fn last_directives(&self) -> String {
        self.directives.lock().unwrap().last().cloned().unwrap()
    }
}

#[test]
fn levels_set_reset_and_show_in_every_form() {
    let fx = Fixture::new("info,hyper=warn");
    assert_eq!(
        fx.last_directives(),
        "info,hyper=warn,underscore::audit=info"
    );
    let (status, body) = fx.put(
        r#"{"transient":{"logger._root":"WARN","logger":{"my_app::db":"debug"}},"persistent":{"logger.hyper":"error"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"persistent": {"logger.hyper": "error"}, "transient": {"logger._root": "warn", "logger.my_app::db": "debug"}})
    );
    assert_eq!(
        fx.last_directives(),
        "warn,hyper=error,my_app::db=debug,underscore::audit=info"
    );
    let (_, nested) = fx.call("GET", "/_logging/settings", "", b"");
    assert_eq!(
        serde_json::from_str::<Value>(&nested).unwrap(),
        json!({"persistent": {"logger": {"hyper": "error"}}, "transient": {"logger": {"_root": "warn", "my_app::db": "debug"}}})
    );
    let (_, defaults) = fx.call(
        "GET",
        "/_logging/settings",
        "include_defaults&filter_path=defaults,directives",
        b"",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&defaults).unwrap(),
        json!({
            "defaults": {"logger": {"_root": "info", "hyper": "warn", "underscore::audit": "info"}},
            "directives": {"default": "info,hyper=warn", "effective": "warn,hyper=error,my_app::db=debug,underscore::audit=info"}
        })
    );
    let (status, text) = fx.call("GET", "/_cat/loggers", "v", b"");
    assert_eq!(status, 200);
    assert_eq!(
        text,
        "target            level tier\n\
         _root             warn  transient\n\
         hyper             error persistent\n\
         my_app::db        debug transient\n\
         underscore::audit info  default\n"
    );
    let (_, text) = fx.call(
        "GET",
        "/_cat/loggers",
        "h=target,level,default,persistent&s=level",
        b"",
    );
    assert_eq!(
        text,
        "my_app::db        debug -    -\n\
         hyper             error warn error\n\
         underscore::audit info  info -\n\
         _root             warn  info -\n"
    );
    let (_, json_rows) = fx.call("GET", "/_cat/loggers", "format=json&h=t,ti", b"");
    assert_eq!(
        serde_json::from_str::<Value>(&json_rows).unwrap()[0],
        json!({"t": "_root", "ti": "transient"})
    );
    // `null` resets one key; `logger.*: null` the whole tier.
    let (_, body) = fx.put(r#"{"transient":{"logger.my_app::db":null}}"#);
    assert_eq!(body["transient"], json!({"logger._root": "warn"}));
    let (_, body) = fx.put(r#"{"transient":{"logger.*":null},"persistent":{"logger.*":null}}"#);
    assert_eq!(body, json!({"persistent": {}, "transient": {}}));
    assert_eq!(
        fx.last_directives(),
        "info,hyper=warn,underscore::audit=info"
    );
    // Wrong method, unknown parameter.
    let (status, _) = fx.call("POST", "/_logging/settings", "", b"{}");
    assert_eq!(status, 405);
    let (status, body) = fx.call("GET", "/_logging/settings", "v", b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unrecognized parameter: [v]"), "{body}");
}

#[test]
fn the_settings_file_keeps_both_sections_whichever_api_writes_it() {
    let fx = Fixture::new("info");
    assert_eq!(fx.put(r#"{"persistent":{"logger.x":"debug"}}"#).0, 200);
    let (status, _) = fx.call(
        "PUT",
        "/_routes/a/settings",
        "",
        br#"{"persistent":{"preempt.status":503}}"#,
    );
    assert_eq!(status, 200);
    let file = fx.file().unwrap();
    assert_eq!(file["logging"], json!({"logger.x": "debug"}));
    assert_eq!(file["routes"], json!({"a": {"preempt.status": 503}}));
    assert_eq!(fx.put(r#"{"persistent":{"logger.x":null}}"#).0, 200);
    let file = fx.file().unwrap();
    assert!(file.get("logging").is_none(), "{file}");
    assert_eq!(file["routes"], json!({"a": {"preempt.status": 503}}));
}

#[test]
fn without_a_filter_every_logging_api_says_how_to_install_one() {
    let reg = Registry::from_routes([]);
    for (method, path, body) in [
        ("GET", "/_logging/settings", &b""[..]),
        (
            "PUT",
            "/_logging/settings",
            br#"{"transient":{"logger._root":"debug"}}"#,
        ),
        ("PUT", "/_logging/settings", b"{nope"),
        ("GET", "/_cat/loggers", b""),
    ] {
        let res = handle_in(&reg, &Request::new(method, path, "").with_body(body));
        let text = String::from_utf8(res.body).unwrap();
        assert_eq!(res.status, 400, "{method} {path}: {text}");
        assert!(
            text.contains("illegal_argument_exception")
                && text.contains(
                    "add underscore_actix::logging::layer(..) to your tracing-subscriber registry"
                ),
            "{text}"
        );
    }
    let res = handle_in(&reg, &Request::new("GET", "/_cat", ""));
    assert!(String::from_utf8(res.body)
        .unwrap()
        .contains("/_cat/transports\n/_cat/loggers\n"));
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-10i64..10).prop_map(Value::from),
        prop::sample::select(vec![
            "trace", "DEBUG", "Info", "warn", "error", "off", "loud", "", "warning", "5",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "persistent",
            "transient",
            "logger",
            "logger._root",
            "_root",
            "logger.*",
            "logger.a*",
            "*",
            "logger.",
            "logger.a",
            "logger.a::b",
            "a",
            "b",
            "logger.a=b",
            "logger.a,b",
            "logger.a b",
            "notlogger.x",
            "preempt.status",
        ])
        .prop_map(str::to_owned),
        "logger\\.[a-z:=,\\[{ .*-]{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 30, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Any JSON, or (often, so that many are accepted) one tier of keys and leaves.
fn body() -> impl Strategy<Value = Value> {
    let tiers = prop::collection::vec(
        (
            prop::sample::select(vec!["persistent", "transient"]),
            prop::collection::vec((key(), leaf()), 0..4),
        ),
        1..3,
    )
    .prop_map(|tiers| {
        let top: Map<String, Value> = tiers
            .into_iter()
            .map(|(tier, pairs)| {
                let settings: Map<String, Value> = pairs.into_iter().collect();
                (tier.to_owned(), Value::Object(settings))
            })
            .collect();
        Value::Object(top)
    });
    prop_oneof![json_value(), tiers]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_json_body_is_a_success_or_a_4xx_and_a_rejection_changes_nothing(body in body()) {
        let fx = Fixture::new("info,a=warn");
        // Start from some state, so "nothing changed" is a real check.
        let (status, _) = fx.put(r#"{"persistent":{"logger.a":"debug"},"transient":{"logger._root":"error"}}"#);
        prop_assert_eq!(status, 200);
        let before = fx.get();
        let file_before = fx.file();
        let directives_before = fx.last_directives();

        let (status, answer) = fx.put(&body.to_string());
        prop_assert!(status == 200 || (400..500).contains(&status), "status {} for {}", status, body);
        if status == 200 {
            prop_assert_eq!(&answer, &fx.get());
            // What the filter runs is what the settings say.
            for (key, level) in answer["transient"].as_object().unwrap() {
                let target = key.strip_prefix("logger.").unwrap();
                if target != "_root" {
                    let directive = format!("{target}={}", level.as_str().unwrap());
                    prop_assert!(fx.last_directives().split(',').any(|d| d == directive));
                }
            }
        } else {
            prop_assert_eq!(&answer["status"], &json!(status));
            prop_assert!(answer["error"]["reason"].is_string());
            prop_assert_eq!(fx.get(), before);
            prop_assert_eq!(fx.file(), file_before);
            prop_assert_eq!(fx.last_directives(), directives_before);
        }
    }
}
