//! In-flight requests of plain actix-web routes are matched to their route by path, with
//! actix's own pattern syntax: static, `{param}`, `{param:regex}`, a tail `{tail}*`, a
//! parameter inside a segment.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use actix_web::{web, HttpRequest};
use common::TestServer;
use serde_json::Value;

/// Answers at once, or waits (until the test ends) when asked with `?wait`.
async fn maybe_wait(req: HttpRequest) -> &'static str {
    if req.query_string() == "wait" {
        actix_web::rt::time::sleep(Duration::from_secs(30)).await;
    }
    "done"
}

/// `(pattern, route id, a path it matches)`, registered in this order.
const ROUTES: [(&str, &str, &str); 6] = [
    ("/static/page", "static.page", "/static/page"),
    ("/users/{id}", "users.id", "/users/7"),
    ("/items/{id:\\d+}", "items.id", "/items/42"),
    ("/files/{tail}*", "files.tail", "/files/a/b/c.txt"),
    ("/v{version}/status", "vversion.status", "/v2/status"),
    ("/users/{id}/posts", "users.id.posts", "/users/7/posts"),
];

fn routes(cfg: &mut web::ServiceConfig) {
    for (pattern, _, _) in ROUTES {
        cfg.service(web::resource(pattern).route(web::get().to(maybe_wait)));
    }
}

#[test]
fn waiting_plain_requests_are_matched_to_their_route_by_path() {
    let srv = TestServer::start(routes);
    // Plain routes are known once they answered a request.
    for (_, _, path) in ROUTES {
        assert_eq!(srv.http("GET", path).status, 200, "{path}");
    }
    let _waiting: Vec<TcpStream> = ROUTES
        .iter()
        .map(|(_, _, path)| {
            common::send_raw(
                srv.addr,
                format!("GET {path}?wait HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
            )
        })
        .collect();
    let tasks = || -> Vec<(String, String)> {
        srv.admin("GET", "/_tasks?group_by=none").json()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (text(&t["path"]), text(&t["action"]))
            })
            .collect()
    };
    common::wait_until("every request waiting", || tasks().len() == ROUTES.len());
    let mut seen = tasks();
    seen.sort();
    let mut want: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(_, id, path)| (format!("{path}?wait"), format!("http:{id}")))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    // The same matching gives each route its active request.
    let active = srv.admin("GET", "/_cat/routes?h=id,active&s=id").body;
    for (_, id, _) in ROUTES {
        assert!(
            active.lines().any(|l| l.split_whitespace().eq([id, "1"])),
            "{id} not active once in:\n{active}"
        );
    }
}
