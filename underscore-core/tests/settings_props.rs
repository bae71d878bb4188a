//! Property tests of `PUT /_routes/{ids}/settings`: any body gives a success or a 4xx (never a
//! panic or a 5xx), a rejected PUT changes nothing (in memory or on disk), and accepted PUTs
//! behave like a simple model of Elasticsearch's update semantics.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use underscore_core::api::{handle_in, Request};
use underscore_core::{Registry, RouteMeta, RouteState};

fn registry() -> (Registry, tempfile::TempDir) {
    let metas = ["a", "b", "c"].into_iter().map(|id| {
        &*Box::leak(Box::new(RouteMeta {
            name: id,
            handler: "props::handler",
            methods: &["GET"],
            paths: &["/"],
            file: "props.rs",
            line: 1,
            doc: "",
            state: RouteState::new(),
        }))
    });
    let reg = Registry::from_routes(metas);
    let dir = tempfile::tempdir().unwrap();
    reg.configure_settings_file(dir.path().join("settings.json"))
        .unwrap();
    (reg, dir)
}

fn get_all(reg: &Registry) -> Value {
    let res = handle_in(
        reg,
        &Request::new("GET", "/_routes/settings", "flat_settings"),
    );
    assert_eq!(res.status, 200);
    serde_json::from_slice(&res.body).unwrap()
}

fn put(reg: &Registry, ids: &str, body: &[u8]) -> (u16, Value) {
    let path = format!("/_routes/{ids}/settings");
    let res = handle_in(
        reg,
        &Request::new("PUT", &path, "flat_settings").with_body(body),
    );
    let body = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
    (res.status, body)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        (150i64..700).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec!["", "Busy", "Try later", "a\r\nb", "503", "ü", "\u{0}"])
            .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "persistent",
        "transient",
        "preempt",
        "status",
        "reason",
        "text",
        "retry_after",
        "preempt.status",
        "preempt.reason",
        "preempt.text",
        "preempt.retry_after",
        "preempt.*",
        "*",
        "x",
        "preempt.x",
    ])
    .prop_map(str::to_owned)
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn ids() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "a,b", "_all", "*", "x*", "nope", "a,nope", "a,,b", "c",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_json_body_is_a_success_or_a_4xx_and_a_rejection_changes_nothing(
        body in json_value(),
        target in ids(),
    ) {
        let (reg, dir) = registry();
        // Start from some state, so "nothing changed" is a real check.
        let (status, _) = put(&reg, "a,b", br#"{"persistent":{"preempt.status":503},"transient":{"preempt.reason":"Busy"}}"#);
        prop_assert_eq!(status, 200);
        let before = get_all(&reg);
        let file_before = std::fs::read(dir.path().join("settings.json")).unwrap();

        let (status, answer) = put(&reg, &target, body.to_string().as_bytes());
        prop_assert!(status == 200 || (400..500).contains(&status), "status {} for {} on {}", status, body, target);
        if status != 200 {
            prop_assert_eq!(&answer["status"], &json!(status));
            prop_assert!(answer["error"]["reason"].is_string());
            prop_assert_eq!(get_all(&reg), before);
            prop_assert_eq!(std::fs::read(dir.path().join("settings.json")).unwrap(), file_before);
        }
    }

    #[test]
    fn any_bytes_are_a_4xx_at_worst(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let (reg, _dir) = registry();
        let before = get_all(&reg);
        let (status, _) = put(&reg, "a", &body);
        prop_assert!(status == 200 || (400..500).contains(&status));
        if status != 200 {
            prop_assert_eq!(get_all(&reg), before);
        }
    }
}

/// A valid change: a key and a value or null, or a group reset.
fn valid_change() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        (200u64..600).prop_map(|s| ("preempt.status".to_owned(), json!(s))),
        prop::sample::select(vec!["Busy", "Down for maintenance"])
            .prop_map(|r| ("preempt.reason".to_owned(), json!(r))),
        prop::sample::select(vec!["", "later"]).prop_map(|t| ("preempt.text".to_owned(), json!(t))),
        (0u64..100).prop_map(|s| ("preempt.retry_after".to_owned(), json!(s))),
        prop::sample::select(vec![
            "preempt.status",
            "preempt.reason",
            "preempt.text",
            "preempt.retry_after",
            "preempt.*"
        ])
        .prop_map(|k| (k.to_owned(), Value::Null)),
    ]
}

type Model = BTreeMap<(String, &'static str), BTreeMap<String, Value>>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn accepted_puts_follow_elasticsearch_semantics(
        steps in prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "a,b", "_all"]), any::<bool>(), prop::collection::vec(valid_change(), 1..4)),
            1..8,
        )
    ) {
        let (reg, dir) = registry();
        let mut model: Model = BTreeMap::new();
        for (target, persistent, changes) in steps {
            // One value per key in a body.
            let mut body_map = Map::new();
            for (k, v) in &changes {
                body_map.insert(k.clone(), v.clone());
            }
            let tier = if persistent { "persistent" } else { "transient" };
            let body = json!({ tier: body_map });
            let (status, _) = put(&reg, target, body.to_string().as_bytes());
            prop_assert_eq!(status, 200, "{}", body);
            let ids: Vec<&str> = match target {
                "a,b" => vec!["a", "b"],
                "_all" => vec!["a", "b", "c"],
                one => vec![one],
            };
            for id in ids {
                let entry = model.entry((id.to_owned(), tier)).or_default();
                for (k, v) in &body_map {
                    if v.is_null() {
                        let prefix = k.trim_end_matches('*');
                        entry.retain(|key, _| if k.ends_with('*') { !key.starts_with(prefix) } else { key != k });
                    } else {
                        entry.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let got = get_all(&reg);
        for id in ["a", "b", "c"] {
            for tier in ["persistent", "transient"] {
                let want: Map<String, Value> = model.get(&(id.to_owned(), tier)).cloned().unwrap_or_default().into_iter().collect();
                prop_assert_eq!(&got[id][tier], &Value::Object(want), "{} {}", id, tier);
            }
        }
        // The file holds exactly the persistent tier.
        let file: Value = serde_json::from_slice(&std::fs::read(dir.path().join("settings.json")).unwrap_or_else(|_| b"{\"routes\":{}}".to_vec())).unwrap();
        for id in ["a", "b", "c"] {
            let want = &got[id]["persistent"];
            let have = file["routes"].get(id).cloned().unwrap_or(json!({}));
            prop_assert_eq!(&have, want);
        }
    }
}
