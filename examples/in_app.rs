//! Run with: `cargo run --example in_app`
//!
//! The admin APIs mounted inside the app, on the app's own port (`IN_APP_ADDR`, default
//! `127.0.0.1:8081`). Convenient for development; anyone who can reach the app can reach them,
//! so prefer the private socket of the `quickstart` example in production.
//!
//! ```text
//! curl 'http://127.0.0.1:8081/_cat/routes?v'
//! ```

use actix_web::{get, App, HttpServer, Responder};
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
    let server = HttpServer::new(|| {
        App::new()
            .wrap(Observe::new())
            .service(index)
            .configure(underscore_actix::admin::configure)
    })
    .bind(&addr)?;
    for addr in server.addrs() {
        println!("app and admin APIs on http://{addr}: curl 'http://{addr}/_cat/routes?v'");
    }
    server.run().await
}
