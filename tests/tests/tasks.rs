//! In-flight requests as tasks: listing, interrupt, cancel, streaming, panics, disconnects.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use actix_web::{get, web, HttpResponse, Responder};
use common::{curl_unix, TestServer};
use serde_json::{json, Value};
use underscore_actix::underscore_route;

/// Waits (a long time) unless interrupted.
#[underscore_route]
#[get("/wait/{n}")]
async fn wait(n: web::Path<u32>) -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    format!("waited {n}")
}

/// Another waiting route, to show an interrupt is per route.
#[underscore_route]
#[get("/other")]
async fn other() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    "other done"
}

/// Outlives its client, for the disconnect test.
#[underscore_route]
#[get("/lingering")]
async fn lingering() -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    "lingering done"
}

/// Streams one chunk, then stalls.
#[underscore_route]
#[get("/stream")]
async fn streaming() -> HttpResponse {
    HttpResponse::Ok().streaming(common::Stalling::new())
}

/// Panics after a short wait.
#[underscore_route]
#[get("/boom")]
async fn boom() -> &'static str {
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    panic!("boom, on purpose")
}

/// Waits, for the selection test only (no other test sends here).
#[underscore_route]
#[get("/storm/{n}")]
async fn storm(n: web::Path<u32>) -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    format!("storm {n}")
}

async fn plain_wait() -> &'static str {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    "plain done"
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(wait)
        .service(other)
        .service(streaming)
        .service(boom)
        .service(lingering)
        .service(storm)
        .route("/plainwait", web::get().to(plain_wait));
}

/// Sends `GET path` and returns the open connection.
fn send(addr: SocketAddr, path: &str) -> TcpStream {
    common::send_raw(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nX-Opaque-Id: probe-{path}\r\nConnection: close\r\n\r\n"
        ),
    )
}

fn tasks_json(srv: &TestServer, query: &str) -> Value {
    srv.admin("GET", &format!("/_tasks?{query}")).json()
}

/// The ids of the in-flight tasks whose action is `action`.
fn task_ids(srv: &TestServer, action: &str) -> Vec<String> {
    let json = tasks_json(srv, &format!("group_by=none&actions={action}"));
    json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}:{}", t["node"].as_str().unwrap(), t["id"]))
        .collect()
}

#[test]
fn in_flight_requests_are_listed_and_interrupted() {
    let srv = TestServer::start(routes);
    let (sent, sent_at) = (Instant::now(), std::time::SystemTime::now());
    let clients: Vec<TcpStream> = (0..6)
        .map(|i| send(srv.addr, &format!("/wait/{i}")))
        .collect();
    let keep_running = send(srv.addr, "/other");
    common::wait_until("6 tasks", || task_ids(&srv, "http:wait").len() == 6);
    std::thread::sleep(Duration::from_millis(50));

    // Elasticsearch's shape, with ours beside it.
    let json = tasks_json(&srv, "actions=http:wait&detailed");
    let (asked, asked_at) = (sent.elapsed(), std::time::SystemTime::now());
    let millis = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    };
    let nodes = json["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 1);
    let (node, entry) = nodes.iter().next().unwrap();
    assert_eq!(entry["name"], json!(node));
    let tasks = entry["tasks"].as_object().unwrap();
    assert_eq!(tasks.len(), 6);
    let workers: std::collections::HashSet<u64> = tasks
        .values()
        .map(|t| t["worker"].as_u64().unwrap())
        .collect();
    assert_eq!(
        workers.len(),
        2,
        "requests on both workers are listed: {workers:?}"
    );
    for (id, task) in tasks {
        assert_eq!(id, &format!("{node}:{}", task["id"]));
        assert_eq!(task["type"], "http");
        assert_eq!(task["action"], "http:wait");
        assert_eq!(task["route_id"], "wait");
        assert_eq!(task["method"], "GET");
        assert!(task["path"].as_str().unwrap().starts_with("/wait/"));
        assert!(task["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(task["cancellable"], true);
        assert_eq!(task["cancelled"], false);
        // Each request started after it was sent and has run at least the 50 ms slept above.
        let running = Duration::from_nanos(task["running_time_in_nanos"].as_u64().unwrap());
        assert!(
            running >= Duration::from_millis(50) && running <= asked,
            "running {running:?}, sent {asked:?} ago"
        );
        let start = task["start_time_in_millis"].as_u64().unwrap();
        assert!(
            millis(sent_at) <= start + 1 && start <= millis(asked_at),
            "start {start}, sent at {}, asked at {}",
            millis(sent_at),
            millis(asked_at)
        );
        assert!(task["description"]
            .as_str()
            .unwrap()
            .starts_with("GET /wait/"));
        assert!(task["headers"]["X-Opaque-Id"]
            .as_str()
            .unwrap()
            .starts_with("probe-/wait/"));
    }
    // The other shapes.
    assert_eq!(
        tasks_json(&srv, "group_by=none&actions=http:wait")["tasks"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        tasks_json(&srv, "group_by=parents&actions=http:wait")["tasks"]
            .as_object()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(srv.admin("GET", "/_tasks?group_by=tree").status, 400);
    // One task by id.
    let id = &task_ids(&srv, "http:wait")[0];
    let one = srv.admin("GET", &format!("/_tasks/{id}")).json();
    assert_eq!(one["completed"], false);
    assert_eq!(one["task"]["action"], "http:wait");
    // _cat/tasks and the active count of the route.
    let cat = srv
        .admin("GET", "/_cat/tasks?h=action,method,cancelled&s=action")
        .body;
    let rows: Vec<Vec<&str>> = cat
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter()
            .filter(|r| *r == &["http:wait", "GET", "false"])
            .count(),
        6,
        "{cat}"
    );
    assert_eq!(srv.admin("GET", "/_cat/routes/wait?h=active").body, "6\n");

    // Interrupt: every client gets a real 503, promptly, and the registry drains.
    let started = Instant::now();
    let res = srv.admin("POST", "/_routes/wait/interrupt");
    assert_eq!(res.json(), json!({"wait": {"interrupted": 6}}));
    for client in clients {
        let reply = common::read_all(client);
        assert!(
            reply.starts_with("HTTP/1.1 503 Request interrupted\r\n"),
            "{reply}"
        );
        assert!(reply.ends_with("Request interrupted\n"), "{reply}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    common::wait_until("wait tasks gone", || task_ids(&srv, "http:wait").is_empty());
    assert_eq!(srv.admin("GET", "/_cat/routes/wait?h=active").body, "0\n");
    // Another route's request was left alone.
    let reply = common::read_all(keep_running);
    assert!(
        reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("other done"),
        "{reply}"
    );
    // Nothing left to interrupt.
    let res = srv.admin("POST", "/_routes/wait,other/interrupt");
    assert_eq!(
        res.json(),
        json!({"wait": {"interrupted": 0}, "other": {"interrupted": 0}})
    );
    assert_eq!(srv.admin("POST", "/_routes/nope/interrupt").status, 404);
    let res = srv.admin("GET", "/_routes/wait/interrupt");
    assert_eq!((res.status, res.header("allow")), (405, Some("POST")));
}

#[test]
fn cancelling_one_task_leaves_the_others_running() {
    let srv = TestServer::start(routes);
    let a = send(srv.addr, "/wait/100");
    let b = send(srv.addr, "/wait/101");
    common::wait_until("2 tasks", || {
        tasks_json(&srv, "group_by=none&actions=http:wait")["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["path"].as_str().unwrap().starts_with("/wait/10"))
            .count()
            == 2
    });
    let all = tasks_json(&srv, "group_by=none&actions=http:wait");
    let ids: Vec<(String, String)> = all["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["path"].as_str().unwrap().starts_with("/wait/10"))
        .map(|t| {
            (
                format!("{}:{}", t["node"].as_str().unwrap(), t["id"]),
                t["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (victim, victim_path) = &ids[0];
    let res = curl_unix(
        &srv.socket,
        "POST",
        &format!("/_tasks/{victim}/_cancel"),
        None,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let node = victim.split(':').next().unwrap();
    let task = &res.json()["nodes"][node]["tasks"][victim.as_str()];
    assert_eq!(task["cancelled"], true, "{}", res.body);
    // `cancel` is the seed's spelling: POST there too; a GET is refused with a hint.
    let again = curl_unix(
        &srv.socket,
        "POST",
        &format!("/_tasks/{victim}/cancel"),
        None,
    );
    assert!(again.status == 200 || again.status == 404, "{}", again.body);
    let get = curl_unix(
        &srv.socket,
        "GET",
        &format!("/_tasks/{victim}/cancel"),
        None,
    );
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    assert!(get.json()["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("takes POST"));

    let (cancelled, survivor) = if victim_path == "/wait/100" {
        (a, b)
    } else {
        (b, a)
    };
    let reply = common::read_all(cancelled);
    assert!(
        reply.starts_with("HTTP/1.1 503 Request interrupted\r\n"),
        "{reply}"
    );
    // The other request is still running.
    let (other_id, _) = &ids[1];
    let still = srv.admin("GET", &format!("/_tasks/{other_id}"));
    assert_eq!(still.status, 200);
    assert_eq!(still.json()["task"]["cancelled"], false);
    // A task that is gone is a 404; a malformed id a 400.
    common::wait_until("victim gone", || {
        srv.admin("GET", &format!("/_tasks/{victim}")).status == 404
    });
    assert_eq!(
        srv.admin("POST", &format!("/_tasks/{victim}/_cancel"))
            .status,
        404
    );
    assert_eq!(srv.admin("GET", "/_tasks/not-a-task-id").status, 400);
    let res = curl_unix(
        &srv.socket,
        "POST",
        &format!("/_tasks/{other_id}/_cancel"),
        None,
    );
    assert_eq!(res.status, 200);
    assert!(common::read_all(survivor).starts_with("HTTP/1.1 503"));
}

#[test]
fn an_interrupted_stream_closes_the_connection() {
    let srv = TestServer::start(routes);
    let mut client = send(srv.addr, "/stream");
    let mut head = [0u8; 512];
    let n = client.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    common::wait_until("stream task", || {
        task_ids(&srv, "http:streaming").len() == 1
    });
    let res = srv.admin("POST", "/_routes/streaming/interrupt");
    assert_eq!(res.json(), json!({"streaming": {"interrupted": 1}}));
    // The response had begun: no 503 is possible, the connection is closed instead, without
    // the chunked body's terminating chunk.
    let rest = common::read_all(client);
    let whole = head + &rest;
    assert!(whole.contains("first chunk"), "{whole}");
    assert!(
        !whole.ends_with("0\r\n\r\n"),
        "the body must not look complete: {whole:?}"
    );
    common::wait_until("stream task gone", || {
        task_ids(&srv, "http:streaming").is_empty()
    });
}

#[test]
fn panics_and_disconnects_leave_no_entry_behind() {
    let srv = TestServer::start(routes);
    let client = send(srv.addr, "/boom");
    let reply = common::read_all(client);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 500"),
        "{reply}"
    );
    common::wait_until("boom gone", || task_ids(&srv, "http:boom").is_empty());
    assert_eq!(
        srv.admin("GET", "/_cat/routes/boom?h=active,total").body,
        "0 1\n"
    );

    // actix-web does not cancel a handler when its client disconnects: the task stays until
    // the handler ends (here, after 2 s), then its entry goes.
    let client = send(srv.addr, "/lingering");
    common::wait_until("lingering task", || {
        task_ids(&srv, "http:lingering").len() == 1
    });
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        task_ids(&srv, "http:lingering").len(),
        1,
        "still running after the disconnect"
    );
    common::wait_until("lingering gone", || {
        task_ids(&srv, "http:lingering").is_empty()
    });
}

/// The paths of a `_tasks?group_by=none` answer, in order.
fn paths(json: &Value) -> Vec<String> {
    json["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks: {json}"))
        .iter()
        .map(|t| t["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn tasks_are_selected_sorted_cut_and_summarized_on_the_server() {
    let srv = TestServer::start(routes);
    // Five requests a few milliseconds apart: /storm/0 is the oldest.
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(send(srv.addr, &format!("/storm/{i}")));
        common::wait_until("the storm request listed", || {
            paths(&tasks_json(&srv, "group_by=none&route=storm")).len() == i + 1
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    let also_running = send(srv.addr, "/other");
    common::wait_until("the other request listed", || {
        !paths(&tasks_json(&srv, "group_by=none&route=other")).is_empty()
    });
    let at = |i: usize| format!("/storm/{i}");

    // `size` takes the first N after sorting, `total` counts every match.
    let json = tasks_json(
        &srv,
        "group_by=none&route=storm&sort=running_time:desc&size=2",
    );
    assert_eq!(paths(&json), [at(0), at(1)]);
    assert_eq!(json["total"], 5);
    let json = tasks_json(&srv, "group_by=none&route=st*&sort=start_time:desc&size=1");
    assert_eq!(paths(&json), [at(4)]);
    assert_eq!(json["total"], 5);
    // Without a sort key, the first by start time; `size=0` is the count alone.
    let json = tasks_json(&srv, "group_by=none&route=storm&size=3");
    assert_eq!(paths(&json), [at(0), at(1), at(2)]);
    let json = tasks_json(&srv, "group_by=none&route=storm&size=0");
    assert_eq!((paths(&json).len(), &json["total"]), (0, &json!(5)));
    // Without `size`, no `total`: the shape is Elasticsearch's.
    let json = tasks_json(&srv, "group_by=none&route=storm,other&sort=path:desc");
    assert_eq!(json.get("total"), None);
    assert_eq!(
        paths(&json),
        [at(4), at(3), at(2), at(1), at(0), "/other".to_owned()]
    );
    // The default grouping cuts the same way.
    let json = tasks_json(&srv, "route=storm&size=2&sort=running_time:desc");
    assert_eq!(json["total"], 5);
    let node = json["nodes"].as_object().unwrap().values().next().unwrap();
    assert_eq!(node["tasks"].as_object().unwrap().len(), 2);
    // `min_running_time` is an Elasticsearch time value.
    let json = tasks_json(&srv, "group_by=none&route=storm&min_running_time=1h");
    assert!(paths(&json).is_empty());
    let json = tasks_json(&srv, "group_by=none&route=storm&min_running_time=1nanos");
    assert_eq!(paths(&json).len(), 5);

    // `_cat/tasks`: the same parameters, the total in `X-Total-Count`.
    let res = srv.admin(
        "GET",
        "/_cat/tasks?route=storm&s=running_time:desc&size=3&h=path",
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body, "/storm/0\n/storm/1\n/storm/2\n");
    assert_eq!(res.header("x-total-count"), Some("5"));
    let res = srv.admin("GET", "/_cat/tasks?route=storm&h=path&s=path:desc");
    assert_eq!(res.body.lines().next(), Some("/storm/4"));
    assert_eq!(res.header("x-total-count"), None);

    // The summary: per route, no task rows.
    let json = tasks_json(&srv, "group_by=routes&route=storm,other");
    assert_eq!(json["total"], 6);
    assert_eq!(json["routes"]["storm"]["tasks"], 5);
    assert_eq!(json["routes"]["storm"]["cancelled"], 0);
    assert_eq!(json["routes"]["other"]["tasks"], 1);
    let oldest = json["routes"]["storm"]["oldest_running_time_in_nanos"]
        .as_u64()
        .unwrap();
    let newest_first = tasks_json(&srv, "group_by=none&route=storm&sort=running_time&size=1");
    let newest = newest_first["tasks"][0]["running_time_in_nanos"]
        .as_u64()
        .unwrap();
    assert!(oldest > newest + 20_000_000, "{oldest} vs {newest}");
    let res = srv.admin(
        "GET",
        "/_cat/tasks/summary?v&route=storm,other&h=route,tasks,cancelled&s=tasks:desc",
    );
    assert_eq!(
        res.body,
        "route tasks cancelled\nstorm     5         0\nother     1         0\n"
    );

    // Bad values are 400s naming the parameter; an unknown route a 404 as elsewhere.
    for (query, named) in [
        ("/_tasks?size=x", "[size]"),
        ("/_tasks?size=-1", "[size]"),
        ("/_tasks?min_running_time=2", "[min_running_time]"),
        ("/_tasks?min_running_time=1.5s", "1500ms"),
        ("/_tasks?sort=nope", "[sort]"),
        ("/_tasks?sort=running_time:up", "[up]"),
        ("/_cat/tasks?s=nope", "[s]"),
        ("/_cat/tasks?size=ten", "[size]"),
        ("/_tasks?group_by=routes&size=1", "[size]"),
        ("/_tasks?group_by=routes&sort=path", "[sort]"),
        ("/_cat/tasks/summary?size=1", "[size]"),
        ("/_tasks?route=a,,b", "[ids]"),
    ] {
        let res = srv.admin("GET", query);
        assert_eq!(res.status, 400, "{query}: {}", res.body);
        assert_eq!(res.json()["error"]["type"], "illegal_argument_exception");
        assert!(res.body.contains(named), "{query}: {}", res.body);
    }
    let res = srv.admin("GET", "/_tasks?route=no_such_route");
    assert_eq!(res.status, 404, "{}", res.body);

    let res = srv.admin("POST", "/_routes/storm/interrupt");
    assert_eq!(res.json()["storm"]["interrupted"], 5);
    drop((clients, also_running));
}

#[test]
fn plain_routes_are_tasks_too() {
    let srv = TestServer::start(routes);
    // Learn the plain route first (it is known after its first request).
    let first = send(srv.addr, "/plainwait");
    common::wait_until("plain task", || {
        tasks_json(&srv, "group_by=none")["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["path"] == "/plainwait")
    });
    let json = tasks_json(&srv, "group_by=none");
    let task = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "/plainwait")
        .cloned()
        .unwrap();
    // Not routed yet as far as anyone can tell: actix has not answered.
    assert_eq!(task["action"], "http:_unrouted");
    let id = format!("{}:{}", task["node"].as_str().unwrap(), task["id"]);
    assert_eq!(
        srv.admin("POST", &format!("/_tasks/{id}/_cancel")).status,
        200
    );
    let reply = common::read_all(first);
    assert!(
        reply.starts_with("HTTP/1.1 503 Request interrupted\r\n"),
        "{reply}"
    );
    // Interrupted before actix said which route it was: the route is still unknown, so it
    // cannot be interrupted by route id yet.
    assert_eq!(
        srv.admin("POST", "/_routes/plainwait/interrupt").status,
        404
    );
}

async fn load_from_db() -> u32 {
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    7
}

async fn business_logic() -> u32 {
    load_from_db().await + 1
}

/// Waits in nested async fns, for print_stack.
#[underscore_route]
#[get("/deep")]
async fn deep() -> impl Responder {
    format!("deep {}", business_logic().await)
}

#[test]
fn print_stack_shows_where_a_request_waits() {
    fn with_deep(cfg: &mut web::ServiceConfig) {
        cfg.service(deep);
    }
    let srv = TestServer::start(with_deep);
    let client = send(srv.addr, "/deep");
    common::wait_until("deep task", || task_ids(&srv, "http:deep").len() == 1);
    let id = task_ids(&srv, "http:deep").remove(0);
    let res = srv.admin("GET", &format!("/_tasks/{id}/print_stack"));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let stack = res.body;
    assert!(
        stack.starts_with(&format!(
            "task {id} (http:deep, GET /deep, opaque_id probe-/deep) running for "
        )),
        "{stack}"
    );
    // Real frames, innermost first: tokio's timer, then our async fns, then the handler.
    let at = |name: &str| {
        stack
            .lines()
            .position(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{stack}"))
    };
    let (sleep, load, logic, handler) = (
        at("tokio::time::sleep"),
        at("tasks::load_from_db"),
        at("tasks::business_logic"),
        at("tasks::deep"),
    );
    assert!(sleep < load && load < logic && logic < handler, "{stack}");
    assert!(
        stack.contains("tests/tasks.rs:"),
        "file:line of our frames: {stack}"
    );
    // The request carries on, untouched.
    let reply = common::read_all(client);
    assert!(
        reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("deep 8"),
        "{reply}"
    );
    // Gone now: 404; not an id at all: 400.
    assert_eq!(
        srv.admin("GET", &format!("/_tasks/{id}/print_stack"))
            .status,
        404
    );
    assert_eq!(srv.admin("GET", "/_tasks/nope/print_stack").status, 400);
}

/// Starts a background task that runs until cancelled.
#[underscore_route]
#[get("/spawn")]
async fn spawn() -> impl Responder {
    underscore_actix::spawn_task("ticker", async {
        loop {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    });
    "spawned"
}

#[test]
fn background_tasks_are_listed_and_cancellable() {
    fn with_spawn(cfg: &mut web::ServiceConfig) {
        cfg.service(spawn);
    }
    let srv = TestServer::start(with_spawn);
    assert_eq!(srv.http("GET", "/spawn").body, "spawned");
    common::wait_until("ticker", || task_ids(&srv, "background:ticker").len() == 1);
    let json = tasks_json(&srv, "group_by=none&actions=background:*");
    let task = &json["tasks"][0];
    assert_eq!(task["type"], "background");
    assert_eq!(task["action"], "background:ticker");
    assert!(
        task["route_id"].is_null() && task["path"].is_null(),
        "{task}"
    );
    let id = task_ids(&srv, "background:ticker").remove(0);
    let stack = srv.admin("GET", &format!("/_tasks/{id}/print_stack")).body;
    assert!(
        stack.contains("tokio::time::sleep") && stack.contains("tasks::spawn"),
        "{stack}"
    );
    assert_eq!(
        srv.admin("POST", &format!("/_tasks/{id}/_cancel")).status,
        200
    );
    common::wait_until("ticker gone", || {
        task_ids(&srv, "background:ticker").is_empty()
    });
    // Interrupting routes never touches background tasks.
    assert_eq!(srv.http("GET", "/spawn").status, 200);
    common::wait_until("ticker again", || {
        task_ids(&srv, "background:ticker").len() == 1
    });
    srv.admin("POST", "/_routes/spawn/interrupt");
    assert_eq!(task_ids(&srv, "background:ticker").len(), 1);
    let id = task_ids(&srv, "background:ticker").remove(0);
    srv.admin("POST", &format!("/_tasks/{id}/_cancel"));
}
