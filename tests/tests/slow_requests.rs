//! Why a request is slow: correlation ids, the slow log.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use actix_web::{get, web, Responder};
use common::TestServer;
use serde_json::Value;
use underscore_actix::underscore_route;

/// Waits until interrupted.
#[underscore_route]
#[get("/hold/{n}")]
async fn hold(n: web::Path<u32>) -> impl Responder {
    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    format!("held {n}")
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(hold);
}

/// Sends `GET path` with `headers` (`Name: value\r\n` lines) and returns the open connection.
fn send(addr: SocketAddr, path: &str, headers: &str) -> TcpStream {
    common::send_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"),
    )
}

fn tasks_of(srv: &TestServer, action: &str) -> Vec<Value> {
    let json = srv
        .admin("GET", &format!("/_tasks?group_by=none&actions={action}"))
        .json();
    json["tasks"].as_array().unwrap().clone()
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_correlation_id_comes_from_the_first_header_present() {
    let srv = TestServer::start(routes);
    let cases = [
        (
            "/hold/1",
            "X-Opaque-Id: job-1\r\nX-Request-Id: r-1\r\n",
            Some("job-1"),
        ),
        ("/hold/2", "X-Request-Id: r-2\r\n", Some("r-2")),
        (
            "/hold/3",
            &*format!("traceparent: {TRACEPARENT}\r\n"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
        ("/hold/4", "traceparent: garbage\r\n", None),
        ("/hold/5", "", None),
    ];
    let _clients: Vec<TcpStream> = cases
        .iter()
        .map(|(path, headers, _)| send(srv.addr, path, headers))
        .collect();
    common::wait_until("5 tasks", || tasks_of(&srv, "http:hold").len() == 5);
    let tasks = tasks_of(&srv, "http:hold");
    for (path, _, want) in cases {
        let task = tasks.iter().find(|t| t["path"] == path).unwrap();
        assert_eq!(task["opaque_id"].as_str(), want, "{path}: {task}");
        let id = format!("{}:{}", task["node"].as_str().unwrap(), task["id"]);
        let cat = srv.admin("GET", &format!("/_cat/tasks/{id}?h=opaque_id"));
        assert_eq!(cat.body.trim(), want.unwrap_or("-"), "{path}");
        let stack = srv.admin("GET", &format!("/_tasks/{id}/print_stack"));
        assert_eq!(stack.status, 200, "{}", stack.body);
        let first = stack.body.lines().next().unwrap().to_owned();
        match want {
            Some(want) => assert!(
                first.contains(&format!("GET {path}, opaque_id {want})")),
                "{first}"
            ),
            None => assert!(!first.contains("opaque_id"), "{first}"),
        }
    }
}
