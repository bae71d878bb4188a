//! Run with: `cargo run --example in_app`
//!
//! The admin APIs mounted inside the app, on the app's own port (`IN_APP_ADDR`, default
//! `127.0.0.1:8081`), guarded: loopback peers only, and `Authorization: Bearer $IN_APP_TOKEN`
//! when that variable is set. Prefer the private socket of the `quickstart` example in
//! production.
//!
//! ```text
//! curl 'http://127.0.0.1:8081/_cat/routes?v'
//! IN_APP_TOKEN=s3cret cargo run --example in_app   # then: curl -H 'Authorization: Bearer s3cret' ...
//! ```
//!
//! The dashboard is at `/_ui` (`/_ui#token=s3cret` with a token; without one it can look but
//! not act).

use actix_web::{get, App, HttpServer, Responder};
use underscore_actix::admin::InApp;
use underscore_actix::{underscore_route, Observe};

/// Says hello.
#[underscore_route]
#[get("/")]
async fn index() -> impl Responder {
    "Hello! The admin APIs are under /_cat and /_routes on this port.\n"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("IN_APP_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let token = std::env::var("IN_APP_TOKEN").ok();
    let server = HttpServer::new(move || {
        let mut admin = InApp::new().loopback_only().dashboard();
        if let Some(token) = &token {
            admin = admin.bearer_token(token);
        }
        App::new()
            .wrap(Observe::new())
            .service(index)
            .configure(|cfg| admin.configure(cfg))
    })
    .bind(&addr)?;
    for addr in server.addrs() {
        println!("app and admin APIs on http://{addr}: curl 'http://{addr}/_cat/routes?v'");
        println!("dashboard on http://{addr}/_ui");
    }
    server.run().await
}
