//! The read APIs end to end, on the quickstart's routes: a real server on `127.0.0.1:0`, the
//! admin socket in a temp dir, `curl --unix-socket` as an operator would use it.

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/quickstart.rs"]
mod quickstart;

use common::TestServer;
use serde_json::json;

fn server() -> TestServer {
    TestServer::start(quickstart::configure)
}

#[test]
fn cat_index_lists_the_endpoints() {
    let srv = server();
    let res = srv.admin("GET", "/_cat");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        res.body,
        "=^.^=\n/_cat/routes\n/_cat/routes/{ids}\n/_cat/tasks\n/_cat/tasks/summary\n/_cat/tasks/{task_ids}\n/_cat/middlewares\n/_cat/transports\n/_cat/loggers\n/_cat/health\n/_cat/slowlog\n/_cat/workers\n"
    );
}

#[test]
fn cat_routes_counts_annotated_and_plain_routes_exactly() {
    let srv = server();
    for name in ["ann", "bob", "cy"] {
        let res = srv.http("GET", &format!("/hello/{name}"));
        assert_eq!(
            (res.status, res.body.as_str()),
            (200, format!("Hello {name}!\n").as_str())
        );
    }
    for _ in 0..2 {
        assert_eq!(srv.http("GET", "/plain").status, 200);
    }
    // Unmatched paths create no route.
    for i in 0..20 {
        assert_eq!(srv.http("GET", &format!("/scan/{i}")).status, 404);
    }
    let res = srv.admin("GET", "/_cat/routes?v&h=id,method,path,total,kind&s=id");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body,
        "id    method path          total kind\n\
         block GET    /block            0 annotated\n\
         echo  POST   /echo             0 annotated\n\
         hello GET    /hello/{name}     3 annotated\n\
         index GET    /                 0 annotated\n\
         plain GET    /plain            2 actix\n\
         slow  GET    /slow             0 annotated\n"
    );
    // Without `v` there is no header, and the first field is the id: `cut -d' ' -f1` works.
    let ids = srv.admin("GET", "/_cat/routes?s=id").body;
    let first: Vec<&str> = ids.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(first, ["block", "echo", "hello", "index", "plain", "slow"]);
    let res = srv.admin("GET", "/_cat/routes/plain?format=json&h=id,active,total");
    assert_eq!(
        res.json(),
        json!([{"id": "plain", "active": 0, "total": 2}])
    );
}

#[test]
fn in_flight_requests_are_active() {
    let srv = server();
    let url = srv.url("/slow?ms=1500");
    let slow = std::thread::spawn(move || common::http("GET", &url, None));
    let mut seen = None;
    for _ in 0..100 {
        let res = srv.admin("GET", "/_cat/routes/slow?h=active,total");
        if res.body.trim() == "1 1" {
            seen = Some(res.body);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        seen.as_deref(),
        Some("1 1\n"),
        "the slow request never showed as active"
    );
    let res = slow.join().unwrap();
    assert_eq!((res.status, res.body.as_str()), (200, "slept 1500 ms\n"));
    assert_eq!(
        srv.admin("GET", "/_cat/routes/slow?h=active,total").body,
        "0 1\n"
    );
}

#[test]
fn cat_parameters() {
    let srv = server();
    // `h=*` shows every column; `help` describes them all.
    let all = srv.admin("GET", "/_cat/routes/echo?v&h=*").body;
    let header: Vec<&str> = all.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "id",
            "method",
            "path",
            "stats.req.active",
            "stats.req.total",
            "stats.req.preempted",
            "stats.req.shed",
            "stats.req.timed_out",
            "stats.req.interrupted",
            "stats.req.cancelled",
            "stats.req.dropped",
            "stats.resp.1xx",
            "stats.resp.2xx",
            "stats.resp.3xx",
            "stats.resp.4xx",
            "stats.resp.5xx",
            "stats.resp.time_avg_1m",
            "stats.resp.time_avg_5m",
            "stats.resp.time_avg_15m",
            "stats.resp.time_p50",
            "stats.resp.time_p90",
            "stats.resp.time_p99",
            "stats.resp.time_max",
            "preempt",
            "preempt.reason",
            "preempt.retry_after",
            "preempt.percent",
            "limits.max_in_flight",
            "limits.timeout",
            "settings.tiers",
            "handler",
            "name",
            "kind",
            "mounted",
            "source",
            "doc",
        ]
    );
    assert!(
        all.contains("quickstart::echo") && all.contains("examples/quickstart.rs:"),
        "{all}"
    );
    let help = srv.admin("GET", "/_cat/routes?help").body;
    assert_eq!(help.lines().count(), header.len());
    // `name | aliases | description`, every field padded, so the separators line up.
    let bars: Vec<Vec<usize>> = help
        .lines()
        .map(|l| l.match_indices(" | ").map(|(i, _)| i).collect())
        .collect();
    assert!(bars.iter().all(|b| b.len() == 2 && *b == bars[0]), "{help}");
    assert!(help.starts_with("id "), "{help}");
    assert!(
        help.lines().any(|l| l.starts_with("doc ")
            && l.contains(" | d,description ")
            && l.ends_with(" | first line of the handler's doc comment")),
        "{help}"
    );
    // Aliases and wildcards; an alias is shown as typed.
    assert_eq!(
        srv.admin("GET", "/_cat/routes/hello?v&h=i,m,p").body,
        "i     m   p\nhello GET /hello/{name}\n"
    );
    assert_eq!(
        srv.admin("GET", "/_cat/routes/echo?h=stats.req.*").body,
        "0 0 0 0 0 0 0 0\n"
    );
    // Typed JSON and YAML.
    let res = srv.admin(
        "GET",
        "/_cat/routes/index,echo?format=json&h=id,total,mounted&s=id:desc",
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(
        res.json(),
        json!([{"id": "index", "total": 0, "mounted": true}, {"id": "echo", "total": 0, "mounted": true}])
    );
    let res = srv.admin("GET", "/_cat/routes/index?format=yaml&h=id,m");
    assert_eq!(res.body, "---\n- id: \"index\"\n  m: \"GET\"\n");
    // Wildcards and `_all` in ids.
    assert_eq!(
        srv.admin("GET", "/_cat/routes/*o*?h=id&s=id").body,
        "block\necho\nhello\nslow\n"
    );
    // (`plain` joins the list once another test has requested it.)
    let all = srv.admin("GET", "/_cat/routes/_all?h=id&s=id").body;
    assert!(all.starts_with("block\necho\nhello\nindex\n"), "{all}");
    assert!(
        all.lines()
            .all(|id| ["block", "echo", "hello", "index", "plain", "slow"].contains(&id)),
        "{all}"
    );
    // `h=` (empty) is the default columns, never a 500.
    let res = srv.admin("GET", "/_cat/routes?h=");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, srv.admin("GET", "/_cat/routes").body);
}

#[test]
fn errors_have_elasticsearch_shape() {
    let srv = server();
    let cases: &[(&str, &str, u16, &str, &str)] = &[
        ("GET", "/_cat/routes?foo=1", 400, "illegal_argument_exception", "request [/_cat/routes] contains unrecognized parameter: [foo]"),
        ("GET", "/_cat/routes?v=yes", 400, "illegal_argument_exception", "Failed to parse value [yes] of parameter [v] as only [true] or [false] are allowed."),
        ("GET", "/_cat/routes?format=xml", 400, "illegal_argument_exception", "invalid value [xml] for parameter [format], expected one of [text, json, yaml]"),
        ("GET", "/_cat/routes?s=nope:desc", 400, "illegal_argument_exception", "unknown column [nope] in parameter [s], valid columns are [id, method, path, stats.req.active, stats.req.total, stats.req.preempted, stats.req.shed, stats.req.timed_out, stats.req.interrupted, stats.req.cancelled, stats.req.dropped, stats.resp.1xx, stats.resp.2xx, stats.resp.3xx, stats.resp.4xx, stats.resp.5xx, stats.resp.time_avg_1m, stats.resp.time_avg_5m, stats.resp.time_avg_15m, stats.resp.time_p50, stats.resp.time_p90, stats.resp.time_p99, stats.resp.time_max, preempt, preempt.reason, preempt.retry_after, preempt.percent, limits.max_in_flight, limits.timeout, settings.tiers, handler, name, kind, mounted, source, doc]"),
        ("GET", "/_cat/routes?s=id:up", 400, "illegal_argument_exception", "invalid sort order [up] in [id:up], expected [asc] or [desc]"),
        ("GET", "/_cat/routes/hello,nope", 404, "resource_not_found_exception", "no such route [nope]"),
        ("GET", "/_routes?format=text", 400, "illegal_argument_exception", "this API has no text format, use [format=json] or [format=yaml]"),
        ("GET", "/_routes/zz*", 404, "resource_not_found_exception", "no such route [zz*]"),
        ("GET", "/_cat/routes?h=%zz", 400, "illegal_argument_exception", "invalid percent-encoding in query string near [%zz]"),
        ("GET", "/_nothing", 404, "resource_not_found_exception", "no handler found for uri [/_nothing] and method [GET]"),
        ("DELETE", "/_cat/routes", 405, "method_not_allowed_exception", "Incorrect HTTP method for uri [/_cat/routes] and method [DELETE], allowed: [GET, HEAD]"),
    ];
    for &(method, path, status, kind, reason) in cases {
        let res = srv.admin(method, path);
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            res.json(),
            json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status}),
            "{method} {path}"
        );
        if status == 405 {
            assert_eq!(res.header("allow"), Some("GET, HEAD"));
        }
    }
}

#[test]
fn routes_json_with_pretty_filter_path_and_yaml() {
    let srv = server();
    let res = srv.admin("GET", "/_routes/hello");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let hello = &res.json()["hello"];
    assert_eq!(hello["handler"], "read_apis::quickstart::hello");
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["methods"], json!(["GET"]));
    assert_eq!(hello["path"], "/hello/{name}");
    assert!(hello["file"]
        .as_str()
        .unwrap()
        .ends_with("examples/quickstart.rs"));
    assert!(hello["line"].as_u64().unwrap() > 0);
    assert_eq!(hello["doc"], "Greets someone by name.");

    let pretty = srv.admin("GET", "/_routes/index?pretty").body;
    assert!(
        pretty.starts_with("{\n  \"index\": {\n    \"handler\": \"read_apis::quickstart::index\","),
        "{pretty}"
    );

    let res = srv.admin(
        "GET",
        "/_routes/echo,hello,index,slow?filter_path=*.path,-slow",
    );
    assert_eq!(
        res.json(),
        json!({"echo": {"path": "/echo"}, "hello": {"path": "/hello/{name}"}, "index": {"path": "/"}})
    );
    let res = srv.admin("GET", "/_routes/echo?format=yaml&filter_path=**.methods");
    assert_eq!(res.header("content-type"), Some("application/yaml"));
    assert_eq!(res.body, "---\necho:\n  methods:\n  - \"POST\"\n");
}

#[test]
fn head_is_answered_without_body() {
    let srv = server();
    let res = srv.admin("HEAD", "/_cat/routes");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "");
}

#[test]
fn persistent_settings_need_a_settings_file() {
    // This test binary configures no settings file.
    let srv = server();
    let res = common::curl_unix(
        &srv.socket,
        "PUT",
        "/_routes/index/settings",
        Some(r#"{"persistent": {"preempt.status": 503}, "transient": {"preempt.reason": "x"}}"#),
    );
    assert_eq!(res.status, 400);
    let reason = res.json()["error"]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("no settings file is configured"),
        "{reason}"
    );
    assert!(
        reason.contains("settings_file") && reason.contains("UNDERSCORE_SETTINGS"),
        "{reason}"
    );
    // Nothing half-done: the transient part was not applied either.
    assert_eq!(
        srv.admin("GET", "/_routes/index/settings").json(),
        json!({"index": {"persistent": {}, "transient": {}}})
    );
}
