//! Requests that match no route never grow the route table (the seed's leak, and
//! actix-web-prom issue #80). Alone in its test binary, so the table is this test's own.

mod common;

use actix_web::web;
use common::TestServer;

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{id}", web::get().to(|| async { "user" }));
}

#[test]
fn not_found_floods_do_not_grow_the_route_table() {
    let srv = TestServer::start(routes);
    assert_eq!(srv.http("GET", "/users/1").status, 200);
    let before = srv.admin("GET", "/_cat/routes?h=id,path").body;
    assert_eq!(before, "users.id /users/{id}\n");
    for i in 0..200 {
        assert_eq!(srv.http("GET", &format!("/wp-admin/{i}.php")).status, 404);
        // The right path with a method no route accepts is a 404 too, and no new route.
        assert_eq!(srv.http("POST", "/users/1").status, 404);
    }
    assert_eq!(srv.admin("GET", "/_cat/routes?h=id,path").body, before);
}
