//! Elasticsearch-style admin APIs for actix-web.
//!
//! When a service drowns in traffic, its operator needs to see and steer it from the inside,
//! without a redeploy: which routes exist and how busy each one is. This crate gives an
//! actix-web app `GET /_cat`, `GET /_cat/routes` and `GET /_routes`, served on a private UNIX
//! socket ([`AdminSocket`]) or mounted in the app ([`admin::configure`]).
//!
//! - [`underscore_route`] registers a handler at compile time and puts the [`Track`]
//!   middleware on its resource;
//! - [`Observe`] (App-level) makes routes registered with plain actix-web appear too;
//! - [`AdminSocket`] serves the admin APIs on a `0600` UNIX socket;
//! - [`logging::layer`] lets `PUT /_logging/settings` change what `tracing` lets through.
//! - [`metrics_handler`] serves the Prometheus metrics (`/_prometheus/metrics` of the admin
//!   APIs) on a route of the app, for a scraper.
//! - [`HealthCheck`]s registered on [`Underscore`] feed `GET /_health`; [`probes`] answers
//!   `/livez` and `/readyz` on the app's port; `POST /_drain` (or SIGTERM, opted in) takes the
//!   node out of rotation and stops it without losing a request.
//!
//! # Examples
//!
//! ```no_run
//! use actix_web::{get, App, HttpServer, Responder};
//! use underscore_actix::{underscore_route, AdminSocket, Observe};
//!
//! /// Says hello.
//! #[underscore_route]
//! #[get("/")]
//! async fn index() -> impl Responder {
//!     "Hello!"
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let admin = AdminSocket::bind("/tmp/underscore.sock")?;
//!     let app = HttpServer::new(|| App::new().wrap(Observe::new()).service(index))
//!         .bind("127.0.0.1:8080")?
//!         .run();
//!     admin.run_alongside(app).await
//! }
//! ```
//!
//! Then: `curl --unix-socket /tmp/underscore.sock 'http://./_cat/routes?v'`.
//!
//! The admin APIs answer in memory too, without a socket: a request through the app, then
//! `_cat/routes` as [`core::api::handle`] renders it for every transport.
//!
//! ```
//! use actix_web::{get, test, web, App, Responder};
//! use underscore_actix::core::api::{handle, Request};
//! use underscore_actix::{underscore_route, Observe};
//!
//! /// Greets someone by name.
//! #[underscore_route]
//! #[get("/hello/{name}")]
//! async fn hello(name: web::Path<String>) -> impl Responder {
//!     format!("Hello {name}!")
//! }
//!
//! #[actix_web::main]
//! async fn main() {
//!     let app = test::init_service(App::new().wrap(Observe::new()).service(hello)).await;
//!     let req = test::TestRequest::get().uri("/hello/ferris").to_request();
//!     assert_eq!(test::call_and_read_body(&app, req).await, "Hello ferris!");
//!
//!     let cat = handle(&Request::new("GET", "/_cat/routes/hello", "v&h=id,path,total"));
//!     assert_eq!(
//!         String::from_utf8(cat.body).unwrap(),
//!         "id    path          total\nhello /hello/{name}     1\n"
//!     );
//! }
//! ```
//!
//! The guide (`docs/` in the repository, starting at its `README.md`) has a page per
//! capability: settings and tiers, load shedding, tasks and stacks, statistics and Prometheus,
//! log levels, the CLI, security.

#![deny(missing_docs)]

pub mod admin;
mod background;
mod capture;
mod claim;
mod health;
mod inflight;
pub mod logging;
mod observe;
mod operator;
mod preempt;
mod record;
mod setup;
#[cfg(unix)]
mod socket;
mod stack;
mod track;

pub use admin::metrics_handler;
pub use background::spawn_task;
pub use capture::{Capture, CaptureMiddleware};
pub use health::{
    probes, serve, start_drain, DrainError, HealthCheck, Probes, ProbesFuture, ProbesMiddleware,
};
pub use observe::{Observe, ObserveFuture, ObserveMiddleware};
pub use record::{on_connect, record, record_in, record_listeners, Recorded};
pub use setup::Underscore;
#[cfg(unix)]
pub use socket::{AdminSocket, SocketError};
pub use track::{Track, TrackFuture, TrackMiddleware};
pub use underscore_core::settings::SettingsError;
pub use underscore_core::{self as core, ApiError};
pub use underscore_macros::underscore_route;

/// What `#[underscore_route]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::capture::Capture;
    pub use crate::track::Track;
    pub use underscore_core::inventory;
    pub use underscore_core::{RouteMeta, RouteRef, RouteState};
}
