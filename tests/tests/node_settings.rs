//! Node settings, end to end: `GET|PUT /_node/settings` on the quickstart binary over its
//! admin socket with curl, turning poll timing on and moving `blocking.threshold` while the app
//! serves; persistence across a restart; the operator file's node section.

mod common;

use common::{wait_until, Quickstart};
use serde_json::{json, Value};

/// `_cat/workers` rows with the columns that say what a worker polls now.
fn workers(qs: &Quickstart) -> Vec<Value> {
    qs.poll("/_cat/workers?format=json&h=worker,polling,polling_for,blocked")
        .as_array()
        .unwrap()
        .clone()
}

/// `GET /block?ms=..` on its own thread; its body.
fn block(qs: &Quickstart, ms: u64) -> std::thread::JoinHandle<String> {
    let url = format!("http://{}/block?ms={ms}", qs.addr);
    std::thread::spawn(move || common::http("GET", &url, None).body)
}

/// The `_cat/workers` row of the worker polling a `GET /block?ms=..` sent now (`ms` at least
/// 500), read 100 ms into its poll (past the default threshold, well before its end); once the
/// request is answered.
fn row_while_blocking(qs: &Quickstart, ms: u64) -> Value {
    let client = block(qs, ms);
    wait_until("a worker polling block", || {
        workers(qs).iter().any(|w| w["polling"] == "block")
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let row = workers(qs)
        .into_iter()
        .find(|w| w["polling"] == "block")
        .expect("still blocking");
    client.join().unwrap();
    row
}

fn block_stats(qs: &Quickstart) -> Value {
    qs.get("/_routes/block/stats")["routes"]["block"].clone()
}

#[test]
fn poll_timing_and_the_blocking_threshold_change_at_runtime_and_persist() {
    let mut qs = Quickstart::start(&[("UNDERSCORE_POLL_TIMING", "0".as_ref())]);
    let settings = qs.get("/_node/settings?include_defaults&flat_settings");
    assert_eq!(
        settings,
        json!({
            "persistent": {},
            "transient": {},
            "defaults": {"blocking.threshold": "10ms", "poll_timing.enabled": false},
        })
    );

    // Off (the app's configuration): a blocking request is neither shown nor counted.
    assert_eq!(block(&qs, 300).join().unwrap(), "blocked 300 ms\n");
    let stats = block_stats(&qs);
    assert_eq!(
        (stats["blocking_polls"].clone(), stats["busy_ms"].clone()),
        (json!(0), json!(0.0)),
        "{stats}"
    );

    // On, in the transient tier: the next blocking request shows, as blocked, and counts.
    let res = qs.admin(
        "PUT",
        "/_node/settings",
        Some(r#"{"transient": {"poll_timing": {"enabled": true}}}"#),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json()["transient"],
        json!({"poll_timing": {"enabled": true}})
    );
    let row = row_while_blocking(&qs, 1000);
    assert_eq!(row["blocked"], true, "past the default 10 ms: {row}");
    assert_eq!(block_stats(&qs)["blocking_polls"], 1);

    // A threshold of an hour, persistent: the same request is no blocking poll any more.
    let res = qs.admin(
        "PUT",
        "/_node/settings",
        Some(r#"{"persistent": {"blocking.threshold": "1H"}}"#),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json()["persistent"],
        json!({"blocking": {"threshold": "1h"}})
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&qs.settings).unwrap()).unwrap();
    assert_eq!(file["node"], json!({"blocking.threshold": "1h"}), "{file}");
    let row = row_while_blocking(&qs, 500);
    assert_eq!(row["blocked"], false, "{row}");
    let stats = block_stats(&qs);
    assert_eq!(stats["blocking_polls"], 1, "{stats}");
    assert!(stats["busy_ms"].as_f64().unwrap() >= 1500.0, "{stats}");

    // Bad input: a 400 naming the key, and nothing changed.
    let before = qs.get("/_node/settings");
    for (body, says) in [
        (
            r#"{"transient": {"blocking.threshold": "0s", "poll_timing.enabled": false}}"#,
            "[blocking.threshold]",
        ),
        (
            r#"{"transient": {"limits.timeout": "1s"}}"#,
            "[limits.timeout] is a route setting",
        ),
        (
            r#"{"transient": {"poll_timing.enabled": "yes"}}"#,
            "must be true or false",
        ),
        (r#"{"everywhere": {}}"#, "unknown field [everywhere]"),
    ] {
        let res = qs.admin("PUT", "/_node/settings", Some(body));
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        let reason = res.json()["error"]["reason"].as_str().unwrap().to_owned();
        assert!(reason.contains(says), "{body}: {reason}");
    }
    assert_eq!(qs.get("/_node/settings"), before);
    assert_eq!(qs.admin("POST", "/_node/settings", None).status, 405);

    // Every change is audited.
    wait_until("the audit lines", || qs.count("node setting changed") >= 2);
    let log = qs.log();
    assert!(
        log.contains("tier=\"transient\" setting=poll_timing.enabled old=null new=true"),
        "{log}"
    );

    // A restart: the transient tier is gone (poll timing off again), the persistent stays.
    qs.restart();
    let settings = qs.get("/_node/settings?flat_settings");
    assert_eq!(
        settings,
        json!({"persistent": {"blocking.threshold": "1h"}, "transient": {}})
    );
    assert_eq!(block(&qs, 200).join().unwrap(), "blocked 200 ms\n");
    assert_eq!(block_stats(&qs)["busy_ms"], 0.0, "poll timing is off again");
}

#[test]
fn the_operator_file_sets_node_settings_and_reserves_them() {
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("operator.json");
    std::fs::write(
        &operator,
        json!({"metadata": {"version": 1}, "node": {"blocking": {"threshold": "25ms"}}})
            .to_string(),
    )
    .unwrap();
    let qs = Quickstart::start(&[("UNDERSCORE_OPERATOR_SETTINGS", operator.as_os_str())]);
    let settings = qs.get("/_node/settings");
    assert_eq!(
        settings["operator"],
        json!({"blocking": {"threshold": "25ms"}})
    );
    assert_eq!(
        qs.get("/_operator/settings?flat_settings")["node"],
        json!({"blocking.threshold": "25ms"})
    );
    // Reserved: a PUT that would change it is a 400 naming the key and the file; the rest of
    // the same PUT is not applied either.
    let res = qs.admin(
        "PUT",
        "/_node/settings",
        Some(r#"{"transient": {"poll_timing.enabled": false, "blocking.*": null}}"#),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    let reason = res.json()["error"]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("[blocking.threshold]") && reason.contains(&operator.display().to_string()),
        "{reason}"
    );
    assert_eq!(qs.get("/_node/settings")["transient"], json!({}));

    // In effect: a 100 ms poll is blocking at 25 ms.
    let client = block(&qs, 100);
    client.join().unwrap();
    wait_until("the blocking poll counted", || {
        block_stats(&qs)["blocking_polls"] == 1
    });

    // Released when the file no longer sets it: back to the default, and audited.
    std::fs::write(&operator, json!({"metadata": {"version": 2}}).to_string()).unwrap();
    wait_until("the operator tier released", || {
        qs.poll("/_node/settings")["operator"] == json!({})
    });
    wait_until("the audit line", || {
        qs.count("setting=blocking.threshold old=\"25ms\" new=null") == 1
    });
    assert_eq!(block(&qs, 15).join().unwrap(), "blocked 15 ms\n");
    assert_eq!(
        block_stats(&qs)["blocking_polls"],
        2,
        "past the default 10 ms"
    );
}
