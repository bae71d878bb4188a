//! The servers and the client of the overhead benchmark (`bench/overhead.sh`).
//!
//! Three servers answer the same routes with the same handlers and one worker: plain
//! actix-web, the same app with underscore fully on (every handler annotated, `Observe`,
//! stats, in-flight tracking, the admin socket up), and the same app with actix-web-prom.

pub mod client;
