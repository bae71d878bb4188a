//! Route identity: scopes, plain actix-web routes, middleware that defers routing, 404 floods,
//! and the admin APIs mounted in the app.

mod common;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{get, post, web, App, HttpServer, Responder};
use common::TestServer;
use serde_json::json;
use underscore_actix::{underscore_route, Observe};

/// Reads one item.
#[underscore_route]
#[get("/items/{id}")]
async fn item(id: web::Path<u32>) -> impl Responder {
    format!("item {id}")
}

#[underscore_route(name = "make-item")]
#[post("/items")]
async fn create() -> impl Responder {
    "created"
}

async fn plain_user(id: web::Path<String>) -> impl Responder {
    format!("user {id}")
}

fn scoped(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .service(item)
            .service(create)
            .route("/users/{id}", web::get().to(plain_user))
            .service(
                web::resource("/named")
                    .name("named_resource")
                    .to(|| async { "named" }),
            ),
    );
}

#[test]
fn scoped_routes_report_their_full_path_and_plain_routes_get_documented_ids() {
    let srv = TestServer::start(scoped);
    assert_eq!(srv.http("GET", "/api/items/7").body, "item 7");
    assert_eq!(srv.http("POST", "/api/items").status, 200);
    assert_eq!(srv.http("GET", "/api/users/ann").body, "user ann");
    assert_eq!(srv.http("GET", "/api/users/bob").body, "user bob");
    assert_eq!(srv.http("GET", "/api/named").status, 200);
    // A GET on the POST-only annotated route matches no resource: a 404, counted nowhere.
    assert_eq!(srv.http("GET", "/api/items").status, 404);
    assert_eq!(
        srv.admin(
            "GET",
            "/_cat/routes/api.*,named*,item,make-item?v&h=id,method,path,total,kind&s=kind,id"
        )
        .body,
        "id             method path            total kind\n\
         api.users.id   GET    /api/users/{id}     2 actix\n\
         named_resource GET    /api/named          1 actix\n\
         item           GET    /api/items/{id}     1 annotated\n\
         make-item      POST   /api/items          1 annotated\n"
    );
}

/// Slow, and reached only through a deferring middleware.
#[underscore_route]
#[get("/deferred-slow")]
async fn deferred_slow() -> impl Responder {
    actix_web::rt::time::sleep(std::time::Duration::from_millis(600)).await;
    "slow"
}

/// Reached only through a deferring middleware.
#[underscore_route]
#[get("/deferred/{id}")]
async fn deferred(id: web::Path<u32>) -> impl Responder {
    format!("deferred {id}")
}

async fn defer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Awaiting before calling on: routing happens outside `Observe`'s synchronous call.
    actix_web::rt::task::yield_now().await;
    next.call(req).await
}

#[test]
fn annotated_routes_are_not_double_counted_behind_deferring_middleware() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let admin = underscore_actix::AdminSocket::bind(&socket).unwrap();
    let server = common::run_server(Some(admin), || {
        let server = HttpServer::new(|| {
            App::new()
                .wrap(from_fn(defer))
                .wrap(Observe::new())
                .service(web::scope("/api").service(deferred).service(deferred_slow))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
    let addr = server.addr;
    // A waiting request is one task (the `Track`'s), not two.
    let url = format!("http://{addr}/api/deferred-slow");
    let slow = std::thread::spawn(move || common::http("GET", &url, None));
    let mut listed = Vec::new();
    for _ in 0..100 {
        let json = common::curl_unix(&socket, "GET", "/_tasks?group_by=none", None).json();
        listed = json["tasks"].as_array().unwrap().clone();
        if !listed.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let json = common::curl_unix(&socket, "GET", "/_tasks?group_by=none", None).json();
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?} (first seen: {listed:?})");
    assert_eq!(tasks[0]["action"], "http:deferred_slow");
    assert_eq!(slow.join().unwrap().body, "slow");
    let stats = common::curl_unix(&socket, "GET", "/_routes/stats", None).json();
    assert_eq!(stats["routes"]["deferred_slow"]["requests"]["total"], 1);
    assert_eq!(stats["unmatched"]["404"]["requests"]["total"], 0, "{stats}");
    for _ in 0..5 {
        let res = common::http("GET", &format!("http://{addr}/api/deferred/1"), None);
        assert_eq!(res.status, 200);
    }
    let res = common::curl_unix(
        &socket,
        "GET",
        "/_cat/routes?format=json&h=id,path,total,kind",
        None,
    );
    let rows = res.json();
    let rows = rows.as_array().unwrap();
    // The annotated route is counted by its Track only: no plain twin appears for its pattern.
    assert!(
        !rows
            .iter()
            .any(|r| r["path"] == "/api/deferred/{id}" && r["kind"] == "actix"),
        "{rows:?}"
    );
    let row = rows.iter().find(|r| r["id"] == "deferred").unwrap();
    assert_eq!(row["path"], "/api/deferred/{id}");
    assert_eq!(row["total"], 5);
    server.stop();
}

fn with_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(|| async { "pong" }));
}

#[test]
fn in_app_admin_apis_answer_like_the_socket_and_are_never_counted() {
    let srv = TestServer::start_with(with_admin, true);
    assert_eq!(srv.http("GET", "/ping").body, "pong");
    for _ in 0..3 {
        assert_eq!(srv.http("GET", "/_cat/routes").status, 200);
        assert_eq!(srv.http("GET", "/_routes").status, 200);
        assert_eq!(srv.http("GET", "/_cat").status, 200);
    }
    let in_app = srv.http("GET", "/_cat/routes/ping?v&h=id,method,path,total");
    let socket = srv.admin("GET", "/_cat/routes/ping?v&h=id,method,path,total");
    assert_eq!(
        socket.body,
        "id   method path  total\nping GET    /ping     1\n"
    );
    assert_eq!(in_app.status, 200);
    assert_eq!(in_app.body, socket.body);
    // Only the app's own route is listed: no `_cat`, `_routes` or `_tasks` entries.
    let ids: Vec<String> = srv
        .http("GET", "/_cat/routes?format=json&h=id")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|id| !id.starts_with('_')), "{ids:?}");
    assert!(ids.contains(&"ping".to_owned()), "{ids:?}");
    // Errors in-app are the same Elasticsearch-shaped JSON, with the right status.
    let res = srv.http("POST", "/_cat/routes");
    assert_eq!((res.status, res.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(
        res.json()["error"]["type"],
        json!("method_not_allowed_exception")
    );
    assert_eq!(srv.http("GET", "/_cat/nope").status, 404);
    assert_eq!(
        srv.http("GET", "/_cat/routes").header("cache-control"),
        Some("no-store")
    );
}
