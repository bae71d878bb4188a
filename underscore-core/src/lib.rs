//! Framework-independent core of the underscore admin APIs.
//!
//! This crate knows nothing of actix-web: it holds the route registry and metadata that
//! `#[underscore_route]` fills in, the `_cat` table engine (column selection, typed sorting and
//! Elasticsearch's exact text layout), query-parameter parsing, response filtering, the
//! Elasticsearch-shaped error type, and [`api::handle`], which answers every admin-API request.
//! `underscore-actix` serves it.
//!
//! # Examples
//!
//! ```
//! use underscore_core::api::{handle, Request};
//!
//! let res = handle(&Request::new("GET", "/_cat", ""));
//! assert_eq!(res.status, 200);
//! assert!(res.body.starts_with(b"=^.^=\n"));
//!
//! let res = handle(&Request::new("GET", "/_cat/routes", "v=maybe"));
//! assert_eq!(res.status, 400);
//! ```

#![deny(missing_docs)]

pub mod api;
pub mod cat;
pub mod clock;
pub mod components;
pub mod correlation;
pub mod dashboard;
mod error;
pub mod filter_path;
pub mod glob;
pub mod health;
pub mod params;
pub mod prometheus;
pub mod registry;
pub mod render;
pub mod route;
pub mod settings;
pub mod slowlog;
pub mod stats;
pub mod tasks;
pub mod time_value;
pub mod workers;
pub mod yaml;

pub use error::ApiError;
pub use registry::{registry, Registry};
pub use route::{RouteMeta, RouteRef, RouteState};

#[doc(hidden)]
pub use inventory;
